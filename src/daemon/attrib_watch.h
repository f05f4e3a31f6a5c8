// AttribWatch: changes of files' metadata and xattrs (chmod, chown, setxattr, removexattr —
// what EVM protects) seen by a fanotify notification group of their own: FAN_ATTRIB needs
// FAN_CLASS_NOTIF | FAN_REPORT_FID with filesystem marks, and its events name a file by
// (fsid, file handle), never by an open fd. The kernel's EVM checks the current HMAC before
// such a change and re-computes it after; limd cannot block the syscall, so it learns of the
// change here and EvmState (evm_state.h) decides, at the file's next appraisal, whether it
// may re-compute security.evm (only for a file it verified in this run).
//
// Order: the kernel queues the event inside the syscall, before it returns; an access that
// follows the change therefore finds it queued, and draining before an EVM decision sees
// every change that happened before the access (as readers' closes are drained before a
// write-open, reader_close_group.h). A background thread also drains (ChangeSink gets them)
// so the queue stays short. A full queue (FAN_Q_OVERFLOW) means changes went unseen:
// on_overflow, and EvmState forgets what it had verified.
//
// A filesystem whose fsid another marked one has, or without file handles, is not marked:
// Watching(dev) is false there, and EvmState never re-blesses a file on it.
//
// Filesystems the kernel refuses a filesystem mark with FAN_REPORT_FID (tested on 6.18):
// overlayfs (EOPNOTSUPP: it cannot decode file handles without nfs_export) and FUSE
// (ENODEV: statfs gives a zero fsid). Both accept inode marks, so such a filesystem is
// watched per inode: Key() marks the file's inode before EvmState reads its state (a
// change after that is queued; one before it belongs to a state never verified), up to
// kMaxInodeMarks per filesystem (then Key() gives nullopt: never re-blessed). A zero fsid
// cannot tell two filesystems' events apart, so each such filesystem gets a fanotify
// group of its own whose events are all its.
//
// Threading: Mark/Watching/Drain are thread-safe (one mutex, not held across the
// callbacks); the callbacks run on the draining thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"

namespace lim::daemon {

class AttribWatch {
 public:
  // key: AttribWatch::Key of the changed file. overflow: changes were lost, and why (a
  // queue overflow; a watched filesystem replaced by a new one on its device number, whose
  // files may have changed unseen while it was away).
  using OnChange = std::function<void(const std::string& key)>;
  using OnOverflow = std::function<void(const std::string& why)>;

  // nullptr and why when the kernel refuses such a group.
  static Result<std::unique_ptr<AttribWatch>> Create(OnChange on_change, OnOverflow on_overflow);
  ~AttribWatch();
  AttribWatch(const AttribWatch&) = delete;
  AttribWatch& operator=(const AttribWatch&) = delete;

  // Marks the filesystem mounted at root (device dev) for FAN_ATTRIB — a filesystem mark,
  // or per inode where the kernel refuses one (above). Error: not watched. A dev watched
  // before whose filesystem mark is gone (its superblock went; a new one took the number)
  // is marked anew, and on_overflow is called first: changes were not seen meanwhile.
  Status Mark(const std::string& root, uint64_t dev);
  // Whether dev is watched per inode (Mark fell back to inode marks).
  bool PerInode(uint64_t dev) const;
  static constexpr size_t kMaxInodeMarks = 1 << 14;
  bool Watching(uint64_t dev) const;

  // The key of the file open at fd on device dev: dev, then the handle fanotify reports
  // for it (name_to_handle_at with AT_HANDLE_FID). nullopt when dev is not watched or the
  // file has no handle. On a filesystem watched per inode it first marks the inode (call
  // it before reading the state the key stands for); nullopt when that fails.
  std::optional<std::string> Key(int fd, uint64_t dev);

  // Reads every queued event now, calling the callbacks. Returns the number read.
  Result<size_t> Drain();
  // Drains in a thread of its own whenever events are queued, until the destructor.
  void StartThread();

  uint64_t events() const { return events_.load(); }
  uint64_t overflows() const { return overflows_.load(); }

 private:
  AttribWatch(int fd, int stop_fd, OnChange on_change, OnOverflow on_overflow);
  static std::string MakeKey(uint64_t dev, const std::string& handle);
  // Whether this group's filesystem mark on dev is still in its fdinfo (not gone with its
  // superblock). Called with mu_ held.
  bool SuperblockStillMarked(uint64_t dev) const;
  // Drops what is kept for dev (its superblock gone). Called with mu_ held.
  void ForgetLocked(uint64_t dev);
  // One group's queued events; dev: the filesystem of every event (a group of a zero-fsid
  // filesystem), 0: by fsid.
  Status DrainFd(int fd, uint64_t dev, size_t* events);

  struct PerInodeFs {
    int fd = -1;  // the group marking its inodes: fd_, or one of its own (zero fsid)
    std::unordered_set<std::string> marked;  // handles marked
  };

  const int fd_;
  const int stop_fd_;  // eventfd: wakes the thread to end
  OnChange on_change_;
  OnOverflow on_overflow_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> fsid_to_dev_;
  std::unordered_map<uint64_t, std::string> devs_;  // marked superblock → mount root
  std::unordered_map<uint64_t, PerInodeFs> per_inode_;  // devs_ watched per inode
  std::mutex drain_mu_;  // one reader of fd_ at a time (callbacks in queue order)
  std::atomic<uint64_t> events_{0}, overflows_{0};
  std::thread thread_;
};

}  // namespace lim::daemon
