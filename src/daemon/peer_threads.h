// PeerThreads: is an event's thread id one of a trusted peer process's threads (the TPM
// server, docs/limd.md "The TPM server") — answered without a syscall for the events of
// everyone else, which are nearly all events.
//
// Why that is sound. The peer's thread set is read once from /proc/<peer>/task. It grows
// only by a clone(CLONE_THREAD) of one of its own threads, and for every clone the kernel
// writes a PERF_RECORD_FORK (pid, tid) into the ring of a cpu-wide perf event with
// attr.task set — in copy_process(), before wake_up_new_task(): before the new thread runs
// an instruction, so before any fanotify event of it exists. limd reads an event, then
// loads each ring's data_head: when every head is where limd last consumed it, no task was
// created anywhere since, the known set is complete and a tid outside it is not the peer's.
// A moved head: the new records are read (memory only, no syscall) and the peer's new
// threads added. The kernel drops a record without moving the head when the ring is full:
// a ring that could have filled since it was last consumed, or a PERF_RECORD_LOST, makes
// limd read /proc/<peer>/task again. A "yes" is always confirmed with one faccessat() in the
// peer's task directory, opened at start: that directory belongs to the peer's struct pid,
// so once the peer has exited no lookup in it succeeds, and a recycled pid or tid can never
// be taken for the peer's (the peer's events are rare; this costs nothing overall).
// A forked child of the peer is another process and is not the peer (as before).
//
// Without perf events (not root/CAP_PERFMON, perf disabled) every answer is the faccessat.
// CPUs brought online after start have no ring: a clone there is caught only by the next
// rescan (documented; this VM's CPUs are fixed).
//
// Threading: Contains() is thread-safe; its common "no" takes no lock.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace lim::daemon {

class PeerThreads {
 public:
  // Watches `peer` (a thread-group leader's pid). Never fails: *mode says how it answers
  // ("perf rings on N CPUs" or "faccessat per event: <why>"). Returns nullptr only when the
  // peer's /proc/<peer>/task cannot be opened (it is gone): nothing of it can be exempt.
  static std::unique_ptr<PeerThreads> Open(pid_t peer, std::string* mode);
  ~PeerThreads();
  PeerThreads(const PeerThreads&) = delete;
  PeerThreads& operator=(const PeerThreads&) = delete;

  // `tid` is a live thread of the peer (its main thread included).
  bool Contains(pid_t tid);

  pid_t pid() const { return peer_; }
  bool uses_perf() const { return !rings_.empty(); }
  uint64_t rescans() const { return rescans_.load(); }  // /proc/<peer>/task read again
  uint64_t lookups() const { return lookups_.load(); }  // faccessat calls

 private:
  struct Ring {
    int fd = -1;
    void* base = nullptr;
    size_t size = 0;                 // mapped bytes, metadata page included
    std::atomic<uint64_t> seen{0};   // data_head when last consumed (= data_tail)
  };
  PeerThreads(pid_t peer, int task_dir) : peer_(peer), task_dir_(task_dir) {}
  bool OpenRings(std::string* why);
  bool Quiet() const;
  void CatchUpLocked();
  void RescanLocked();
  bool Alive(pid_t tid);

  const pid_t peer_;
  const int task_dir_;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::mutex mu_;
  std::set<pid_t> threads_;              // under mu_: known threads other than peer_
  std::atomic<size_t> extra_threads_{0};  // threads_.size(), for the lock-free "no"
  std::atomic<uint64_t> rescans_{0};
  std::atomic<uint64_t> lookups_{0};
};

}  // namespace lim::daemon
