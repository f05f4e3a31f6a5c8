// FailureHook: lim-verifier's --on-failure CMD (docs/attestation.md "lim-verifier"). When an
// agent turns failed, the command is run once — posix_spawn, no shell, stdin /dev/null —
// with the failure findings' one-line forms as its arguments (at most kMaxArgs) and in its
// environment: LIM_AGENT, LIM_REASON (the first failure's reason code), LIM_FINDING (its
// line), on top of the verifier's own environment. A run longer than the timeout is killed
// (SIGKILL) and logged; so are a command that cannot start and a non-zero exit.
//
// Threading: Notify is called from any thread and never waits for the command: runs are
// queued (at most kMaxQueued; beyond that a notification is dropped and logged) and one
// thread of the hook runs them in order. The destructor waits for the running command
// (bounded by the timeout) and drops what is still queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lim::verifier {

class FailureHook {
 public:
  static constexpr size_t kMaxArgs = 20;
  static constexpr size_t kMaxQueued = 256;

  // command: an executable's path (no shell, no splitting); log: one call per line.
  FailureHook(std::string command, std::chrono::milliseconds timeout, std::function<void(const std::string&)> log);
  ~FailureHook();
  FailureHook(const FailureHook&) = delete;
  FailureHook& operator=(const FailureHook&) = delete;

  // lines: the failure findings' FormatFinding lines, first the one named in LIM_FINDING.
  void Notify(const std::string& agent, const std::string& reason, std::vector<std::string> lines);

 private:
  struct Run {
    std::string agent, reason;
    std::vector<std::string> lines;
  };
  void Loop();
  void Execute(const Run& run);

  const std::string command_;
  const std::chrono::milliseconds timeout_;
  std::function<void(const std::string&)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Run> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace lim::verifier
