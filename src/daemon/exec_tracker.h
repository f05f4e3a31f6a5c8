// ExecTracker: which exec-opens belong to one execve, per thread, in
// event order. An execve opens the binary, then maybe its #! interpreter or its ELF
// interpreter, all while the thread stays blocked in the same syscall (the same
// /proc/<tid>/syscall line): the first exec-open is BPRM_CHECK, the ELF interpreter after an
// ELF binary is the kernel's MMAP_CHECK. And the kernel raises FAN_OPEN_PERM right after the
// FAN_OPEN_EXEC_PERM of the same open (fsnotify_open_perm): that OPEN_PERM reuses the
// exec-open's syscall state instead of reading /proc/<tid>/syscall again.
//
// Threading: the fanotify reader thread only; ExecFile::kind is written by whoever learns
// the file's kind (the reader's fast path or a worker) and read by the next exec-open.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "daemon/measurer.h"
#include "daemon/proc_context.h"

namespace lim::daemon {

class ExecTracker {
 public:
  using Clock = std::chrono::steady_clock;
  // One exec-open's file: its kind (FileKindCache: 0 unknown, script, ELF) once known.
  struct ExecFile {
    std::atomic<int> kind{0};
  };
  struct ExecOpen {
    std::shared_ptr<ExecFile> prev;  // the previous exec-open of this execve; null: the first
    std::shared_ptr<ExecFile> self;
  };
  // The kept threads are forgotten all at once past this many (a bound, not a cache size).
  static constexpr size_t kMaxThreads = 4096;

  // An exec open of key by tid, whose syscall state is sc (blocked: the execve).
  // open_follows: the event was an OPEN_EXEC_PERM alone, and the kernel raises the
  // OPEN_PERM of the same open next (FollowingOpen); false when one event carried both.
  ExecOpen OnExecOpen(pid_t tid, const SyscallState& sc, const InodeKey& key, Clock::time_point at,
                      bool open_follows = true);
  // Whether this OPEN_PERM of key is the one that follows tid's last OPEN_EXEC_PERM (only
  // the very next event of the thread, the same inode, within a second: a killed thread's
  // tid is not handed to a new one that soon); then *sc is that event's syscall state.
  bool FollowingOpen(pid_t tid, const InodeKey& key, Clock::time_point now, SyscallState* sc);
  // An open that is no part of an execve: the thread's execve (if any) is over.
  void OnOtherOpen(pid_t tid) { threads_.erase(tid); }
  size_t threads() const { return threads_.size(); }

 private:
  struct Thread {
    std::string line;  // the execve's /proc/<tid>/syscall line
    std::shared_ptr<ExecFile> last;
    bool open_follows = false;
    InodeKey open_key;
    SyscallState open_sc;
    Clock::time_point open_at;
  };
  std::map<pid_t, Thread> threads_;
};

}  // namespace lim::daemon
