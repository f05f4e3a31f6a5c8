// OwnMountinfo: limd's own mountinfo text, kept open and read again only when the kernel says
// the mount table changed (an open mountinfo file polls POLLPRI|POLLERR after a mount or an
// unmount in its namespace, proc(5)), handed out for the processes whose
// /proc/<pid>/mountinfo is the same text: those in limd's mount namespace whose root is
// limd's root (the same mount and directory — a chrooted process sees other paths).
//
// Why: LateExecs places every exec from a superblock limd has not marked by its process's
// mountinfo — every exec on the host from a filesystem outside --watch, the other users'
// included. Reading /proc/<pid>/mountinfo anew (the kernel's show_mountinfo, then a parse)
// for each was most of limd's CPU on a host busy with execs that are not its own
// (docs/performance.md, appraisal section).
//
// Nothing is decided from an old text: For() polls first, so a mount made before the call
// is in the text it returns, as it would be in a fresh read. Anything this cannot establish
// (a process gone, another namespace or root, no STATX_MNT_ID) yields nullptr and the
// caller reads the process's own mountinfo as before.
//
// Threading: one thread at a time (LateExecs: the trace consumer's).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace lim::daemon {

class OwnMountinfo {
 public:
  OwnMountinfo() = default;
  ~OwnMountinfo();
  OwnMountinfo(const OwnMountinfo&) = delete;
  OwnMountinfo& operator=(const OwnMountinfo&) = delete;

  // limd's mountinfo text when pid shares limd's mount namespace and root, read again first
  // if the mount table changed since; nullptr otherwise (read pid's own).
  const std::string* For(pid_t pid);
  // Changes each time the text is read again (callers key what they derive from it on it).
  uint64_t generation() const { return generation_; }
  // How many times the text was read (the first read included).
  uint64_t reads() const { return reads_; }

 private:
  struct Root {
    uint64_t mnt_id = 0, dev = 0, ino = 0;
    bool operator==(const Root& o) const { return mnt_id == o.mnt_id && dev == o.dev && ino == o.ino; }
  };
  // The identity of path's root directory (a /proc/<pid>/root link, or "/"): false when
  // statx cannot tell the mount.
  static bool RootOf(const char* path, Root* out);
  bool Open();
  bool Read();

  int fd_ = -1;
  bool failed_ = false;
  uint64_t ns_dev_ = 0, ns_ino_ = 0;  // limd's /proc/self/ns/mnt
  Root root_;
  std::string text_;
  uint64_t generation_ = 0, reads_ = 0;
};

}  // namespace lim::daemon
