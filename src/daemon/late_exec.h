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
// Threading: OnExecEnter()/OnExec() from the trace consumer's thread only; the counters
// and DelayPercentile() from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/exec_origin.h"
#include "daemon/latency_samples.h"
#include "daemon/measurer.h"

namespace lim::daemon {

// CLOCK_MONOTONIC in nanoseconds (the clock of TraceRecord::time_ns).
uint64_t MonotonicNs();

// The superblocks limd marked, and when (CLOCK_MONOTONIC ns; 0: before anything ran).
// Thread-safe.
class MarkedDevs {
 public:
  void Add(uint64_t dev, uint64_t at_ns);
  std::optional<uint64_t> MarkedAt(uint64_t dev) const;

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> at_;
};

// The ima-buf text of a `lim-late-exec` entry (docs/limd.md).
std::string LateExecBuffer(const std::string& digest, const std::string& path, pid_t pid, uint64_t dev, uint64_t ino,
                           uint64_t delay_us, const std::string& error);

struct LateExecHooks {
  // A superblock limd never marks whatever its mount (the root filesystem without
  // --allow-root-fs): no mountinfo read for execs from it.
  std::function<bool(uint64_t dev)> never_marked;
  // The superblock now under dev still carries limd's mark (FanotifyDaemon::SuperblockMarked):
  // MarkedDevs may name a superblock that is gone and whose number a new one took.
  std::function<bool(uint64_t dev)> still_marked;
  // The superblock dev of pid's binary is one limd marks (type, watch roots; mountinfo:
  // the text of pid's /proc/<pid>/mountinfo): fstype out.
  std::function<bool(const std::string& mountinfo, pid_t pid, uint64_t dev, std::string* fstype)> qualifies;
  // Files of this filesystem type may be read by the late path (not FUSE: a read asks its
  // server, which may never answer — a FUSE exec that beat its mark gets a gap entry).
  std::function<bool(const std::string& fstype)> may_read;
  // Discovery should look at pid's namespace now.
  std::function<void(pid_t pid)> poke;
  std::function<void(const std::string&)> log;
};

class LateExecs {
 public:
  LateExecs(Measurer* measurer, MeasurementList* list, const MarkedDevs* marked, pid_t self, LateExecHooks hooks)
      : measurer_(measurer), list_(list), marked_(marked), self_(self), hooks_(std::move(hooks)) {}

  // sys_enter_execve / sys_enter_execveat of thread tid at time_ns.
  void OnExecEnter(pid_t tid, uint64_t time_ns);
  // sched_process_exec: the exec by old_pid (the calling thread) completed as pid, at
  // time_ns; filename as the process named it.
  void OnExec(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t time_ns);

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
  uint64_t before_run() const { return before_run_.load(); }  // measured by MeasureBeforeRun
  uint64_t late() const { return late_.load(); }            // lim-late-exec entries with a digest
  uint64_t unmeasured() const { return unmeasured_.load(); }  // lim-late-exec gap entries
  // Execs whose process was gone before limd could look at its executable (superblock
  // unknown: no entry).
  uint64_t missed() const { return missed_.load(); }
  // Delay from the exec to its late entry (µs), over the last 4,096 late entries.
  uint64_t DelayPercentile(double p) const { return delays_.Percentile(p); }

 private:
  Measurer* measurer_;
  MeasurementList* list_;
  const MarkedDevs* marked_;
  pid_t self_;
  LateExecHooks hooks_;
  std::map<pid_t, uint64_t> enter_;  // tid → sys_enter_execve time (trace thread only)
  std::map<pid_t, std::pair<uint64_t, uint64_t>> late_seen_;  // pid → binary late-measured (trace thread)
  std::mutex pre_mu_;
  std::map<pid_t, std::pair<uint64_t, uint64_t>> pre_;  // tid → (dev, ino) measured before it ran
  std::atomic<uint64_t> execs_{0}, late_{0}, unmeasured_{0}, missed_{0}, before_run_{0};
  LatencySamples delays_;
};

}  // namespace lim::daemon
