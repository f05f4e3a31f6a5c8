// lim-verifier end to end on loopback: a private swtpm whose PCR 10 carries a simulated
// host's measurement list (attest_test_util.h), the lim-agent binary serving that list in
// pull mode, a stand-in limd control socket (liveness), the lim-verifier binary with a
// SQLite store, and the operators' REST API driven over mutual TLS — enrollment, clean
// rounds with a policy learnt from the list, then tampering the verifier must see.
#include "verifier/verifier.h"
#include "verifier/web_auth.h"
#include "verifier/web_html.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "agent/agent_test_util.h"
#include "attest/attest_test_util.h"
#include "attest/evidence_json.h"
#include "attest/pg_test_server.h"
#include "attest/runtime_policy.h"
#include "base/file.h"
#include "base/hex.h"
#include "crypto/public_key.h"
#include "control/control_client.h"
#include "control/status_report.h"
#include "daemon/limd_test_util.h"
#include "ima/list_writer.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/test_certs_test_util.h"
#include "tests/testing.h"
#include "tcg/event_log.h"
#include "tpm/key.h"
#include "tpm/swtpm.h"
#include "tpm/swtpm_test_util.h"
#include "verifier/prom_text_test_util.h"

namespace lim::verifier {
namespace {

using nlohmann::json;

std::string BesideTest(const std::string& rel) {
  std::string self = agent::testing::AgentBinary();
  return self.substr(0, self.rfind('/')) + "/" + rel;
}

// limd's control socket as lim-agent reads it: one status document per connection.
// Whether pred() holds within ms (asked every 20 ms).
template <typename Pred>
bool Eventually(Pred pred, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class FakeLimd {
 public:
  explicit FakeLimd(const std::string& path) {
    auto addr = control::ControlSocketAddress(path);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!addr.ok() || fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) != 0 ||
        ::listen(fd_, 8) != 0) {
      ADD_FAILURE() << "fake limd socket " << path;
      return;
    }
    thread_ = std::thread([this] {
      control::StatusReport r;
      r.running = true;
      r.pid = 4242;
      std::string doc = r.ToJson().dump();
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        (void)!::write(c, doc.data(), doc.size());
        ::close(c);
      }
    });
  }
  ~FakeLimd() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class VerifierE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = net::testing::MakeTestPki();
    ASSERT_EQ(pki_.error, "");
    dir_ = lim::testing::MakeTempDir();
    // PCR 10 back to zero: each test's simulated host starts a fresh boot.
    attest::testing::RebootSwtpm();
    host_.Boot();
    host_.AppendBootAggregate();
    for (int i = 0; i < 20; ++i) host_.AppendFile("/usr/bin/tool" + std::to_string(i), "content " + std::to_string(i));
    WriteList();
    limd_ = std::make_unique<FakeLimd>(dir_ + "/limd.sock");
    ASSERT_EQ(agent_.Start({"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id",
                            "agent-1", "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", "0", "--tpm",
                            tpm::testing::SwtpmTctiForTests(), "--ak-dir", dir_ + "/ak", "--list", dir_ + "/list",
                            "--event-log", "none", "--control-socket", dir_ + "/limd.sock", "--config", "/dev/null"}),
              "");
    // --on-failure: appends what it was given to hook.out, one line per run.
    ASSERT_TRUE(WriteFileBytes(dir_ + "/hook",
                               AsBytes("#!/bin/sh\nprintf '%s|%s|%s|%s\\n' \"$LIM_AGENT\" \"$LIM_REASON\" \"$LIM_FINDING\" "
                                       "\"$1\" >> " + dir_ + "/hook.out\n"),
                               0700)
                    .ok());
    // --webhook: a receiver on loopback keeps the verdict bodies it is sent.
    auto rtls = net::MakeServerTls({pki_.server_cert, pki_.server_key, pki_.ca});
    ASSERT_TRUE(rtls.ok());
    auto receiver = net::HttpsServer::Create(*rtls, {});
    ASSERT_TRUE(receiver.ok());
    receiver_ = std::move(receiver).value();
    receiver_->Route("POST", "/hook", [this](const net::HttpRequest& r) {
      std::lock_guard<std::mutex> lk(received_mu_);
      received_.push_back(r.body);
      return net::HttpResponse{200, "application/json", "{}"};
    });
    ASSERT_TRUE(receiver_->Start().ok());
    StartVerifier({});
  }
  // lim-verifier on this test's store (interval 300 ms, --on-failure hook, --webhook to the
  // receiver) with more flags
  // (FLAG VALUE pairs; a default flag given again takes the new value), and the operator's
  // client to it.
  void StartVerifier(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--store", "sqlite:" + dir_ + "/verifier.db", "--listen", "127.0.0.1:0", "--cert",
                                  pki_.server_cert, "--key", pki_.server_key, "--ca", pki_.ca, "--interval-ms", "300",
                                  "--on-failure", dir_ + "/hook", "--webhook",
                                  "https://127.0.0.1:" + std::to_string(receiver_->port()) + "/hook"};
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {  // a flag given twice is an error: replace
      auto at = std::find(args.begin(), args.end(), extra[i]);
      if (at != args.end()) {
        at[1] = extra[i + 1];
      } else {
        args.insert(args.end(), {extra[i], extra[i + 1]});
      }
    }
    ASSERT_EQ(verifier_.Start(args), "");
    auto tls = net::MakeClientTls({pki_.client_cert, pki_.client_key, pki_.ca});
    ASSERT_TRUE(tls.ok()) << tls.status().message();
    net::ClientOptions o;
    o.port = verifier_.port();
    auto c = net::HttpsClient::Create(*tls, o);
    ASSERT_TRUE(c.ok());
    op_ = std::move(*c);
  }
  // lim-agent pushing as agent-1 to 127.0.0.1:port every 200 ms (its AK in dir_/ak-push,
  // the host's list in dir_/list).
  std::vector<std::string> PushAgentArgs(uint16_t port) const {
    return {"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", "agent-1", "--push",
            "127.0.0.1:" + std::to_string(port), "--push-interval-ms", "200", "--tpm", tpm::testing::SwtpmTctiForTests(),
            "--ak-dir", dir_ + "/ak-push", "--list", dir_ + "/list", "--event-log", "none", "--control-socket",
            dir_ + "/limd.sock", "--config", "/dev/null"};
  }
  void RestartVerifier(const std::vector<std::string>& extra) {
    verifier_.Stop();
    StartVerifier(extra);
  }
  void TearDown() override {
    verifier_.Stop();
    agent_.Stop();
    limd_.reset();
    std::filesystem::remove_all(dir_);
    std::filesystem::remove_all(pki_.dir);
  }

  void WriteList() { ASSERT_TRUE(WriteFileBytes(dir_ + "/list", host_.list()).ok()); }

  // An operator request to the verifier: {status, body as JSON (null when not JSON)}.
  std::pair<int, json> Api(const std::string& method, const std::string& target, const json& body = nullptr) {
    return ApiOn(*op_, method, target, body);
  }
  std::pair<int, json> ApiOn(net::HttpsClient& op, const std::string& method, const std::string& target,
                             const json& body = nullptr) {
    auto r = op.Request(method, target, body.is_null() ? std::string() : body.dump());
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  json Agent(const std::string& id) { return Api("GET", "/v1/agent?id=" + id).second; }

  // Polls the agent every poll_ms until pred holds (or timeout): the last document seen.
  template <typename Pred>
  json WaitFor(const std::string& id, Pred pred, int timeout_ms = 20000, int poll_ms = 50) {
    json a;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      a = Agent(id);
      if (a.is_object() && pred(a)) return a;
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    } while (std::chrono::steady_clock::now() < deadline);
    return a;
  }

  // An operator's client of the verifier at port (the fixture's: op_).
  std::unique_ptr<net::HttpsClient> OperatorOf(uint16_t port) {
    auto tls = net::MakeClientTls({pki_.client_cert, pki_.client_key, pki_.ca});
    EXPECT_TRUE(tls.ok()) << tls.status().message();
    if (!tls.ok()) return nullptr;
    net::ClientOptions o;
    o.port = port;
    auto c = net::HttpsClient::Create(*tls, o);
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::move(*c) : nullptr;
  }

  void AddLearntPolicy(const std::string& name, int paths = 20, net::HttpsClient* op = nullptr) {
    auto learnt = attest::LearnPolicy(host_.list());
    ASSERT_TRUE(learnt.ok()) << learnt.status().message();
    auto [code, body] = ApiOn(op ? *op : *op_, "POST", "/v1/policies", {{"name", name}, {"policy", json::parse(learnt->ToNativeJson())}});
    ASSERT_EQ(code, 200) << body.dump();
    EXPECT_EQ(body["paths"], paths) << body.dump();  // the 20 tools (boot_aggregate is checked apart)
  }

  static bool HasFinding(const json& a, const std::string& reason, const std::string& needle) {
    for (const auto& f : a["findings"]) {
      if (f["reason"] == reason && f["line"].get<std::string>().find(needle) != std::string::npos) return true;
    }
    return false;
  }

  net::testing::TestPki pki_;
  std::string dir_;
  std::unique_ptr<net::HttpsServer> receiver_;
  std::mutex received_mu_;
  std::vector<std::string> received_;
  attest::testing::Host host_;
  std::unique_ptr<FakeLimd> limd_;
  agent::testing::AgentProcess agent_{BesideTest("../agent/lim-agent")};
  agent::testing::AgentProcess verifier_{BesideTest("lim-verifier")};
  std::unique_ptr<net::HttpsClient> op_;
};

TEST_F(VerifierE2eTest, EnrollAttestThenSeeTampering) {
  AddLearntPolicy("learnt");
  std::string address = "127.0.0.1:" + std::to_string(agent_.port());
  // The test swtpm has no EK certificate: refused unless trust on first use is allowed.
  auto [refused, why] = Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", address}, {"policy", "learnt"}});
  EXPECT_EQ(refused, 400) << why.dump();
  EXPECT_NE(why.dump().find("EK certificate"), std::string::npos) << why.dump();
  auto [code, rec] =
      Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", address}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump() << verifier_.Output();
  EXPECT_EQ(rec["tofu"], true);

  // ≥ 3 clean rounds.
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 3; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  EXPECT_GE(a["rounds"].get<uint64_t>(), 3u) << a.dump();
  EXPECT_EQ(a["next_index"], 21) << a.dump();
  EXPECT_EQ(verifier_.Output().find("reason="), std::string::npos) << verifier_.Output();
  // One connection from enrollment on: no handshake per round.
  EXPECT_EQ(a["connection"]["handshakes"], 1) << a.dump();
  EXPECT_GE(a["connection"]["requests"].get<uint64_t>(), 5u) << a.dump();  // identity, activate, ≥3 rounds

  // New, known-good measurements keep it attested... an unknown file does not.
  host_.AppendFile("/tmp/evil", "not in the policy");
  WriteList();
  auto t0 = std::chrono::steady_clock::now();
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "failed"; });
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(a["status"], "failed") << a.dump() << verifier_.Output();
  EXPECT_LE(took, 300 + 1500);  // within one interval (and a round's time)
  EXPECT_TRUE(HasFinding(a, "unknown-file", "path=/tmp/evil")) << a.dump();
  EXPECT_NE(verifier_.Output().find("lim-verifier: agent=agent-1 reason=unknown-file entry=21"), std::string::npos)
      << verifier_.Output();
  // The integrated table names the row and its reason; the rows before it stay ok.
  json rows = Api("GET", "/v1/agent?id=agent-1&entries=1").second["entries"];
  ASSERT_EQ(rows.size(), 22u) << rows.dump();  // no firmware log in this test: IMA rows 0–21
  EXPECT_EQ(rows[0]["event"], "[IMA:boot_aggregate]") << rows[0].dump();
  EXPECT_EQ(rows[0]["verdict"], "ok") << rows[0].dump();
  EXPECT_EQ(rows[20]["verdict"], "ok") << rows[20].dump();
  EXPECT_EQ(rows[21]["index"], 21) << rows[21].dump();
  EXPECT_EQ(rows[21]["source"], "ima");
  EXPECT_EQ(rows[21]["pcr"], 10);
  EXPECT_EQ(rows[21]["event"], "[IMA:/tmp/evil]") << rows[21].dump();
  EXPECT_EQ(rows[21]["verdict"], "unknown-file") << rows[21].dump();
  EXPECT_FALSE(Agent("agent-1").contains("entries"));  // only when asked
  // --on-failure ran once, with the finding's line as its argument and in its environment.
  std::string line;
  for (const auto& f : a["findings"]) {
    if (f["reason"] == "unknown-file") line = f["line"];
  }
  std::string hook_out;
  for (int i = 0; i < 100 && hook_out.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t = ReadFileText(dir_ + "/hook.out");
    if (t.ok()) hook_out = *t;
  }
  EXPECT_EQ(hook_out, "agent-1|unknown-file|" + line + "|" + line + "\n") << verifier_.Output();
  // --webhook got every change of state: enrolling → attested, then attested → failed with
  // the same verdict as JSON.
  std::vector<json> posted;
  for (int i = 0; i < 250 && posted.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lk(received_mu_);
    posted.clear();
    for (const auto& b : received_) posted.push_back(json::parse(b));
  }
  ASSERT_EQ(posted.size(), 2u) << verifier_.Output();
  EXPECT_EQ(posted[0]["status"], "attested");
  EXPECT_EQ(posted[0]["previous"], "enrolling");
  EXPECT_EQ(posted[0]["findings"].size(), 0u);
  json hooked = posted[1];
  EXPECT_EQ(hooked["status"], "failed");
  EXPECT_EQ(hooked["previous"], "attested");
  EXPECT_EQ(hooked["cause"], "round");
  EXPECT_EQ(hooked["agent"], "agent-1");
  EXPECT_EQ(hooked["findings"][0]["reason"], "unknown-file");
  EXPECT_EQ(hooked["findings"][0]["line"], line);
  // Failed is sticky until an operator acknowledges.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(Agent("agent-1")["status"], "failed");
  ASSERT_EQ(Api("POST", "/v1/ack", {{"agent", "agent-1"}}).first, 200);
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "attested" && j["next_index"] == 22; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();

  // GET /metrics (Prometheus text) on the same mTLS socket, checked by a strict parser.
  auto m = op_->Request("GET", "/metrics", "");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->status, 200) << m->body;
  std::map<std::string, testing::PromFamily> fams;
  ASSERT_EQ(testing::ParsePromText(m->body, &fams), "") << m->body;
  auto get = [&](const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return testing::PromGet(fams, name, labels);
  };
  EXPECT_EQ(get("lim_verifier_agents", {{"state", "attested"}}), 1) << m->body;
  EXPECT_EQ(get("lim_verifier_agents", {{"state", "failed"}}), 0) << m->body;
  EXPECT_GE(get("lim_verifier_rounds_total", {{"verdict", "attested"}}), 3) << m->body;
  EXPECT_GE(get("lim_verifier_rounds_total", {{"verdict", "failed"}}), 1) << m->body;
  EXPECT_GE(get("lim_verifier_failures_total", {{"reason", "unknown-file"}}), 1) << m->body;
  EXPECT_EQ(get("lim_verifier_state_changes_total", {{"state", "failed"}}), 1) << m->body;
  EXPECT_EQ(get("lim_verifier_state_changes_total", {{"state", "attested"}}), 2) << m->body;  // enrolled, acked
  double rounds = 0;
  for (const auto& sm : fams["lim_verifier_rounds_total"].samples) rounds += sm.value;
  EXPECT_EQ(get("lim_verifier_round_duration_seconds_count"), rounds) << m->body;
  EXPECT_GT(get("lim_verifier_round_duration_seconds_sum"), 0) << m->body;
  EXPECT_EQ(get("lim_verifier_store_duration_seconds_count", {{"op", "write"}}), rounds) << m->body;
  // Reads are counted when the store is read: SQLite's row is kept across rounds (read at the
  // first, again only after a change other than a round's own verdict).
  EXPECT_GE(get("lim_verifier_store_duration_seconds_count", {{"op", "read"}}), 1) << m->body;
  EXPECT_LT(get("lim_verifier_store_duration_seconds_count", {{"op", "read"}}), rounds) << m->body;
  EXPECT_GE(get("lim_verifier_webhook_delivered_total"), 2) << m->body;
  EXPECT_EQ(get("lim_verifier_webhook_dropped_total", {{"why", "queue-full"}}), 0) << m->body;
  EXPECT_EQ(m->content_type.rfind("text/plain; version=0.0.4", 0), 0u) << m->content_type;
  // The ack was a change too (failed → attested), sent to the webhook.
  json acked;
  for (int i = 0; i < 250 && acked.is_null(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lk(received_mu_);
    if (received_.size() >= 3) acked = json::parse(received_[2]);
  }
  EXPECT_EQ(acked["cause"], "ack") << acked.dump();
  EXPECT_EQ(acked["status"], "attested") << acked.dump();

  // PCR 10 extended behind the list's back: the list no longer replays to the quote.
  host_.AppendFile("/usr/bin/hidden", "never in the list file");  // extends, not written
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "failed"; });
  ASSERT_EQ(a["status"], "failed") << a.dump() << verifier_.Output();
  EXPECT_TRUE(HasFinding(a, "list-does-not-replay", "agent=agent-1")) << a.dump();
  // Logged once when it appears, not every round while it persists.
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  const std::string& log = verifier_.Output();
  size_t first = log.find("reason=list-does-not-replay");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("reason=list-does-not-replay", first + 1), std::string::npos) << log;
  // Turned failed a second time (after the ack): the command ran a second time, only.
  auto hook_text = ReadFileText(dir_ + "/hook.out");
  std::string twice = hook_text.ok() ? *hook_text : "";
  EXPECT_EQ(std::count(twice.begin(), twice.end(), '\n'), 2) << twice;
  EXPECT_NE(twice.find("\nagent-1|list-does-not-replay|lim-verifier: agent=agent-1 reason=list-does-not-replay"),
            std::string::npos)
      << twice;

  // Listing and removal.
  auto [lc, list] = Api("GET", "/v1/agents");
  ASSERT_EQ(lc, 200);
  ASSERT_EQ(list["agents"].size(), 1u);
  EXPECT_EQ(list["agents"][0]["id"], "agent-1");
  EXPECT_EQ(Api("DELETE", "/v1/agent?id=agent-1").first, 200);
  EXPECT_EQ(Api("GET", "/v1/agent?id=agent-1").first, 404);
}

