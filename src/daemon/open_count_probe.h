// OpenCountProbe: asks the kernel whether an inode limd counts as open really is, and sets
// the counts to zero when nobody holds it — the repair for closes fanotify merged.
//
// Why: fanotify merges a queued non-permission event with an identical new one (same
// thread, same file, fanotify_merge), so a thread that holds a file twice and closes both
// leaves one close for two opens: the count stays one too high, the inode never looks idle
// and its Measurer state is never evicted. Any user could grow root's limd that way (issue
// 18 item 12). No fanotify flag turns merging off, so limd checks instead.
//
// How: the Measurer reports inodes its eviction keeps only because of their counts. For
// each, a thread of limd's opens the inode by its learned file handle (ReaderCloseGroup),
// O_RDONLY, and reads the kernel's counters through that fd (InodeOpenCounts, a BPF
// program run on demand): nobody else holds the file when i_writecount is 0 and
// i_readcount is 1 — limd's own fd alone. Where BPF cannot be had (no BTF, no privilege),
// it asks the same question with a write lease instead: the kernel grants F_SETLEASE F_WRLCK
// under exactly that condition (fs/locks.c, check_conflicting_open), and the lease is
// released at once (F_SETSIG SIGURG: a lease break in that window signals limd with a
// signal ignored by default, never SIGIO's termination). Neither reads both counters at
// one instant: check_conflicting_open reads i_writecount, then i_readcount, the program
// the other way round, and openers take no lock against either. The argument below never
// needed one instant: every open is in exactly one counter (read-only opens in
// i_readcount, the others in i_writecount), and it holds for each counter on its own, with
// P the instant that counter was read. A reading that fails is asked again with the lease.
//
// Exactness (never a count below the truth): the kernel raises a reader's or writer's count
// before it queues the open's permission event (do_dentry_open) and queues a close event
// before it lowers the count (__fput). limd notes every open while the opener still waits
// for its answer. So when the counters read (1, 0) at time P, every open limd noted before it
// has been closed, and its close is queued before P. The probe's own close comes after P
// in the reader-close group; when the reader reaches it, every earlier reader close has
// been applied. If no open or close was noted on the inode between the snapshot taken
// before the probe's open and that moment, every count left is a lost (merged) close, and
// both counts are set to zero (Measurer::ResetCounts). Writer closes still queued in the
// content group after that only meet a zero count (counts never go below zero) and come
// before any later open there. A reset of writers ends the writer episode as the last
// writer's close would (ApplyClose in the inode's turn), and the probe removes the
// inode's pre-content ignore mark first (a reader after the reset must be seen).
//
// Cost: at most Measurer::kSuspectsPerEvict probes per new inode, only while the table is
// over its bound; a probe is an open by handle, one permission event limd answers at once
// (its own), one bpf() call (or two fcntl()s) and a close. The lease has a side effect the
// counters do not: another process's O_NONBLOCK open of the same file between the two
// fcntl()s fails with EWOULDBLOCK, and a blocking one waits for them.
//
// Threading: Suspect() from any thread (non-blocking: the Measurer calls it under its table
// lock); OwnClose() on the fanotify reader thread (the reader-close drain); the probes run
// on a thread of their own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "daemon/env.h"
#include "daemon/measurer.h"
#include "daemon/fanotify_group.h"
#include "daemon/inode_open_counts.h"

namespace lim::daemon {

class OpenCountProbe {
 public:
  // before_close(fd, key, snapshot): run with the probe's fd after a granted lease, before
  // the fd is closed (FanotifyDaemon removes a pre-content ignore mark there).
  using BeforeClose = std::function<void(int fd, const InodeKey& key, const Measurer::CountsSnapshot& snap)>;
  // counts: the kernel's counters; nullptr probes with a write lease.
  OpenCountProbe(Measurer* measurer, ReaderCloses* closes, Env* env, InodeOpenCounts* counts,
                 BeforeClose before_close);
  ~OpenCountProbe();  // stops the thread; the Measurer no longer reports to it
  OpenCountProbe(const OpenCountProbe&) = delete;
  OpenCountProbe& operator=(const OpenCountProbe&) = delete;

  // Starts the probing thread and registers with the Measurer.
  void Start();
  // An inode kept only for its counts (Measurer's suspect callback).
  void Suspect(const InodeKey& key);
  // A close by one of limd's own threads, read from the reader-close group.
  void OwnClose(const InodeKey& key, pid_t tid);

  uint64_t probes() const { return probes_.load(); }
  uint64_t probes_by_kernel_counts() const { return by_counts_.load(); }
  uint64_t resets() const { return resets_.load(); }

  static constexpr size_t kMaxQueued = 1024;  // suspects waiting; more are dropped (seen again later)
  static constexpr size_t kMaxPending = 256;  // granted probes whose close is not read yet
  static constexpr std::chrono::seconds kPendingTimeout{10};

 private:
  struct Pending {
    Measurer::CountsSnapshot snap;
    FileFacts facts;  // at the probe: the last writer's close compares them
    std::chrono::steady_clock::time_point at;
  };
  struct Apply {
    InodeKey key;
    CloseNote note;
    FileFacts facts;
  };
  void Run();
  void ProbeOne(const InodeKey& key);
  // O_RDONLY fd of key through its handle; -1 when it cannot be had or is not that inode.
  int OpenByHandle(const InodeKey& key);

  Measurer* measurer_;
  ReaderCloses* closes_;
  Env* env_;
  InodeOpenCounts* counts_;
  BeforeClose before_close_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::mutex mu_;  // a leaf lock: nothing is called while it is held
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<InodeKey> queue_;
  std::unordered_set<InodeKey, InodeKeyHash> queued_;  // in queue_ or being probed or pending
  std::unordered_map<InodeKey, Pending, InodeKeyHash> pending_;
  std::deque<Apply> applies_;
  std::atomic<uint64_t> probes_{0}, by_counts_{0}, resets_{0};
};

}  // namespace lim::daemon
