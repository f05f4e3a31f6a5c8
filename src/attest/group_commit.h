// GroupCommit: the rounds that reach a store while it is writing others go into its next
// transaction together (LevelDB's writer queue). A round's write is small; what costs on
// PostgreSQL is the transaction around it: a round trip per statement and a WAL flush per
// COMMIT (one verifier at 2,000 agents was bound by that latency, not by CPU). Under light
// load every batch is one round and nothing waits; as load grows the batches grow with it.
// The SQLite store does not use it: its COMMIT flushes nothing (WAL, synchronous=NORMAL) and
// the hand-over to a leader thread cost more than the commits saved.
//
// Each round still gets its own outcome: a round that is refused on its own (no such agent,
// a stale fence: nothing of it was written) does not affect the others in its batch, and a
// batch whose transaction fails for any other reason is rolled back and each of its rounds
// written again in a transaction of its own, so one round's error is never another's. A
// round returns only once the transaction holding it has committed.
//
// Threading: Write is called from any number of threads; the first round in the queue writes
// the batch (the commit function runs on one thread at a time) while the others wait.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attest/round.h"
#include "attest/verdict.h"
#include "base/status.h"

namespace lim::attest {

enum class AgentStatus;

// One round's write (Store::WriteRound). Pointers to the caller's values, which outlive the
// write; the commit sets *new_version when the round is written.
struct RoundWrite {
  const std::string* agent = nullptr;
  std::optional<int64_t> fence;
  const AgentState* state = nullptr;
  AgentStatus status{};
  int64_t time = 0;
  const std::vector<Finding>* findings = nullptr;
  std::optional<int64_t> version;
  int64_t* new_version = nullptr;
};

// True for the errors of one round that leave nothing of it written and the transaction
// usable: kNotFound (no such agent) and kMismatch (stale fence or row version).
bool RoundRefusedAlone(const Status& s);

class GroupCommit {
 public:
  // Writes rounds (sorted by agent: two verifiers' batches lock rows in one order) in one
  // transaction and sets (*results)[i] for each; called with at least one round.
  using CommitFn = std::function<void(const std::vector<const RoundWrite*>& rounds, std::vector<Status>* results)>;

  explicit GroupCommit(size_t max_batch = 64) : max_batch_(max_batch == 0 ? 1 : max_batch) {}

  Status Write(const RoundWrite& round, const CommitFn& commit);

  struct Stats {
    uint64_t rounds = 0;
    uint64_t batches = 0;
    uint64_t largest = 0;
  };
  Stats stats() const;

 private:
  struct Writer {
    const RoundWrite* round;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };

  const size_t max_batch_;
  mutable std::mutex mu_;
  std::deque<Writer*> queue_;
  Stats stats_;
};

}  // namespace lim::attest
