#include "refs/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lim::refs {

namespace {

std::string Errno(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

// "dir/" → "dir" (a root "/" stays "/"), so children read "dir/name".
std::string TrimSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

TreeWalk::TreeWalk(WalkOptions options, Visitor visit, ErrorFn error)
    : options_(std::move(options)), visit_(std::move(visit)), error_(std::move(error)) {}

void TreeWalk::Error(const std::string& path, const std::string& message) {
  ++stats_.errors;
  if (error_) error_(path, message);
}

bool TreeWalk::Excluded(const std::vector<std::string>& globs, const std::string& path, const char* name) {
  for (const auto& g : globs) {
    const char* subject = g.find('/') == std::string::npos ? name : path.c_str();
    if (fnmatch(g.c_str(), subject, 0) == 0) return true;
  }
  return false;
}

bool TreeWalk::Walk(const std::string& root_arg) {
  std::string root = TrimSlashes(root_arg);
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    Error(root, Errno("stat", errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    ++stats_.entries;
    visit_(WalkEntry{root, AT_FDCWD, root.c_str(), st, true});
    return true;
  }
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    Error(root, Errno("open", errno));
    return false;
  }
  WalkDir(fd, &root, st.st_dev, 0);
  return true;
}

// Takes ownership of fd.
void TreeWalk::WalkDir(int fd, std::string* path, dev_t root_dev, int depth) {
  DIR* d = fdopendir(fd);
  if (!d) {
    Error(*path, Errno("fdopendir", errno));
    close(fd);
    return;
  }
  ++stats_.directories;
  std::vector<std::pair<std::string, bool>> names;  // (name, the directory says regular file)
  for (;;) {
    errno = 0;
    struct dirent* de = readdir(d);
    if (!de) {
      if (errno != 0) Error(*path, Errno("reading the directory", errno));
      break;
    }
    if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
    names.emplace_back(de->d_name, de->d_type == DT_REG);
  }
  std::sort(names.begin(), names.end());
  int dfd = dirfd(d);
  const size_t base = path->size();
  static const bool can_open = geteuid() == 0;  // O_NOATIME never fails
  for (const auto& [name, regular] : names) {
    if (base != 1 || (*path)[0] != '/') path->push_back('/');
    path->append(name);
    struct stat st;
    int opened = -1;
    const bool excluded = Excluded(options_.excludes, *path, name.c_str());
    if (!excluded && options_.open_files && can_open && regular) {
      opened = openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_NOATIME);
      if (opened >= 0 && (fstat(opened, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(opened);  // no longer a regular file: the fstatat way says what it is
        opened = -1;
      }
    }
    if (opened >= 0) {
      ++stats_.entries;
      visit_(WalkEntry{*path, dfd, name.c_str(), st, false, &opened});
      if (opened >= 0) close(opened);
    } else if (excluded) {
      ++stats_.excluded;
    } else if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      Error(*path, Errno("stat", errno));
    } else if (!S_ISDIR(st.st_mode)) {
      ++stats_.entries;
      visit_(WalkEntry{*path, dfd, name.c_str(), st, false});
    } else if (options_.xdev && st.st_dev != root_dev) {
      stats_.mounts_skipped.push_back(*path);
    } else if (depth + 1 > options_.max_depth) {
      Error(*path, "more than " + std::to_string(options_.max_depth) + " directory levels deep: not entered");
    } else {
      int child = openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
      struct stat now;
      if (child < 0) {
        Error(*path, Errno("open", errno));
      } else if (fstat(child, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        Error(*path, "replaced while the walk read it: not entered");
        close(child);
      } else {
        WalkDir(child, path, root_dev, depth + 1);
      }
    }
    path->resize(base);
  }
  closedir(d);
}

Result<int> OpenForRead(const WalkEntry& e) {
  if (e.opened && *e.opened >= 0) {
    int fd = *e.opened;
    *e.opened = -1;
    return fd;
  }
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (e.is_root ? 0 : O_NOFOLLOW);
  // O_NOATIME needs ownership (or CAP_FOWNER): not tried where it would fail on every file
  // (a user scanning /usr), tried and dropped on EPERM otherwise.
  static const uid_t euid = geteuid();
  const bool noatime = euid == 0 || e.st.st_uid == euid;
  int fd = noatime ? openat(e.dir_fd, e.name, flags | O_NOATIME) : -1;
  if (fd < 0 && (!noatime || errno == EPERM)) fd = openat(e.dir_fd, e.name, flags);
  if (fd < 0) return Status::IoError(e.path + ": open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != e.st.st_dev || st.st_ino != e.st.st_ino) {
    close(fd);
    return Status::IoError(e.path + ": replaced while the walk read it (no longer the regular file seen)");
  }
  return fd;
}

Result<std::vector<std::string>> RegularFilesUnder(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  std::string first_error;
  for (const auto& p : paths) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      out.push_back(p);
      continue;
    }
    TreeWalk walk(
        WalkOptions{},
        [&](const WalkEntry& e) {
          if (S_ISREG(e.st.st_mode)) out.push_back(e.path);
        },
        [&](const std::string& path, const std::string& message) {
          if (first_error.empty()) first_error = path + ": " + message;
        });
    walk.Walk(p);
    if (!first_error.empty()) return Status::IoError(first_error);
  }
  return out;
}

}  // namespace lim::refs
