// LateExecs: execs whose binary lives on a superblock limd had not marked when the exec
// began — a filesystem mounted a moment ago (often in a new, unprivileged mount namespace)
// that discovery had not reached yet. fanotify saw nothing of such an exec; the
// sched_process_exec tracepoint (TraceEvents) does, after the fact. For each exec whose
// binary's superblock was unmarked at its sys_enter_execve and qualifies for marking
// (MountWatch::QualifyingMount), LateExecs pokes discovery (so the next exec is seen before
// it runs), opens /proc/<pid>/exe at once and runs the BPRM_CHECK step through that fd (the
// regular entry, as the policy says; none when the content is in the list already), then appends an ima-buf entry `lim-late-exec` that
// says it came late and by how much (docs/limd.md "New superblocks and late execs" has the
// buffer's format). A process gone before its exe could be opened gets a `lim-late-exec`
// gap entry naming what is known.
//
// A process gone before /proc/<pid>/exe could be opened (a static binary that returns at
// once lives well under a millisecond) is not the end: the exec's own executable mappings
// arrive as PERF_RECORD_MMAP2 side-band records (OnExecMmap: dev, ino and the path as the
// process's root shows it, taken at the mmap), so limd still knows which superblock and
// inode ran. When that superblock was not marked, the file is opened by that path inside
// the mount namespace pinned at the mount syscall's exit (MountPins: the namespace
// outlives its last process while pinned), or inside the pinned detached mount
// (fsmount/open_tree), and accepted only when it is the same dev:ino; the late entry then
// says `source=name-after-exit`. Otherwise a gap entry names pid, path, exec filename and
// why nothing could be read.
//
// Threading: OnExecEnter()/OnExec() from the trace consumer's thread only; the counters
// and DelayPercentile() from any thread.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/exec_origin.h"
#include "daemon/latency_samples.h"
#include "daemon/measurer.h"
#include "daemon/mount_pins.h"
#include "daemon/own_mountinfo.h"

