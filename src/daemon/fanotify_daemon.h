// FanotifyDaemon: limd's event loop. Two groups (FAN_UNLIMITED_QUEUE, FAN_UNLIMITED_MARKS,
// FAN_REPORT_TID when the kernel takes it):
// - content class, filesystem-wide marks for FAN_OPEN_PERM | FAN_CLOSE_WRITE (an exec open
//   is one OPEN_PERM whose thread is in execve: no FAN_OPEN_EXEC_PERM, one round trip less): writer closes are in the same group, so the kernel keeps their order
//   relative to the opens (exact writer counts);
// - a notification group with file handles for readers' closes (FAN_CLOSE_NOWRITE), read
//   in batches before every write-open and periodically (ReaderCloseGroup: exact reader
//   counts where they matter without a wake-up per close); a filesystem whose handles it
//   cannot use keeps FAN_CLOSE_NOWRITE in the content group;
// - pre-content class, filesystem-wide FAN_PRE_ACCESS on the filesystems that accept it
//   (ext4, xfs, btrfs; tmpfs refuses): a PRE_ACCESS whose thread is in mmap() with PROT_EXEC
//   is the exact MMAP_CHECK; every other one (read, write, a PROT_READ mmap, execve's own
//   reads) is allowed at once. Inode ignore marks (FAN_MARK_IGNORE, evictable, surviving
//   modify; on FAN_PRE_ACCESS only) spare measured inodes and inodes held by a writer the
//   round trip (docs/limd.md "Pre-content"). Filesystems without pre-content keep the
//   ELF-at-open approximation of MMAP_CHECK.
//
// The reader thread only reads events, answers limd's own accesses (and those of the
// trusted peers: the TPM server) at once, decodes /proc/<tid>/syscall (func, open flags) and
// notes opens/closes in event order; it also answers an event itself when every step
// completes without I/O (no rule, or a cached verdict: Measurer::TryProcessCached; file
// kinds from FileKindCache) and applies closes whose turn it is; workers hash, append and
// extend (Measurer), then answer; a watchdog answers any permission event
// older than the decision timeout (measure mode: a lim-decision-timeout gap entry first,
// then allow; the real entry follows when hashing ends). Every permission event is answered,
// also at shutdown, before the group fd is closed; a rejected response write falls back to
// a plain FAN_ALLOW.
//
// The groups are behind FanotifyGroup / ReaderCloses (fanotify_group.h), so the event state
// machine runs in unit tests against fakes. Pieces of it have their own files: ExecTracker
// (the exec-opens of one execve), PrecontentIgnores (the ignore marks and their epochs),
// LatencyHistogram.
//
// Threading: Create() and Run() from one thread; Stop() from any thread (signal-safe:
// it only stores a flag).
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/exec_origin.h"
#include "daemon/exec_tracker.h"
#include "daemon/fanotify_group.h"
#include "daemon/file_kind_cache.h"
#include "daemon/latency_histogram.h"
#include "daemon/measurer.h"
#include "daemon/open_count_probe.h"
#include "daemon/peer_threads.h"
#include "daemon/precontent_ignores.h"
#include "daemon/proc_context.h"
#include "daemon/reader_close_group.h"
#include "daemon/startup_scan.h"
#include "daemon/write_probe.h"

