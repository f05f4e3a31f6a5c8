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
// FUSE mounted by someone else than limd's user (a user namespace's mount, or fusermount's
// without allow_other): the fuse module serves only its mounter (fuse_allow_current_process:
// uid, euid, suid and the gids equal the mount's user_id/group_id) or, with the module
// parameter allow_sys_admin_access=Y, a CAP_SYS_ADMIN caller; and only a caller whose fsuid
// is mapped in the mount's user namespace (fuse_get_req: EOVERFLOW otherwise). limd never
// runs a thread with the mounter's uid — that user could then SIGSTOP or SIGKILL limd
// through it (tgkill's permission is the uid/suid match). With allow_sys_admin_access the
// group is created, started and marked under ThreadCreds giving only the mounter's fsuid and
// fsgid, so that its reader (the event fds: FUSE_OPEN), worker (hash reads, fstat) and
// watchdog make their requests as the mounter for their whole life; without it the mount is
// not marked and gets a lim-fuse-unmeasured gap entry.
//
// A FUSE server that does not answer: its requests wait uninterruptibly once the server
// has read them (request_wait_answer), so no thread can be pulled out of a hash read. The
// bound is the answer: the group's watchdog answers each held permission event after the
// decision timeout (allowed, with a lim-decision-timeout gap entry, as any timeout); the
// monitor adds one lim-fuse-unresponsive entry per stall and logs it; the worker stays in
// the read until the server answers or ends. Stop() waits for a group at most kStopWait and
// then leaves it running (logged), so limd's shutdown never waits on a server either.
// docs/limd.md "FUSE".
//
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
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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

// The mounter of a FUSE superblock as the kernel holds it (fc->user_id/group_id, global ids):
// the mount's user_id=/group_id= options (in the mount's user namespace) mapped through the
// uid_map/gid_map of a process of the mount namespace that holds path's mount (found by
// its mount id, never asking the server).
struct FuseMounter {
  uint32_t uid = 0, gid = 0;
  bool allow_other = false;
  bool trusted = true;  // the mount's namespace is the initial user namespace's (FuseTrustedMounter)
};
Result<FuseMounter> FuseMounterOf(const std::string& path, uint64_t dev);
// One id through a uid_map/gid_map text ("inside outside count" lines); nullopt: unmapped.
std::optional<uint32_t> MapId(const std::string& map, uint32_t id);

// The calling thread's fsuid/fsgid (per thread, as the kernel keeps them) as given, its
// uid, euid and suid untouched and its capabilities kept (SECBIT_NO_SETUID_FIXUP): threads
// it creates meanwhile inherit both. The destructor restores the ids and securebits.
class ThreadCreds {
 public:
  static Result<std::unique_ptr<ThreadCreds>> Become(uint32_t fsuid, uint32_t fsgid);
  ~ThreadCreds();
  ThreadCreds(const ThreadCreds&) = delete;
  ThreadCreds& operator=(const ThreadCreds&) = delete;

 private:
  ThreadCreds() = default;
  uint32_t fsuid_ = 0, fsgid_ = 0;
  int securebits_ = 0;
};

// Whether the fuse module lets CAP_SYS_ADMIN use every FUSE mount (allow_sys_admin_access).
bool FuseSysAdminAccess();

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
  // created and started here. A group kept under the same device whose superblock is gone
  // (a new superblock took its anonymous number) is retired first.
  Status Mark(const std::string& path, const std::string& fstype);
  // Whether the group of superblock dev still holds its mark (FanotifyDaemon::MarkedHere);
  // nullopt: no group was made for dev, or its group unmarked itself after a denial (it
  // cannot tell). Any thread.
  std::optional<bool> MarkedHere(uint64_t dev);
  // Whether the group of dev removed its mark after the kernel could not open a file there
  // for limd (FanotifyDaemon::unmarked_after_denial). Any thread.
  bool Refused(uint64_t dev);
  // The content group marked a superblock under dev: a group kept under that number (its
  // superblock gone, or a refused one that holds no mark to tell) is retired. Any thread.
  void Forget(uint64_t dev);
  // Groups retired because their superblock went (an overlay's last umount, a container's
  // end): each one's reader, worker and watchdog end with it.
  uint64_t retired() const { return retired_count_.load(); }
  // Stops the readers (each flushes its marks and answers what it holds) and joins them —
  // waiting at most kStopWait for all: a group whose reader or worker waits on a FUSE server
  // is left running (logged; leaked()).
  void Stop();
  static constexpr std::chrono::seconds kStopWait{3};
  size_t leaked() const { return leaked_.load(); }
  // FUSE stalls seen (each: a lim-fuse-unresponsive entry).
  uint64_t fuse_stalls() const { return fuse_stalls_.load(); }
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
    std::atomic<bool> reader_done{false};
    FsClass fs_class = FsClass::kPlain;
    std::string path;
    uint64_t dev = 0;
    // Monitor thread only: the watchdog's timeouts seen, and whether a stall is open.
    uint64_t seen_timeouts = 0;
    bool stalled = false;
    int quiet_rounds = 0;
  };
  Result<std::unique_ptr<Group>> NewGroup(FsClass c, uint64_t dev, const std::string& path);
  // Every FUSE group once per interval: a rise of its watchdog's timeouts is a server that
  // did not answer limd in time. Every kSweepRounds intervals, groups whose superblock is
  // gone are retired, and retired groups whose reader ended are joined.
  void Monitor();
  void StartMonitorLocked();
  static constexpr int kSweepRounds = 10;
  // A group kept under a number that a new superblock may have: a refused one (no mark left
  // to tell), or one whose mark is gone (FanotifyDaemon::MarkedHere).
  static bool CannotBeLive(const Group& g);
  // Moves groups_[it] to retiring_ and tells it to stop (under mu_).
  void RetireLocked(std::map<uint64_t, std::unique_ptr<Group>>::iterator it);
  // Joins and destroys the retiring groups whose reader ended (Monitor's thread; takes mu_).
  void ReapRetired();

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
  std::vector<std::unique_ptr<Group>> retiring_;       // stopped, not yet joined, under mu_
  // Devices whose group was retired and not made again: MarkedHere says false for them (a
  // new superblock under the number is not marked), under mu_.
  std::set<uint64_t> gone_;
  std::atomic<uint64_t> retired_count_{0};
  std::thread monitor_;             // started with the first FUSE group, under mu_
  std::condition_variable monitor_cv_;  // with mu_: stop
  std::atomic<size_t> leaked_{0};
  std::atomic<uint64_t> fuse_stalls_{0};
};

}  // namespace lim::daemon
