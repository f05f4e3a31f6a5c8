// ExecTraceBpf: an exec's completion (sched_process_exec), reported to TraceEvents by a
// raw-tracepoint BPF program (bpf/exec_trace.bpf.c) instead of by a perf tracepoint event.
//
// Why: perf's tracepoint events can be silenced by anyone. Every tracepoint-type BPF
// program attached to a tracepoint (SEC("tracepoint/..."): bcc's TRACEPOINT_PROBE, many
// libbpf tools, a hostile root process) returns a vote on whether perf may record that
// event, and a 0 hides it from every perf user (kernel: perf_trace_run_bpf_submit).
// Measured here: with a program returning 0 attached to sched_process_exec, `perf stat -e
// sched:sched_process_exec` counted 0 execs for 6, and limd read through perf found no late
// exec and no memfd exec. A raw tracepoint calls its programs directly, outside that vote,
// and the program writes with bpf_perf_event_output() into limd's own BPF-output events
// (TraceEvents::AddBpfOutput), in the tracepoint's own record layout, so the consumer
// (LateExecs, the memfd path) is the same for both sources.
//
// Not the exec's start (sys_enter_execve): a raw tracepoint there runs for every system
// call on the host, measured at +0.13 µs per call (docs/performance.md). It stays a perf
// event; a silenced start leaves the exec's start unknown, which LateExecs treats as "after
// any mark placed since limd started" for a running process (a late entry too many), while
// for a process already gone it picks the binary from the mappings of the 20 ms before the
// completion (docs/limd.md says what that can miss).
//
// Needs what InodeOpenCounts needs (a kernel with BTF, the `bpf` system call, CAP_BPF +
// CAP_PERFMON or CAP_SYS_ADMIN), raw tracepoints and bpf_probe_read_kernel_str (5.5) and no
// confidentiality lockdown;
// Load() says why when it cannot be had, and limd falls back to the perf tracepoint.
//
// Threading: Load() and Attach() from one thread; the program stays attached until the
// object is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "daemon/trace_events.h"

struct bpf_object;
struct bpf_link;

namespace lim::daemon {

class ExecTraceBpf {
 public:
  using CpuFds = std::vector<std::pair<int, int>>;  // {cpu, BPF-output event fd}

  // Loads the program (not attached yet) for records in sched/sched_process_exec's layout,
  // which is checked (filename, pid and old_pid where the program writes them).
  // only_fd_paths: completions only of execs through a descriptor (a name under /dev/fd/ or
  // /proc/: memfds, fexecve), for limd's memfd path.
  static Result<std::unique_ptr<ExecTraceBpf>> Load(const TraceFormat& exec, bool only_fd_paths = false);
  // The format the program's records decode with (TraceEvents::AddBpfOutput): exec's, plus
  // the fields the tracepoint lacks — the file that runs, as the kernel had it at the exec
  // (bprm->file: the binary, or a script's interpreter; what /proc/<pid>/exe names):
  // lim_dev_major, lim_dev_minor (its superblock's device) and lim_ino (0:0 and 0 when
  // the program could not read them), and lim_flags (quiet(), below). LateExecs decides from them without opening
  // /proc/<pid>/exe, and picks a gone process's binary mapping by them.
  static TraceFormat RecordFormat(TraceFormat exec);
  ~ExecTraceBpf();
  ExecTraceBpf(const ExecTraceBpf&) = delete;
  ExecTraceBpf& operator=(const ExecTraceBpf&) = delete;

  // Points the program at the outputs and attaches it; from then on every exec on the
  // host (or every one through a descriptor) is written. quiet_out: BPF-output events that
  // wake nobody (TraceEvents::Wake::kWithOthers, the same rings), for the completions of
  // execs fanotify saw (below); none: every completion goes to exec_out.
  Status Attach(const CpuFds& exec_out, const CpuFds& quiet_out = {});

  // Quiet completions. An exec from a superblock that has a permission-event listener now
  // (super_block.s_fsnotify_info's count of watched objects, kernel 6.10 on) and whose
  // device is one limd marked (MarkDev) was seen by fanotify in all likelihood: its record
  // goes to quiet_out, read with the next pass — another record's wake-up or the consumer's
  // poll timeout (TraceEvents::PassEvery) — instead of waking the consumer once per exec on
  // the host. Nothing is decided here: LateExecs still decides every record (by its start,
  // the device's mark time and whether the mark still stands); a wrong guess only moves
  // when a record is read, by at most that timeout. The guess is wrong for an exec that
  // began before limd's mark and completed after it (read up to that timeout later: the
  // late path then finds the process as it does one gone) and for a device whose number a
  // new superblock took that another tool listens on. (The f_mode bits an open takes from
  // its superblock's watchers, FMODE_NONOTIFY_PERM, would tell the state at the exec's
  // open, but an exec's file shows FMODE_NONOTIFY_PERM alone on a watched superblock here,
  // kernel 6.18.) Records say which way they went (lim_flags bit 0: quiet). False for the
  // memfd path's instance and before 6.10: every completion wakes.
  bool quiet() const { return quiet_; }
  // A superblock of device dev (user-space st_dev) was marked (true) or is no longer (false).
  Status MarkDev(uint64_t dev, bool marked);

  // Whether a kernel release ("6.18.44-…") has the superblock's watcher counts (6.10 on).
  static bool HasSuperblockWatcherCounts(const std::string& release);

 private:
  explicit ExecTraceBpf(bpf_object* obj) : obj_(obj) {}
  static std::string KernelRelease();
  bpf_object* obj_;
  bpf_link* link_ = nullptr;
  bool quiet_ = false;
};

}  // namespace lim::daemon