// Policies are parsed once and shared by their agents (Verifier::PolicyFor); one replaced
// through POST /v1/policies applies from the next round, not an interval later. GET
// /v1/stats counts the rounds and their CPU by part.
TEST_F(VerifierE2eTest, AReplacedPolicyAppliesAtTheNextRoundAndStatsCountRounds) {
  AddLearntPolicy("learnt");
  std::string address = "127.0.0.1:" + std::to_string(agent_.port());
  auto [code, rec] =
      Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", address}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump() << verifier_.Output();
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 2; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  // The policy learnt again with one more tool, then the tool runs: attested at once.
  host_.AppendFile("/usr/bin/newtool", "new tool");
  AddLearntPolicy("learnt", 21);
  WriteList();
  a = WaitFor("agent-1", [](const json& j) { return j["next_index"] == 22; });
  EXPECT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  EXPECT_EQ(verifier_.Output().find("reason=unknown-file"), std::string::npos) << verifier_.Output();

  auto [sc, stats] = Api("GET", "/v1/stats");
  ASSERT_EQ(sc, 200) << stats.dump();
  EXPECT_EQ(stats["agents"], 1) << stats.dump();
  EXPECT_GE(stats["rounds"].get<uint64_t>(), 3u) << stats.dump();
  for (const char* part : {"round", "quote", "list", "verify", "store_read", "store_write", "fetch", "parse"}) {
    EXPECT_GT(stats["cpu_ns"][part].get<uint64_t>(), 0u) << part << " " << stats.dump();
  }
  EXPECT_LE(stats["cpu_ns"]["quote"].get<uint64_t>(), stats["cpu_ns"]["verify"].get<uint64_t>()) << stats.dump();
  EXPECT_GT(stats["process"]["max_rss_kib"].get<uint64_t>(), 0u) << stats.dump();
}

// `show --entries` on a host with a firmware log: its events first (BIOS and boot loader
// rows, verified against the quoted PCRs 0–7), then the IMA rows, one running index.
TEST_F(VerifierE2eTest, EntriesShowFirmwareThenImaRowsWithOneIndex) {
  auto log = ReadFileBytes(lim::testing::Fixture("rust-keylime/keylime/test-data/uefi_log.bin"));
  ASSERT_TRUE(log.ok());
  auto parsed = tcg::ParseEventLog(*log);
  ASSERT_TRUE(parsed.ok());
  size_t events = parsed->events.size();
  agent_.Stop();
  attest::testing::RebootSwtpm();
  host_.Reboot();
  host_.ReplayFirmware(*log);
  host_.AppendBootAggregate();
  for (int i = 0; i < 3; ++i) host_.AppendFile("/usr/bin/tool" + std::to_string(i), "content " + std::to_string(i));
  WriteList();
  ASSERT_TRUE(WriteFileBytes(dir_ + "/bios", *log).ok());
  agent::testing::AgentProcess agent{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(agent.Start({"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", "agent-1",
                         "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", "0", "--tpm",
                         tpm::testing::SwtpmTctiForTests(), "--ak-dir", dir_ + "/ak2", "--list", dir_ + "/list",
                         "--event-log", dir_ + "/bios", "--control-socket", dir_ + "/limd.sock", "--config",
                         "/dev/null"}),
            "");
  AddLearntPolicy("learnt", 3);
  auto [code, rec] = Api("POST", "/v1/agents",
                         {{"id", "agent-1"}, {"address", "127.0.0.1:" + std::to_string(agent.port())},
                          {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump();
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 2; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  json rows = Api("GET", "/v1/agent?id=agent-1&entries=1").second["entries"];
  ASSERT_EQ(rows.size(), events + 4) << rows.dump();
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["index"], i) << rows[i].dump();
    EXPECT_EQ(rows[i]["source"], i < events ? "firmware" : "ima") << rows[i].dump();
    EXPECT_EQ(rows[i]["verdict"], "ok") << rows[i].dump();
  }
  EXPECT_EQ(rows[0]["event"].get<std::string>().rfind("[BIOS:", 0), 0u) << rows[0].dump();
  EXPECT_EQ(rows[events]["event"], "[IMA:boot_aggregate]") << rows[events].dump();
  EXPECT_EQ(rows[events + 3]["event"], "[IMA:/usr/bin/tool2]") << rows[events + 3].dump();
  agent.Stop();
}

// The web view in headless chromium (web_browser_test.py drives it through selenium): a
// passing host and a failing one with a hostile name and a hostile path; the browser logs
// in, finds the failed host first, its failing row first and explained, walks fleet → host
// → history → policy without a console error. Skipped when chromium cannot run here.
TEST_F(VerifierE2eTest, WebViewInChromium) {
  const std::string bad = "bad<script>alert(2)</script>";
  AddLearntPolicy("partial");  // the 20 tools
  host_.AppendFile("/tmp/<script>alert(1)</script>", "not in the partial policy");
  WriteList();
  AddLearntPolicy("full", 21);
  auto hash = web::HashPassword("operator pw", 1000);
  ASSERT_TRUE(hash.ok());
  ASSERT_TRUE(WriteFileBytes(dir_ + "/users", AsBytes("alice " + *hash + "\n"), 0600).ok());
  RestartVerifier({"--web", "127.0.0.1:0", "--web-users", dir_ + "/users"});
  std::string out = verifier_.Output();
  size_t at = out.find("web view on https://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << out;
  std::string url = out.substr(at + 12, out.find('\n', at) - at - 12);
  agent::testing::AgentProcess agent2{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(agent2.Start({"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", bad,
                          "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", "0", "--tpm",
                          tpm::testing::SwtpmTctiForTests(), "--ak-dir", dir_ + "/ak2", "--list", dir_ + "/list",
                          "--event-log", "none", "--control-socket", dir_ + "/limd.sock", "--config", "/dev/null"}),
            "");
  // One agent at a time on the one test TPM (two quoting at once run out of its transient
  // object slots): the failing host first — failed stays failed when its agent stops.
  auto enroll = [this](const std::string& id, uint16_t port, const std::string& policy) {
    auto [code, rec] = Api("POST", "/v1/agents",
                           {{"id", id}, {"address", "127.0.0.1:" + std::to_string(port)}, {"policy", policy}, {"tofu", true}});
    EXPECT_EQ(code, 200) << rec.dump() << verifier_.Output();
  };
  enroll(bad, agent2.port(), "partial");
  json failed = WaitFor(web::UrlComponent(bad), [](const json& j) { return j["status"] == "failed"; });
  ASSERT_EQ(failed["status"], "failed") << failed.dump() << verifier_.Output();
  agent2.Stop();
  // An agent stopped between loading its AK and flushing it leaves the object in the
  // swtpm (no resource manager), and three such use up its transient slots.
  tpm::testing::Tpm2Tools("tpm2_flushcontext -t");
  enroll("agent-1", agent_.port(), "full");
  json good = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 2; });
  ASSERT_EQ(good["status"], "attested") << good.dump() << verifier_.Output();

  auto spki = lim::testing::Run("openssl x509 -in " + lim::testing::ShellQuote(pki_.server_cert) +
                                " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | "
                                "base64");
  ASSERT_EQ(spki.exit_code, 0) << spki.err;
  json cfg = {{"url", url},
              {"user", "alice"},
              {"password", "operator pw"},
              {"spki", spki.out.substr(0, spki.out.find('\n'))},
              {"failed", bad},
              {"passed", "agent-1"},
              {"failing_event", "[IMA:/tmp/<script>alert(1)</script>]"},
              {"failing_reason", "unknown-file"},
              {"policy", "partial"}};
  auto run = lim::testing::Run("/usr/bin/python3 " +
                               lim::testing::ShellQuote(lim::testing::SourcePath("src/verifier/web_browser_test.py")) +
                               " " + lim::testing::ShellQuote(cfg.dump()));
  if (run.exit_code == 77) GTEST_SKIP() << run.out << run.err;
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err << verifier_.Output();
  std::printf("%s", run.out.c_str());
}

// An agent that presents an AK its TPM does not hold (here the simulated host's AK in the
// same TPM, not the agent's own): the agent's TPM cannot activate a credential made for
// that AK's name, and the verifier refuses it.
TEST_F(VerifierE2eTest, RefusesAnAgentWhoseAkIsNotActivated) {
  auto tls = net::MakeClientTls({pki_.server_cert, pki_.server_key, pki_.ca});
  ASSERT_TRUE(tls.ok());
  net::ClientOptions co;
  co.port = agent_.port();
  auto real = net::HttpsClient::Create(*tls, co);
  ASSERT_TRUE(real.ok());
  auto got = (*real)->Request("GET", "/v1/identity");
  ASSERT_TRUE(got.ok() && got->status == 200);
  auto identity = attest::IdentityFromJson(got->body);
  ASSERT_TRUE(identity.ok());
  identity->agent_id = "impostor";
  identity->ak_public = tpm::MarshalPublic2B(host_.ak().pub);

  auto stls = net::MakeServerTls({pki_.server_cert, pki_.server_key, pki_.ca});
  ASSERT_TRUE(stls.ok());
  auto fake = net::HttpsServer::Create(*stls, {});
  ASSERT_TRUE(fake.ok());
  std::mutex mu;
  int activations = 0;
  (*fake)->Route("GET", "/v1/identity", [&](const net::HttpRequest&) {
    net::HttpResponse r;
    r.body = attest::IdentityToJson(*identity);
    return r;
  });
  (*fake)->Route("POST", "/v1/activate", [&](const net::HttpRequest& req) {
    std::lock_guard<std::mutex> lk(mu);
    ++activations;
    auto r = (*real)->Request("POST", "/v1/activate", req.body);
    if (!r.ok()) return net::JsonError(502, r.status().message());
    net::HttpResponse out;
    out.status = r->status;
    out.body = r->body;
    return out;
  });
  ASSERT_TRUE((*fake)->Start().ok());
  auto [code, body] = Api("POST", "/v1/agents",
                          {{"id", "impostor"}, {"address", "127.0.0.1:" + std::to_string((*fake)->port())}, {"tofu", true}});
  (*fake)->Stop();
  EXPECT_EQ(activations, 1);
  EXPECT_EQ(code, 400) << body.dump();
  EXPECT_NE(body.dump().find("not activated"), std::string::npos) << body.dump();
  EXPECT_EQ(Api("GET", "/v1/agent?id=impostor").first, 404);
  EXPECT_EQ(Api("GET", "/v1/agents").second["agents"].size(), 0u);
}

// The same through `lim verifier …` (what operators and scripts run), and an agent that
// stops answering turns unreachable.
TEST_F(VerifierE2eTest, CliDrivesTheVerifierAndAStoppedAgentIsUnreachable) {
  auto learnt = attest::LearnPolicy(host_.list());
  ASSERT_TRUE(learnt.ok());
  ASSERT_TRUE(WriteFileBytes(dir_ + "/policy.json", AsBytes(learnt->ToNativeJson())).ok());
  std::string lim = lim::testing::ShellQuote(BesideTest("../cli/lim"));
  std::string tls = " --verifier 127.0.0.1:" + std::to_string(verifier_.port()) + " --cert " + pki_.client_cert +
                    " --key " + pki_.client_key + " --ca " + pki_.ca;
  auto padd = lim::testing::Run(lim + " verifier policy add base " + dir_ + "/policy.json" + tls);
  ASSERT_EQ(padd.exit_code, 0) << padd.err;
  EXPECT_NE(padd.out.find("policy base: 20 paths"), std::string::npos) << padd.out;
  std::string address = "127.0.0.1:" + std::to_string(agent_.port());
  auto refused = lim::testing::Run(lim + " verifier add agent-1 " + address + " --policy base" + tls);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("EK certificate"), std::string::npos) << refused.err;
  auto add = lim::testing::Run(lim + " verifier add agent-1 " + address + " --tofu --policy base --json" + tls);
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_EQ(json::parse(add.out)["status"], "enrolling") << add.out;
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 3; });
  auto show = lim::testing::Run(lim + " verifier show agent-1" + tls);
  EXPECT_EQ(show.exit_code, 0) << show.out << show.err;
  EXPECT_EQ(show.out.rfind("agent-1 attested address=" + address + " policy=base rounds=", 0), 0u) << show.out;
  auto table = lim::testing::Run(lim + " verifier show agent-1 --entries" + tls);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("Verdict                Idx PCR Type       Digest EventData\n"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\nok                      20  10 0x00000000 "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" [IMA:/usr/bin/tool19]\n"), std::string::npos) << table.out;
  auto table_json = lim::testing::Run(lim + " verifier show agent-1 --entries --json" + tls);
  ASSERT_EQ(table_json.exit_code, 0) << table_json.err;
  EXPECT_EQ(json::parse(table_json.out)["entries"].size(), 21u) << table_json.out;
  auto list = lim::testing::Run(lim + " verifier list --json" + tls);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(json::parse(list.out)["agents"][0]["status"], "attested") << list.out;
  auto pshow = lim::testing::Run(lim + " verifier policy show base" + tls);
  EXPECT_EQ(pshow.exit_code, 0);
  EXPECT_NE(pshow.out.find("/usr/bin/tool7"), std::string::npos);
  EXPECT_EQ(lim::testing::Run(lim + " verifier policy assign agent-1 nosuch" + tls).exit_code, 1);

  agent_.Stop();
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "unreachable"; });
  EXPECT_EQ(a["status"], "unreachable") << a.dump();
  EXPECT_TRUE(HasFinding(a, "unreachable", "127.0.0.1")) << a.dump();
  show = lim::testing::Run(lim + " verifier show agent-1" + tls);
  EXPECT_EQ(show.exit_code, 1);
  EXPECT_NE(show.out.find("reason=unreachable"), std::string::npos) << show.out;
  EXPECT_EQ(lim::testing::Run(lim + " verifier remove agent-1" + tls).exit_code, 0);
  EXPECT_EQ(lim::testing::Run(lim + " verifier remove agent-1" + tls).exit_code, 1);
  EXPECT_EQ(lim::testing::Run(lim + " verifier list --cert x" + tls).exit_code, 2);
}