namespace lim::daemon {

// CLOCK_MONOTONIC in nanoseconds (the clock of TraceRecord::time_ns).
uint64_t MonotonicNs();

// Whether the memfd path's filter (its BPF program, or perf's kMemfdPathFilter) takes an
// exec named filename: a name under /dev/fd/ or /proc/. The three change together (the
// BPF program's byte comparisons are in bpf/exec_trace.bpf.c).
bool MemfdPathTakes(std::string_view filename);
inline constexpr const char* kMemfdPathFilter = "filename ~ \"/dev/fd/*\" || filename ~ \"/proc/*\"";

// The superblocks limd marked, and when (CLOCK_MONOTONIC ns; 0: before anything ran).
// Thread-safe.
class MarkedDevs {
 public:
  void Add(uint64_t dev, uint64_t at_ns);
  std::optional<uint64_t> MarkedAt(uint64_t dev) const;
  // Before a mark of dev is placed: until Add() (after the mark) or Forget() (it failed),
  // dev counts as marked at no time yet — an exec from it is late whenever it began. Else
  // an exec between the new superblock's mark and Add() would find the mark of a gone
  // superblock that had the number (still_marked sees the new mark) and its earlier time,
  // and be taken as seen by fanotify: no entry at all.
  void Marking(uint64_t dev) { Add(dev, kNotYet); }
  void Forget(uint64_t dev);
  static constexpr uint64_t kNotYet = ~0ull;
  // observer(dev, marked) for every device marked now, then at each change: marked true
  // once a mark is in place (Add), false while one is being placed or after it failed
  // (Marking, Forget). Called under this object's lock (it must not call back); nullptr
  // stops it. ExecTraceBpf::MarkDev keeps its device map so.
  void Observe(std::function<void(uint64_t dev, bool marked)> observer);
  // A mark is being placed, whatever its device (the caller could not stat its path, or
  // the path changed under it): until EndMark(), Quiet() is nullopt.
  void BeginMark();
  void EndMark();
  // The count of changes so far (Add, Marking, Forget, BeginMark, EndMark), or nullopt
  // while any mark is being placed. A decision that reads it before and after looking at
  // the marks, and gets the same value both times, saw no mark placed in between.
  std::optional<uint64_t> Quiet() const;

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> at_;
  std::function<void(uint64_t, bool)> observer_;
  uint64_t generation_ = 0;  // under mu_
  int marking_ = 0;          // BeginMark()s without EndMark() (under mu_)
  size_t not_yet_ = 0;       // entries of at_ at kNotYet (under mu_): Quiet() asks per exec record
};

// The ima-buf text of a `lim-late-exec` entry (docs/limd.md). extra: further fields, each
// "key=value;" already escaped, placed before delay_us.
std::string LateExecBuffer(const std::string& digest, const std::string& path, pid_t pid, uint64_t dev, uint64_t ino,
                           uint64_t delay_us, const std::string& error, const std::string& extra = "");
// s as one field's value: ';', '\' and newlines escaped as \073, \134, \012.
std::string LateExecField(const std::string& s);

struct LateExecHooks {
  // A superblock limd never marks whatever its mount (the root filesystem without
  // --allow-root-fs): no mountinfo read for execs from it.
  std::function<bool(uint64_t dev)> never_marked;
  // The superblock now under dev still carries limd's mark (Limd::StillMarked): MarkedDevs
  // may name a superblock that is gone and whose number a new one took. path: a file of
  // that superblock when one is at hand ("" otherwise): a btrfs subvolume's number is
  // vouched for only through it.
  std::function<bool(uint64_t dev, const std::string& path)> still_marked;
  // For an exec's BPF record, whose device is the kernel's s_dev rather than stat's: the
  // superblock under that s_dev carries limd's mark, placed under the same st_dev, and this
  // can be confirmed (FanotifyDaemon::RecordDevMarked; never "cannot tell"). Unset: records
  // settle nothing.
  std::function<bool(uint64_t dev)> record_dev_marked;
  // The superblock dev of pid's binary is one limd marks (type, watch roots; mountinfo:
  // the text of pid's /proc/<pid>/mountinfo): fstype out.
  std::function<bool(const std::string& mountinfo, pid_t pid, uint64_t dev, std::string* fstype)> qualifies;
  // Files of this filesystem type may be read by the late path (not FUSE: a read asks its
  // server, which may never answer — a FUSE exec that beat its mark gets a gap entry).
  std::function<bool(const std::string& fstype)> may_read;
  // A file at path (as the exec's process saw it) may lie on a filesystem limd marks, for a
  // superblock no mountinfo is left to place: with --watch, path at or below a watched root
  // (unset: always). An exec gone with its namespace gets a gap only then.
  std::function<bool(const std::string& path)> may_be_watched;
  // Discovery should look at pid's namespace now.
  std::function<void(pid_t pid)> poke;
  // An exec from a memfd under a name the memfd path's filter does not take (a symlink to
  // /proc/self/fd/N, a relative fd/N from /proc/self, //proc/…: MemfdPathTakes is false):
  // measured as that path would, since it saw nothing of it.
  std::function<void(pid_t pid, const std::string& filename)> memfd_exec;
  std::function<void(const std::string&)> log;
};

class LateExecs {
 public:
  LateExecs(Measurer* measurer, MeasurementList* list, const MarkedDevs* marked, pid_t self, LateExecHooks hooks)
      : measurer_(measurer), list_(list), marked_(marked), self_(self), hooks_(std::move(hooks)) {}
  ~LateExecs();
  LateExecs(const LateExecs&) = delete;
  LateExecs& operator=(const LateExecs&) = delete;

