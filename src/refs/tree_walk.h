// TreeWalk: the depth-first walk of directory trees under `lim scan` and `lim sign|hash -r`,
// safe on trees someone else controls. Below a root every step is relative to an open
// directory (openat/fstatat with O_NOFOLLOW and AT_SYMLINK_NOFOLLOW), so a symbolic link is
// reported as a link and never followed, and a directory renamed or swapped for a link in the
// middle of the walk cannot lead it out of the tree (a directory whose inode changed between
// fstatat and openat is reported, not entered). The roots themselves are followed, as
// `find -H` does: `lim scan /bin` on a merged-/usr system walks /usr/bin under the name /bin.
//
// Names in a directory are visited in byte order, so the output of a walk is stable.
// Excludes are fnmatch(3) globs (no flags: '*' also matches '/'): a glob with a '/' is matched
// against the whole path, one without against the entry's own name (`*.pyc`, `__pycache__`);
// an excluded directory is not entered. With xdev, a directory on another filesystem than its
// root's (a mount point) is not entered and is counted. Depth is bounded (each level holds one
// open directory): a directory deeper than max_depth is reported, not entered.
//
// A problem with one entry (a name that cannot be stat'ed, a directory that cannot be opened
// or read, one too deep) goes to the error callback with its path and is counted; the walk
// goes on. Paths are raw bytes (any byte but NUL and '/' may be in a name): whoever prints
// one escapes it (base/escape.h).
//
// Threading: a TreeWalk is used by one thread; the callbacks run on it, in walk order.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace lim::refs {

struct WalkOptions {
  std::vector<std::string> excludes;  // fnmatch globs
  bool xdev = false;
  int max_depth = 256;  // directory levels below a root
  // Open regular files in the walk, for a visitor that reads them (OpenForRead): an entry
  // the directory says is a regular file is opened (as OpenForRead would) and fstat'ed
  // instead of fstatat'ed — one path lookup per file instead of two (`lim scan` of
  // /usr/share spent 8 % of its CPU in the fstatat). Only where O_NOATIME cannot fail (euid
  // 0); anything else — another type, a failed open — takes the fstatat way as before.
  bool open_files = false;
};

// One entry that is not a directory (regular file, link, fifo, socket, device), or a root
// that is not a directory. Valid during the visitor call only.
struct WalkEntry {
  const std::string& path;  // root + "/" + names
  int dir_fd;               // the directory holding it (AT_FDCWD for a root)
  const char* name;         // its name in dir_fd (the path itself for a root)
  const struct stat& st;    // lstat (stat for a root: roots are followed)
  bool is_root;
  // WalkOptions::open_files: the regular file already open (st is its fstat), for
  // OpenForRead to take; the walk closes it if the visitor does not. Null otherwise.
  int* opened = nullptr;
};

struct WalkStats {
  uint64_t directories = 0;  // entered
  uint64_t entries = 0;      // given to the visitor
  uint64_t excluded = 0;     // files and directories (not entered) matched by an exclude
  uint64_t errors = 0;       // given to the error callback
  std::vector<std::string> mounts_skipped;  // xdev: directories not entered
};

class TreeWalk {
 public:
  using Visitor = std::function<void(const WalkEntry&)>;
  using ErrorFn = std::function<void(const std::string& path, const std::string& message)>;

  TreeWalk(WalkOptions options, Visitor visit, ErrorFn error);

  // Walks one root (a directory, or a single file given to the visitor). False when the
  // root itself cannot be used (reported to the error callback and counted).
  bool Walk(const std::string& root);

  const WalkStats& stats() const { return stats_; }

  // True when path (whose last name is name) matches one of the globs.
  static bool Excluded(const std::vector<std::string>& globs, const std::string& path, const char* name);

 private:
  void WalkDir(int fd, std::string* path, dev_t root_dev, int depth);
  void Error(const std::string& path, const std::string& message);

  WalkOptions options_;
  Visitor visit_;
  ErrorFn error_;
  WalkStats stats_;
};

// Opens a visited regular file for reading: O_NOFOLLOW below a root, O_NOATIME where the
// caller may (the scan does not touch access times), never blocking on a fifo put there
// since the walk saw the name; refused unless it is still the regular file the walk stat'ed
// (same device and inode). The caller closes the descriptor. An entry the walk opened
// (WalkEntry::opened) gives that descriptor.
Result<int> OpenForRead(const WalkEntry& e);

// The regular files under the given paths, in walk order, for commands that take files and
// directories (`lim sign -r`): a path that is not a directory is listed as given (the command
// opens it and says what is wrong with it); links and other non-regular files below a
// directory are left out. The first problem of the walk fails the whole call: a command that
// signs a tree must not skip a part of it silently.
Result<std::vector<std::string>> RegularFilesUnder(const std::vector<std::string>& paths);

}  // namespace lim::refs