// Push mode: the operator allows the agent by id; lim-agent --push enrolls itself (known by
// its certificate's CN) and posts evidence for the verifier's requests on one connection.
TEST_F(VerifierE2eTest, PushModeEnrollsAttestsAndSeesTampering) {
  AddLearntPolicy("learnt");
  auto [code, rec] = Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", "push"}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump();
  agent::testing::AgentProcess pusher{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(pusher.Start({"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", "agent-1",
                          "--push", "127.0.0.1:" + std::to_string(verifier_.port()), "--push-interval-ms", "200", "--tpm",
                          tpm::testing::SwtpmTctiForTests(), "--ak-dir", dir_ + "/ak-push", "--list", dir_ + "/list",
                          "--event-log", "none", "--control-socket", dir_ + "/limd.sock", "--config", "/dev/null"},
                         /*wait_for_port=*/false),
            "");
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 3; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output() << pusher.Output();
  EXPECT_EQ(a["next_index"], 21);
  EXPECT_EQ(a["tofu"], true);
  EXPECT_NE(verifier_.Output().find("agent=agent-1 enrolled push tofu"), std::string::npos) << verifier_.Output();

  host_.AppendFile("/tmp/evil", "not in the policy");
  WriteList();
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "failed"; });
  ASSERT_EQ(a["status"], "failed") << a.dump() << verifier_.Output();
  EXPECT_TRUE(HasFinding(a, "unknown-file", "path=/tmp/evil")) << a.dump();
  // The same table and the same --on-failure run as in pull mode.
  json rows = Api("GET", "/v1/agent?id=agent-1&entries=1").second["entries"];
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back()["event"], "[IMA:/tmp/evil]") << rows.dump();
  EXPECT_EQ(rows.back()["verdict"], "unknown-file") << rows.dump();
  std::string hook_out;
  for (int i = 0; i < 100 && hook_out.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t = ReadFileText(dir_ + "/hook.out");
    if (t.ok()) hook_out = *t;
  }
  EXPECT_EQ(hook_out.rfind("agent-1|unknown-file|lim-verifier: agent=agent-1 reason=unknown-file", 0), 0u) << hook_out;
  EXPECT_EQ(pusher.Stop() >> 8, 0) << pusher.Output();
}

// A push client whose certificate names no allowed agent gets 403 on every push route.
TEST_F(VerifierE2eTest, PushRefusesAnAgentNotAllowed) {
  auto [code, body] = Api("POST", "/v1/push/request", json::object());
  EXPECT_EQ(code, 403) << body.dump();
  EXPECT_NE(body.dump().find("agent-1"), std::string::npos) << body.dump();
}

// ---- End to end: every tampering below is detected within one interval and explained ----
// (agent, entry index, PCR, template, path, digest, reference, reason), on the fixture's
// agent, verifier and stand-in limd; the detection time of each is printed ("detected …").

// Between the verifier and the real lim-agent: a hostile or slow agent. It forwards
// enrollment (renaming the agent when asked: a second agent on the same TPM) and, per mode,
// forwards the evidence, replays the last evidence it forwarded, re-signs the quote with
// another TPM's AK, or stalls (takes the request and never answers until destroyed).
class AgentProxy {
 public:
  enum class Mode { kForward, kReplay, kForeign, kStall };

  AgentProxy(const net::testing::TestPki& pki, uint16_t agent_port, std::string rename = {})
      : rename_(std::move(rename)) {
    auto ctls = net::MakeClientTls({pki.server_cert, pki.server_key, pki.ca});
    auto stls = net::MakeServerTls({pki.server_cert, pki.server_key, pki.ca});
    if (!ctls.ok() || !stls.ok()) {
      ADD_FAILURE() << "proxy TLS";
      return;
    }
    net::ClientOptions co;
    co.port = agent_port;
    auto real = net::HttpsClient::Create(*ctls, co);
    net::ServerOptions so;
    // A stalled evidence request waits on a thread of the blocking pool (it would hold a
    // server thread's context, and every connection dealt to it, otherwise).
    so.blocking_threads = 16;
    auto server = net::HttpsServer::Create(*stls, so);
    if (!real.ok() || !server.ok()) {
      ADD_FAILURE() << "proxy client/server";
      return;
    }
    real_ = std::move(*real);
    server_ = std::move(*server);
    server_->Route("GET", "/v1/identity", [this](const net::HttpRequest&) {
      std::lock_guard<std::mutex> lk(mu_);
      auto r = real_->Request("GET", "/v1/identity");
      if (!r.ok() || r->status != 200) return net::JsonError(502, "identity");
      auto id = attest::IdentityFromJson(r->body);
      if (!id.ok()) return net::JsonError(502, id.status().message());
      if (!rename_.empty()) id->agent_id = rename_;
      return net::HttpResponse{200, "application/json", attest::IdentityToJson(*id)};
    });
    server_->Route("POST", "/v1/activate", [this](const net::HttpRequest& req) { return Forward("/v1/activate", req); });
    server_->RouteBlocking("POST", "/v1/evidence", [this](const net::HttpRequest& req) { return Evidence(req); });
    EXPECT_TRUE(server_->Start().ok());
  }
  ~AgentProxy() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      released_ = true;
    }
    cv_.notify_all();
    if (server_) server_->Stop();
  }

  uint16_t port() const { return server_->port(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }
  void set_mode(Mode m) { mode_ = m; }
  void set_foreign(tpm::Tpm* t, const tpm::AkKey* ak) {
    std::lock_guard<std::mutex> lk(mu_);
    foreign_tpm_ = t;
    foreign_ak_ = ak;
  }
  int served(Mode m) {
    std::lock_guard<std::mutex> lk(mu_);
    return served_[static_cast<int>(m)];
  }

 private:
  net::HttpResponse Forward(const std::string& target, const net::HttpRequest& req) {
    std::lock_guard<std::mutex> lk(mu_);
    auto r = real_->Request(req.method, target, req.body);
    if (!r.ok()) return net::JsonError(502, r.status().message());
    return net::HttpResponse{r->status, "application/json", r->body};
  }

  net::HttpResponse Evidence(const net::HttpRequest& req) {
    Mode m = mode_.load();
    std::unique_lock<std::mutex> lk(mu_);
    ++served_[static_cast<int>(m)];
    if (m == Mode::kStall) {
      cv_.wait(lk, [this] { return released_; });
      return net::JsonError(503, "released");
    }
    if (m == Mode::kReplay && !last_.empty()) return net::HttpResponse{200, "application/json", last_};
    auto r = real_->Request("POST", "/v1/evidence", req.body);
    if (!r.ok()) return net::JsonError(502, r.status().message());
    if (r->status != 200) return net::HttpResponse{r->status, "application/json", r->body};
    if (m != Mode::kForeign || !foreign_tpm_) {
      last_ = r->body;
      return net::HttpResponse{200, "application/json", r->body};
    }
    // The same evidence, its quote made over the same PCRs and nonce by another TPM's AK.
    auto asked = attest::EvidenceRequestFromJson(req.body);
    auto ev = attest::EvidenceFromJson(r->body);
    if (!asked.ok() || !ev.ok()) return net::JsonError(502, "proxy: evidence does not parse");
    tpm::PcrSelection sel;
    for (const auto& b : asked->pcrs) sel.push_back({b.alg, std::set<int>(b.pcrs.begin(), b.pcrs.end())});
    auto q = foreign_tpm_->MakeQuote(*foreign_ak_, sel, asked->nonce);
    if (!q.ok()) return net::JsonError(502, "proxy: " + q.status().message());
    ev->quote = q->msg;
    ev->signature = q->sig;
    ev->pcrs = q->values;
    return net::HttpResponse{200, "application/json", attest::EvidenceToJson(*ev)};
  }

  std::string rename_;
  std::unique_ptr<net::HttpsClient> real_;
  std::unique_ptr<net::HttpsServer> server_;
  std::atomic<Mode> mode_{Mode::kForward};
  std::mutex mu_;  // real_, last_, foreign_*, served_, released_
  std::condition_variable cv_;
  std::string last_;
  tpm::Tpm* foreign_tpm_ = nullptr;
  const tpm::AkKey* foreign_ak_ = nullptr;
  int served_[4] = {0, 0, 0, 0};
  bool released_ = false;
};

class VerifierDetectsTest : public VerifierE2eTest {
 protected:
  using Clock = std::chrono::steady_clock;

  // Enrolls id at address (trust on first use) with the policy named and waits for its
  // first attested round.
  void Enroll(const std::string& id, const std::string& address, const std::string& policy = "learnt") {
    auto [code, rec] = Api("POST", "/v1/agents", {{"id", id}, {"address", address}, {"policy", policy}, {"tofu", true}});
    ASSERT_EQ(code, 200) << rec.dump() << verifier_.Output();
    json a = WaitFor(id, [](const json& j) { return j["status"] == "attested"; });
    ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  }
  std::string AgentAddress() { return "127.0.0.1:" + std::to_string(agent_.port()); }

  // The kernel's order: the record in the list file, then PCR 10. Returns when PCR 10 moved.
  Clock::time_point AppendThenExtend(const ima::Record& r) {
    host_.Append(r, false);
    WriteList();
    host_.Extend(r);
    return Clock::now();
  }
  static ima::Record File(const std::string& path, const std::string& content) {
    return ima::ImaNgRecord(Sha256Algo(), attest::testing::Sha256Of(content), path);
  }

