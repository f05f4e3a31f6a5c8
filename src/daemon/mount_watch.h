// MountWatch: finds filesystems limd should mark and hands them to a mark callback — at
// start, and whenever a mount is attached later, in any mount namespace. A notification
// group with FAN_REPORT_MNT marks every mount namespace found under /proc/*/ns/mnt
// (deduplicated by the namespace inode; rescanned every 500 ms for new namespaces) with
// FAN_MARK_MNTNS for FAN_MNT_ATTACH (Linux 6.15+). An attach, or a new namespace, triggers
// a scan of that namespace's /proc/<pid>/mountinfo; each mount is reached through
// /proc/<pid>/root/<mount point>, so a filesystem mounted only in another namespace is
// marked too. Which mounts qualify: see MountQualifies(). Never the root filesystem's
// superblock without allow_root_fs (logged once). One thread of its own; Start() and the
// destructor from one thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace lim::daemon {

// The filesystem types limd marks when no --watch is given (docs/limd.md): disk
// filesystems, tmpfs, overlay and FUSE; never pseudo filesystems or devtmpfs.
bool DefaultFsType(const std::string& fstype);

// watch empty: the mount qualifies by DefaultFsType. Otherwise it must be a watched root
// itself or lie below one (path in its own namespace), and its type must not be refused
// (proc, sysfs, fusectl, …: CheckWatchRoot's list).
bool MountQualifies(const std::string& fstype, const std::string& mount_point, const std::vector<std::string>& watch);

struct MountWatchOptions {
  std::vector<std::string> watch;  // mount roots (realpath); empty: the default type set
  bool allow_root_fs = false;
  std::set<dev_t> already_marked;  // superblocks marked before Start() (the --watch roots)
};

struct FoundMount {
  std::string path;  // reachable from limd: /proc/<pid>/root/<mount point>
  std::string mount_point;
  std::string fstype;
};

class MountWatch {
 public:
  // mark(path, fstype): marks the filesystem under path (reachable from limd's namespace).
  using MarkFn = std::function<Status(const std::string& path, const std::string& fstype)>;
  MountWatch(MountWatchOptions options, MarkFn mark, std::function<void(const std::string&)> log);
  ~MountWatch();

  // Scans every namespace once and marks what qualifies (also what is mounted already),
  // then follows attaches on a thread. Without FAN_MARK_MNTNS (kernel < 6.15) it logs that
  // later mounts are not discovered and still does the first scan.
  Status Start();
  // What Start() would mark now, without marking (the start scan runs before any mark).
  std::map<dev_t, FoundMount> Discover();
  size_t namespaces() const { return namespaces_.load(); }

 private:
  void Loop();
  void ScanNamespaces(bool rescan_all);
  // Qualifying superblocks of pid's namespace not yet in marked_; marks them (and adds
  // them to marked_) unless collect is given.
  void ScanMounts(pid_t pid, std::map<dev_t, FoundMount>* collect);
  std::map<ino_t, pid_t> LiveNamespaces();

  MountWatchOptions options_;
  MarkFn mark_;
  std::function<void(const std::string&)> log_;
  int fd_ = -1;
  dev_t root_dev_ = 0;
  bool root_logged_ = false;
  std::map<ino_t, pid_t> ns_;    // namespace inode → a process in it (thread only)
  std::set<dev_t> marked_;       // superblocks marked or refused (thread only)
  std::set<std::string> unreachable_;  // mount ids of FUSE mounts limd cannot reach, logged
  std::atomic<size_t> namespaces_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace lim::daemon