namespace lim::daemon {

class OverlayOpens;  // side_group.h

struct DaemonOptions {
  std::vector<std::string> watch;  // mount roots
  bool allow_root_fs = false;      // permit marking the root filesystem's superblock
  int workers = 2;
  std::chrono::milliseconds decision_timeout{2000};
  bool elf_at_open = true;  // MMAP_CHECK for ELF files with an executable PT_LOAD at open,
                            // on filesystems without pre-content events
  bool precontent = true;   // FAN_PRE_ACCESS where the filesystem accepts it
  bool reader_close_group = true;  // readers' closes in batches (ReaderCloseGroup)
  // Nice value of the thread that runs Run() (0: unchanged). Every permission event blocks
  // someone until this thread answers; at a lower nice the opener it wakes with the answer
  // does not preempt it before it has closed the event fd and gone back to waiting (one
  // context switch less per event, as auditd's priority_boost).
  int reader_nice = -10;
  // How OpenCountProbe reads an inode's open counts: the kernel's counters through BPF
  // (InodeOpenCounts), a write lease, or the first where it loads (limd --open-counts).
  enum class OpenCounts { kAuto, kKernel, kLease };
  OpenCounts open_counts = OpenCounts::kAuto;
  // Processes (thread-group ids) treated like limd itself: every event of theirs and of
  // their threads is answered at once, never measured — the TPM server (swtpm) limd waits
  // on before it answers (docs/limd.md "The TPM server").
  std::vector<pid_t> trusted_peers;
  // Overlay backing files (side_group.h): a permission event OverlayOpens recognises as the
  // backing file of an overlay open is counted but not measured. overlay_group: this group
  // marks overlay filesystems and notes its openers' syscalls there.
  OverlayOpens* overlay_opens = nullptr;
  bool overlay_group = false;
  // FAN_REPORT_FD_ERROR (side groups): an event whose fd the kernel could not open for limd
  // (a FUSE server that refuses limd's FUSE_OPEN) comes with the error. The kernel has denied
  // that access already; limd records a lim-open-failed gap entry and removes this group's
  // marks, so that no further access waits on an open limd cannot make.
  bool report_fd_error = false;
  // An ELF interpreter's exec-open that is the first of its execve: the binary is on a
  // superblock without a mark (ExecOrigin). Called from a worker before the answer, with the
  // target (and its stat) when it is not the interpreter itself: measure it now, before it
  // runs (docs/limd.md "New superblocks and late execs"). Unset: not looked at.
  std::function<void(pid_t tid, const ExecTarget& target, uint64_t dev, uint64_t ino)> unmarked_exec;
  // Whether the target may be looked up (stat) at all; unset: yes.
  std::function<bool(pid_t tid, const ExecTarget& target)> may_resolve;
  // The syscall a thread is blocked in (tests; unset: /proc/<tid>/syscall, retried briefly
  // while the thread is still "running").
  std::function<Result<SyscallState>(pid_t tid)> read_syscall;
};

// The groups a daemon reads (Create opens the kernel's; tests pass fakes).
struct FanotifyGroups {
  std::unique_ptr<FanotifyGroup> content;     // required
  std::unique_ptr<FanotifyGroup> precontent;  // null: the kernel has none
  std::unique_ptr<ReaderCloses> closes;       // null: readers' closes in the content group
  bool report_tid = false;                    // events carry thread ids
};

// Pseudo filesystems and the like: never marked (limd reads /proc for every event).
bool RefusedFsType(const std::string& fstype);

// Refuses a path that is not a mount root (per /proc/self/mountinfo), and any path on the
// root filesystem's superblock (`/` itself or a bind mount of part of it) without
// allow_root_fs: a filesystem mark covers the whole superblock, and a typo must not freeze
// the host.
// fstype: the filesystem type name from mountinfo, when not null.
Status CheckWatchRoot(const std::string& path, bool allow_root_fs, std::string* fstype = nullptr);

// The device (st_dev) of path's filesystem from the inode's cached attributes (statx with
// AT_STATX_DONT_SYNC): a FUSE server is never asked, so a stopped one cannot stall the
// mount watcher. Asks for no attribute (statx mask 0): FUSE gives st_dev even to a caller
// it would refuse (another user's mount, one from a user namespace), without a request.
Result<uint64_t> DeviceOf(const std::string& path);

// Whether a measure rule of the policy can match MMAP_CHECK (a rule naming MMAP_CHECK or
// MMAP_CHECK_REQPROT, or one without func=): only then are pre-content events worth their
// round trip per read().
bool PolicyMeasuresMmap(const ima::Policy& policy);

struct DaemonStats {
  std::atomic<uint64_t> events{0}, perm_events{0}, own_events{0}, answered{0}, timeouts{0}, reply_errors{0},
      overflows{0}, measure_errors{0}, unknown_syscall{0};
  // Opens without known flags (io_uring, …) the kernel showed to be read-only, or taken as
  // write-opens because the inode was open for write while limd counted no writer.
  std::atomic<uint64_t> unknown_syscall_reads{0}, unknown_syscall_writes{0};
  // Permission events answered FAN_DENY (appraisal under enforce).
  std::atomic<uint64_t> denied{0};
  // Pre-content: events, those allowed at once (not a PROT_EXEC mmap), ignore marks added
  // and removed.
  std::atomic<uint64_t> precontent_events{0}, precontent_quick{0}, ignores_added{0}, ignores_removed{0};
  // Readers' closes read in batches from the reader-close group, and the batches.
  std::atomic<uint64_t> reader_closes{0}, reader_close_drains{0};
  // OPEN_PERMs of an exec open that reused the OPEN_EXEC_PERM's syscall state.
  std::atomic<uint64_t> exec_open_reuses{0};
  // OPEN_PERMs decided as exec opens too because their syscall could not tell (MayBeExecOpen).
  std::atomic<uint64_t> exec_unsure{0};
  // Permission events of overlay backing files: counted, not measured (side_group.h).
  std::atomic<uint64_t> backing_events{0};
  // Permission events without an fd (FAN_REPORT_FD_ERROR): denied by the kernel, a gap entry
  // each; the group's marks are removed at the first.
  std::atomic<uint64_t> fd_errors{0};
  LatencyHistogram latency;  // decision latency of every answered permission event
};

class FanotifyDaemon {
 public:
  static Result<std::unique_ptr<FanotifyDaemon>> Create(const DaemonOptions& options, Measurer* measurer,
                                                        MeasurementList* list, Env* env,
                                                        std::function<void(const std::string&)> log);
  // The same over groups already open (tests: fakes). options.watch is marked through them.
  static Result<std::unique_ptr<FanotifyDaemon>> CreateWithGroups(const DaemonOptions& options, FanotifyGroups groups,
                                                                  Measurer* measurer, MeasurementList* list, Env* env,
                                                                  std::function<void(const std::string&)> log);
  ~FanotifyDaemon();

