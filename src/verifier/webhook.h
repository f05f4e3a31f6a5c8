// Webhook: lim-verifier's --webhook URL (docs/verifier.md "Alerts"). When an agent's state
// changes (alerts.h: turns failed, unreachable, attested again…), the change — agent, status,
// previous status, cause, time, every failure finding with its fields and its one-line
// form — is POSTed as JSON to an https:// URL over lim's TLS stack (TLS 1.3,
// the receiver's certificate checked against a CA file and the URL's host; the verifier's
// certificate is offered when the receiver asks for one). No plain http: a verdict names
// hosts, paths and digests, and an unauthenticated receiver could be anyone.
//
// Never blocks the attestation loop: Notify takes the webhook's mutex only to queue (the
// delivery thread never holds it across network I/O) and one thread delivers in order. At
// most kMaxQueued changes wait; beyond that the NEW change is dropped (the queued ones keep
// their order), logged and counted (stats().dropped_full, lim_verifier_webhook_dropped_total
// {why="queue-full"}). A dead receiver holds each change for at most max_attempts timeouts
// plus the backoffs (5 × 10 s + 7.5 s by default) before the next one is tried. A delivery that
// fails (connection, TLS, timeout, a non-2xx answer) is retried with exponential backoff
// (initial_backoff, doubling, at most max_attempts tries), then dropped and logged. The
// destructor stops promptly: it interrupts a backoff wait, lets an in-flight request end
// (bounded by its timeout) and drops what is queued.
//
// Threading: Notify from any thread; everything else on the webhook's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "attest/verdict.h"
#include "verifier/alerts.h"
#include "base/status.h"
#include "net/tls.h"

namespace lim::verifier {

struct WebhookUrl {
  std::string host;
  uint16_t port = 443;
  std::string target = "/";  // path and query
};
// https://HOST[:PORT][/PATH]; anything else (http://, user info, a bad port) is an error
// naming the URL.
Result<WebhookUrl> ParseWebhookUrl(const std::string& url);

struct WebhookOptions {
  std::string url;
  net::TlsConfig tls;  // ca_file checks the receiver; cert/key offered when asked
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds initial_backoff{500};
  int max_attempts = 5;
};

struct WebhookStats {
  uint64_t delivered = 0;
  uint64_t attempts = 0;
  uint64_t dropped = 0;       // queue full, or out of attempts
  uint64_t dropped_full = 0;  // of which: the queue was full
};

// The JSON body for one state change.
std::string VerdictJson(const StateChange& change);

class Webhook {
 public:
  static constexpr size_t kMaxQueued = 256;

  static Result<std::unique_ptr<Webhook>> Create(WebhookOptions options, std::function<void(const std::string&)> log);
  ~Webhook();
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  // Queues the POST of one state change; returns at once.
  void Notify(const StateChange& change);
  WebhookStats stats() const;

 private:
  Webhook() = default;
  void Loop();

  WebhookOptions options_;
  WebhookUrl url_;
  std::shared_ptr<net::TlsContext> tls_;
  std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;  // agent, body
  WebhookStats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace lim::verifier