  // The exit of a mount syscall by pid (ret: its return value): the caller's namespace is
  // pinned (MountPins); fsmount/open_tree (returns_fd) pin the detached mount they made;
  // move_mount (attaches) drops pid's detached pins.
  void OnMountExit(pid_t pid, int64_t ret, bool returns_fd, bool attaches, uint64_t time_ns);
  // An executable file mapping by pid (TraceEvents' MMAP2 record), at time_ns.
  void OnExecMmap(pid_t pid, uint64_t time_ns, uint64_t dev, uint64_t ino, std::string_view name);
  // After each pass over the trace rings: the execs whose process was gone, now that the
  // mappings of every CPU's ring are in.
  void AfterDrain();
  // The kernel dropped n trace records (ring full): execs among them may have gone unseen.
  // AfterDrain() appends a `lim-trace-lost` gap entry for them (at most one a second,
  // with the count since the last).
  void OnLost(uint64_t n) { lost_pending_ += n; }
  // sys_enter_execve / sys_enter_execveat of thread tid at time_ns.
  void OnExecEnter(pid_t tid, uint64_t time_ns);
  // The file an exec ran, as the kernel had it at the exec (ExecTraceBpf's record:
  // bprm->file's superblock device and inode number — the binary, or a script's
  // interpreter, what /proc/<pid>/exe names).
  struct ExecFile {
    uint64_t dev = 0, ino = 0;
  };
  // sched_process_exec: the exec by old_pid (the calling thread) completed as pid, at
  // time_ns; filename as the process named it. file: the record's, when it names one (the
  // BPF path; perf's record does not). With it, an exec fanotify saw (its superblock
  // marked before the exec began) is settled from the record alone — no look at
  // /proc/<pid>/exe, the most common record done in one map lookup and one pread — and a
  // gone process's binary is the mapping of that very inode, not the earliest one of the
  // window before the completion.
  void OnExec(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t time_ns,
              std::optional<ExecFile> file = std::nullopt);

  // The binary of an execve whose ELF interpreter's exec-open limd holds (ExecOrigin), on
  // a superblock without a mark: measured now, before it runs (BPRM_CHECK through
  // target.open_path, path as the process named it), the superblock's discovery poked, and
  // (dev, ino) remembered for the exec's completion — OnExec() then checks /proc/<pid>/exe
  // against it: the same inode needs no late entry, another one (a rename raced the read)
  // gets one. Any thread (a daemon worker).
  void MeasureBeforeRun(pid_t tid, const ExecTarget& target, uint64_t dev, uint64_t ino);
  // Whether target (from ResolveExecTarget) may be looked up at all: not on FUSE by the
  // process's mountinfo (a path walk there asks the server, which may never answer).
  bool MayResolve(pid_t tid, const ExecTarget& target) const;

  uint64_t execs() const { return execs_.load(); }
  // Execs settled as seen by fanotify from the record's file alone (OnExec's file).
  uint64_t seen_by_record() const { return seen_by_record_.load(); }
  uint64_t before_run() const { return before_run_.load(); }  // measured by MeasureBeforeRun
  uint64_t late() const { return late_.load(); }            // lim-late-exec entries with a digest
  uint64_t unmeasured() const { return unmeasured_.load(); }  // lim-late-exec gap entries
  // Late entries whose content was read by name after the process had exited.
  uint64_t after_exit() const { return after_exit_.load(); }
  // Execs whose process was gone before limd could look at its executable and whose
  // binary's mapping never arrived (superblock unknown: no entry).
  uint64_t missed() const { return missed_.load(); }
  // Running execs from a superblock limd had not marked that were placed by limd's own
  // mountinfo (OwnMountinfo: the process shares limd's namespace and root), and how often
  // that text was read (once, and after each change of the mount table).
  uint64_t own_view_places() const { return own_view_places_.load(); }
  uint64_t own_mountinfo_reads() const { return own_mountinfo_reads_.load(); }
  // Delay from the exec to its late entry (µs), over the last 4,096 late entries.
  uint64_t DelayPercentile(double p) const { return delays_.Percentile(p); }

