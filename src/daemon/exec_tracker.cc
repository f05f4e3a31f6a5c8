#include "daemon/exec_tracker.h"

namespace lim::daemon {

ExecTracker::ExecOpen ExecTracker::OnExecOpen(pid_t tid, const SyscallState& sc, const InodeKey& key,
                                              Clock::time_point at, bool open_follows) {
  ExecOpen out;
  Thread& t = threads_[tid];
  if (sc.blocked && t.last && t.line == sc.line) out.prev = t.last;
  out.self = std::make_shared<ExecFile>();
  t.line = sc.line;
  t.last = out.self;
  t.open_follows = open_follows && sc.blocked;
  t.open_key = key;
  t.open_sc = sc;
  t.open_at = at;
  if (threads_.size() > kMaxThreads) threads_.clear();
  return out;
}

bool ExecTracker::FollowingOpen(pid_t tid, const InodeKey& key, Clock::time_point now, SyscallState* sc) {
  auto it = threads_.find(tid);
  if (it == threads_.end() || !it->second.open_follows) return false;
  Thread& t = it->second;
  t.open_follows = false;  // only the very next event of the thread
  if (!(t.open_key == key) || now - t.open_at > std::chrono::seconds(1)) return false;
  *sc = t.open_sc;
  return true;
}

}  // namespace lim::daemon
