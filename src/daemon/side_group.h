// SideGroups: the fanotify groups of filesystems whose event fd cannot be made by the main
// reader — overlayfs and FUSE. Each class is a FanotifyDaemon of its own (own group, reader
// thread, one worker and a watchdog; the same event handling, the same Measurer and list)
// per superblock, created when it is marked — one per superblock because an overlay whose
// lower layer is another overlay, or a FUSE server whose files live on another FUSE mount,
// would otherwise wait on the very reader that waits on it:
// - overlay: creating the event fd runs ovl_open → backing_file_open, an open of the
//   backing file in a layer; with the layer marked in the same group the reader would wait
//   on its own queue (docs/limd.md "overlayfs"). The main reader answers that nested open
//   (limd's own) while the overlay reader waits for it.
// - FUSE: creating the event fd sends FUSE_OPEN to the server, and hashing reads from it;
//   the server's own opens on marked filesystems are answered by the main reader meanwhile,
//   and a slow server stalls only the FUSE group. limd's own securityfs view (FUSE) is
//   never marked (recognised by its device).
// Pre-content is not asked for on either (overlay and FUSE refuse it): MMAP_CHECK by
// ELF-at-open.
//
// OverlayOpens recognises the backing-file events an overlay open causes on the layers'
// filesystems, so the file is measured once, under the path the process used: the overlay
// group notes each opener's syscall; a later event of the same thread in the same syscall
// (identical /proc/<tid>/syscall line) on a mount that is in no mount namespace (overlay's
// private clone of a layer) is the backing file: counted (the kernel counts its readers and
// writers on the real inode too) but not measured (the kernel measures the overlay file).
//
// Threading: SideGroups::Mark from any thread (the mount watcher); Stop() and the destructor
// from the thread that created it. OverlayOpens: thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/status.h"
#include "daemon/fanotify_daemon.h"

namespace lim::daemon {

enum class FsClass { kPlain, kOverlay, kFuse };
// overlay → kOverlay; fuse, fuseblk, fuse.<subtype> → kFuse (fusectl is no file system).
FsClass ClassOfFs(const std::string& fstype);

class OverlayOpens {
 public:
  // The overlay group's reader, for every permission event of an overlay file: tid is in
  // the syscall of line (a blocked thread's /proc/<tid>/syscall).
  void Note(pid_t tid, const std::string& line);
  // Any reader, for a permission event of tid on fd: whether it is the backing file of an
  // overlay open of the same syscall (see above). Cheap unless tid has a noted overlay open.
  bool IsBackingOpen(int fd, pid_t tid, const std::string& line);
  // Whether fd's mount is in no mount namespace (cached by the mount's unique id).
  bool OnPrivateMount(int fd);
  uint64_t backing_events() const { return backing_events_.load(); }

 private:
  struct Noted {
    std::string line;
    std::chrono::steady_clock::time_point at;
  };
  std::atomic<bool> active_{false};  // any overlay open noted: the main reader looks
  std::mutex mu_;
  std::unordered_map<pid_t, Noted> noted_;         // under mu_
  std::unordered_map<uint64_t, bool> private_;     // unique mount id → private, under mu_
  std::atomic<uint64_t> backing_events_{0};
};

// FUSE: whether the superblock under path comes from a trusted mounter (the kernel's
// !SB_I_UNTRUSTED_MOUNTER: mounted from the initial user namespace): then the kernel
// cannot trust the file system's change detection and measures again at every access
// (process_measurement clears IMA_DONE_MASK and measured_pcrs). path: a --watch root (limd's
// namespace) or /proc/<pid>/root/… (the mount namespace of pid); its owning user namespace
// stands for the superblock's. Unknown: trusted (re-measures: more entries, never fewer).
bool FuseTrustedMounter(const std::string& path);

class SideGroups {
 public:
  // base: the main daemon's options (workers, timeout, peers, nice); view_dev: the device of
  // limd's own securityfs view (0: none), never marked.
  SideGroups(const DaemonOptions& base, Measurer* measurer, MeasurementList* list, Env* env,
             std::function<void(const std::string&)> log, uint64_t view_dev);
  ~SideGroups();
  SideGroups(const SideGroups&) = delete;
  SideGroups& operator=(const SideGroups&) = delete;

  // Marks an overlay or FUSE filesystem (ClassOfFs(fstype) != kPlain) in a group of its own,
  // created and started here.
  Status Mark(const std::string& path, const std::string& fstype);
  // Stops the readers (each flushes its marks and answers what it holds) and joins them.
  void Stop();
  OverlayOpens* overlay_opens() { return &opens_; }
  size_t marks() const;
  // Sums of the groups' stats for status.json.
  uint64_t events() const;
  uint64_t perm_events() const;

 private:
  struct Group {
    std::unique_ptr<FanotifyDaemon> daemon;
    std::thread reader;
    Status run_status;
  };
  Result<Group*> NewGroup(FsClass c, uint64_t dev, const std::string& path);

  DaemonOptions base_;
  Measurer* measurer_;
  MeasurementList* list_;
  Env* env_;
  std::function<void(const std::string&)> log_;
  uint64_t view_dev_;
  OverlayOpens opens_;
  mutable std::mutex mu_;
  bool stopped_ = false;            // under mu_
  std::map<uint64_t, std::unique_ptr<Group>> groups_;  // by superblock (st_dev), under mu_
};

}  // namespace lim::daemon