  // Reads and dispatches events until Stop(); then answers everything still pending.
  Status Run();
  // One turn of Run()'s loop: waits up to timeout_ms on the groups and handles what came;
  // false when nothing did (then the queued reader closes were read). Tests drive this.
  Result<bool> ReadReady(int timeout_ms);
  // Marks one filesystem (a mount root reachable from limd; fstype from its mountinfo):
  // FAN_PRE_ACCESS in the pre-content group where the filesystem accepts it, then the
  // content mask. A superblock already marked is left alone. Any thread. remeasure: every
  // access hashes again (FUSE from a trusted mounter: Access::remeasure).
  // placed: the device (st_dev) it marked, when it did; placed_sdev: the superblock's kernel
  // device when this mark was the first on it and that differs from st_dev (a btrfs), else 0.
  Status MarkFilesystem(const std::string& root, const std::string& fstype, bool remeasure = false,
                        uint64_t* placed = nullptr, uint64_t* placed_sdev = nullptr);
  void Stop() { stop_.store(true); }
  // Whether the mark this group placed under st_dev dev is still there (the group's fdinfo,
  // "sdev:"). A superblock's marks go with it (the umount of its last mount, a user
  // namespace's end), and its st_dev may be handed to a new superblock (overlay, FUSE and
  // tmpfs take anonymous device numbers) that nobody marked. nullopt: this group never
  // marked dev. An unreadable fdinfo: true (cannot tell; what limd believes stands). A dev
  // that is now the kernel device of a mark placed under another st_dev (a btrfs) is no
  // longer the superblock marked under it: false. path (optional): where dev is mounted;
  // for a mark whose kernel device differs from dev (a btrfs subvolume's), the superblock
  // under path now must be that kernel device's. Any thread.
  std::optional<bool> MarkedHere(uint64_t dev, const std::string& path = "");
  // Strictly: whether this group holds a filesystem mark on the superblock whose kernel
  // device (super_block.s_dev, what an exec's BPF record carries) is dev, placed under that
  // same st_dev. False when it cannot tell (fdinfo unreadable), for a dev this group never
  // marked (a side group's), and for the s_dev of a mark whose st_dev differed (btrfs
  // subvolumes): a stale st_dev entry of a gone superblock must not vouch for a new one
  // that took its number. Any thread.
  bool RecordDevMarked(uint64_t dev);
  // The kernel device learned for the mark under st_dev dev when it differs (a btrfs), else 0.
  uint64_t ForeignSdevOf(uint64_t dev);
  // Handles of inodes the start scan seeded as read (their closes come later).
  void LearnReaderHandles(const std::vector<ScanReport::ReaderHandle>& handles);

