// LeaseKeeper: which agents this verifier process may attest, on a Store that other
// verifiers may share (docs/fleet.md). A thread of its own claims and renews the leases
// every interval/2 with a time to live of 1.5 intervals, so the rounds (which may wait on a
// slow agent for longer than an interval) never delay a renewal, and a killed verifier's
// agents are free 1.5 intervals after its last renewal and taken by another within the
// next half interval: within two intervals. A round captures Fence(agent) when it starts
// and writes its verdict with Store::RecordFencedRound(fence): if the lease moved
// meanwhile (this process paused past its lease), the write is refused.
//
// On an unshared store (SQLite) there is no thread: every agent is owned, fence 0.
//
// Threading: Owns/Fence from any thread; Start/Stop from the owner's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
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

  bool Owns(const std::string& agent) const;
  // The fence to write this agent's round with; nullopt: not ours.
  std::optional<int64_t> Fence(const std::string& agent) const;
  const std::string& owner() const { return owner_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

  // One claim now (the thread calls it; tests too).
  Status Refresh();

 private:
  void Run();

  Store& store_;
  std::string owner_;
  std::chrono::milliseconds period_, ttl_;
  std::function<void(const std::vector<std::string>&)> acquired_;
  std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int64_t> leases_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace lim::attest
