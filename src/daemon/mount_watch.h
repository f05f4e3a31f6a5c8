// MountWatch: finds filesystems limd should mark and hands them to a mark callback — at
// start, and whenever a mount is attached later, in any mount namespace. A notification
// group with FAN_REPORT_MNT marks every mount namespace found under /proc/*/ns/mnt
// (deduplicated by the namespace inode; rescanned every 500 ms for new namespaces) with
// FAN_MARK_MNTNS for FAN_MNT_ATTACH (Linux 6.15+). An attach, or a new namespace, triggers
// a scan of that namespace's /proc/<pid>/mountinfo; each mount is reached through
// /proc/<pid>/root/<mount point>, so a filesystem mounted only in another namespace is
// marked too. Which mounts qualify: see MountQualifies(). Never the root filesystem's
// superblock without allow_root_fs (logged once). Poke(pid) wakes the scan at once (limd
// calls it from the mount tracepoints: a new namespace's mounts are marked within one scan
// instead of up to 500 ms later); the timer stays as the fallback. One thread of its own;
// Start() and the destructor from one thread; Poke() from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "daemon/latency_samples.h"

namespace lim::daemon {

// The filesystem types limd marks when no --watch is given (docs/limd.md): disk
// filesystems, tmpfs, overlay and FUSE; never pseudo filesystems or devtmpfs.
bool DefaultFsType(const std::string& fstype);

// watch empty: the mount qualifies by DefaultFsType. Otherwise it must be a watched root
// itself or lie below one (path in its own namespace), and its type must not be refused
// (proc, sysfs, fusectl, …: CheckWatchRoot's list).
bool MountQualifies(const std::string& fstype, const std::string& mount_point, const std::vector<std::string>& watch);

// The type of the filesystem mounted deepest above path (absolute, in the namespace whose
// /proc/<pid>/mountinfo text is given), or "" when no line covers it. Overmounts: the last
// line wins, as the kernel lists mounts in the order they were made.
std::string FsTypeAt(const std::string& mountinfo, const std::string& path);

struct MountWatchOptions {
  std::vector<std::string> watch;  // mount roots (realpath); empty: the default type set
  bool allow_root_fs = false;
  std::set<dev_t> already_marked;  // superblocks marked before Start() (the --watch roots)
  // Whether the superblock now under dev (mounted at path) still carries limd's mark (unset:
  // always). A superblock's marks go with it, and a new one may take its device number
  // (overlay, FUSE and tmpfs share the anonymous numbers).
  std::function<bool(dev_t, const std::string& path)> still_marked;
  // Whether the group that marked dev has since removed its mark because the kernel could
  // not open files there for limd (a FUSE server that refuses limd; unset: never). Such a
  // device is kept like a failed mark: looked at again when its mount shows another
  // filesystem type or source.
  std::function<bool(dev_t)> refused;
  int nice = 0;  // of the discovery thread (limd: --reader-nice): a mark races an exec
  // After a mark of a superblock found later (not at Start()): what already runs from it.
  std::function<void(const std::string& path, dev_t dev)> after_mark;
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
  const std::vector<std::string>& watch() const { return options_.watch; }  // the --watch roots (realpath)
  // A mount may have appeared in pid's namespace (pid 0: somewhere): scan now. The
  // namespace is looked up here, at once: pid may be gone (mount(8) exits right after the
  // syscall) by the time the scan runs, and the scan then reaches the namespace through
  // any other process in it. Any thread.
  void Poke(pid_t pid);
  uint64_t pokes() const { return pokes_.load(); }
  // From a poke (Poke()'s call) to the mark it led to, µs, over the last 4,096 such marks.
  uint64_t PokeToMarkPercentile(double p) const { return poke_to_mark_.Percentile(p); }
  // The mount holding superblock dev in mountinfo (the text of pid's /proc/<pid>/mountinfo),
  // if one qualifies (type, watch roots, the root filesystem rule) — whether or not it is
  // marked yet. Any thread.
  std::optional<FoundMount> QualifyingMount(const std::string& mountinfo, pid_t pid, dev_t dev) const;
  // Every mount namespace with a process in it: namespace inode → one such process (limd's
  // own namespace included). Any thread.
  static std::map<ino_t, pid_t> LiveNamespaces();

 private:
  void Loop();
  void ScanNamespaces(bool rescan_all);
  // Qualifying superblocks of pid's namespace not yet in marked_; marks them (and adds
  // them to marked_) unless collect is given.
  void ScanMounts(pid_t pid, std::map<dev_t, FoundMount>* collect);
  // The same over mountinfo text, each mount reached below root (a /proc/<pid>/root, or a
  // pinned copy of it: /proc/self/fd/N).
  void ScanMountsIn(const std::string& mountinfo, const std::string& root, pid_t pid,
                    std::map<dev_t, FoundMount>* collect);
  // The mount id (mountinfo's first field) of the mount path leads to; nullopt: unknown.
  static std::optional<uint64_t> MountIdOf(const std::string& path);

  MountWatchOptions options_;
  MarkFn mark_;
  std::function<void(const std::string&)> log_;
  int fd_ = -1;
  dev_t root_dev_ = 0;
  bool root_logged_ = false;
  bool started_ = false;  // Start()'s first scan is done (thread only after Start())
  std::map<ino_t, pid_t> ns_;    // namespace inode → a process in it (thread only)
  // Superblocks marked or refused, with what their mount showed ("fstype\0source"; for
  // already_marked, "" until the first scan sees it): a mount of that device with another type is another superblock,
  // whatever a group says (a refused FUSE group holds no mark to ask). Thread only.
  std::map<dev_t, std::string> marked_;
  std::set<std::string> unreachable_;  // mount ids of FUSE mounts limd cannot reach, logged
  // Of marked_: the mark failed, not retried while the device shows the same filesystem type
  // and source; another one under the number is a new superblock (a tmpfs that took a
  // refused FUSE mount's anonymous number). Thread only.
  std::set<dev_t> failed_;
  std::atomic<size_t> namespaces_{0};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd: Poke()
  std::mutex poke_mu_;
  // A poked namespace, pinned at the poke: the poking process may be gone (mount(8) exits
  // right after its syscall) when the scan runs; its root (O_PATH) and mountinfo (the open
  // file keeps the namespace) still lead to the new mount.
  struct Poked {
    pid_t pid = 0;
    int root_fd = -1, mountinfo_fd = -1;
  };
  std::map<ino_t, Poked> poked_;  // namespace inode → pinned, under poke_mu_ (0: everywhere)
  static void Unpin(Poked& p);
  std::atomic<uint64_t> pokes_{0};
  std::map<ino_t, std::chrono::steady_clock::time_point> poke_at_;  // under poke_mu_
  std::chrono::steady_clock::time_point scan_poke_at_{};  // thread only: the scan's earliest poke
  LatencySamples poke_to_mark_;
  std::thread thread_;
};

}  // namespace lim::daemon