  const DaemonStats& stats() const { return stats_; }
  size_t marks() const { return marks_.load(); }
  // The kernel could not open a file for limd and this group removed its marks (FUSE
  // servers that refuse limd): no mark is left to say whether its superblocks live.
  bool unmarked_after_denial() const { return unmarked_after_denial_.load(); }
  size_t precontent_marks() const { return precontent_marks_.load(); }
  bool report_tid() const { return report_tid_; }
  // Open-count probes made (open_count_probe.h), and the inodes whose counts they reset.
  uint64_t count_probes() const { return probe_ ? probe_->probes() : 0; }
  uint64_t count_probes_by_kernel_counts() const { return probe_ ? probe_->probes_by_kernel_counts() : 0; }
  uint64_t count_resets() const { return probe_ ? probe_->resets() : 0; }

 private:
  // Whether the content group's fdinfo lists a filesystem mark on device dev ("sdev:") now;
  // nullopt when it cannot be read.
  std::optional<bool> GroupListsMark(uint64_t dev);
  // The kernel device of the superblock mounted at path (SuperblockDevOf), kept by unique
  // mount id; nullopt: cannot tell.
  std::optional<uint64_t> KernelDevAt(const std::string& path);
  std::mutex kernel_devs_mu_;
  std::map<uint64_t, uint64_t> kernel_devs_;  // unique mount id → s_dev, under kernel_devs_mu_
  // The measurer steps of one permission event (Pending::steps, Pending::done).
  enum Step : uint8_t {
    kExecStep = 1,     // an exec open: BPRM_CHECK, or MMAP_CHECK for an ELF interpreter
    kOpenStep = 2,     // OPEN_PERM: FILE_CHECK
    kElfStep = 4,      // a read-only open on a filesystem without pre-content: ELF-at-open MMAP_CHECK
    kPreExecStep = 8,  // PRE_ACCESS in mmap(PROT_EXEC): the exact MMAP_CHECK
  };
  // ExecOrigin for an exec-open (the first of an execve, of a known ELF interpreter).
  enum class Origin : uint8_t {
    kNone,
    kCheck,             // a worker resolves the execve's target (CheckOrigin)
    kInterpOfUnmarked,  // …and it is a binary elsewhere: this exec step is MMAP_CHECK
  };
  struct Pending {
    int fd = -1;
    FanotifyGroup* group = nullptr;  // the group the answer goes to
    uint64_t mask = 0;
    std::chrono::steady_clock::time_point start;
    std::atomic<bool> answered{false};
    Access access;             // FILE_CHECK / BPRM / MMAP as decoded
    uint8_t steps = 0;         // Step bits this event needs
    uint8_t done = 0;          // Step bits the reader ran already (the fast path)
    ExecTracker::ExecOpen exec;  // with kExecStep: this execve's previous exec-open, and this one
    uint64_t exec_ticket = OpenCounts::kNoTicket;
    uint64_t elf_ticket = OpenCounts::kNoTicket;
    bool precontent_fs = false;  // the inode's filesystem has the pre-content mark
    uint64_t ignore_epoch = 0;   // PrecontentIgnores::Epoch when the event was read
    bool backing = false;        // an overlay backing file: every step skipped (counts kept)
    Origin origin = Origin::kNone;
    SyscallState sc;  // with Origin::kCheck: the execve's syscall state
    // Appraisal: a step was denied (enforce); the counts NoteOpen() added for this open,
    // taken back when it is denied (a denied open has no close).
    bool denied = false;
    bool noted_write = false, noted_ro = false;
    bool Needs(Step s) const { return (steps & s) && !(done & s); }
    ~Pending();
  };
  struct Job {
    std::shared_ptr<Pending> perm;
    // close bookkeeping
    int close_fd = -1;
    InodeKey key;
    CloseNote note;
    bool overflow = false;
    std::string open_failed;  // a gap entry's buffer: an event without an fd
  };

