#include "attest/group_commit.h"

#include <algorithm>
#include <exception>
#include <string>

namespace lim::attest {

bool RoundRefusedAlone(const Status& s) {
  return s.code() == StatusCode::kNotFound || s.code() == StatusCode::kMismatch;
}

Status GroupCommit::Write(const RoundWrite& round, const CommitFn& commit) {
  Writer w;
  w.round = &round;
  std::unique_lock l(mu_);
  queue_.push_back(&w);
  while (!w.done && queue_.front() != &w) w.cv.wait(l);
  if (w.done) return w.status;

  // This round leads: it writes what is queued now (itself first), while rounds that arrive
  // meanwhile queue behind for the next batch. Only this thread pops, so the first n of the
  // queue stay this batch's whatever is appended; they are popped even if the write throws.
  const size_t n = std::min(queue_.size(), max_batch_);
  std::vector<Writer*> batch;
  std::vector<Status> results;
  Status thrown;
  try {
    batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    l.unlock();
    // Stable: were one agent ever to have two rounds in a batch, they keep their order.
    std::stable_sort(batch.begin(), batch.end(),
                     [](const Writer* a, const Writer* b) { return *a->round->agent < *b->round->agent; });
    std::vector<const RoundWrite*> rounds;
    rounds.reserve(n);
    for (const Writer* s : batch) rounds.push_back(s->round);
    results.assign(n, Status::Internal("round not written"));
    commit(rounds, &results);
  } catch (const std::exception& e) {  // out of memory: the rounds waiting on it must wake
    thrown = Status::Internal(std::string("writing rounds: ") + e.what());
  } catch (...) {
    thrown = Status::Internal("writing rounds: unknown exception");
  }
  if (!l.owns_lock()) l.lock();
  if (thrown.ok() && results.size() == n && batch.size() == n) {
    for (size_t i = 0; i < n; ++i) batch[i]->status = std::move(results[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    Writer* done = queue_.front();
    queue_.pop_front();
    if (!thrown.ok()) done->status = thrown;
    done->done = true;
    if (done != &w) done->cv.notify_one();
  }
  stats_.rounds += n;
  stats_.batches += 1;
  stats_.largest = std::max<uint64_t>(stats_.largest, n);
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return w.status;
}

GroupCommit::Stats GroupCommit::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

}  // namespace lim::attest
