#include "agent/push.h"

#include <thread>

#include "attest/evidence_json.h"

namespace lim::agent {

Result<std::string> PushClient::Post(const std::string& path, const std::string& body, bool allow_no_content) {
  LIM_ASSIGN_OR_RETURN(net::HttpResponse r, client_->Request("POST", path, body));
  if (r.status == 204 && allow_no_content) return std::string();
  if (r.status != 200) {
    return Status::Unavailable("verifier " + path + ": HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 512));
  }
  return std::move(r.body);
}

Status PushClient::Enroll() {
  LIM_ASSIGN_OR_RETURN(attest::Identity id, agent_->Identity());
  LIM_ASSIGN_OR_RETURN(std::string reply, Post("/v1/push/enroll", attest::IdentityToJson(id), true));
  if (reply.empty()) return Status::Ok();  // already enrolled
  LIM_ASSIGN_OR_RETURN(attest::CredentialChallenge c, attest::CredentialChallengeFromJson(reply));
  LIM_ASSIGN_OR_RETURN(attest::CredentialResponse cred, agent_->Activate(c));
  LIM_ASSIGN_OR_RETURN(std::string done, Post("/v1/push/activate", attest::CredentialResponseToJson(cred), true));
  (void)done;
  return Status::Ok();
}

Result<std::string> PushClient::Round() {
  LIM_ASSIGN_OR_RETURN(std::string req_text, Post("/v1/push/request", "{}", false));
  LIM_ASSIGN_OR_RETURN(attest::EvidenceRequest req, attest::EvidenceRequestFromJson(req_text));
  LIM_ASSIGN_OR_RETURN(attest::Evidence e, agent_->Gather(req));
  LIM_ASSIGN_OR_RETURN(std::string verdict, Post("/v1/push/evidence", attest::EvidenceToJson(e), true));
  ++rounds_;
  return verdict;
}

bool PushClient::SleepFor(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(50)));
  }
  return !stop_;
}

void PushClient::Run(const std::function<void(const std::string&)>& log) {
  auto backoff = options_.interval;
  bool enrolled = false;
  while (!stop_) {
    Status st = enrolled ? Status::Ok() : Enroll();
    if (st.ok() && !enrolled) {
      enrolled = true;
      log("enrolled with the verifier");
    }
    if (st.ok()) {
      auto r = Round();
      st = r.status();
    }
    if (st.ok()) {
      backoff = options_.interval;
      if (!SleepFor(options_.interval)) break;
      continue;
    }
    log("push: " + st.message() + " (retry in " + std::to_string(backoff.count()) + " ms)");
    if (!SleepFor(backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace lim::agent