 private:
  Measurer* measurer_;
  MeasurementList* list_;
  const MarkedDevs* marked_;
  pid_t self_;
  LateExecHooks hooks_;
  // Execs of processes that share limd's view of the mounts: its mountinfo, and what it says
  // about each superblock (filled on first use, dropped when the text is read again).
  OwnMountinfo own_mountinfo_;
  struct OwnVerdict {
    bool qualifies = false;  // hooks_.qualifies
    bool listed = false;     // a line of the mountinfo has the superblock
  };
  std::map<uint64_t, OwnVerdict> own_verdicts_;
  uint64_t own_verdicts_generation_ = 0;
  struct ExecMap {
    uint64_t time_ns, dev, ino;
    std::string name;
  };
  struct GoneExec {
    pid_t pid, old_pid;
    std::string filename;
    uint64_t began, time_ns;
    std::optional<ExecMap> binary;  // found at once when its mapping came through the same ring
    int passes = 0;
    bool began_known = true;  // its sys_enter record was read (else began = time_ns, a guess)
    std::optional<ExecFile> file;  // the record's (OnExec)
  };
  // A running exec read before its sys_enter record (another CPU's ring): decided after
  // the pass, its binary pinned by pfd (O_PATH of /proc/<pid>/exe) meanwhile.
  struct UndecidedExec {
    pid_t pid, old_pid;
    std::string filename;
    uint64_t time_ns;
    int pfd;
    int passes = 0;
    std::optional<ExecFile> file;  // the record's (OnExec)
  };
  // When the record's file lies on a superblock marked before the exec began: fanotify saw
  // it — pid's mappings up to time_ns are dropped, the exec is counted (seen_by_record()),
  // true. Else false: nothing changed (also while any mark is being placed, whose
  // superblock's s_dev is not known yet, and whenever hooks_.record_dev_marked cannot
  // confirm the mark).
  bool SettledByRecord(pid_t pid, uint64_t time_ns, const ExecFile& file, uint64_t began);
  // The running exec's decision: not a late exec (seen by fanotify, measured before it
  // ran, recorded elsewhere, not limd's), or its late entry. began: its sys_enter time (0:
  // unknown — then any mark after limd's start may have come after it). Closes pfd. file:
  // the record's; when it names the same inode as pfd, its device (the kernel's s_dev)
  // is the one whose mark time counts (a btrfs subvolume's st_dev is no mark's).
  void DecideRunning(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t began, uint64_t time_ns, int pfd,
                     const struct stat& st, const std::optional<ExecFile>& file);
  // The binary of pid's exec that began at `began` and completed at time_ns: with the
  // record's file, pid's latest mapping of that inode up to time_ns; without it (or when no
  // mapping of it came: an overlayfs file is mapped as its backing file), its earliest
  // executable mapping in between (the binary's own text comes before its interpreter's).
  std::optional<ExecMap> BinaryMapping(pid_t pid, uint64_t began, uint64_t time_ns,
                                       const std::optional<ExecFile>& file) const;
  // One exec whose process was gone: false to look again after the next pass.
  bool ResolveGone(GoneExec& g);
  // Where a gone exec's binary is opened by name: the pinned root (dirfd, owned by pins_),
  // the filesystem type, and "mount=detached;" for a detached mount.
  struct GoneRoot {
    std::string fstype;
    int dirfd = -1;
    std::string detached;
  };
  // g's binary (mapping m) placed by a pinned namespace or detached mount into *root;
  // false when it is not limd's to read (or a gap entry was appended for it).
  bool PlaceGone(const GoneExec& g, const ExecMap& m, const std::string& extra, GoneRoot* root);
  // g's binary opened by name inside root and measured when it is the same dev:ino: the
  // `source=name-after-exit` late entry, or a gap entry saying why not.
  void MeasureGone(const GoneExec& g, const ExecMap& m, const GoneRoot& root, const std::string& extra);
  // The binary of a running exec as its process saw it: path, filesystem type, and whether
  // it lies on a detached mount.
  struct RunningPlace {
    std::string path, fstype;
    bool detached = false;
  };
  // The running exec's binary (pfd: its O_PATH fd, on superblock dev) placed by pid's
  // mountinfo (or the pins, once pid is gone); nullopt when it is not limd's to measure.
  std::optional<RunningPlace> PlaceRunning(pid_t pid, const std::string& proc, const std::string& filename,
                                           uint64_t began, uint64_t time_ns, uint64_t dev, int pfd);
  // The late entry (or gap entry) for the running exec's binary, read through pfd (closed).
  void MeasureRunning(pid_t pid, uint64_t time_ns, int pfd, uint64_t dev, uint64_t ino, const RunningPlace& place,
                      bool pre_measured);
  // When the exec by old_pid that completed at time_ns as pid began: its sys_enter record
  // (taken, with the failed execs' before pid's previous completion), nullopt when none has
  // been read (yet).
  std::optional<uint64_t> ExecBegan(pid_t old_pid, pid_t pid, uint64_t time_ns);
  // pid completed an exec at time_ns (its sched_process_exec record).
  void NoteDone(pid_t pid, uint64_t time_ns);
  // When limd marked dev, if the superblock under dev still carries that mark (path: as
  // LateExecHooks::still_marked).
  std::optional<uint64_t> MarkedAtNow(uint64_t dev, const std::string& path = "") const;
  // Execs from dev are not late execs: a memfd (the memfd consumer records it as
  // memfd:NAME, process_exe — or, when its name escaped that consumer's filter, it is
  // handed to hooks_.memfd_exec here) or a superblock limd never marks
  // (hooks_.never_marked). pid and filename: the exec's.
  bool RecordedElsewhere(uint64_t dev, pid_t pid, const std::string& filename);
  // tid's exec of (dev, ino) was measured before it ran (MeasureBeforeRun), within a second.
  bool PreMeasured(pid_t tid, uint64_t dev, uint64_t ino, uint64_t time_ns);
  // Where superblock dev is reachable: pinned, or by pinning the namespace of a live
  // process that sees it.
  std::optional<MountPins::Place> PinnedPlace(uint64_t dev);
  // pid's mappings up to time_ns: its exec was handled while it ran.
  void ForgetMaps(pid_t pid, uint64_t time_ns);
  void AppendGap(const std::string& path, pid_t pid, uint64_t dev, uint64_t ino, uint64_t time_ns,
                 const std::string& why, const std::string& extra = "");
  // A live process whose mount namespace has a mount of dev (the namespaces' mountinfo
  // read once per pass over the rings, and only when an exec needs it).
  std::optional<pid_t> LiveProcessSeeing(uint64_t dev);
  // 2 s: a pin matters between a mount and its mark (milliseconds); while it lasts, the
  // namespace's mounts outlive its last process (a loop device stays busy).
  MountPins pins_{64, 2'000'000'000ull};  // trace thread only
  std::optional<std::map<uint64_t, pid_t>> live_devs_;  // this pass's, trace thread only
  std::map<pid_t, std::vector<ExecMap>> maps_;  // pid → its latest executable mappings (trace thread)
  std::vector<GoneExec> gone_;                   // trace thread
  uint64_t pruned_at_ = 0;
  uint64_t lost_pending_ = 0, lost_entry_at_ = 0;  // trace thread only
  std::map<pid_t, std::vector<uint64_t>> enter_;  // tid → sys_enter_execve times (trace thread only)
  std::vector<UndecidedExec> undecided_;          // trace thread only
  std::map<pid_t, std::vector<uint64_t>> done_;   // pid → its latest exec completions (trace thread)
  // A binary a pid (or tid) was measured for, and when: pids and tmpfs device numbers are
  // both recycled (and a fresh tmpfs's first file is always inode 2), so a match counts
  // only within a second — the records of one process's exec chain come within
  // milliseconds.
  struct SeenBinary {
    uint64_t dev = 0, ino = 0, at_ns = 0;
    bool Same(uint64_t d, uint64_t i, uint64_t now_ns) const {
      uint64_t apart = now_ns > at_ns ? now_ns - at_ns : at_ns - now_ns;
      return d == dev && i == ino && apart < 1'000'000'000ull;
    }
  };
  std::map<pid_t, SeenBinary> late_seen_;  // pid → binary late-measured (trace thread)
  std::mutex pre_mu_;
  std::map<pid_t, SeenBinary> pre_;  // tid → binary measured before it ran
  std::atomic<uint64_t> execs_{0}, seen_by_record_{0}, late_{0}, unmeasured_{0}, missed_{0}, before_run_{0}, after_exit_{0};
  std::atomic<uint64_t> own_view_places_{0}, own_mountinfo_reads_{0};
  LatencySamples delays_;
};

}  // namespace lim::daemon
