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

#include <cstring>

#include "base/file.h"

namespace lim::daemon {

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

class LinuxEnv final : public Env {
 public:
  Result<FileFacts> Facts(int fd) override {
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
    int gen = 0;
    if (f.regular && ioctl(fd, FS_IOC_GETVERSION, &gen) == 0) f.generation = static_cast<uint32_t>(gen);
    struct statfs sfs;
    if (fstatfs(fd, &sfs) == 0) f.fsmagic = static_cast<uint64_t>(sfs.f_type);
#ifdef FS_IOC_GETFSUUID
    struct fsuuid2 u {};
    if (ioctl(fd, FS_IOC_GETFSUUID, &u) == 0 && u.len == 16) std::memcpy(f.fsuuid.data(), u.uuid, 16);
#endif
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
    Bytes buf(1024);
    ssize_t r = fgetxattr(fd, "security.ima", buf.data(), buf.size());
    if (r < 0) {
      if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP) return std::optional<Bytes>();
      return Status::IoError(Errno("fgetxattr security.ima"));
    }
    buf.resize(static_cast<size_t>(r));
    return std::optional<Bytes>(std::move(buf));
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
};

}  // namespace

Env* RealEnv() {
  static LinuxEnv env;
  return &env;
}

}  // namespace lim::daemon
