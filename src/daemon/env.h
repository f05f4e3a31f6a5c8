// Env: the seam between limd's measurement core and the operating system (as LevelDB's
// Env): facts about an open file (identity, change tuple, owner, filesystem), reads through
// the event's fd with pread, the file's security.ima, and clocks/boot identity. RealEnv
// talks to Linux; tests substitute an in-memory Env so the measurer runs without root or
// fanotify. limd never reopens a file by path (a reopen on a watched mount would wait on
// limd itself): everything goes through the fd it was handed.
//
// Threading: Env methods are called from several worker threads at once; implementations
// must be thread-safe (RealEnv keeps only a mutex-guarded per-st_dev cache of superblock facts).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "base/hex.h"
#include "base/status.h"

namespace lim::daemon {

// What the kernel's iint and policy matching look at for one inode.
struct FileFacts {
  uint64_t dev = 0;
  uint64_t ino = 0;
  // The change tuple (design.md invariant 5): after the last writer closes, a difference in
  // any of these means the content may have changed. generation is FS_IOC_GETVERSION (0 when
  // the filesystem has none).
  int64_t ctime_ns = 0;
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  uint64_t generation = 0;
  // False when generation was not asked (Env::FactsForCacheCheck): it then takes no part
  // in the comparison.
  bool generation_known = true;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0;
  uint64_t fsmagic = 0;
  std::array<uint8_t, 16> fsuuid{};
  bool regular = true;

  bool SameContentAs(const FileFacts& o) const;
};

// The change tuple alone: what a per-inode cache keeps of FileFacts (40 bytes, not 96).
struct ContentTuple {
  int64_t ctime_ns = 0;
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  uint64_t generation = 0;
  bool generation_known = true;

  ContentTuple() = default;
  explicit ContentTuple(const FileFacts& f)
      : ctime_ns(f.ctime_ns), mtime_ns(f.mtime_ns), size(f.size), generation(f.generation),
        generation_known(f.generation_known) {}
  bool SameContentAs(const FileFacts& o) const {
    return ctime_ns == o.ctime_ns && mtime_ns == o.mtime_ns && size == o.size &&
           (generation == o.generation || !generation_known || !o.generation_known);
  }
};

inline bool FileFacts::SameContentAs(const FileFacts& o) const { return ContentTuple(*this).SameContentAs(o); }

class Env {
 public:
  virtual ~Env() = default;
  virtual Result<FileFacts> Facts(int fd) = 0;
  // Facts() without the generation (one ioctl less), for the reader's cache check: a hit
  // needs an unchanged inode whose writers limd saw close; the full tuple decides at the
  // last writer's close and at every hash (invariant 5).
  virtual Result<FileFacts> FactsForCacheCheck(int fd) { return Facts(fd); }
  // Reads up to n bytes at offset; 0 at end of file.
  virtual Result<size_t> Pread(int fd, uint8_t* buf, size_t n, uint64_t offset) = 0;
  // The value of security.ima; nullopt when the file has none.
  virtual Result<std::optional<Bytes>> ImaXattr(int fd) = 0;
  // /proc/sys/kernel/random/boot_id (without newline).
  virtual Result<std::string> BootId() = 0;
  // Seconds since boot (CLOCK_BOOTTIME) and since the epoch (CLOCK_REALTIME).
  virtual double UptimeSeconds() = 0;
  virtual int64_t NowUnixSeconds() = 0;
};

// The Linux implementation. fsuuid is the filesystem's UUID when the kernel reports one
// (FS_IOC_GETFSUUID), else zeros (tmpfs has none).
Env* RealEnv();

// The superblock UUID of fd's filesystem from FS_IOC_GETFSUUID (Linux 6.5; Debian 12's uapi
// headers lack the ioctl, so it is defined here), zeros where the filesystem has none or the
// kernel lacks the ioctl: what the kernel's EVM hashes.
std::array<uint8_t, 16> SuperblockUuid(int fd);

}  // namespace lim::daemon
