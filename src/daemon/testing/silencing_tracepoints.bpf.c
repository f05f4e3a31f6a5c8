// Test helper: what another tool can attach — tracepoint-type BPF programs on the exec
// tracepoints that return 0, which tells perf not to record the event, for every perf user
// (ExecTraceBpf's header says why that matters). Used through silencer_test_util.h.
//
// Only execs by descendants of one process (lim_silence_ancestor, set before the load: the
// test's pid) are silenced, so that tests running beside the one that attaches it keep
// their records.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
  int tgid;
  struct task_struct *real_parent;
} __attribute__((preserve_access_index));

const volatile int lim_silence_ancestor = 0;

// 1: perf may record this event (it is not ours to silence); 0: it may not.
static int vote(void) {
  struct task_struct *t = (struct task_struct *)bpf_get_current_task();
  for (int i = 0; i < 16 && t; i++) {
    if (BPF_CORE_READ(t, tgid) == lim_silence_ancestor) return 0;
    t = BPF_CORE_READ(t, real_parent);
  }
  return 1;
}

SEC("tracepoint/sched/sched_process_exec")
int lim_test_silence_exec(void *ctx) { return vote(); }

SEC("tracepoint/syscalls/sys_enter_execve")
int lim_test_silence_execve(void *ctx) { return vote(); }

char LICENSE[] SEC("license") = "GPL";
