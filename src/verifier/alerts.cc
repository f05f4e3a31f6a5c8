#include "verifier/alerts.h"

#include <syslog.h>

#include <utility>

namespace lim::verifier {

Result<int> SyslogFacility(const std::string& name) {
  static const std::pair<const char*, int> kFacilities[] = {
      {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV},
      {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
      {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
  if (name == "none") return -1;
  for (const auto& [n, f] : kFacilities) {
    if (name == n) return f;
  }
  return Status::InvalidArgument("syslog facility \"" + name +
                                 "\": expected none, daemon, user, auth, authpriv or local0-local7");
}

int AlertSeverity(attest::AgentStatus to) {
  switch (to) {
    case attest::AgentStatus::kFailed:
      return LOG_ALERT;
    case attest::AgentStatus::kUnreachable:
      return LOG_WARNING;
    default:
      return LOG_NOTICE;
  }
}

std::string AlertLine(const StateChange& c) {
  std::string line = "lim-verifier: agent=" + c.agent + " state=" + attest::AgentStatusName(c.to) +
                     " previous=" + attest::AgentStatusName(c.from) + " cause=" + c.cause;
  for (const auto& f : c.findings) {
    if (!f.failure()) continue;
    line += std::string(" reason=") + attest::ReasonName(f.reason) + " finding=" + attest::FormatFinding(c.agent, f);
    break;
  }
  return line;
}

SyslogAlerts::SyslogAlerts(int facility, Sink sink, std::function<void(const std::string&)> log)
    : facility_(facility), sink_(std::move(sink)), log_(std::move(log)) {
  if (!sink_) {
    // LOG_NDELAY: the socket is opened now, before a sandbox or a chroot could hide /dev/log.
    ::openlog("lim-verifier", LOG_PID | LOG_NDELAY, facility_);
    own_syslog_ = true;
    sink_ = [](int priority, const std::string& line) { ::syslog(priority, "%s", line.c_str()); };
  }
  thread_ = std::thread([this] { Loop(); });
}

SyslogAlerts::~SyslogAlerts() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (own_syslog_) ::closelog();
}

void SyslogAlerts::Notify(const StateChange& c) {
  std::string line = AlertLine(c);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (queue_.size() < kMaxQueued) {
      queue_.emplace_back(facility_ | AlertSeverity(c.to), std::move(line));
      cv_.notify_one();
      return;
    }
  }
  ++dropped_;
  log_("lim-verifier: syslog alerts: queue full (" + std::to_string(kMaxQueued) + "), dropped: " + line);
}

void SyslogAlerts::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ with nothing left: every queued change was sent
    auto [priority, line] = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    sink_(priority, line);
    ++sent_;
    lk.lock();
  }
}

}  // namespace lim::verifier
