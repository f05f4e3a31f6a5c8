// Push mode of lim-agent: no listening port on the host. The agent connects to the verifier
// (one persistent mutual-TLS connection, resumed with a session ticket when it drops) and
// per round asks for an evidence request (fresh nonce, PCRs, list offset) and posts the
// evidence on the same connection. Enrollment first: the identity goes up, the verifier's
// MakeCredential challenge comes back and the activated credential goes up. The verifier
// knows the agent by its client certificate (CN = agent id). Paths and bodies in
// docs/agent.md:
//   POST /v1/push/enroll    Identity            → 200 CredentialChallenge | 204 (enrolled)
//   POST /v1/push/activate  CredentialResponse  → 200/204
//   POST /v1/push/request   {}                  → 200 EvidenceRequest
//   POST /v1/push/evidence  Evidence            → 200/204 (any JSON body: the verdict)
// Threading: a PushClient runs on the caller's thread; Stop() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "agent/agent.h"
#include "base/status.h"
#include "net/https_client.h"

namespace lim::agent {

struct PushOptions {
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds max_backoff{60000};
};

class PushClient {
 public:
  PushClient(Agent* agent, net::HttpsClient* client, PushOptions options) : agent_(agent), client_(client), options_(options) {}

  Status Enroll();
  // One round: request → evidence → post. Returns the verifier's reply body.
  Result<std::string> Round();
  // Enroll, then rounds every interval until Stop(); failures back off (doubling, up to
  // max_backoff) and are reported through log. Returns when stopped.
  void Run(const std::function<void(const std::string&)>& log);
  void Stop() { stop_ = true; }
  uint64_t rounds() const { return rounds_; }

 private:
  Result<std::string> Post(const std::string& path, const std::string& body, bool allow_no_content);
  bool SleepFor(std::chrono::milliseconds d);

  Agent* agent_;
  net::HttpsClient* client_;
  PushOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rounds_{0};
};

}  // namespace lim::agent