  // Waits for status failed and expects it within one interval (and a round's time) of since.
  json ExpectFailedWithinOneInterval(const std::string& id, Clock::time_point since, const std::string& what,
                                     int interval_ms = 300) {
    json a = WaitFor(id, [](const json& j) { return j["status"] == "failed"; });
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
    EXPECT_EQ(a["status"], "failed") << what << ": " << a.dump() << verifier_.Output();
    EXPECT_LE(took, interval_ms + 1500) << what;
    std::printf("detected %s in %lld ms (interval %d ms)\n", what.c_str(), static_cast<long long>(took), interval_ms);
    return a;
  }
  // The line of the first finding with this reason ("" when none).
  static std::string Line(const json& a, const std::string& reason) {
    for (const auto& f : a["findings"]) {
      if (f["reason"] == reason) return f["line"];
    }
    return "";
  }
  // An operator acknowledges; the agent is attested again at next_index.
  void AckAndExpectAttested(const std::string& id, uint64_t next_index) {
    ASSERT_EQ(Api("POST", "/v1/ack", {{"agent", id}}).first, 200);
    json a = WaitFor(id, [next_index](const json& j) { return j["status"] == "attested" && j["next_index"] == next_index; });
    ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
    ASSERT_EQ(a["next_index"], next_index) << a.dump();
  }
  std::vector<std::string> AgentArgs(const std::string& ak_dir, const std::string& event_log, uint16_t port = 0) {
    return {"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", "agent-1",
            "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", std::to_string(port), "--tpm",
            tpm::testing::SwtpmTctiForTests(), "--ak-dir", ak_dir, "--list", dir_ + "/list", "--event-log", event_log,
            "--control-socket", dir_ + "/limd.sock", "--config", "/dev/null"};
  }
  // A reboot of the host: its agent stops, the swtpm restarts (reset count + 1), the
  // firmware (when given) and a new list are measured, and the agent starts again on the
  // same port with the same AK.
  void RebootHost(agent::testing::AgentProcess& agent, const std::vector<std::string>& args, const Bytes* firmware,
                  int tools) {
    agent.Stop();
    attest::testing::RebootSwtpm();
    host_.Reboot();
    if (firmware) host_.ReplayFirmware(*firmware);
    host_.AppendBootAggregate();
    for (int i = 0; i < tools; ++i) host_.AppendFile("/usr/bin/tool" + std::to_string(i), "content " + std::to_string(i));
    WriteList();
    ASSERT_EQ(agent.Start(args), "");
  }
};

TEST_F(VerifierDetectsTest, AKnownPathWithANewDigest) {
  AddLearntPolicy("learnt");
  Enroll("agent-1", AgentAddress());
  auto t0 = AppendThenExtend(File("/usr/bin/tool3", "a rebuilt tool3"));
  json a = ExpectFailedWithinOneInterval("agent-1", t0, "digest-not-allowed");
  std::string line = Line(a, "digest-not-allowed");
  std::string digest = ToHex(attest::testing::Sha256Of("a rebuilt tool3"));
  for (const std::string& part : {std::string("agent=agent-1 "), std::string(" entry=21 "), std::string(" pcr=10 "),
                                  std::string(" template=ima-ng "), std::string(" path=/usr/bin/tool3 "),
                                  std::string("digest=sha256:" + digest), std::string(" reference=")}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " in " << line;
  }
  EXPECT_NE(line.find(ToHex(attest::testing::Sha256Of("content 3"))), std::string::npos) << line;  // the allowed one
}

TEST_F(VerifierDetectsTest, AnImaSigEntryWithABadSignature) {
  auto text = ReadFileText(lim::testing::Fixture("keylime/derived/test_ima_verification.SIGNATURES.ascii_runtime_measurements"));
  ASSERT_TRUE(text.ok());
  std::vector<ima::Record> signed_records = attest::testing::AsciiRecords(*text);
  ASSERT_EQ(signed_records.size(), 2u);
  auto rsa = PublicKey::LoadFile(lim::testing::Fixture("keylime/derived/ima_keyring_pubkey_keyid_f3452d23.pem"));
  ASSERT_TRUE(rsa.ok());
  auto policy = attest::LearnPolicy(host_.list());
  ASSERT_TRUE(policy.ok());
  policy->TrustKey((*rsa)[0]);
  ASSERT_EQ(Api("POST", "/v1/policies", {{"name", "signed"}, {"policy", json::parse(policy->ToNativeJson())}}).first, 200);
  Enroll("agent-1", AgentAddress(), "signed");
  // A good signature by the trusted key: attested (not in the digest list, the signature decides).
  AppendThenExtend(signed_records[0]);
  json a = WaitFor("agent-1", [](const json& j) { return j["next_index"] == 22; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  // The same entry with its signature changed by one bit.
  ima::Record bad = signed_records[0];
  bad.fields.back().back() ^= 1;
  auto t0 = AppendThenExtend(bad);
  a = ExpectFailedWithinOneInterval("agent-1", t0, "bad-signature");
  std::string line = Line(a, "bad-signature");
  EXPECT_NE(line.find(" entry=22 "), std::string::npos) << line;
  EXPECT_NE(line.find(" template=ima-sig "), std::string::npos) << line;
  EXPECT_NE(line.find(" path=/usr/bin/dd "), std::string::npos) << line;
  EXPECT_NE(line.find("does not verify"), std::string::npos) << line;
}

// limd's store file edited on disk where the agent reads it: the entries not verified yet
// (the verifier reads only those; entries already verified are never read again, so an
// edit there is seen only as a list shorter than what was verified).
TEST_F(VerifierDetectsTest, AListEditedOnDisk) {
  AddLearntPolicy("learnt");
  Enroll("agent-1", AgentAddress());
  // Three known-good entries in the file, edited as told, then PCR 10 extended by the true ones.
  auto edit_new_entries = [&](const std::function<Bytes(const Bytes&, const std::vector<size_t>&)>& edit) {
    std::vector<ima::Record> recs;
    for (int i = 5; i < 8; ++i) recs.push_back(File("/usr/bin/tool" + std::to_string(i), "content " + std::to_string(i)));
    for (const auto& r : recs) host_.Append(r, false);
    Bytes edited = edit(host_.list(), host_.offsets());
    EXPECT_TRUE(WriteFileBytes(dir_ + "/list", edited).ok());
    for (const auto& r : recs) host_.Extend(r);
    return Clock::now();
  };
  auto cut = [](const Bytes& b, size_t from, size_t to) {
    Bytes out(b.begin(), b.begin() + static_cast<ptrdiff_t>(from));
    out.insert(out.end(), b.begin() + static_cast<ptrdiff_t>(to), b.end());
    return out;
  };
  uint64_t n = 21;  // verified so far
  // A file digest changed (the stored template digest left as it was): the second new entry.
  auto t0 = edit_new_entries([&](const Bytes& b, const std::vector<size_t>& off) {
    Bytes e = b;
    e[off[n + 1] + 4 + 20 + 4 + 6 + 4 + 4 + 8 + 5] ^= 0x01;
    return e;
  });
  json a = ExpectFailedWithinOneInterval("agent-1", t0, "digest changed (template-digest)");
  std::string line = Line(a, "template-digest");
  EXPECT_NE(line.find(" entry=22 "), std::string::npos) << a.dump();
  EXPECT_NE(line.find(" path=/usr/bin/tool6 "), std::string::npos) << line;
  WriteList();
  AckAndExpectAttested("agent-1", n += 3);
  // An entry removed.
  t0 = edit_new_entries([&](const Bytes& b, const std::vector<size_t>& off) { return cut(b, off[n + 1], off[n + 2]); });
  a = ExpectFailedWithinOneInterval("agent-1", t0, "entry removed (list-does-not-replay)");
  line = Line(a, "list-does-not-replay");
  EXPECT_NE(line.find(" pcr=10 "), std::string::npos) << a.dump();
  EXPECT_NE(line.find(" reference=\"quote: "), std::string::npos) << line;
  EXPECT_NE(line.find("no prefix of entries 24..26 replays"), std::string::npos) << line;
  WriteList();
  AckAndExpectAttested("agent-1", n += 3);
  // Two entries swapped.
  t0 = edit_new_entries([&](const Bytes& b, const std::vector<size_t>& off) {
    Bytes e(b.begin(), b.begin() + static_cast<ptrdiff_t>(off[n]));
    e.insert(e.end(), b.begin() + static_cast<ptrdiff_t>(off[n + 1]), b.begin() + static_cast<ptrdiff_t>(off[n + 2]));
    e.insert(e.end(), b.begin() + static_cast<ptrdiff_t>(off[n]), b.begin() + static_cast<ptrdiff_t>(off[n + 1]));
    e.insert(e.end(), b.begin() + static_cast<ptrdiff_t>(off[n + 2]), b.end());
    return e;
  });
  a = ExpectFailedWithinOneInterval("agent-1", t0, "entries reordered (list-does-not-replay)");
  EXPECT_NE(Line(a, "list-does-not-replay").find(" pcr=10 "), std::string::npos) << a.dump();
  WriteList();
  AckAndExpectAttested("agent-1", n += 3);
  // The tail truncated: the last new entry is missing (the TPM has it).
  t0 = edit_new_entries([&](const Bytes& b, const std::vector<size_t>& off) { return Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(off[n + 2])); });
  a = ExpectFailedWithinOneInterval("agent-1", t0, "tail truncated (list-does-not-replay)");
  EXPECT_NE(Line(a, "list-does-not-replay").find(" pcr=10 "), std::string::npos) << a.dump();
  WriteList();
  AckAndExpectAttested("agent-1", n += 3);
  // Truncated below what was verified: the list was rewound.
  Bytes shorter(host_.list().begin(), host_.list().begin() + static_cast<ptrdiff_t>(host_.offsets()[10]));
  ASSERT_TRUE(WriteFileBytes(dir_ + "/list", shorter).ok());
  t0 = Clock::now();
  a = ExpectFailedWithinOneInterval("agent-1", t0, "truncated below the verified part (list-rewound)");
  line = Line(a, "list-rewound");
  EXPECT_NE(line.find(" entry=10 reference=\"verified: " + std::to_string(n) + " entries\""), std::string::npos)
      << a.dump();
  WriteList();
  AckAndExpectAttested("agent-1", n);
}

// A hostile agent answers a round with the evidence of the round before (a valid quote by
// the right AK, for the old nonce).
TEST_F(VerifierDetectsTest, AReplayedOldQuote) {
  AddLearntPolicy("learnt");
  AgentProxy proxy(pki_, agent_.port());
  Enroll("agent-1", proxy.address());
  proxy.set_mode(AgentProxy::Mode::kReplay);
  auto t0 = Clock::now();
  json a = ExpectFailedWithinOneInterval("agent-1", t0, "replayed quote (nonce)");
  std::string line = Line(a, "nonce");
  EXPECT_NE(line.find("agent=agent-1 reason=nonce"), std::string::npos) << a.dump();
  EXPECT_NE(line.find(" reference=\"nonce sent: "), std::string::npos) << line;
  EXPECT_GE(proxy.served(AgentProxy::Mode::kReplay), 1);
  EXPECT_EQ(a["next_index"], 21);  // nothing accepted from it
}

// A quote by an AK of another TPM (a second swtpm) over the same PCRs and nonce.
TEST_F(VerifierDetectsTest, AQuoteFromAnotherTpmsAk) {
  tpm::SwtpmConfig c = tpm::testing::OtherSwtpmConfig(dir_ + "/tpm2");
  auto pid = tpm::SwtpmStart(c);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  std::unique_ptr<tpm::Tpm> other;
  {
    auto t = tpm::OpenTpm(tpm::SwtpmTcti(c));
    ASSERT_TRUE(t.ok()) << t.status().message();
    other = std::move(*t);
  }
  auto other_ak = other->CreateAk(tpm::EkType::kEcc, tpm::AkAlg::kEccP256);
  ASSERT_TRUE(other_ak.ok()) << other_ak.status().message();
  AddLearntPolicy("learnt");
  {
    AgentProxy proxy(pki_, agent_.port());
    proxy.set_foreign(other.get(), &*other_ak);
    Enroll("agent-1", proxy.address());
    proxy.set_mode(AgentProxy::Mode::kForeign);
    auto t0 = Clock::now();
    json a = ExpectFailedWithinOneInterval("agent-1", t0, "another TPM's AK (quote-signature)");
    EXPECT_NE(Line(a, "quote-signature").find("agent=agent-1 reason=quote-signature"), std::string::npos) << a.dump();
    EXPECT_GE(proxy.served(AgentProxy::Mode::kForeign), 1);
  }
  other.reset();
  EXPECT_TRUE(tpm::SwtpmStop(c).ok());
}

// The firmware log on disk gets one event changed; the host reboots with the true firmware:
// the log the verifier asks for at the new boot does not replay to the quoted PCR.
TEST_F(VerifierDetectsTest, AFirmwareLogWithOneEventChanged) {
  auto log = ReadFileBytes(lim::testing::Fixture("rust-keylime/keylime/test-data/uefi_log.bin"));
  ASSERT_TRUE(log.ok());
  agent_.Stop();
  ASSERT_TRUE(WriteFileBytes(dir_ + "/bios", *log).ok());
  agent::testing::AgentProcess agent{BesideTest("../agent/lim-agent")};
  auto args = AgentArgs(dir_ + "/ak-fw", dir_ + "/bios");
  RebootHost(agent, args, &*log, 3);
  AddLearntPolicy("learnt", 3);
  Enroll("agent-1", "127.0.0.1:" + std::to_string(agent.port()));
  json rows = Api("GET", "/v1/agent?id=agent-1&entries=1").second["entries"];
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0]["verdict"], "ok") << rows[0].dump();
  // One PCR 7 event's sha256 digest changed in the file.
  size_t victim = 0;
  Bytes changed = attest::testing::WithOnePcr7EventChanged(*log, &victim);
  ASSERT_GT(victim, 0u);
  ASSERT_TRUE(WriteFileBytes(dir_ + "/bios", changed).ok());
  args[std::find(args.begin(), args.end(), "--port") - args.begin() + 1] = std::to_string(agent.port());
  RebootHost(agent, args, &*log, 3);
  auto t0 = Clock::now();
  json a = ExpectFailedWithinOneInterval("agent-1", t0, "firmware event changed (firmware-log-differs)");
  std::string line = Line(a, "firmware-log-differs");
  EXPECT_NE(line.find(" pcr=7 bank=sha256 "), std::string::npos) << a.dump();
  EXPECT_NE(Line(a, "reboot"), "") << a.dump();  // and the new boot was seen as one
  agent.Stop();
}

