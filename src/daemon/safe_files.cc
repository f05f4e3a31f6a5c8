#include "daemon/safe_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lim::daemon {
namespace {

std::string Octal(mode_t m) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
  return b;
}

bool Ours(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

// Splits path into its directory ("." for a bare name) and its last component.
void SplitPath(const std::string& path, std::string* dir, std::string* base) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    *dir = ".";
    *base = path;
  } else {
    *dir = slash == 0 ? "/" : path.substr(0, slash);
    *base = path.substr(slash + 1);
  }
}

// The directory rule (safe_files.h): owned by root or us; writable by all only if sticky.
Status CheckHoldingDir(const std::string& what, const std::string& dir, const struct stat& st) {
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(what + ": " + dir + " is not a directory");
  if (!Ours(st.st_uid)) {
    return Status::InvalidArgument(what + ": directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
                                   ", who could replace the file with a link; use a directory of root's");
  }
  if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
    return Status::InvalidArgument(what + ": directory " + dir + " (mode " + Octal(st.st_mode) +
                                   ") is writable by every user and not sticky: anyone could replace the file");
  }
  return Status::Ok();
}

Status Errno(const std::string& what, const std::string& op, const std::string& path) {
  return Status::InvalidArgument(what + ": " + op + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<int> OpenAppendFileSafely(const std::string& flag, const std::string& path) {
  std::string what = flag + " " + path;
  std::string dir, base;
  SplitPath(path, &dir, &base);
  if (base.empty() || base == "." || base == "..") return Status::InvalidArgument(what + ": names a directory, not a file");
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno(what, "open", dir);
  struct stat dst;
  if (::fstat(dfd, &dst) != 0) {
    Status s = Errno(what, "stat", dir);
    ::close(dfd);
    return s;
  }
  Status s = CheckHoldingDir(what, dir, dst);
  if (!s.ok()) {
    ::close(dfd);
    return s;
  }
  int fd = ::openat(dfd, base.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 || errno != EEXIST) {
    ::close(dfd);
    if (fd < 0) return Errno(what, "create", path);
    return fd;
  }
  // It exists. O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking limd.
  fd = ::openat(dfd, base.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int open_errno = errno;
  ::close(dfd);
  if (fd < 0) {
    if (open_errno == ELOOP) return Status::InvalidArgument(what + ": is a symbolic link (never followed)");
    if (open_errno == ENXIO) return Status::InvalidArgument(what + ": not a regular file");
    errno = open_errno;
    return Errno(what, "open", path);
  }
  struct stat st;
  std::string refused;
  if (::fstat(fd, &st) != 0) {
    refused = std::string("stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    refused = "not a regular file";
  } else if (st.st_nlink != 1) {
    refused = "has " + std::to_string(st.st_nlink) + " hard links (one may be another user's link to any file)";
  } else if ((dst.st_mode & S_IWOTH) && !Ours(st.st_uid)) {
    refused = "belongs to uid " + std::to_string(st.st_uid) +
              " in a world-writable directory (refused like the kernel's protected_regular)";
  } else if (::fcntl(fd, F_SETFL, O_APPEND) != 0) {  // clears O_NONBLOCK
    refused = std::string("fcntl: ") + std::strerror(errno);
  }
  if (!refused.empty()) {
    ::close(fd);
    return Status::InvalidArgument(what + ": " + refused);
  }
  return fd;
}

Status PrepareStateDir(const std::string& dir) {
  std::string what = "--state " + dir;
  if (dir.empty()) return Status::InvalidArgument("--state: empty path");
  std::string parent, base;
  SplitPath(dir, &parent, &base);
  struct stat pst;
  if (!base.empty() && ::stat(parent.c_str(), &pst) == 0) LIM_RETURN_IF_ERROR(CheckHoldingDir(what, parent, pst));
  if (::mkdir(dir.c_str(), 0700) == 0) return Status::Ok();
  if (errno != EEXIST) return Errno(what, "mkdir", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Errno(what, "stat", dir);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(what + ": not a directory");
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(what + ": belongs to uid " + std::to_string(st.st_uid) + ", not to limd's uid " +
                                   std::to_string(::geteuid()));
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return Status::InvalidArgument(what + ": mode " + Octal(st.st_mode) +
                                   " lets other users write limd's state (a forged list, chain.json or links); "
                                   "check its contents, then chmod 0700 " + dir);
  }
  return Status::Ok();
}

}  // namespace lim::daemon
