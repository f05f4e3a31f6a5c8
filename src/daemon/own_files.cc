#include "daemon/own_files.h"

#include <sys/stat.h>

#include "base/file.h"

namespace lim::daemon {

void OwnFiles::Add(uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  inodes_.insert({dev, ino});
  uint64_t d = dev_.load();
  if (d == kNone) {
    dev_.store(dev);
  } else if (d != dev) {
    dev_.store(kMixed);
  }
}

void OwnFiles::Forget(uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  inodes_.erase({dev, ino});
}

void OwnFiles::AddFd(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    Add(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  }
}

Status OwnFiles::Write(const std::string& path, ByteView data, mode_t mode) {
  struct stat old;
  bool replaces = ::stat(path.c_str(), &old) == 0;
  struct stat now {};
  LIM_RETURN_IF_ERROR(WriteFileBytes(path, data, mode, [&](int fd) {
    AddFd(fd);
    (void)::fstat(fd, &now);
  }));
  if (replaces && (old.st_dev != now.st_dev || old.st_ino != now.st_ino)) {
    Forget(static_cast<uint64_t>(old.st_dev), static_cast<uint64_t>(old.st_ino));
  }
  return Status::Ok();
}

bool OwnFiles::Contains(uint64_t dev, uint64_t ino) const {
  uint64_t d = dev_.load(std::memory_order_relaxed);
  if (d == kNone || (d != kMixed && d != dev)) return false;
  std::lock_guard<std::mutex> lk(mu_);
  return inodes_.count({dev, ino}) > 0;
}

void OwnFiles::Revoke(uint64_t dev, uint64_t ino) {
  if (!Contains(dev, ino)) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (inodes_.erase({dev, ino})) revoked_++;
}

size_t OwnFiles::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return inodes_.size();
}

}  // namespace lim::daemon
