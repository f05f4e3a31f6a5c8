// The kernel half of ExecTraceBpf (../exec_trace_bpf.h): an exec's completion, seen by a
// raw-tracepoint program and written into limd's perf rings in sched_process_exec's own
// record layout, so that TraceEvents decodes it as it decodes perf's.
//
// Why not the perf tracepoints themselves: every tracepoint-type BPF program attached to a
// tracepoint (SEC("tracepoint/..."), what bcc's TRACEPOINT_PROBE and many libbpf tools use)
// votes on whether perf may record that tracepoint's event, for every perf user; one that
// returns 0 hides the event from all of them, limd included. Raw-tracepoint programs are
// called by the tracepoint directly, outside that vote, and bpf_perf_event_output() writes
// into limd's own events.
//
// CO-RE: the structs below name only the fields read (preserve_access_index: libbpf
// relocates each access against the running kernel's BTF).
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
  int pid;
} __attribute__((preserve_access_index));

typedef struct {
  long counter;
} atomic_long_t;

// Since 6.10: how many objects (the superblock, its mounts, its inodes) a group of each
// priority watches — [1] is FSNOTIFY_PRIO_CONTENT: permission-event groups, pre-content
// ones included (fsnotify_sb_has_priority_watchers).
struct fsnotify_sb_info {
  atomic_long_t watched_objects[3];
} __attribute__((preserve_access_index));

struct super_block {
  __u32 s_dev;  // dev_t: major << 20 | minor
  struct fsnotify_sb_info *s_fsnotify_info;
} __attribute__((preserve_access_index));

struct inode {
  struct super_block *i_sb;
  unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
  struct inode *f_inode;
} __attribute__((preserve_access_index));

struct linux_binprm {
  struct file *file;
  const char *filename;
} __attribute__((preserve_access_index));

// Set by the loader before the load (.rodata, one struct so its layout is fixed).
const volatile struct {
  __u16 exec_type;  // sched_process_exec's id: its records' common_type
  __u16 pad;
  // Completions only of execs through a descriptor (a name under /dev/fd/ or /proc/: a
  // memfd, fexecve), as the perf filter `filename ~ "/dev/fd/*" || filename ~ "/proc/*"`.
  __u32 only_fd_paths;
  // Quiet completions (lim_exec_quiet below) may be written; 0: every completion wakes.
  __u32 quiet;
} lim_consts = {0, 0, 0, 0};

// Per CPU: limd's BPF-output perf events (the loader puts one fd per online CPU).
struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} lim_exec_out SEC(".maps");

// Completions that need no prompt look: the exec's superblock has a permission-event
// listener now, and limd has marked a superblock of that device (lim_marked_devs). Written to
// outputs that wake nobody (same rings, read at the next pass: another record's wake-up or
// the consumer's short poll timeout), so an exec fanotify saw costs no wake-up of limd's
// consumer. Every record is still decided in user space; this only says when it is read.
struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} lim_exec_quiet SEC(".maps");

// Devices (kernel dev_t) of superblocks limd marked; kept by limd (ExecTraceBpf::MarkDev).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, __u8);
} lim_marked_devs SEC(".maps");

// Record flags (lim_flags): the record went to a quiet output.
#define LIM_FLAG_QUIET 1

// sched_process_exec's layout (format file, checked by the loader): common fields (8),
// __data_loc filename at 8, pid at 12, old_pid at 16. Then fields the tracepoint does not
// have, which the loader adds to the format it decodes with (ExecTraceBpf::RecordFormat):
// the file that runs — its superblock's device (major, minor) and inode number, as the
// kernel had them at the exec (bprm->file: the binary, or a script's interpreter, what
// /proc/<pid>/exe names) — and the name's bytes from 40 (its __data_loc says where).
#define LIM_NAME_AT 40
#define LIM_NAME_MAX 4096  // PATH_MAX, NUL included
struct exec_record {
  __u16 common_type;
  __u8 common_flags;
  __u8 common_preempt_count;
  __s32 common_pid;
  __u32 filename_loc;  // length << 16 | offset
  __s32 pid;
  __s32 old_pid;
  __u32 lim_dev_major;
  __u32 lim_dev_minor;
  __u32 lim_flags;
  __u64 lim_ino;
  char name[LIM_NAME_MAX];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct exec_record);
} lim_exec_scratch SEC(".maps");  // too large for the 512-byte stack

// sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
SEC("raw_tp/sched_process_exec")
int lim_exec_done(struct bpf_raw_tracepoint_args *ctx) {
  __u32 zero = 0;
  struct exec_record *r = bpf_map_lookup_elem(&lim_exec_scratch, &zero);
  if (!r) return 0;
  struct task_struct *p = (struct task_struct *)ctx->args[0];
  struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
  r->common_type = lim_consts.exec_type;
  r->common_flags = 0;
  r->common_preempt_count = 0;
  r->common_pid = BPF_CORE_READ(p, pid);
  r->pid = r->common_pid;
  r->old_pid = (__s32)ctx->args[1];
  // 0:0 and inode 0 when unreadable: no superblock has device 0:0, so the consumer then
  // finds the binary as the perf path does (/proc/<pid>/exe, the mappings).
  __u32 dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
  r->lim_dev_major = dev >> 20;
  r->lim_dev_minor = dev & 0xfffff;
  r->lim_flags = 0;
  r->lim_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
  const char *name = BPF_CORE_READ(bprm, filename);
  long n = bpf_probe_read_kernel_str(r->name, sizeof r->name, name);
  if (n < 1) {  // unreadable: an empty name, as the tracepoint would never give
    r->name[0] = 0;
    n = 1;
  }
  if (n > LIM_NAME_MAX) n = LIM_NAME_MAX;
  if (lim_consts.only_fd_paths) {
    const char *s = r->name;
    int dev_fd = s[0] == '/' && s[1] == 'd' && s[2] == 'e' && s[3] == 'v' && s[4] == '/' && s[5] == 'f' &&
                 s[6] == 'd' && s[7] == '/';
    int proc = s[0] == '/' && s[1] == 'p' && s[2] == 'r' && s[3] == 'o' && s[4] == 'c' && s[5] == '/';
    if (!dev_fd && !proc) return 0;
  }
  r->filename_loc = ((__u32)n << 16) | LIM_NAME_AT;
  __u64 size = LIM_NAME_AT + (__u64)n;
  if (size > sizeof *r) size = sizeof *r;  // the verifier's bound; never true
  if (!lim_consts.only_fd_paths && lim_consts.quiet && bpf_core_field_exists(struct super_block, s_fsnotify_info)) {
    // A superblock under a recycled device number that nobody marked yet has no listener:
    // its execs, the late ones this path exists for, still wake the consumer at once.
    long listeners = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_fsnotify_info, watched_objects[1].counter);
    if (listeners > 0 && dev != 0 && bpf_map_lookup_elem(&lim_marked_devs, &dev)) {
      r->lim_flags = LIM_FLAG_QUIET;
      if (bpf_perf_event_output(ctx, &lim_exec_quiet, BPF_F_CURRENT_CPU, r, size) == 0) return 0;
      r->lim_flags = 0;  // no quiet output on this CPU: the waking one
    }
  }
  bpf_perf_event_output(ctx, &lim_exec_out, BPF_F_CURRENT_CPU, r, size);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