TEST_F(VerifierDetectsTest, LimdKilled) {
  AddLearntPolicy("learnt");
  Enroll("agent-1", AgentAddress());
  limd_.reset();  // its control socket stops answering
  auto t0 = Clock::now();
  json a = ExpectFailedWithinOneInterval("agent-1", t0, "limd killed (limd-not-running)");
  std::string line = Line(a, "limd-not-running");
  EXPECT_NE(line.find("agent=agent-1 reason=limd-not-running"), std::string::npos) << a.dump();
  EXPECT_NE(line.find("limd.sock"), std::string::npos) << line;  // what the agent could not reach
}

// A reboot (new reset count, new boot_id, a new list from entry 0) is a new boot, shown as
// one, not a failure and not a continuation of the old list.
TEST_F(VerifierDetectsTest, ASwtpmRebootIsANewBoot) {
  AddLearntPolicy("learnt");
  Enroll("agent-1", AgentAddress());
  json before = Agent("agent-1");
  ASSERT_EQ(before["next_index"], 21);
  auto args = AgentArgs(dir_ + "/ak", "none", agent_.port());
  RebootHost(agent_, args, nullptr, 5);
  auto t0 = Clock::now();
  json a = WaitFor("agent-1", [](const json& j) { return j["reboots"] == 1 && j["next_index"] == 6; });
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  EXPECT_EQ(a["reboots"], 1) << a.dump();
  EXPECT_EQ(a["next_index"], 6) << a.dump();  // the new list from entry 0, not 21 + 6
  EXPECT_LE(took, 300 + 1500);
  std::printf("new boot attested %lld ms after the agent came back\n", static_cast<long long>(took));
  std::string line = Line(a, "reboot");
  EXPECT_NE(line.find("agent=agent-1 reason=reboot"), std::string::npos) << a.dump();
  EXPECT_NE(verifier_.Output().find("agent=agent-1 reason=reboot"), std::string::npos) << verifier_.Output();
  for (const auto& f : a["findings"]) EXPECT_FALSE(f["reason"] != "reboot" && f["reason"] != "unreachable") << f.dump();
}

// A clean host at a 100 ms interval, with known-good measurements arriving, for 100 rounds:
// never anything but attested, no finding logged.
TEST_F(VerifierDetectsTest, ACleanHostStaysAttestedFor100Rounds) {
  RestartVerifier({"--interval-ms", "100"});
  AddLearntPolicy("learnt");
  Enroll("agent-1", AgentAddress());
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::seconds(90);
  uint64_t rounds = 0, appended = 0;
  int polls = 0, not_attested = 0;
  json a;
  while (rounds < 100 && Clock::now() < deadline) {
    if (polls++ % 4 == 0) {  // a known file about every other round
      int k = static_cast<int>(appended++ % 20);
      AppendThenExtend(File("/usr/bin/tool" + std::to_string(k), "content " + std::to_string(k)));
    }
    a = Agent("agent-1");
    if (a["status"] != "attested") ++not_attested;
    rounds = a["rounds"].get<uint64_t>();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ASSERT_GE(rounds, 100u) << a.dump() << verifier_.Output();
  EXPECT_EQ(not_attested, 0) << a.dump() << verifier_.Output();
  EXPECT_TRUE(a["findings"].empty()) << a.dump();
  EXPECT_EQ(verifier_.Output().find("reason="), std::string::npos) << verifier_.Output();
  a = WaitFor("agent-1", [&](const json& j) { return j["next_index"] == 21 + appended; });
  EXPECT_EQ(a["next_index"], 21 + appended) << a.dump();
  EXPECT_EQ(a["status"], "attested");
  std::printf("100 clean rounds: %llu rounds, %llu entries appended, %lld ms\n", static_cast<unsigned long long>(rounds),
              static_cast<unsigned long long>(appended), static_cast<long long>(took));
}

// The whole chain with the real limd (root, fanotify): limd watches a tmpfs of the test's
// own and extends the swtpm's PCR 10; lim-agent serves limd's store and asks limd's control
// socket for liveness. A program executed on the mount that the policy does not know is
// failed within one interval and named; limd killed is "limd not running".
TEST_F(VerifierDetectsTest, RealLimdAnUnknownProgramExecutedOnAWatchedMountThenLimdKilled) {
  std::string why = daemon::testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  daemon::testing::ScratchMounts mounts;
  std::string mnt;
  if (why.empty()) why = mounts.AddTmpfs(&mnt);
  if (!why.empty()) GTEST_SKIP() << why;
  agent_.Stop();
  attest::testing::RebootSwtpm();  // PCR 10 at zero: limd starts a new chain there
  std::string state = dir_ + "/limd-state", sock = dir_ + "/limd-real.sock";
  ASSERT_TRUE(std::filesystem::create_directory(state));
  std::filesystem::permissions(state, std::filesystem::perms::owner_all);
  ASSERT_EQ(daemon::testing::ShIn(mnt, "cp /bin/true known && chmod 755 known").exit_code, 0);
  daemon::testing::LimdChild limd;  // after the mounts: stopped before they go
  using lim::testing::ShellQuote;
  auto rc = limd.Start(std::string(LIMD_BIN) + " --foreground --securityfs none --control-socket " + ShellQuote(sock) +
                           " --state " + ShellQuote(state) + " --watch " + ShellQuote(mnt) + " --log-file " +
                           ShellQuote(state + "/log") + " --tpm " + ShellQuote(tpm::testing::SwtpmTctiForTests()) +
                           " --pcr 10",
                       state, 120);
  auto limd_log = [&] {
    auto t = ReadFileText(state + "/log");
    return t.ok() ? *t : t.status().message();
  };
  ASSERT_FALSE(rc.has_value()) << "limd did not start: " << rc.value_or(-1) << " " << limd_log();
  ASSERT_EQ(daemon::testing::ShIn(mnt, "./known").exit_code, 0);
  const std::string list_path = state + "/binary_runtime_measurements";
  auto list_has = [&](const std::string& needle) {
    auto b = ReadFileBytes(list_path);
    return b.ok() && std::string(b->begin(), b->end()).find(needle) != std::string::npos;
  };
  ASSERT_TRUE(list_has(mnt + "/known")) << limd_log();
  // The policy: what this host measured so far (boot_aggregate, limd's own entries, known).
  auto measured = ReadFileBytes(list_path);
  ASSERT_TRUE(measured.ok());
  auto learnt = attest::LearnPolicy(*measured);
  ASSERT_TRUE(learnt.ok()) << learnt.status().message();
  ASSERT_EQ(Api("POST", "/v1/policies", {{"name", "host"}, {"policy", json::parse(learnt->ToNativeJson())}}).first, 200);
  agent::testing::AgentProcess agent{BesideTest("../agent/lim-agent")};
  auto args = AgentArgs(dir_ + "/ak-limd", "none");
  args[std::find(args.begin(), args.end(), "--list") - args.begin() + 1] = list_path;
  args[std::find(args.begin(), args.end(), "--control-socket") - args.begin() + 1] = sock;
  ASSERT_EQ(agent.Start(args), "");
  Enroll("agent-1", "127.0.0.1:" + std::to_string(agent.port()), "host");
  // The known program again (no new entry: the same digest) and a few clean rounds.
  ASSERT_EQ(daemon::testing::ShIn(mnt, "./known").exit_code, 0);
  json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 3; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  // A program the policy does not know, executed on the watched mount.
  ASSERT_EQ(daemon::testing::ShIn(mnt, "cp /bin/true evil && printf x >> evil && chmod 755 evil").exit_code, 0);
  auto t0 = Clock::now();
  ASSERT_EQ(daemon::testing::ShIn(mnt, "./evil").exit_code, 0);
  ASSERT_TRUE(list_has(mnt + "/evil"));
  a = ExpectFailedWithinOneInterval("agent-1", t0, "real limd: unknown program executed (unknown-file)");
  std::string line = Line(a, "unknown-file");
  std::printf("%s\n", line.c_str());
  EXPECT_NE(line.find(" pcr=10 "), std::string::npos) << a.dump() << verifier_.Output();
  EXPECT_NE(line.find(" path=" + mnt + "/evil "), std::string::npos) << line;
  EXPECT_NE(line.find(" digest=sha256:"), std::string::npos) << line;
  EXPECT_NE(line.find(" template="), std::string::npos) << line;
  EXPECT_NE(line.find(" entry="), std::string::npos) << line;
  uint64_t next = a["next_index"].get<uint64_t>();
  ASSERT_EQ(Api("POST", "/v1/ack", {{"agent", "agent-1"}}).first, 200);
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "attested"; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  EXPECT_GE(a["next_index"].get<uint64_t>(), next);
  // limd killed (the time counts from the kill: Stop waits for the process to go).
  t0 = Clock::now();
  EXPECT_NE(limd.Stop(SIGKILL), -1);
  a = ExpectFailedWithinOneInterval("agent-1", t0, "real limd killed (limd-not-running)");
  line = Line(a, "limd-not-running");
  EXPECT_NE(line.find("agent=agent-1 reason=limd-not-running"), std::string::npos) << a.dump();
  EXPECT_NE(line.find("limd-real.sock"), std::string::npos) << line;
  agent.Stop();
}

// ---- The loop: one agent's stall does not delay the others ----

// Rounds of agent-1 while `stalled` agents (each through a proxy that takes the evidence
// request and never answers) wait out their timeouts: the longest gap between agent-1's
// rounds, in ms. extra: more verifier flags.
class VerifierLoopTest : public VerifierDetectsTest {
 protected:
  // agent-1 and n agents named PREFIX-i, each through a proxy that takes the evidence
  // request and never answers.
  std::vector<std::unique_ptr<AgentProxy>> EnrollWithStalled(const std::string& prefix, int n) {
    AddLearntPolicy("learnt");
    std::vector<std::unique_ptr<AgentProxy>> proxies;
    Enroll("agent-1", AgentAddress());
    for (int i = 0; i < n; ++i) {
      std::string id = prefix + "-" + std::to_string(i);
      proxies.push_back(std::make_unique<AgentProxy>(pki_, agent_.port(), id));
      Enroll(id, proxies.back()->address());
    }
    for (auto& p : proxies) p->set_mode(AgentProxy::Mode::kStall);
    return proxies;
  }
  // agent-1's rounds over window_ms: the longest gap between two (or since the last), and how many.
  struct Pace {
    int64_t gap = 0;
    uint64_t rounds = 0;
  };
  Pace WatchAgent1(int window_ms) {
    auto start = Clock::now(), last = start;
    uint64_t rounds = Agent("agent-1")["rounds"].get<uint64_t>(), first = rounds;
    int64_t gap = 0;
    while (Clock::now() - start < std::chrono::milliseconds(window_ms)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      uint64_t r = Agent("agent-1")["rounds"].get<uint64_t>();
      auto now = Clock::now();
      if (r != rounds) {
        gap = std::max<int64_t>(gap, std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count());
        rounds = r;
        last = now;
      }
    }
    gap = std::max<int64_t>(gap, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last).count());
    return {gap, rounds - first};
  }
  int64_t LongestGapWhileOthersStall(int round_threads, int stalled, int timeout_ms, int window_ms,
                                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> flags = {"--agent-timeout-ms", std::to_string(timeout_ms), "--round-threads",
                                      std::to_string(round_threads)};
    flags.insert(flags.end(), extra.begin(), extra.end());
    RestartVerifier(flags);
    auto proxies = EnrollWithStalled("slow", stalled);
    int64_t gap = WatchAgent1(window_ms).gap;
    // The stalled agents themselves turn unreachable when their timeouts end.
    for (int i = 0; i < stalled; ++i) {
      EXPECT_GE(proxies[i]->served(AgentProxy::Mode::kStall), 1) << i;
      json slow = WaitFor("slow-" + std::to_string(i), [](const json& j) { return j["status"] == "unreachable"; },
                          timeout_ms + 3000);
      EXPECT_EQ(slow["status"], "unreachable") << slow.dump();
      EXPECT_NE(Line(slow, "unreachable"), "") << slow.dump();
    }
    std::printf("round threads %d, %d stalled: agent-1's longest gap %lld ms\n", round_threads, stalled,
                static_cast<long long>(gap));
    return gap;
  }
  // agent-1 allowed in push mode under a learnt policy.
  void AllowPushAgent1() {
    AddLearntPolicy("learnt");
    ASSERT_EQ(Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", "push"}, {"policy", "learnt"}, {"tofu", true}}).first,
              200);
  }
  // pusher started as agent-1 pushing here, until agent-1 has had 3 rounds and is attested.
  void PushUntilAttested(agent::testing::AgentProcess& pusher) {
    ASSERT_EQ(pusher.Start(PushAgentArgs(verifier_.port()), /*wait_for_port=*/false), "");
    json a = WaitFor("agent-1", [](const json& j) { return j["rounds"].get<uint64_t>() >= 3; });
    ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output() << pusher.Output();
  }
  std::map<std::string, testing::PromFamily> Metrics() {
    std::map<std::string, testing::PromFamily> fams;
    auto m = op_->Request("GET", "/metrics", "");
    EXPECT_TRUE(m.ok() && m->status == 200);
    EXPECT_EQ(testing::ParsePromText(m.ok() ? m->body : "", &fams), "");
    return fams;
  }
};

