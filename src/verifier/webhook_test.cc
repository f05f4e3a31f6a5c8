#include "verifier/webhook.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "net/https_server.h"
#include "net/test_certs_test_util.h"

namespace lim::verifier {
namespace {

using nlohmann::json;

std::vector<attest::Finding> Failure() {
  attest::Finding f;
  f.reason = attest::Reason::kBootComponent;
  f.entry = 93;
  f.pcr = 4;
  f.bank = "sha256";
  f.tmpl = "EV_EFI_BOOT_SERVICES_APPLICATION";
  f.digest = "sha256:209b";
  f.reference = "policy boot.kernel: sha256:219b";
  attest::Finding notice;
  notice.reason = attest::Reason::kReboot;
  return {notice, f};
}

StateChange Change(const std::string& agent) {
  StateChange c;
  c.agent = agent;
  c.from = attest::AgentStatus::kAttested;
  c.to = attest::AgentStatus::kFailed;
  c.findings = Failure();
  c.time = 1700000000;
  c.cause = "round";
  return c;
}

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = net::testing::MakeTestPki();
    ASSERT_TRUE(pki_.error.empty()) << pki_.error;
  }
  // A receiver on loopback (mutual TLS: it wants the verifier's certificate); answers with
  // the given statuses in turn, then 200.
  void StartReceiver(std::vector<int> statuses) {
    auto tls = net::MakeServerTls({pki_.server_cert, pki_.server_key, pki_.ca});
    ASSERT_TRUE(tls.ok()) << tls.status().message();
    auto s = net::HttpsServer::Create(*tls, {});
    ASSERT_TRUE(s.ok());
    server_ = std::move(s).value();
    server_->Route("POST", "/hooks/lim", [this, statuses](const net::HttpRequest& r) {
      std::lock_guard<std::mutex> lk(mu_);
      size_t n = bodies_.size();
      bodies_.push_back(r.body);
      net::HttpResponse resp;
      resp.status = n < statuses.size() ? statuses[n] : 200;
      resp.body = "{}";
      return resp;
    });
    ASSERT_TRUE(server_->Start().ok());
  }
  WebhookOptions Options(uint16_t port) {
    WebhookOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(port) + "/hooks/lim";
    o.tls = {pki_.client_cert, pki_.client_key, pki_.ca};
    o.initial_backoff = std::chrono::milliseconds(50);
    o.timeout = std::chrono::milliseconds(3000);
    return o;
  }
  std::function<void(const std::string&)> Logger() {
    return [this](const std::string& l) {
      std::lock_guard<std::mutex> lk(mu_);
      log_.push_back(l);
    };
  }
  bool WaitFor(const std::function<bool()>& done, int ms = 10000) {
    for (int i = 0; i < ms / 10; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  net::testing::TestPki pki_;
  std::unique_ptr<net::HttpsServer> server_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> log_;
};

TEST_F(WebhookTest, PostsTheVerdictJsonToAnHttpsReceiver) {
  StartReceiver({});
  auto w = Webhook::Create(Options(server_->port()), Logger());
  ASSERT_TRUE(w.ok()) << w.status().message();
  (*w)->Notify(Change("web1"));
  ASSERT_TRUE(WaitFor([&] { return (*w)->stats().delivered == 1; }));
  std::lock_guard<std::mutex> lk(mu_);
  ASSERT_EQ(bodies_.size(), 1u);
  json j = json::parse(bodies_[0]);
  EXPECT_EQ(j["agent"], "web1");
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["previous"], "attested");
  EXPECT_EQ(j["cause"], "round");
  EXPECT_EQ(j["time"], 1700000000);
  ASSERT_EQ(j["findings"].size(), 1u);  // the reboot notice is not a failure
  const json& f = j["findings"][0];
  EXPECT_EQ(f["reason"], "boot-component");
  EXPECT_EQ(f["entry"], 93);
  EXPECT_EQ(f["pcr"], 4);
  EXPECT_EQ(f["template"], "EV_EFI_BOOT_SERVICES_APPLICATION");
  EXPECT_EQ(f["reference"], "policy boot.kernel: sha256:219b");
  EXPECT_EQ(f["line"].get<std::string>().rfind("lim-verifier: agent=web1 reason=boot-component entry=93", 0), 0u);
}

TEST_F(WebhookTest, RetriesWithBackoffUntilTheReceiverTakesIt) {
  StartReceiver({503, 500});
  auto w = Webhook::Create(Options(server_->port()), Logger());
  ASSERT_TRUE(w.ok());
  auto t0 = std::chrono::steady_clock::now();
  (*w)->Notify(Change("web1"));
  ASSERT_TRUE(WaitFor([&] { return (*w)->stats().delivered == 1; }));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(150));  // 50 ms, then 100 ms
  EXPECT_EQ((*w)->stats().attempts, 3u);
  std::lock_guard<std::mutex> lk(mu_);
  EXPECT_EQ(bodies_.size(), 3u);
  EXPECT_EQ(bodies_[0], bodies_[2]);
}

