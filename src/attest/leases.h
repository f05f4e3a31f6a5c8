// LeaseKeeper: which agents this verifier process may attest, on a Store that other
// verifiers may share (docs/fleet.md). A thread of its own claims and renews the leases
// every interval/2 with a time to live of 1.5 intervals, so the rounds (which may wait on a
// slow agent for longer than an interval) never delay a renewal, and a killed verifier's
// agents are free 1.5 intervals after its last renewal and taken by another within the
// next half interval: within two intervals.
//
// Balancing: each claim takes free leases only up to the fair share (ceil(agents / live
// verifiers), Store::ClaimLeases). A keeper holding more than its share (another verifier
// joined) drains the surplus: those agents start no new round here, and each is released
// at the first claim after its round in flight ended — at a round boundary, never
// mid-round — for the verifier below its share to take.
//
// A push agent's lease claimed by balancing becomes "taken" at its first push here (Chosen):
// draining it would only make it take the lease back at its next push (fence + 1, a row
// read again).
//
// Rounds: BeginRound(agent) gives the fence to write the verdict with
// (Store::RecordFencedRound: refused if the lease moved meanwhile, this process paused past
// its lease) and pins the lease until EndRound. Take(agent) takes one lease at once
// whoever holds it (a push agent connected here); such a lease is not drained by balancing
// (the agent would only take it back), it counts in the share (other agents are drained).
//
// A failed claim (the store unreachable) drops every lease (they expire in the store too),
// logs that rounds stop, and is retried with backoff (doubling from interval/2 up to two
// intervals); the first claim that succeeds again logs how long the store was away and how
// many rounds were not run meanwhile.
//
// On an unshared store (SQLite) there is no thread: every agent is owned, fence 0.
//
// Threading: BeginRound/EndRound/Take/Owns/Fence from any thread; Start/Stop from the
// owner's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attest/store.h"
#include "base/status.h"

namespace lim::attest {

class LeaseKeeper {
 public:
  // owner: this process's name in the lease rows; empty: "HOST/PID/RANDOM".
  // acquired: called (on the keeper's thread, no lock held) with agents newly leased.
  // log: one line per lease error or change of ownership count.
  LeaseKeeper(Store& store, std::string owner, std::chrono::milliseconds interval,
              std::function<void(const std::vector<std::string>&)> acquired,
              std::function<void(const std::string&)> log);
  ~LeaseKeeper();  // Stop()

  // The first claim (synchronously), then the renewing thread on a shared store.
  Status Start();
  // Ends the thread and releases this owner's leases (another verifier takes them at once).
  void Stop();

  // Ours and not draining: a round may start.
  bool Owns(const std::string& agent) const;
  // The fence to write this agent's round with; nullopt: not ours (or draining).
  std::optional<int64_t> Fence(const std::string& agent) const;
  // Fence(agent) for a push agent that posts here: it chose this verifier, so balancing
  // never drains its lease (as after Take). Draining already: nullopt (the caller Takes it
  // back; the drain may be releasing it at this moment).
  std::optional<int64_t> Chosen(const std::string& agent);
  // Fence(agent), and the lease is kept (not released by balancing) until EndRound(agent).
  std::optional<int64_t> BeginRound(const std::string& agent);
  void EndRound(const std::string& agent);
  // The agent's lease now, whoever holds it (Store::TakeLease); its fence.
  Result<int64_t> Take(const std::string& agent);
  const std::string& owner() const { return owner_; }
  std::chrono::milliseconds ttl() const { return ttl_; }
  // Leases held that may start rounds (draining ones excluded), and the last fair share.
  size_t owned() const;
  size_t fair_share() const;

  // One claim now (the thread calls it; tests too).
  Status Refresh();

 private:
  void Run();

  Store& store_;
  std::string owner_;
  std::chrono::milliseconds interval_, period_, ttl_;
  std::function<void(const std::vector<std::string>&)> acquired_;
  std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int64_t> leases_;
  std::set<std::string> draining_;          // held, no new round, released when idle
  std::map<std::string, int> in_flight_;    // rounds begun and not ended, per agent
  std::set<std::string> taken_;             // by Take: the agent chose us, never drained
  size_t fair_share_ = 0;
  // The current outage of the store (failed claims in a row), for the backoff and report.
  int failures_ = 0;
  std::chrono::steady_clock::time_point outage_start_{};
  size_t outage_agents_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace lim::attest