  FanotifyDaemon(const DaemonOptions& o, Measurer* m, MeasurementList* l, Env* env,
                 std::function<void(const std::string&)> log)
      : options_(o), measurer_(m), list_(l), env_(env), log_(std::move(log)) {}
  static Result<FanotifyGroups> OpenKernelGroups(const DaemonOptions& options,
                                                 const std::function<void(const std::string&)>& log);
  Status Init(FanotifyGroups groups);
  Status ReadEvents(FanotifyGroup* group);
  // At stop: removes every filesystem mark, then reads and answers what is still queued.
  // Until then the reader keeps answering, so limd's own late accesses (the last list
  // appends, status.json) on a watched filesystem never wait on a reader that is gone.
  Status FlushMarksAndDrain();
  void HandleEvent(const FanotifyEvent& e);
  // A close (FAN_CLOSE_WRITE, or FAN_CLOSE_NOWRITE without a reader-close group): counts.
  void HandleClose(int fd, uint64_t mask);
  // FAN_OPEN_PERM / FAN_OPEN_EXEC_PERM of someone else: decode, count, fast path or a worker.
  void HandleOpenPerm(int fd, uint64_t mask, pid_t pid);
  // HandleOpenPerm's exec part: the execve this exec-open belongs to, and its ticket.
  // open_follows: the kernel raises an OPEN_PERM of this open next (an OPEN_EXEC_PERM alone).
  void NoteExecOpen(Pending& p, const SyscallState& sc, bool open_follows);
  // HandleOpenPerm's open part: the access mask, counts, ignore marks, the ELF-at-open step.
  // ow: ProbeOpenForWrite of the event's fd when the syscall gave no flags.
  void NoteOpen(Pending& p, const OpenIntent& intent, OpenForWrite ow, const SyscallState& sc,
                const Result<SyscallState>& read,
                bool reader_close_group, int64_t ctime_ns);
  void HandlePreContent(int fd, pid_t pid);
  // A permission event the kernel could not open an fd for (FAN_REPORT_FD_ERROR): a gap entry
  // queued, the group's marks removed.
  void HandleFdError(int error, uint64_t mask, pid_t pid);
  // Answers an event of limd or a trusted peer at once (never measured); closes fd.
  void AllowNow(FanotifyGroup* group, int fd, bool perm);
  // limd itself or a trusted peer (a thread id with FAN_REPORT_TID, else a pid).
  bool Own(pid_t pid) const;
  Result<SyscallState> ReadEventSyscall(pid_t pid);
  void Worker();
  void Watchdog();
  void OnOverflow();
  bool TryFastPath(Pending& p, const FileFacts& facts);  // facts: Env::Facts of p.fd
  void DoPerm(Pending& p);
  // The access of each measurer step of a permission event, from the event's base access.
  static Access ExecStep(const Pending& p, const Access& base);
  static Access OpenStep(const Access& base);
  static Access ElfStep(const Pending& p, const Access& base);
  void Answer(Pending& p, bool allow);
  void Enqueue(Job j);
  void EnqueuePerm(std::shared_ptr<Pending> p);
  void Log(const std::string& s) {
    if (log_) log_(s);
  }

