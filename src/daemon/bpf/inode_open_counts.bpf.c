// The kernel half of InodeOpenCounts (../inode_open_counts.h): reads the open counts of the
// inode behind one of the caller's file descriptors. It is never attached to anything: limd
// runs it on demand with BPF_PROG_TEST_RUN, which executes a raw-tracepoint program in the
// calling thread (so "current" is limd's thread and the descriptor table is limd's own),
// under rcu_read_lock. It reads, it never writes kernel memory.
//
// CO-RE: the structs below name only the fields read; preserve_access_index makes libbpf
// relocate each access against the running kernel's BTF (/sys/kernel/btf/vmlinux), so one
// object serves every kernel with BTF. A field a kernel lacks fails the load, not a read.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef struct {
  int counter;
} atomic_t;

struct inode {
  atomic_t i_readcount;   // O_RDONLY opens (do_dentry_open: i_readcount_inc)
  atomic_t i_writecount;  // write opens; negative while writes are denied (an executing binary)
  unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
  struct inode *f_inode;
} __attribute__((preserve_access_index));

struct fdtable {
  unsigned int max_fds;
  struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
  struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
  struct files_struct *files;
} __attribute__((preserve_access_index));

// Shared with inode_open_counts.cc (same layout, checked there by size).
struct lim_open_counts {
  __s32 readers;
  __s32 writers;
  __u64 ino;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lim_open_counts);
} lim_open_counts_out SEC(".maps");

// Return values (the test run's retval): 0 read; otherwise why not.
#define LIM_OC_NO_SLOT 1
#define LIM_OC_BAD_FD 2
#define LIM_OC_NO_FILE 3

SEC("raw_tp")
int lim_read_open_counts(struct bpf_raw_tracepoint_args *ctx) {
  __u32 key = 0;
  struct lim_open_counts *out = bpf_map_lookup_elem(&lim_open_counts_out, &key);
  if (!out) return LIM_OC_NO_SLOT;
  __s64 fd = (__s64)ctx->args[0];
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  if (fd < 0 || fd >= (__s64)max_fds) return LIM_OC_BAD_FD;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *file = 0;
  if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) != 0 || !file) return LIM_OC_NO_FILE;
  struct inode *inode = BPF_CORE_READ(file, f_inode);
  if (!inode) return LIM_OC_NO_FILE;
  out->readers = BPF_CORE_READ(inode, i_readcount.counter);
  out->writers = BPF_CORE_READ(inode, i_writecount.counter);
  out->ino = BPF_CORE_READ(inode, i_ino);
  return 0;
}

// bpf_probe_read_kernel is a GPL-only helper.
char LICENSE[] SEC("license") = "GPL";
