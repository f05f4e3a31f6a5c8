// FanotifyGroup: the seam between limd's event loop (FanotifyDaemon) and one fanotify group
// in the kernel — read events, answer permission events, add and flush filesystem marks,
// add and remove inode ignore marks, and the group's fdinfo. The kernel's is a thin wrapper
// over fanotify_init/read/write/fanotify_mark; tests give the daemon a fake one (as ninja's
// tests fake CommandRunner) and check the answers and marks it received, without root.
// ReaderCloses is the same seam for the reader-close group (ReaderCloseGroup).
//
// Threading: Read() from the reader thread; Respond() from any thread (the reader, workers,
// the watchdog); marks from any thread (the callers order them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "daemon/measurer.h"

namespace lim::daemon {

// One event as fanotify_event_metadata carries it (fd: FAN_NOFD for an overflow, a negative
// errno with FAN_REPORT_FD_ERROR).
struct FanotifyEvent {
  int fd = -1;
  uint64_t mask = 0;
  pid_t pid = 0;
};

class FanotifyGroup {
 public:
  virtual ~FanotifyGroup() = default;
  // The fd poll(2) waits on for "events queued".
  virtual int poll_fd() const = 0;
  // Appends what is queued now (one read); nothing on EINTR/EAGAIN.
  virtual Status Read(std::vector<FanotifyEvent>* events) = 0;
  // Answers permission event fd (FAN_ALLOW / FAN_DENY); false when the kernel refused.
  virtual bool Respond(int fd, uint32_t response) = 0;
  // FAN_MARK_ADD | FAN_MARK_FILESYSTEM of mask on the filesystem mounted at path.
  virtual Status MarkFilesystem(const std::string& path, uint64_t mask) = 0;
  // Removes every filesystem mark of the group.
  virtual Status FlushFilesystemMarks() = 0;
  // An evictable inode ignore mark on mask that survives modification (FAN_MARK_IGNORE |
  // FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE) for the inode of fd, and its removal.
  virtual bool AddInodeIgnore(int fd, uint64_t mask) = 0;
  virtual bool RemoveInodeIgnore(int fd, uint64_t mask) = 0;
  // Removes every inode mark (the ignore marks).
  virtual void FlushInodeMarks() = 0;
  // The group's /proc/self/fdinfo text ("sdev:" of each filesystem mark).
  virtual Result<std::string> FdInfo() = 0;
};

// What begins the line of a superblock mark of device dev in a group's FdInfo():
// "fanotify sdev:<the kernel's dev_t, major << 20 | minor, in hex> " (an inode mark's line
// reads "fanotify ino:… sdev:…").
std::string SuperblockMarkLine(uint64_t dev);
// The superblocks (user-space dev_t, makedev(major, minor)) a group's fdinfo text lists
// filesystem marks on ("fanotify sdev:…" lines: the kernel's super_block.s_dev).
std::set<uint64_t> SuperblockDevsIn(const std::string& fdinfo);

// The kernel's device of the superblock mounted at path (super_block.s_dev: what mountinfo
// and an exec's BPF record show; a btrfs's differs from stat's st_dev), read from the fdinfo
// of a notification group opened for the purpose with one filesystem mark, then closed.
// Needs CAP_SYS_ADMIN.
Result<uint64_t> SuperblockDevOf(const std::string& path);

// A kernel group: fanotify_init(init_flags, event_f_flags). The error names fanotify_init
// and keeps errno's message.
Result<std::unique_ptr<FanotifyGroup>> OpenFanotifyGroup(unsigned init_flags, unsigned event_f_flags);

// Readers' closes, read in batches (reader_close_group.h says why and when).
class ReaderCloses {
 public:
  virtual ~ReaderCloses() = default;
  // Marks the filesystem mounted at root (device dev). False: its closes stay in the content group.
  virtual bool Mark(const std::string& root, uint64_t dev) = 0;
  // Forgets superblock dev (its marks went with it).
  virtual void Forget(uint64_t dev) = 0;
  // The handle of an inode a reader just opened (fd: the event's).
  virtual void Learn(int fd, const InodeKey& key, int64_t ctime_ns) = 0;
  // A handle found another way (the start scan).
  virtual void Learn(const InodeKey& key, const std::string& handle, int64_t ctime_ns) = 0;
  // Forgets handles of inodes for which keep() is false, when more than max are known.
  virtual void Prune(size_t max, const std::function<bool(const InodeKey&)>& keep) = 0;
  // Reads every queued close; on_close(inode, tid) for each of a learned inode. Returns the
  // number of events read.
  virtual Result<size_t> Drain(const std::function<void(const InodeKey&, pid_t)>& on_close) = 0;
  // Removes every mark (shutdown); queued events can still be drained.
  virtual void FlushMarks() = 0;
  // The inode's latest learned handle (handle_type, then the bytes) and the root its
  // filesystem was marked at; nullopt when none is known (OpenCountProbe opens by it).
  struct Known {
    std::string handle, root;
  };
  virtual std::optional<Known> HandleOf(const InodeKey&) const { return std::nullopt; }
};

}  // namespace lim::daemon
