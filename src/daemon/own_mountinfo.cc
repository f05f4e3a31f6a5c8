#include "daemon/own_mountinfo.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lim::daemon {

OwnMountinfo::~OwnMountinfo() {
  if (fd_ >= 0) ::close(fd_);
}

bool OwnMountinfo::RootOf(const char* path, Root* out) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path, 0, STATX_INO | STATX_MNT_ID, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID)) return false;
  out->mnt_id = sx.stx_mnt_id;
  out->dev = (static_cast<uint64_t>(sx.stx_dev_major) << 32) | sx.stx_dev_minor;
  out->ino = sx.stx_ino;
  return true;
}

bool OwnMountinfo::Open() {
  struct stat ns;
  if (::stat("/proc/self/ns/mnt", &ns) != 0 || !RootOf("/proc/self/root", &root_)) return false;
  ns_dev_ = static_cast<uint64_t>(ns.st_dev);
  ns_ino_ = static_cast<uint64_t>(ns.st_ino);
  fd_ = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  return fd_ >= 0 && Read();
}

bool OwnMountinfo::Read() {
  std::string text;
  char buf[16384];
  if (::lseek(fd_, 0, SEEK_SET) != 0) return false;
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  text_ = std::move(text);
  generation_++;
  reads_++;
  return true;
}

const std::string* OwnMountinfo::For(pid_t pid) {
  if (failed_) return nullptr;
  if (fd_ < 0 && !Open()) {
    failed_ = true;  // no STATX_MNT_ID (before Linux 5.8) or no /proc: every caller reads its own
    if (fd_ >= 0) ::close(fd_), fd_ = -1;
    return nullptr;
  }
  std::string proc = "/proc/" + std::to_string(pid);
  struct stat ns;
  Root root;
  if (::stat((proc + "/ns/mnt").c_str(), &ns) != 0 || static_cast<uint64_t>(ns.st_dev) != ns_dev_ ||
      static_cast<uint64_t>(ns.st_ino) != ns_ino_ || !RootOf((proc + "/root").c_str(), &root) || !(root == root_)) {
    return nullptr;
  }
  // The poll reports (and clears) a change of the mount table since the last one, or since
  // the open: the text is read again before it is used.
  pollfd p{fd_, POLLPRI, 0};
  if (::poll(&p, 1, 0) < 0) return nullptr;
  if ((p.revents & (POLLPRI | POLLERR)) && !Read()) return nullptr;
  return &text_;
}

}  // namespace lim::daemon