// An enrollment wakes the loop for the new agent's first round. Its predicate used to be
// "stop" alone, so the enrollment's wake-up was futile and the first round waited for the
// loop's next pass (up to 200 ms with nothing else due: a 60 s interval here).
TEST_F(VerifierLoopTest, AnEnrolledAgentsFirstRoundStartsAtOnce) {
  RestartVerifier({"--interval-ms", "60000"});
  AddLearntPolicy("learnt");
  std::vector<std::unique_ptr<AgentProxy>> proxies;
  std::vector<int64_t> waits;
  for (int i = 0; i < 6; ++i) {
    std::string id = "fresh-" + std::to_string(i);
    proxies.push_back(std::make_unique<AgentProxy>(pki_, agent_.port(), id));
    auto [code, rec] = Api("POST", "/v1/agents",
                           {{"id", id}, {"address", proxies.back()->address()}, {"policy", "learnt"}, {"tofu", true}});
    ASSERT_EQ(code, 200) << rec.dump() << verifier_.Output();
    auto t0 = Clock::now();
    // Polled every 2 ms: the times measured are tens of milliseconds.
    json a = WaitFor(
        id, [](const json& j) { return j.contains("rounds") && j["rounds"].get<uint64_t>() >= 1; }, 5000, 2);
    ASSERT_TRUE(a.contains("rounds")) << a.dump() << verifier_.Output();
    ASSERT_GE(a["rounds"].get<uint64_t>(), 1u) << a.dump() << verifier_.Output();
    waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(37 * (i + 1)));  // land at different points of a pass
  }
  std::sort(waits.begin(), waits.end());
  std::printf("enrollment to first round, ms, sorted:");
  for (auto w : waits) std::printf(" %lld", static_cast<long long>(w));
  std::printf("\n");
  // The median: a loop that waits for its pass puts half of them past 100 ms.
  EXPECT_LT(waits[waits.size() / 2], 60) << verifier_.Output();
}

TEST_F(VerifierLoopTest, AStalledAgentDoesNotDelayAnotherAgentsRounds) {
  EXPECT_LE(LongestGapWhileOthersStall(4, 1, 3000, 4500), 300 + 700);
}

// More agents stall than there are round threads: each stalled round gets a thread of its
// own once it has waited half an interval (150 ms here), so agent-1 is held back at most
// while the loop notices each stall in turn (3 × (150 + the loop's 200 ms pass), plus the
// interval and slack), not for the 5 s timeout. Afterwards the pool shrinks back.
TEST_F(VerifierLoopTest, MoreStalledAgentsThanRoundThreadsDoNotDelayAnother) {
  EXPECT_LE(LongestGapWhileOthersStall(1, 3, 5000, 7000), 3 * 350 + 300 + 650);
  auto fams = Metrics();
  EXPECT_GE(testing::PromGet(fams, "lim_verifier_spare_round_threads_total"), 3);
  // The three proxies are gone (their stalls answered): the spare threads return after
  // their rounds, and the one round thread is left.
  EXPECT_TRUE(Eventually(
      [&] {
        auto f = Metrics();
        return testing::PromGet(f, "lim_verifier_round_threads") == 1 && testing::PromGet(f, "lim_verifier_stalled_rounds") == 0;
      },
      15000))
      << verifier_.Output();
}

// The control: with one round thread and no spare threads (--max-stalled-rounds 0) the same
// stalls do hold agent-1 back (what the measurements above would show if the rounds were
// not independent).
TEST_F(VerifierLoopTest, OneRoundThreadWithoutSparesIsHeldByTheStall) {
  EXPECT_GE(LongestGapWhileOthersStall(1, 1, 3000, 4500, {"--max-stalled-rounds", "0"}), 2500);
}

// Five dark hosts (each through a proxy that never answers, 4 s timeout) beside agent-1,
// with one round thread and at most two spare ones (--max-stalled-rounds 2): five stalls
// would take every thread. Once they are known unreachable they wait on the slow lane, two
// at a time at most, and are asked again less and less often, so agent-1 keeps its pace.
TEST_F(VerifierLoopTest, DarkHostsBeyondTheSpareBoundDoNotStarveAnother) {
  RestartVerifier({"--agent-timeout-ms", "4000", "--round-threads", "1", "--max-stalled-rounds", "2"});
  auto proxies = EnrollWithStalled("dark", 5);
  // The first pass: each dark host's first stall is not known yet.
  for (int i = 0; i < 5; ++i) {
    json d = WaitFor("dark-" + std::to_string(i), [](const json& j) { return j["status"] == "unreachable"; }, 25000);
    ASSERT_EQ(d["status"], "unreachable") << d.dump() << verifier_.Output();
  }
  Pace pace = WatchAgent1(6000);
  int64_t gap = pace.gap;
  uint64_t rounds = pace.rounds;
  std::printf("5 dark hosts, 1 round thread, 2 spare: agent-1's longest gap %lld ms, %llu rounds in 6 s\n",
              static_cast<long long>(gap), static_cast<unsigned long long>(rounds));
  EXPECT_LE(gap, 2000);  // a dark host's round holds a thread for 4 s
  EXPECT_GE(rounds, 8u);
  // Still asked (the slow lane runs): each dark host has been asked again since.
  for (auto& p : proxies) EXPECT_GE(p->served(AgentProxy::Mode::kStall), 2);
}

