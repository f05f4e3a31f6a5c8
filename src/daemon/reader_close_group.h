// ReaderCloseGroup: a reader's last close (FAN_CLOSE_NOWRITE) observed in a fanotify
// notification group of its own that reports file handles (FAN_REPORT_FID), read in
// batches when reader counts are about to matter instead of on every close.
//
// Why: reader counts (the kernel's i_readcount) matter only at a write-open — ToMToU and
// the pre-content write-only shortcut look at them — yet in the content group every
// close woke limd, opened an fd for it, fstat'ed and closed it: a third of the events of
// a spawn and half of those of an open+close. Here a close costs limd nothing until the
// next write-open (or a periodic drain) reads them all in one read(), and a FID event
// pins no dentry or mount while it waits.
//
// Order: a reader's close precedes a later write-open in time, so it is already queued
// here when the write-open is read from the content group; draining this group before
// acting on a write-open sees every close that happened before it (the causal order the
// single group gave). Writer closes (FAN_CLOSE_WRITE) stay in the content group.
// Merging: fanotify merges a queued event with a new identical one (same thread, same
// file), so a thread that opens and closes one file again and again would leave one close
// for many opens. limd therefore also drains before a reader's open of an inode whose count
// is above zero (a close of it may be queued): a thread's next close of that file can then
// only meet an empty queue — as in one group, only two closes with no open between them
// (one thread holding the file twice) can still merge.
//
// Handles → inodes: an event names a file by (fsid, file handle). The handle of each
// inode a reader opens is learned once from the event fd (name_to_handle_at with
// AT_HANDLE_FID, the encoding fanotify uses) and kept while limd tracks the inode.
// Filesystems without usable handles or with an fsid another marked filesystem already
// has are not marked here: they keep FAN_CLOSE_NOWRITE in the content group.
//
// Threading: thread-safe (one mutex; Mark() runs on the mount watcher, the rest on the
// fanotify reader).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/status.h"
#include "daemon/fanotify_group.h"
#include "daemon/measurer.h"

struct fanotify_event_metadata;

namespace lim::daemon {

// Reading a FAN_REPORT_FID group (shared with AttribWatch): for each event in buf[0, n)
// with a FID record, f(event, fsid, handle) — fsid as both words of f_fsid, handle as
// limd keys it (handle_type, then the handle's bytes: what EncodeHandle gives for the same
// file). Events without a FID record (FAN_Q_OVERFLOW) reach f with fsid 0 and no handle.
// Malformed records are skipped.
void ForEachFidEvent(const char* buf, ssize_t n,
                     const std::function<void(const fanotify_event_metadata& m, uint64_t fsid, const std::string& handle)>& f);
// Reads a non-blocking fanotify fd until nothing is queued, batch(buf, n) for each read
// (on this thread's buffer): a read that left kRoomForAnyEvent of the buffer unused found
// the queue empty and is the last. what names the group in errors.
inline constexpr size_t kRoomForAnyEvent = 4096;
Status ReadUntilEmpty(int fd, const char* what, const std::function<void(const char* buf, ssize_t n)>& batch);
// f_fsid of the filesystem holding path (both words; 0 when statfs fails).
uint64_t FsidOfPath(const std::string& path);

class ReaderCloseGroup final : public ReaderCloses {
 public:
  // nullptr when the kernel refuses such a group (then every close stays in the content
  // group). report_tid: events carry the closing thread's id (for limd's own closes).
  static std::unique_ptr<ReaderCloseGroup> Create(bool report_tid);
  ~ReaderCloseGroup() override;
  ReaderCloseGroup(const ReaderCloseGroup&) = delete;
  ReaderCloseGroup& operator=(const ReaderCloseGroup&) = delete;

  // Marks the filesystem mounted at root (device dev). False: not marked (see above).
  bool Mark(const std::string& root, uint64_t dev) override;
  // Forgets superblock dev (its marks went with it; a new superblock may take its number).
  void Forget(uint64_t dev) override;
  bool Marked(uint64_t dev) const {
    std::lock_guard<std::mutex> lk(mu_);
    return devs_.count(dev) != 0;
  }

  // The handle of an inode a reader just opened (fd: the event's), asked once per inode
  // and ctime: an inode number reused by a new file comes with a new ctime (and a new
  // handle), so the new file's handle is learned too.
  void Learn(int fd, const InodeKey& key, int64_t ctime_ns) override;
  // A handle found another way (the start scan: encoded by EncodeHandle).
  void Learn(const InodeKey& key, const std::string& handle, int64_t ctime_ns) override;
  size_t known() const {
    std::lock_guard<std::mutex> lk(mu_);
    return by_handle_.size();
  }
  // Forgets handles of inodes for which keep() is false, when more than max are known.
  // kMaxKnown: limd's bound (about 140 bytes a handle; a forgotten one is learned again,
  // one name_to_handle_at, at the inode's next read-open).
  static constexpr size_t kMaxKnown = 1 << 14;
  void Prune(size_t max, const std::function<bool(const InodeKey&)>& keep) override;

  std::optional<Known> HandleOf(const InodeKey& key) const override;

  // Reads every queued close; on_close(inode, tid) for each one of a learned inode.
  // Returns the number of events read.
  Result<size_t> Drain(const std::function<void(const InodeKey&, pid_t)>& on_close) override;
  // Removes every mark (shutdown); queued events can still be drained.
  void FlushMarks() override;

  // The AT_HANDLE_FID handle of path (relative to dirfd; flags as name_to_handle_at),
  // as handle_type followed by the handle bytes; nullopt when the filesystem has none.
  static std::optional<std::string> EncodeHandle(int dirfd, const char* path, int flags);

 private:
  explicit ReaderCloseGroup(int fd) : fd_(fd) {}
  static std::string MapKey(uint64_t dev, const std::string& handle);
  void LearnLocked(const InodeKey& key, const std::string& handle, int64_t ctime_ns);

  int fd_;
  mutable std::mutex mu_;  // over the maps below (not held across read())
  std::unordered_map<uint64_t, uint64_t> fsid_to_dev_;  // f_fsid (both words) → st_dev
  std::unordered_map<uint64_t, std::string> devs_;  // marked superblock → its mount root
  std::unordered_map<std::string, InodeKey> by_handle_;  // dev + handle → inode
  struct Learned {
    int64_t ctime_ns = 0;               // when learned
    const std::string* map_key = nullptr;  // the latest handle's key in by_handle_
  };
  std::unordered_map<InodeKey, Learned, InodeKeyHash> learned_;
};

}  // namespace lim::daemon
