#include "daemon/env.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "base/file.h"
#include "ima/appraise.h"
#include "ima/ima_xattr.h"

namespace lim::daemon {

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

class LinuxEnv final : public Env {
 public:
  Result<FileFacts> Facts(int fd) override { return Read(fd, true); }
  Result<FileFacts> FactsForCacheCheck(int fd) override { return Read(fd, false); }

  Result<FileFacts> Read(int fd, bool with_generation) {
    struct stat st;
    if (fstat(fd, &st) != 0) return Status::IoError(Errno("fstat"));
    FileFacts f;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    f.size = static_cast<uint64_t>(st.st_size);
    f.uid = st.st_uid;
    f.gid = st.st_gid;
    f.mode = st.st_mode;
    f.regular = S_ISREG(st.st_mode);
    // The superblock's facts are the same for every file of a device: asked once per
    // st_dev (fstatfs and FS_IOC_GETFSUUID per event were a third of limd's syscalls).
    SuperFacts sb = Super(fd, f.dev);
    int gen = 0;
    f.generation_known = with_generation;
    if (with_generation && f.regular && sb.has_generation) {
      if (ioctl(fd, FS_IOC_GETVERSION, &gen) == 0) {
        f.generation = static_cast<uint32_t>(gen);
      } else if (errno == ENOTTY || errno == EOPNOTSUPP) {
        std::lock_guard<std::mutex> lk(mu_);
        supers_[f.dev].has_generation = false;  // tmpfs: no i_generation ioctl
      }
    }
    f.fsmagic = sb.fsmagic;
    f.fsuuid = sb.fsuuid;
    return f;
  }

  Result<size_t> Pread(int fd, uint8_t* buf, size_t n, uint64_t offset) override {
    for (;;) {
      ssize_t r = pread(fd, buf, n, static_cast<off_t>(offset));
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Status::IoError(Errno("pread"));
    }
  }

  Result<std::optional<Bytes>> ImaXattr(int fd) override {
    // Bounded: an oversized value is Corrupt (appraisal: unknown-ima-data), not a failure
    // to read.
    return ima::ReadXattr(fd, ima::kImaXattrName, ima::kMaxImaXattrSize, "security.ima");
  }

  Result<std::string> BootId() override {
    LIM_ASSIGN_OR_RETURN(std::string s, ReadFileText("/proc/sys/kernel/random/boot_id"));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  double UptimeSeconds() override {
    timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }
  int64_t NowUnixSeconds() override { return static_cast<int64_t>(time(nullptr)); }

 private:
  struct SuperFacts {
    uint64_t fsmagic = 0;
    std::array<uint8_t, 16> fsuuid{};
    bool has_generation = true;
    std::chrono::steady_clock::time_point at;
  };
  // Entries expire after a second: a device number is reused when a filesystem is
  // unmounted and another mounted (loop devices, anonymous tmpfs devices), and a stale
  // fsuuid must not outlive that by more than the expiry.
  SuperFacts Super(int fd, uint64_t dev) {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = supers_.find(dev);
      if (it != supers_.end() && now - it->second.at < std::chrono::seconds(1)) return it->second;
    }
    SuperFacts sb;
    struct statfs sfs;
    if (fstatfs(fd, &sfs) != 0) return sb;  // not cached: asked again next time
    sb.fsmagic = static_cast<uint64_t>(sfs.f_type);
    sb.at = now;
    sb.fsuuid = SuperblockUuid(fd);
    std::lock_guard<std::mutex> lk(mu_);
    if (supers_.size() > 4096) supers_.clear();  // devices come and go (loop mounts)
    supers_[dev] = sb;
    return sb;
  }

  std::mutex mu_;
  std::unordered_map<uint64_t, SuperFacts> supers_;  // st_dev → superblock facts
};

}  // namespace

namespace {
struct FsUuid2 {
  uint8_t len;
  uint8_t uuid[16];
};
constexpr unsigned long kGetFsUuid = _IOR(0x15, 0, FsUuid2);
}  // namespace

std::array<uint8_t, 16> SuperblockUuid(int fd) {
  std::array<uint8_t, 16> u{};
  FsUuid2 got{};
  if (ioctl(fd, kGetFsUuid, &got) == 0 && got.len == 16) std::memcpy(u.data(), got.uuid, 16);
  return u;
}

Env* RealEnv() {
  static LinuxEnv env;
  return &env;
}

}  // namespace lim::daemon
