// PrecontentIgnores: the inode ignore marks of the pre-content group (FAN_PRE_ACCESS only,
// evictable, surviving modification) that spare measured inodes, and inodes held by a lone
// write-only opener, the round trip per read() (docs/limd.md "Pre-content").
//
// Order: a mark is added by a worker after hashing, but whatever happened to the inode since
// the event was read (a writer's open, the last writer's close) removes it first. Each removal
// bumps the inode's epoch (striped: a collision only costs a mark not added); Add() takes the
// epoch read with the event and adds nothing when a removal came in between.
//
// Threading: thread-safe (one mutex orders the mark calls with their epochs).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "daemon/fanotify_group.h"
#include "daemon/measurer.h"

namespace lim::daemon {

class PrecontentIgnores {
 public:
  // added/removed: counters of the marks the kernel took (DaemonStats).
  PrecontentIgnores(FanotifyGroup* group, std::atomic<uint64_t>* added, std::atomic<uint64_t>* removed)
      : group_(group), added_(added), removed_(removed) {}

  uint64_t Epoch(const InodeKey& key);
  // Ignore marks on fd's inode: added only if no removal for key happened since epoch.
  void Add(int fd, const InodeKey& key, uint64_t epoch);
  void Remove(int fd, const InodeKey& key);
  // Every mark goes (a queue overflow: no verdict is left, neither is any mark).
  void Flush();

 private:
  uint64_t& Slot(const InodeKey& key) { return epoch_[InodeKeyHash()(key) % epoch_.size()]; }

  FanotifyGroup* group_;
  std::mutex mu_;
  std::array<uint64_t, 4096> epoch_{};  // striped by inode, under mu_
  std::atomic<uint64_t> *added_, *removed_;
};

}  // namespace lim::daemon