  DaemonOptions options_;
  Measurer* measurer_;
  MeasurementList* list_;
  Env* env_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<FanotifyGroup> group_;  // content group
  std::unique_ptr<FanotifyGroup> pre_;    // pre-content group (null: the kernel has none)
  std::unique_ptr<PrecontentIgnores> ignores_;  // with pre_
  bool report_tid_ = false;
  std::atomic<size_t> marks_{0}, precontent_marks_{0};
  std::mutex marks_mu_;
  struct DevInfo {
    bool precontent = false;
    bool reader_close_group = false;  // its FAN_CLOSE_NOWRITE in closes_, not the content group
    bool remeasure = false;           // Access::remeasure for its files
    std::string fsname;
    // The kernel's device of the superblock marked (super_block.s_dev, what the group's
    // fdinfo lists): st_dev, or not (btrfs).
    uint64_t sdev = 0;  // 0: unknown (st_dev is looked for); kGoneSdev: the superblock is gone
  };
  static constexpr uint64_t kGoneSdev = ~0ull;
  DevInfo Dev(uint64_t dev);
  // Reads every queued reader close (before a write-open looks at reader counts, and at
  // least every kDrainInterval).
  void DrainReaderCloses();
  static constexpr std::chrono::milliseconds kDrainInterval{50};
  std::unique_ptr<ReaderCloses> closes_;
  std::chrono::steady_clock::time_point last_drain_{};  // reader thread
  // Counts that merged closes left too high (open_count_probe.h); with closes_ and
  // FAN_REPORT_TID only. Declared after closes_: stopped before it goes.
  std::unique_ptr<InodeOpenCounts> open_counts_;  // the probe's, when loaded (outlives it)
  std::unique_ptr<OpenCountProbe> probe_;
  std::map<uint64_t, DevInfo> devs_;  // marked superblocks (st_dev), under marks_mu_
  // Kernel devices (s_dev) of this group's marks placed under another st_dev, learned from
  // the fdinfo at each mark (RecordDevMarked), under marks_mu_.
  std::set<uint64_t> foreign_sdevs_;
  std::atomic<bool> unmarked_after_denial_{false};  // set before the flush (HandleFdError)
  bool sdevs_unknown_ = false;  // a mark's could not be learned (under marks_mu_)
  // Held across a whole MarkFilesystem and by the shutdown flush: once closing_ is set no
  // new mark appears, so the drain in Run() sees the last event anyone can queue.
  std::mutex mark_order_mu_;
  bool closing_ = false;  // under mark_order_mu_
  pid_t self_ = 0;
  int task_dir_ = -1;  // /proc/self/task: is an event's tid one of limd's threads?
  std::vector<std::unique_ptr<PeerThreads>> peers_;  // each trusted peer still there at Init
  std::atomic<bool> stop_{false};
  DaemonStats stats_;

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<Job> queue_;
  bool draining_done_ = false;
  std::vector<std::thread> workers_;

  std::mutex inflight_mu_;
  std::vector<std::weak_ptr<Pending>> inflight_;
  std::condition_variable inflight_cv_;  // inflight_ became non-empty, or stop
  std::thread watchdog_;
  std::atomic<bool> watchdog_stop_{false};

  ExecTracker execs_;  // reader thread only
  FileKindCache kinds_;
  InterpreterSet interps_;  // inodes seen as an ELF interpreter (ExecOrigin's filter)
  void CheckOrigin(Pending& p);  // worker: the binary behind an interpreter's exec-open
  SyscallReader syscalls_;  // reader thread only
};

}  // namespace lim::daemon
