// OwnFiles: the files limd writes in its state directory (the list, lock, chain.json,
// status.json, software_pcrs.json, limd.ready), by inode. They are limd's securityfs: the
// kernel never measures its own list, yet `lim log --follow` reading
// STATE/binary_runtime_measurements as root matched tcb's FILE_CHECK rule, and every append
// changed the file, so each read added an entry about the list itself (issue 17, item 6).
// The Measurer skips FILE_CHECK for these inodes: no entry, no violation. Exec and
// executable mappings (BPRM_CHECK, MMAP_CHECK) of them are measured as usual.
//
// Why by inode and not by directory: a file someone renames or links into the state
// directory is not limd's and stays measured; and an inode leaves the set the moment anyone
// but limd opens it for write (Measurer::NoteOpen sees every write-open in event order;
// limd's own opens never get there), so content limd did not write is never excluded, also
// when an inode number limd freed is reused by another file (its creator opens it for write).
// An inode limd replaces (status.json is rewritten by rename every second) is dropped right
// after the rename. Files of earlier runs that this run does not write (archived lists) are
// not in the set: they are measured like any other file.
//
// Threading: every method is thread-safe. Contains() is on the fanotify reader's fast path:
// one relaxed load when the device is not the state directory's.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "base/hex.h"
#include "base/status.h"

namespace lim::daemon {

class OwnFiles {
 public:
  OwnFiles() = default;
  OwnFiles(const OwnFiles&) = delete;
  OwnFiles& operator=(const OwnFiles&) = delete;

  // The inode of a file limd opened (and created or writes) itself.
  void AddFd(int fd);
  void Add(uint64_t dev, uint64_t ino);
  // WriteFileBytes() with the new inode added before the rename and the replaced one
  // dropped after it.
  Status Write(const std::string& path, ByteView data, mode_t mode = 0600);
  bool Contains(uint64_t dev, uint64_t ino) const;
  // Someone other than limd opened the inode for write: it is no longer limd's alone.
  void Revoke(uint64_t dev, uint64_t ino);

  size_t size() const;
  uint64_t revoked() const { return revoked_.load(); }

 private:
  void Forget(uint64_t dev, uint64_t ino);

  mutable std::mutex mu_;
  std::set<std::pair<uint64_t, uint64_t>> inodes_;  // under mu_
  // The device of every inode in the set while they share one (the usual case: the state
  // directory's filesystem); kMixed once they do not, kNone while the set is empty.
  static constexpr uint64_t kNone = ~0ull, kMixed = ~0ull - 1;
  std::atomic<uint64_t> dev_{kNone};
  std::atomic<uint64_t> revoked_{0};
};

}  // namespace lim::daemon
