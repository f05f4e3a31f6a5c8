// Alerts: what lim-verifier says when an agent's state changes (enrolling → attested,
// attested ⇄ unreachable, any → failed, failed → attested by an operator's ack; docs/verifier.md
// "Alerts"). A StateChange goes to the --webhook (webhook.h, JSON) and to syslog
// (SyslogAlerts here, --alert-syslog FACILITY), one message per change, never one per round.
//
// SyslogAlerts: one line per change through openlog(3)/syslog(3) (ident "lim-verifier",
// LOG_PID, the configured facility), severity by the new state: failed → LOG_ALERT,
// unreachable → LOG_WARNING, attested/enrolling → LOG_NOTICE. syslog(3) can block (a
// datagram socket whose reader is behind), so Notify only queues: one thread of its own
// sends, at most kMaxQueued changes wait; beyond that the newest change is dropped,
// counted (dropped()) and logged. A sink can replace syslog(3) (tests).
//
// Threading: Notify and the counters from any thread; sending on the alerts' own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "attest/store.h"
#include "attest/verdict.h"
#include "base/status.h"

namespace lim::verifier {

struct StateChange {
  std::string agent;
  attest::AgentStatus from = attest::AgentStatus::kEnrolling;
  attest::AgentStatus to = attest::AgentStatus::kEnrolling;
  std::vector<attest::Finding> findings;  // of the round that changed it (none for an ack)
  int64_t time = 0;                       // unix seconds
  std::string cause;                      // "round", "ack", "silence" (a push agent stopped posting)
};

// "daemon", "user", "auth", "authpriv", "local0" … "local7" → LOG_*; "none" → -1 (off);
// anything else an error naming the value.
Result<int> SyslogFacility(const std::string& name);
// The severity (LOG_ALERT, LOG_WARNING, LOG_NOTICE) of a change to this state.
int AlertSeverity(attest::AgentStatus to);
// "lim-verifier: agent=ID state=NEW previous=OLD cause=C[ reason=R finding=LINE]": the
// first failure finding's reason and its one-line form (attest::FormatFinding).
std::string AlertLine(const StateChange& c);

class SyslogAlerts {
 public:
  static constexpr size_t kMaxQueued = 1024;
  // priority = facility | severity, as syslog(3) takes it.
  using Sink = std::function<void(int priority, const std::string& line)>;

  // sink empty: openlog(3) now, syslog(3) for each change, closelog(3) at the end.
  SyslogAlerts(int facility, Sink sink, std::function<void(const std::string&)> log);
  ~SyslogAlerts();  // sends what is queued, then stops
  SyslogAlerts(const SyslogAlerts&) = delete;
  SyslogAlerts& operator=(const SyslogAlerts&) = delete;

  void Notify(const StateChange& c);
  uint64_t sent() const { return sent_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  void Loop();

  const int facility_;
  Sink sink_;
  bool own_syslog_ = false;
  std::function<void(const std::string&)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<int, std::string>> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> sent_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace lim::verifier
