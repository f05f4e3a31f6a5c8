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

#include <memory>
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
  // the program could not read them). LateExecs decides from them without opening
  // /proc/<pid>/exe, and picks a gone process's binary mapping by them.
  static TraceFormat RecordFormat(TraceFormat exec);
  ~ExecTraceBpf();
  ExecTraceBpf(const ExecTraceBpf&) = delete;
  ExecTraceBpf& operator=(const ExecTraceBpf&) = delete;

  // Points the program at the outputs and attaches it; from then on every exec on the
  // host (or every one through a descriptor) is written.
  Status Attach(const CpuFds& exec_out);

 private:
  explicit ExecTraceBpf(bpf_object* obj) : obj_(obj) {}
  bpf_object* obj_;
  bpf_link* link_ = nullptr;
};

}  // namespace lim::daemon