// An enrollment asks the agent (identity, activation), each request waiting up to
// --agent-timeout-ms. Against a host that takes the connection and never answers (a
// listening socket nobody accepts on), it waits that long, and it must not hold the one
// server thread (--threads 1) that serves the operators and the push agents meanwhile.
TEST_F(VerifierLoopTest, AnEnrollmentWaitingOnASilentHostHoldsNoServerThread) {
  RestartVerifier({"--threads", "1", "--agent-timeout-ms", "3000"});
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(silent, 8), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  std::string address = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  auto enroller = OperatorOf(verifier_.port());
  ASSERT_TRUE(enroller);
  int enroll_status = -1;
  int64_t enroll_ms = 0;
  std::atomic<bool> enrolled{false};
  std::thread t([&] {
    auto t0 = Clock::now();
    enroll_status = ApiOn(*enroller, "POST", "/v1/agents", {{"id", "silent"}, {"address", address}, {"tofu", true}}).first;
    enroll_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    enrolled = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the enrollment is waiting now
  auto t0 = Clock::now();
  auto [code, body] = Api("GET", "/v1/agents");
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  bool enrolled_before = enrolled.load();
  t.join();
  EXPECT_FALSE(enrolled_before) << "the call was answered after the enrollment, not while it waited";
  ::close(silent);
  EXPECT_EQ(code, 200) << body.dump();
  EXPECT_LT(took, 1000) << "an operator's call waited for the enrollment";
  // The enrollment really was waiting on the silent host while the call was answered.
  EXPECT_NE(enroll_status, 200);
  EXPECT_GE(enroll_ms, 2500);
  std::printf("operator call answered in %lld ms while an enrollment waited %lld ms (status %d)\n",
              static_cast<long long>(took), static_cast<long long>(enroll_ms), enroll_status);
}

// A push agent that stops posting turns unreachable within --push-silence-ms (+ the loop's
// 200 ms tick), and attested again when it comes back.
TEST_F(VerifierLoopTest, ASilentPushAgentTurnsUnreachable) {
  RestartVerifier({"--push-silence-ms", "1000"});
  ASSERT_NO_FATAL_FAILURE(AllowPushAgent1());
  agent::testing::AgentProcess pusher{BesideTest("../agent/lim-agent")};
  ASSERT_NO_FATAL_FAILURE(PushUntilAttested(pusher));
  // Pushing every 200 ms keeps it attested past the silence bound.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(Agent("agent-1")["status"], "attested");
  pusher.Stop();
  auto t0 = Clock::now();
  json a = WaitFor("agent-1", [](const json& j) { return j["status"] == "unreachable"; }, 10000);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ASSERT_EQ(a["status"], "unreachable") << a.dump() << verifier_.Output();
  EXPECT_LE(took, 1000 + 200 + 800);
  std::printf("silent push agent unreachable after %lld ms (bound 1000 ms)\n", static_cast<long long>(took));
  std::string line = Line(a, "unreachable");
  EXPECT_NE(line.find("push agent posted no evidence for "), std::string::npos) << a.dump();
  // Logged once, not every tick.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string& log = verifier_.Output();
  size_t first = log.find("reason=unreachable");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(log.find("reason=unreachable", first + 1), std::string::npos) << log;
  agent::testing::AgentProcess back{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(back.Start(PushAgentArgs(verifier_.port()), false), "");
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "attested"; });
  EXPECT_EQ(a["status"], "attested") << a.dump() << verifier_.Output() << back.Output();
  back.Stop();
}

// Two lim-verifier processes on one PostgreSQL database (docs/fleet.md): the agent is
// attested by one of them; that one killed (-9), the other takes the agent over within two
// intervals and carries on from the stored state (still attested, no entry read twice).
TEST_F(VerifierE2eTest, TwoVerifiersOnPostgresqlAndOneKilledTheOtherTakesOver) {
  auto pg = attest::PgTestServer::Start();
  if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server could be started: " << pg.status().message();
  auto uri = (*pg)->CreateDatabase();
  ASSERT_TRUE(uri.ok()) << uri.status().message();
  constexpr int kIntervalMs = 400;
  agent::testing::AgentProcess va{BesideTest("lim-verifier")}, vb{BesideTest("lim-verifier")};
  for (auto* v : {&va, &vb}) {
    ASSERT_EQ(v->Start({"--store", *uri, "--listen", "127.0.0.1:0", "--cert", pki_.server_cert, "--key",
                        pki_.server_key, "--ca", pki_.ca, "--interval-ms", std::to_string(kIntervalMs)}),
              "");
  }
  auto opa = OperatorOf(va.port()), opb = OperatorOf(vb.port());
  ASSERT_TRUE(opa && opb);
  AddLearntPolicy("learnt", 20, opa.get());
  std::string address = "127.0.0.1:" + std::to_string(agent_.port());
  auto [code, rec] = ApiOn(*opa, "POST", "/v1/agents",
                           {{"id", "agent-1"}, {"address", address}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump() << va.Output();
  // Both see the same store; rounds run (by whichever verifier leased the agent).
  json a;
  for (int i = 0; i < 200; ++i) {
    a = ApiOn(*opb, "GET", "/v1/agent?id=agent-1").second;
    if (a.is_object() && a["rounds"].get<uint64_t>() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(a["status"], "attested") << a.dump() << va.Output() << vb.Output();
  ASSERT_GE(a["rounds"].get<uint64_t>(), 3u) << a.dump();
  bool a_owns = va.Output().find("attests 1 agents") != std::string::npos;
  bool b_owns = vb.Output().find("attests 1 agents") != std::string::npos;
  ASSERT_NE(a_owns, b_owns) << "exactly one verifier leases the agent\nA: " << va.Output() << "\nB: " << vb.Output();
  agent::testing::AgentProcess& owner = a_owns ? va : vb;
  agent::testing::AgentProcess& other = a_owns ? vb : va;
  net::HttpsClient& op = a_owns ? *opb : *opa;

  uint64_t rounds = ApiOn(op, "GET", "/v1/agent?id=agent-1").second["rounds"].get<uint64_t>();
  ASSERT_EQ(::kill(owner.pid(), SIGKILL), 0);
  auto t0 = std::chrono::steady_clock::now();
  // One round may have been written just before the kill landed: wait for two more.
  for (int i = 0; i < 400; ++i) {
    a = ApiOn(op, "GET", "/v1/agent?id=agent-1").second;
    if (a.is_object() && a["rounds"].get<uint64_t>() >= rounds + 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_GE(a["rounds"].get<uint64_t>(), rounds + 2) << a.dump() << other.Output();
  // Taken over within two intervals (lease 1.5 intervals, claims every half), plus the two
  // rounds' own time on this loaded machine.
  EXPECT_LE(took, 2 * kIntervalMs + kIntervalMs + 1000) << other.Output();
  EXPECT_NE(other.Output().find("attests 1 agents (was 0)"), std::string::npos) << other.Output();
  EXPECT_EQ(a["status"], "attested") << a.dump() << other.Output();
  EXPECT_EQ(a["next_index"], 21) << a.dump();
  EXPECT_EQ(other.Output().find("reason="), std::string::npos) << other.Output();
  std::printf("takeover after kill -9: %lld ms (interval %d ms)\n", static_cast<long long>(took), kIntervalMs);
  owner.Stop();
  other.Stop();
}

// The fleet on PostgreSQL under load (docs/fleet.md): 8 agents (proxies renaming the one
// lim-agent), rounds every 500 ms. Two verifiers share them 4/4; a third joins → at most
// 3 each; the database stopped and started again (pg_ctl) mid-run: every verifier reports
// the outage and carries on; then the verifier holding the most agents is killed -9 while
// rounds are in flight and a file outside the policy runs on the host at once: each agent
// turns failed with exactly one finding for that file (no verdict lost with the dead
// verifier, none written twice by the taker and a late holder).
class VerifierFleetTest : public VerifierE2eTest {
 protected:
  // "OWNER attests N agents (was M)": the last N this verifier logged (0: none yet).
  static int Attests(const std::string& out) {
    size_t at = out.rfind(" attests ");
    return at == std::string::npos ? 0 : std::atoi(out.c_str() + at + 9);
  }
  std::vector<std::string> VerifierArgs(const std::string& uri, int interval_ms, const std::vector<std::string>& more = {}) {
    std::vector<std::string> a{"--store", uri, "--listen", "127.0.0.1:0", "--cert", pki_.server_cert, "--key",
                               pki_.server_key, "--ca", pki_.ca, "--interval-ms", std::to_string(interval_ms)};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  // The agent's findings of this reason whose line names needle.
  static int Count(const json& a, const std::string& reason, const std::string& needle) {
    int n = 0;
    for (const auto& f : a["findings"]) {
      if (f["reason"] == reason && f["line"].get<std::string>().find(needle) != std::string::npos) ++n;
    }
    return n;
  }
};

TEST_F(VerifierFleetTest, SharedKilledAndDatabaseRestartedUnderLoad) {
  auto pg = attest::PgTestServer::Start();
  if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server could be started: " << pg.status().message();
  auto uri = (*pg)->CreateDatabase();
  ASSERT_TRUE(uri.ok()) << uri.status().message();
  constexpr int kIntervalMs = 500, kAgents = 8;
  std::vector<std::unique_ptr<agent::testing::AgentProcess>> v;
  std::vector<std::unique_ptr<net::HttpsClient>> op;
  auto start = [&] {
    v.push_back(std::make_unique<agent::testing::AgentProcess>(BesideTest("lim-verifier")));
    ASSERT_EQ(v.back()->Start(VerifierArgs(*uri, kIntervalMs)), "");
    op.push_back(OperatorOf(v.back()->port()));
    ASSERT_TRUE(op.back());
  };
  auto outputs = [&] {
    std::string all;
    for (size_t i = 0; i < v.size(); ++i) all += "--- verifier " + std::to_string(i) + ":\n" + v[i]->Output();
    return all;
  };
  start();
  start();
  AddLearntPolicy("learnt", 20, op[0].get());
  std::vector<std::unique_ptr<AgentProxy>> proxies;
  std::vector<std::string> ids;
  for (int i = 0; i < kAgents; ++i) {
    ids.push_back("fleet-" + std::to_string(i));
    proxies.push_back(std::make_unique<AgentProxy>(pki_, agent_.port(), ids.back()));
    auto [code, rec] = ApiOn(*op[static_cast<size_t>(i % 2)], "POST", "/v1/agents",
                             {{"id", ids.back()}, {"address", proxies.back()->address()}, {"policy", "learnt"}, {"tofu", true}});
    ASSERT_EQ(code, 200) << rec.dump() << outputs();
  }
  auto all_agents = [&](net::HttpsClient& o, const std::function<bool(const json&)>& pred) {
    for (const auto& id : ids) {
      json a = ApiOn(o, "GET", "/v1/agent?id=" + id).second;
      if (!a.is_object() || !a.contains("status") || !pred(a)) return false;
    }
    return true;
  };
  ASSERT_TRUE(Eventually([&] { return all_agents(*op[1], [](const json& a) { return a["status"] == "attested" && a["rounds"] >= 2; }); }, 30000))
      << outputs();
  // Two verifiers: 4 each.
  ASSERT_TRUE(Eventually([&] { return Attests(v[0]->Output()) == 4 && Attests(v[1]->Output()) == 4; }, 10 * kIntervalMs))
      << outputs();

  // A third joins: ceil(8 / 3) = 3 at most each, all 8 held.
  start();
  auto t0 = std::chrono::steady_clock::now();
  auto counts = [&] {
    std::vector<int> c;
    for (auto& p : v) c.push_back(Attests(p->Output()));
    return c;
  };
  ASSERT_TRUE(Eventually([&] {
    auto c = counts();
    return c[0] <= 3 && c[1] <= 3 && c[2] >= 2 && c[0] + c[1] + c[2] == kAgents;
  }, 12 * kIntervalMs)) << outputs();
  std::printf("third verifier joined: %d/%d/%d after %lld ms\n", counts()[0], counts()[1], counts()[2],
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
  EXPECT_EQ(outputs().find("stale lease"), std::string::npos) << "a handover at a round boundary refuses no round\n" << outputs();

  // The database restarted mid-run.
  std::map<std::string, uint64_t> rounds_before;
  for (const auto& id : ids) rounds_before[id] = ApiOn(*op[0], "GET", "/v1/agent?id=" + id).second["rounds"].get<uint64_t>();
  ASSERT_TRUE((*pg)->Stop().ok());
  ASSERT_TRUE(Eventually([&] {
    for (auto& p : v) {
      if (p->Output().find("store unavailable: ") == std::string::npos) return false;
    }
    return true;
  }, 4 * kIntervalMs)) << outputs();
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kIntervalMs));
  ASSERT_TRUE((*pg)->Restart().ok());
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] {
    for (auto& p : v) {
      if (p->Output().find("store back after ") == std::string::npos) return false;
    }
    return true;
  }, 6 * kIntervalMs)) << outputs();
  ASSERT_TRUE(Eventually([&] {
    return all_agents(*op[0], [&](const json& a) {
      return a["status"] == "attested" && a["rounds"].get<uint64_t>() >= rounds_before[a["id"]] + 2;
    });
  }, 10000)) << outputs();
  std::printf("database restarted: every agent attested 2 more rounds %lld ms after it was back\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
  ASSERT_TRUE(Eventually([&] {
    auto c = counts();
    return c[0] + c[1] + c[2] == kAgents && c[0] <= 3 && c[1] <= 3 && c[2] <= 3;
  }, 12 * kIntervalMs)) << outputs();

  // kill -9 of the verifier holding the most agents, rounds in flight; the host runs a file
  // outside the policy at once.
  auto c = counts();
  size_t victim = static_cast<size_t>(std::max_element(c.begin(), c.end()) - c.begin());
  net::HttpsClient& survivor = *op[(victim + 1) % 3];
  ASSERT_EQ(::kill(v[victim]->pid(), SIGKILL), 0);
  t0 = std::chrono::steady_clock::now();
  host_.AppendFile("/tmp/evil", "not in the policy");
  WriteList();
  ASSERT_TRUE(Eventually([&] { return all_agents(survivor, [](const json& a) { return a["status"] == "failed"; }); }, 20000))
      << outputs();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  std::printf("verifier with %d agents killed -9: all %d agents judged %lld ms later (interval %d ms)\n", c[victim],
              kAgents, static_cast<long long>(took), kIntervalMs);
  // Taken over within two intervals, plus the round itself on this loaded machine.
  EXPECT_LE(took, 2 * kIntervalMs + kIntervalMs + 1500) << outputs();
  for (const auto& id : ids) {
    json a = ApiOn(survivor, "GET", "/v1/agent?id=" + id).second;
    EXPECT_EQ(Count(a, "unknown-file", "path=/tmp/evil"), 1) << id << ": " << a.dump();
    EXPECT_EQ(a["next_index"], 22) << a.dump();
  }
  // The survivors share all 8 again (4 each).
  EXPECT_TRUE(Eventually([&] {
    int sum = 0;
    for (size_t i = 0; i < 3; ++i) sum += i == victim ? 0 : Attests(v[i]->Output());
    return sum == kAgents;
  }, 6 * kIntervalMs)) << outputs();
  for (auto& p : v) p->Stop();
}

// A push agent on two verifiers sharing one database: the lease follows its connection. It
// was allowed through A and posts to B (which had no worker for it yet): B takes the lease
// and attests it; A, which does not hold it, does not call it silent. Moved to A, A takes the
// lease (B's fence is stale). A file outside the policy gives exactly one finding.
TEST_F(VerifierFleetTest, APushAgentIsJudgedByTheVerifierItPostsTo) {
  auto pg = attest::PgTestServer::Start();
  if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server could be started: " << pg.status().message();
  auto uri = (*pg)->CreateDatabase();
  ASSERT_TRUE(uri.ok()) << uri.status().message();
  agent::testing::AgentProcess va{BesideTest("lim-verifier")}, vb{BesideTest("lim-verifier")};
  ASSERT_EQ(va.Start(VerifierArgs(*uri, 400, {"--push-silence-ms", "2000"})), "");
  ASSERT_EQ(vb.Start(VerifierArgs(*uri, 400, {"--push-silence-ms", "2000"})), "");
  auto opa = OperatorOf(va.port());
  ASSERT_TRUE(opa);
  AddLearntPolicy("learnt", 20, opa.get());
  auto [code, rec] = ApiOn(*opa, "POST", "/v1/agents", {{"id", "agent-1"}, {"address", "push"}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump();
  auto agent = [&] { return ApiOn(*opa, "GET", "/v1/agent?id=agent-1").second; };
  auto outputs = [&] { return "--- A:\n" + va.Output() + "--- B:\n" + vb.Output(); };
  {
    agent::testing::AgentProcess pusher{BesideTest("../agent/lim-agent")};
    ASSERT_EQ(pusher.Start(PushAgentArgs(vb.port()), false), "");
    ASSERT_TRUE(Eventually([&] { json a = agent(); return a["status"] == "attested" && a["rounds"] >= 3; }, 20000))
        << agent().dump() << outputs() << pusher.Output();
    // Past the silence bound: still attested, nobody called it silent.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    json a = agent();
    EXPECT_EQ(a["status"], "attested") << a.dump() << outputs();
    EXPECT_EQ(outputs().find("reason=unreachable"), std::string::npos) << outputs();
    EXPECT_EQ(pusher.Stop() >> 8, 0) << pusher.Output();
  }
  uint64_t rounds = agent()["rounds"].get<uint64_t>();
  agent::testing::AgentProcess pusher{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(pusher.Start(PushAgentArgs(va.port()), false), "");
  ASSERT_TRUE(Eventually([&] { return agent()["rounds"].get<uint64_t>() >= rounds + 3; }, 20000)) << outputs();
  EXPECT_NE(va.Output().find("agent=agent-1 pushes here: lease taken"), std::string::npos) << outputs();
  // The agent's row is kept across rounds under the lease (lim_verifier_store_duration_seconds
  // counts every read): rounds are written against its version, not read again.
  auto reads_and_rounds = [&] {
    auto c = OperatorOf(va.port());
    auto m = c->Request("GET", "/metrics", "");
    EXPECT_TRUE(m.ok() && m->status == 200);
    std::map<std::string, testing::PromFamily> fams;
    EXPECT_EQ(testing::ParsePromText(m.ok() ? m->body : "", &fams), "");
    return std::make_pair(testing::PromGet(fams, "lim_verifier_store_duration_seconds_count", {{"op", "read"}}),
                          testing::PromGet(fams, "lim_verifier_rounds_total", {{"verdict", "attested"}}));
  };
  auto [reads0, rounds0] = reads_and_rounds();
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  auto [reads1, rounds1] = reads_and_rounds();
  ASSERT_GE(reads0, 0) << "no read count in /metrics";
  ASSERT_GE(rounds1 - rounds0, 4) << outputs();
  EXPECT_LE(reads1 - reads0, 1) << "reads " << reads0 << " → " << reads1 << ", rounds " << rounds0 << " → " << rounds1;
  // An operator assigns another policy through B while A holds the lease and keeps the row:
  // the next round A writes is refused (the row's version moved), A reads the row again, and
  // the new entry is judged by the new policy (learnt from the list with it: 21 paths).
  auto opb = OperatorOf(vb.port());
  ASSERT_TRUE(opb);
  host_.AppendFile("/usr/bin/newtool", "a tool the new policy knows");
  AddLearntPolicy("learnt2", 21, opb.get());
  auto [acode, assigned] = ApiOn(*opb, "POST", "/v1/assign", {{"agent", "agent-1"}, {"policy", "learnt2"}});
  ASSERT_EQ(acode, 200) << assigned.dump();
  WriteList();
  ASSERT_TRUE(Eventually([&] { return agent()["next_index"] == 22; }, 20000)) << agent().dump() << outputs();
  {
    json a = agent();
    EXPECT_EQ(a["status"], "attested") << a.dump() << outputs();
    EXPECT_EQ(a["policy"], "learnt2") << a.dump();
    EXPECT_EQ(Count(a, "unknown-file", "/usr/bin/newtool"), 0) << a.dump();
    // A's round that judged it by the kept row's old policy was refused: its finding is
    // neither stored nor logged (the entry was judged again, and allowed).
    EXPECT_EQ(outputs().find("/usr/bin/newtool"), std::string::npos) << outputs();
  }
  host_.AppendFile("/tmp/evil", "not in the policy");
  WriteList();
  ASSERT_TRUE(Eventually([&] { return agent()["status"] == "failed"; }, 20000)) << outputs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // more rounds: still one finding
  json a = agent();
  EXPECT_EQ(Count(a, "unknown-file", "path=/tmp/evil"), 1) << a.dump();
  EXPECT_EQ(a["next_index"], 23) << a.dump();
  pusher.Stop();
  va.Stop();
  vb.Stop();
}

// An agent removed and enrolled again, with a new AK, through the verifier that does not
// attest it: the one that does (its worker, kept row and parsed AK from before) must check
// the next quotes against the new AK. The row's new version refuses the first round it
// writes from the old row; the row read again carries the new AK, parsed again.
TEST_F(VerifierFleetTest, AnAgentEnrolledAgainThroughTheOtherVerifierIsCheckedWithItsNewAk) {
  auto pg = attest::PgTestServer::Start();
  if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server could be started: " << pg.status().message();
  auto uri = (*pg)->CreateDatabase();
  ASSERT_TRUE(uri.ok()) << uri.status().message();
  agent::testing::AgentProcess va{BesideTest("lim-verifier")}, vb{BesideTest("lim-verifier")};
  ASSERT_EQ(va.Start(VerifierArgs(*uri, 400)), "");
  auto opa = OperatorOf(va.port());
  ASSERT_TRUE(opa);
  AddLearntPolicy("learnt", 20, opa.get());
  std::string address = "127.0.0.1:" + std::to_string(agent_.port());
  auto [code, rec] = ApiOn(*opa, "POST", "/v1/agents",
                           {{"id", "agent-1"}, {"address", address}, {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump() << va.Output();
  auto agent = [&] { return ApiOn(*opa, "GET", "/v1/agent?id=agent-1").second; };
  ASSERT_TRUE(Eventually([&] { json a = agent(); return a["status"] == "attested" && a["rounds"] >= 3; }, 20000))
      << agent().dump() << va.Output();
  // B joins; it has no agents to take (A holds the one lease, its fair share is 1).
  ASSERT_EQ(vb.Start(VerifierArgs(*uri, 400)), "");
  auto opb = OperatorOf(vb.port());
  ASSERT_TRUE(opb);
  // The same host's agent, restarted with a new AK (another --ak-dir), on another port.
  agent::testing::AgentProcess agent2{BesideTest("../agent/lim-agent")};
  ASSERT_EQ(agent2.Start({"--cert", pki_.client_cert, "--key", pki_.client_key, "--ca", pki_.ca, "--agent-id", "agent-1",
                          "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", "0", "--tpm",
                          tpm::testing::SwtpmTctiForTests(), "--ak-dir", dir_ + "/ak2", "--list", dir_ + "/list",
                          "--event-log", "none", "--control-socket", dir_ + "/limd.sock", "--config", "/dev/null"}),
            "");
  agent_.Stop();
  auto [dcode, removed] = ApiOn(*opb, "DELETE", "/v1/agent?id=agent-1");
  ASSERT_EQ(dcode, 200) << removed.dump();
  auto [ecode, again] = ApiOn(*opb, "POST", "/v1/agents",
                              {{"id", "agent-1"}, {"address", "127.0.0.1:" + std::to_string(agent2.port())},
                               {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(ecode, 200) << again.dump() << vb.Output();
  // B stops cleanly (its leases released): A, which attested the agent before, takes it.
  vb.Stop();
  ASSERT_TRUE(Eventually([&] { json a = agent(); return a.is_object() && a["rounds"] >= 4; }, 20000))
      << agent().dump() << va.Output();
  json a = agent();
  EXPECT_EQ(a["status"], "attested") << a.dump() << va.Output();
  for (const auto& f : a["findings"]) ADD_FAILURE() << "finding after the new enrollment: " << f.dump() << va.Output();
  agent2.Stop();
  va.Stop();
}

// lim-verifier with its SQLite store on a full disk (a 4 MiB tmpfs filled by a file): the
// rounds that cannot be written log that the disk is full, the verifier keeps running and
// answering, and once space is freed the failure it could not record meanwhile (a file
// outside the policy) is recorded exactly once; the store passes PRAGMA integrity_check.
// Writes `file` until its filesystem has no room left; false when it cannot be created.
bool FillDisk(const std::string& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string block(4096, 'f');
  while (::write(fd, block.data(), block.size()) > 0) {
  }
  ::close(fd);
  return true;
}

TEST_F(VerifierE2eTest, SqliteOnAFullDiskSaysSoAndCatchesUp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts a small tmpfs)";
  daemon::testing::ScratchMounts mounts;
  std::string mnt;
  if (std::string why = mounts.AddTmpfs(&mnt, "size=4m"); !why.empty()) GTEST_SKIP() << why;
  std::string db = mnt + "/verifier.db";
  RestartVerifier({"--store", "sqlite:" + db});
  AddLearntPolicy("learnt");
  auto [code, rec] = Api("POST", "/v1/agents", {{"id", "agent-1"}, {"address", "127.0.0.1:" + std::to_string(agent_.port())},
                                               {"policy", "learnt"}, {"tofu", true}});
  ASSERT_EQ(code, 200) << rec.dump() << verifier_.Output();
  json a = WaitFor("agent-1", [](const json& j) { return j["status"] == "attested" && j["rounds"] >= 2; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();
  ASSERT_TRUE(FillDisk(mnt + "/filler"));
  auto said = [this] { return verifier_.Output().find("the disk is full") != std::string::npos; };
  for (int i = 0; i < 200 && !said(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(said()) << verifier_.Output();
  EXPECT_NE(verifier_.Output().find("round error: verifier database " + db), std::string::npos) << verifier_.Output();
  host_.AppendFile("/tmp/evil", "not in the policy");
  WriteList();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // rounds see it, none can write it
  EXPECT_EQ(Api("GET", "/v1/health").first, 200);
  ASSERT_EQ(::unlink((mnt + "/filler").c_str()), 0);
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "failed"; });
  ASSERT_EQ(a["status"], "failed") << a.dump() << verifier_.Output();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // more rounds: still one finding
  a = Agent("agent-1");
  int evil = 0;
  for (const auto& f : a["findings"]) {
    if (f["reason"] == "unknown-file" && f["line"].get<std::string>().find("path=/tmp/evil") != std::string::npos) ++evil;
  }
  EXPECT_EQ(evil, 1) << a.dump();
  EXPECT_EQ(a["next_index"], 22) << a.dump();
  verifier_.Stop();
  auto check = lim::testing::Run("sqlite3 " + lim::testing::ShellQuote(db) + " 'PRAGMA integrity_check'");
  EXPECT_EQ(check.out, "ok\n") << check.err;
}

// A push agent falls silent while the SQLite disk is full: the silence cannot be stored, so
// it is neither logged nor alerted then, and is judged again until it is stored once the
// disk has room. (It used to be marked judged anyway: the agent stayed "attested".)
TEST_F(VerifierLoopTest, ASilenceThatCouldNotBeStoredIsRecordedOnceTheDiskHasRoom) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts a small tmpfs)";
  daemon::testing::ScratchMounts mounts;
  std::string mnt;
  if (std::string why = mounts.AddTmpfs(&mnt, "size=4m"); !why.empty()) GTEST_SKIP() << why;
  std::string db = mnt + "/verifier.db";
  RestartVerifier({"--store", "sqlite:" + db, "--push-silence-ms", "1000"});
  ASSERT_NO_FATAL_FAILURE(AllowPushAgent1());
  {
    agent::testing::AgentProcess pusher{BesideTest("../agent/lim-agent")};
    ASSERT_NO_FATAL_FAILURE(PushUntilAttested(pusher));
    pusher.Stop();
  }
  ASSERT_TRUE(FillDisk(mnt + "/filler"));
  // Past the silence bound with no room: the record fails (and says so), nothing is stored.
  auto failed = [this] { return verifier_.Output().find("round error: verifier database") != std::string::npos; };
  for (int i = 0; i < 100 && !failed(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(failed()) << verifier_.Output();
  // The disk stays full for 1.5 s: judged again at each pass of the loop (≤ 5 a second),
  // not in a tight loop of failed writes.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(Agent("agent-1")["status"], "attested");
  EXPECT_EQ(verifier_.Output().find("reason=unreachable"), std::string::npos) << verifier_.Output();
  size_t errors = 0;
  {
    const std::string log = verifier_.Output();
    for (size_t p = log.find("round error"); p != std::string::npos; p = log.find("round error", p + 1)) ++errors;
  }
  EXPECT_GE(errors, 2u) << verifier_.Output();
  EXPECT_LE(errors, 15u) << "failed records in about 2 s";
  std::printf("failed silence records while the disk was full: %zu\n", errors);
  ASSERT_EQ(::unlink((mnt + "/filler").c_str()), 0);
  json a = WaitFor("agent-1", [](const json& j) { return j["status"] == "unreachable"; }, 5000);
  EXPECT_EQ(a["status"], "unreachable") << a.dump() << verifier_.Output();
  EXPECT_NE(Line(a, "unreachable").find("push agent posted no evidence for "), std::string::npos) << a.dump();
}

// /metrics is for operators, and for the CNs of --metrics-cn, which get nothing else.
TEST_F(VerifierE2eTest, MetricsNeedAnOperatorOrAMetricsCn) {
  // The fixture's client certificate (CN agent-1) is no operator here.
  RestartVerifier({"--operator-cn", "ops-alice"});
  auto denied = op_->Request("GET", "/metrics", "");
  ASSERT_TRUE(denied.ok()) << denied.status().message();
  EXPECT_EQ(denied->status, 403) << denied->body;
  EXPECT_NE(denied->body.find("may not read metrics"), std::string::npos) << denied->body;
  RestartVerifier({"--operator-cn", "ops-alice", "--metrics-cn", "agent-1"});
  auto m = op_->Request("GET", "/metrics", "");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, 200) << m->body;
  EXPECT_EQ(testing::ParsePromText(m->body, nullptr), "") << m->body;
  EXPECT_EQ(Api("GET", "/v1/agents").first, 403);  // a scraper, not an operator
}

// An unreachable pull agent is asked again after the interval, then twice, four times …
// that, never more than a minute apart (or the interval, when it is longer).
TEST(UnreachableBackoff, DoublesFromTheIntervalUpToAMinute) {
  using std::chrono::milliseconds;
  EXPECT_EQ(UnreachableBackoff(milliseconds(2000), 1), milliseconds(2000));
  EXPECT_EQ(UnreachableBackoff(milliseconds(2000), 2), milliseconds(4000));
  EXPECT_EQ(UnreachableBackoff(milliseconds(2000), 5), milliseconds(32000));
  EXPECT_EQ(UnreachableBackoff(milliseconds(2000), 6), milliseconds(60000));
  EXPECT_EQ(UnreachableBackoff(milliseconds(2000), 1000000), milliseconds(60000));
  EXPECT_EQ(UnreachableBackoff(milliseconds(300), 3), milliseconds(1200));
  EXPECT_EQ(UnreachableBackoff(milliseconds(120000), 4), milliseconds(120000));
}

// --config: the same keys as the flags, FILE:LINE errors, ranges checked in the file,
// flags override it; dist/verifier.conf is accepted as shipped.
TEST(VerifierFlags, ConfigFileLinesRangesAndOverrides) {
  std::string bin = lim::testing::ShellQuote(BesideTest("lim-verifier"));
  std::string d = lim::testing::MakeTempDir();
  auto write = [&](const std::string& name, const std::string& text) {
    std::string p = d + "/" + name;
    EXPECT_TRUE(WriteFileBytes(p, AsBytes(text), 0600).ok());
    return lim::testing::ShellQuote(p);
  };
  auto shipped = lim::testing::Run(bin + " --config " +
                                   lim::testing::ShellQuote(lim::testing::SourcePath("dist/verifier.conf")) + " --help");
  EXPECT_EQ(shipped.exit_code, 0) << shipped.err;
  struct Case {
    std::string text, want;
  };
  const std::string base = "cert = a\nkey = b\nca = c\n";
  const std::vector<Case> cases = {
      {base + "interval-ms = 5\n", ":4: --interval-ms: Value 5 not in range 100 to 86400000"},
      {"cert = a\nkey = b\nca = c\n\n# x\nround-threads = 65\n", ":6: --round-threads"},
      {"cert = a\nintervall-ms = 300\n", ":2: unknown key 'intervall-ms' (keys are lim-verifier's long flags without --)"},
      {base + "webhook = http://x/\n", ":4: --webhook: --webhook http://x/: only https:// URLs"},
      {base + "alert-syslog = kern\n", ":4: --alert-syslog: syslog facility \"kern\""},
      {base + "listen = nohost\n", ":4: --listen: expected HOST:PORT"},
      {base + "store = mysql://x\n", ":4: --store: expected sqlite:PATH or postgresql://"},
      {base + "history = 0\n", ":4: --history"},
      {base + "push-silence-ms = -1\n", ":4: --push-silence-ms"},
      {base + "agent-timeout-ms = 99\n", ":4: --agent-timeout-ms"},
      {base + "threads = 17\n", ":4: --threads"},
      {base + "max-body-kib = 0\n", ":4: --max-body-kib"},
      {base + "on-failure-timeout-ms = 600001\n", ":4: --on-failure-timeout-ms"},
      {base + "on-failure = /nonexistent/hook\n", ":4: --on-failure: /nonexistent/hook is not an executable"},
      {base + "ek-ca-dir = /nonexistent/ek\n", ":4: --ek-ca-dir"},
      {base + "webhook-ca = /nonexistent/ca.pem\n", ":4: --webhook-ca"},
      {base + "interval-ms\n", ":4: expected 'key = value'"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string name = "c" + std::to_string(i) + ".conf";
    auto r = lim::testing::Run(bin + " --config " + write(name, cases[i].text));
    EXPECT_EQ(r.exit_code, 2) << cases[i].text;
    EXPECT_NE(r.err.find(d + "/" + name + cases[i].want), std::string::npos) << cases[i].text << "\n" << r.err;
  }
  // Flags win over the file: its bad interval and listen address are never applied (the
  // run then stops at the certificate "a", which cannot be read).
  auto over = lim::testing::Run(
      bin + " --config " + write("over.conf", base + "store = sqlite::memory:\ninterval-ms = 5\nlisten = nohost\n") +
      " --interval-ms 300 --listen 127.0.0.1:0");
  EXPECT_EQ(over.exit_code, 2);
  EXPECT_EQ(over.err.find("interval-ms"), std::string::npos) << over.err;
  EXPECT_EQ(over.err.find("HOST:PORT"), std::string::npos) << over.err;
  EXPECT_NE(over.err.find("lim-verifier: "), std::string::npos) << over.err;
  std::filesystem::remove_all(d);
}

TEST(VerifierFlags, RangesAndBadStore) {
  std::string bin = lim::testing::ShellQuote(BesideTest("lim-verifier"));
  auto help = lim::testing::Run(bin + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--interval-ms"), std::string::npos);
  auto range = lim::testing::Run(bin + " --cert a --key b --ca c --interval-ms 5");
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("--interval-ms"), std::string::npos) << range.err;
  auto store = lim::testing::Run(bin + " --cert a --key b --ca c --store postgres:x");
  EXPECT_EQ(store.exit_code, 2);
  EXPECT_NE(store.err.find("sqlite:PATH"), std::string::npos) << store.err;
  auto port = lim::testing::Run(bin + " --cert a --key b --ca c --store postgresql://db.example:70000/lim");
  EXPECT_EQ(port.exit_code, 2);
  EXPECT_NE(port.err.find("--store: PostgreSQL URI: port \"70000\" is not 1-65535"), std::string::npos) << port.err;
  auto uri = lim::testing::Run(bin + " --cert a --key b --ca c --store 'postgresql://db/lim?nosuch=1'");
  EXPECT_EQ(uri.exit_code, 2);
  EXPECT_NE(uri.err.find("--store: PostgreSQL URI: invalid URI query parameter: \"nosuch\""), std::string::npos)
      << uri.err;
  auto listen = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory: --listen nohost");
  EXPECT_EQ(listen.exit_code, 2);
  EXPECT_NE(listen.err.find("HOST:PORT"), std::string::npos) << listen.err;
  for (const char* bad : {" --history 0", " --history 10000001", " --round-threads 0", " --round-threads 65",
                          " --push-silence-ms -1", " --max-stalled-rounds -1", " --max-stalled-rounds 1025",
                          " --max-stalled-rounds 99999999999"}) {
    auto r = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory:" + bad);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find(std::string(bad).substr(1, std::string(bad).find(' ', 1) - 1)), std::string::npos) << r.err;
  }
  auto hook = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory: --on-failure /nonexistent/hook");
  EXPECT_EQ(hook.exit_code, 2);
  EXPECT_NE(hook.err.find("--on-failure: /nonexistent/hook is not an executable file"), std::string::npos) << hook.err;
  auto plain = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory: --webhook http://127.0.0.1/x");
  EXPECT_EQ(plain.exit_code, 2);
  EXPECT_NE(plain.err.find("only https:// URLs"), std::string::npos) << plain.err;
  EXPECT_EQ(ParseHostPort("127.0.0.1:70000").ok(), false);
  auto hp = ParseHostPort("[::1]:8891");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, 8891);
}

}  // namespace
}  // namespace lim::verifier
