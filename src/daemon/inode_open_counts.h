// InodeOpenCounts: how many hold an inode open right now, for reading and for writing, read
// from the kernel's own counters (inode->i_readcount, inode->i_writecount) through one of
// limd's file descriptors.
//
// Why: limd counts opens from the events it answers, and some events do not say how many
// happened — fanotify merges a thread's queued notifications (5 opens and 5 closes arrive
// as one event of mask 0x30, FanotifyGroupRoot.OneThreadsOpensAndClosesMergeIntoOneNotification).
// Every user-space source of the count is incomplete: /proc/*/fd and maps miss files in
// flight in SCM_RIGHTS messages, io_uring fixed files and the kernel's own holders; a write
// lease probe is granted only when the count is zero, and taking one makes other
// processes' opens of the file wait or fail (EWOULDBLOCK) for as long as it is held. The
// kernel's counters have none of these gaps.
//
// How: a BPF program (bpf/inode_open_counts.bpf.c) that is never attached to any event.
// Read() runs it once with BPF_PROG_TEST_RUN, in the calling thread, with the descriptor as
// its argument; it follows that thread's descriptor table to the inode and copies the two
// counters. Nothing runs in any other process: the program and its one-slot map stay
// loaded for limd's lifetime, attached to nothing. The object is embedded in limd and
// relocated by libbpf against the running kernel's BTF (CO-RE): it runs on kernels from
// 5.10 (the test run of raw-tracepoint programs) with /sys/kernel/btf/vmlinux and without
// confidentiality lockdown (which refuses kernel reads to BPF). Load() checks it once on a
// file of its own before it is trusted.
//
// The counts are the kernel's exactly: readers counts O_RDONLY opens (an O_RDWR open counts
// as a writer only), limd's own descriptors included; writers is negative while writes are
// denied (a running binary on kernels that still deny them). A descriptor closed in its
// process still counts while a mapping, an SCM_RIGHTS message or an io_uring table holds
// the file. They are a snapshot: a concurrent open or close may change them at once after.
//
// Needs: a kernel with BTF, and CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN, which limd has);
// the `bpf` system call allowed (dist/limd.service). Load() says why when it cannot be had,
// and callers keep a way that works without it.
//
// Threading: Read() from any thread (the program's one output slot is under a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "base/status.h"

struct bpf_object;

namespace lim::daemon {

class InodeOpenCounts {
 public:
  struct Counts {
    int32_t readers = 0;  // i_readcount
    int32_t writers = 0;  // i_writecount
    uint64_t ino = 0;     // the inode's i_ino (what fstat gives on most filesystems; not
                          // on overlayfs without xino, whose st_ino is synthesized)
  };

  // Loads the program and checks it on a memfd of its own (the inode it reads must be that
  // file's). Unavailable, with libbpf's and the kernel's reason, when this kernel or this
  // process cannot run it.
  static Result<std::unique_ptr<InodeOpenCounts>> Load();
  ~InodeOpenCounts();
  InodeOpenCounts(const InodeOpenCounts&) = delete;
  InodeOpenCounts& operator=(const InodeOpenCounts&) = delete;

  // The counts of the inode fd refers to, now. fd must be open in this process.
  Result<Counts> Read(int fd);

 private:
  InodeOpenCounts(bpf_object* obj, int prog_fd, int map_fd) : obj_(obj), prog_fd_(prog_fd), map_fd_(map_fd) {}
  bpf_object* obj_;
  int prog_fd_;
  int map_fd_;
  std::mutex mu_;  // the output slot; a leaf lock
};

}  // namespace lim::daemon