TEST_F(WebhookTest, AnUnreachableReceiverNeverBlocksNotifyAndTheQueueIsBounded) {
  // A port nobody listens on: every attempt is refused; the first verdict waits in a long
  // backoff while the others queue up to the bound.
  StartReceiver({});
  uint16_t port = server_->port();
  server_->Stop();
  WebhookOptions o = Options(port);
  o.initial_backoff = std::chrono::milliseconds(60000);
  o.timeout = std::chrono::milliseconds(1000);  // an attempt in flight at destruction ends within it
  auto w = Webhook::Create(o, Logger());
  ASSERT_TRUE(w.ok());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 400; ++i) (*w)->Notify(Change("web" + std::to_string(i)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  ASSERT_TRUE(WaitFor([&] { return (*w)->stats().attempts >= 1; }));
  EXPECT_GE((*w)->stats().dropped, 400u - Webhook::kMaxQueued - 1);
  EXPECT_EQ((*w)->stats().dropped_full, (*w)->stats().dropped);  // none ran out of attempts yet
  {
    std::lock_guard<std::mutex> lk(mu_);
    ASSERT_FALSE(log_.empty());
    EXPECT_NE(log_[0].find("queue full"), std::string::npos) << log_[0];
  }
  auto t1 = std::chrono::steady_clock::now();
  w->reset();  // interrupts the backoff (or waits for the attempt in flight: one timeout)
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(2500));
}

TEST_F(WebhookTest, GivesUpAfterMaxAttemptsAndLogs) {
  StartReceiver({500, 500, 500});
  WebhookOptions o = Options(server_->port());
  o.max_attempts = 3;
  auto w = Webhook::Create(o, Logger());
  ASSERT_TRUE(w.ok());
  (*w)->Notify(Change("web1"));
  ASSERT_TRUE(WaitFor([&] { return (*w)->stats().dropped == 1; }));
  std::lock_guard<std::mutex> lk(mu_);
  EXPECT_EQ(bodies_.size(), 3u);
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_.back().find("not delivered after 3 attempts: HTTP 500"), std::string::npos) << log_.back();
}

TEST(WebhookUrlTest, OnlyHttpsWithAHostAndAGoodPort) {
  auto u = ParseWebhookUrl("https://hooks.example:8443/a/b?c=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "hooks.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/a/b?c=1");
  auto d = ParseWebhookUrl("https://[::1]");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "::1");
  EXPECT_EQ(d->port, 443);
  EXPECT_EQ(d->target, "/");
  EXPECT_FALSE(ParseWebhookUrl("http://127.0.0.1/hook").ok());
  EXPECT_FALSE(ParseWebhookUrl("https://user@host/").ok());
  EXPECT_FALSE(ParseWebhookUrl("https://host:0/").ok());
  EXPECT_FALSE(ParseWebhookUrl("https://host:99999/").ok());
  EXPECT_FALSE(ParseWebhookUrl("https:///x").ok());
}

}  // namespace
}  // namespace lim::verifier
