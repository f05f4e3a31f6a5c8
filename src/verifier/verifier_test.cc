// lim-verifier end to end on loopback: a private swtpm whose PCR 10 carries a simulated
// host's measurement list (attest_test_util.h), the lim-agent binary serving that list in
// pull mode, a stand-in limd control socket (liveness), the lim-verifier binary with a
// SQLite store, and the operators' REST API driven over mutual TLS — enrollment, clean
// rounds with a policy learnt from the list, then tampering the verifier must see.
#include "verifier/verifier.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent_test_util.h"
#include "attest/attest_test_util.h"
#include "attest/evidence_json.h"
#include "attest/runtime_policy.h"
#include "base/file.h"
#include "control/control_client.h"
#include "control/status_report.h"
#include "ima/list_writer.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/test_certs_test_util.h"
#include "tests/testing.h"
#include "tcg/event_log.h"
#include "tpm/key.h"
#include "tpm/swtpm_test_util.h"

namespace lim::verifier {
namespace {

using nlohmann::json;

std::string BesideTest(const std::string& rel) {
  std::string self = agent::testing::AgentBinary();
  return self.substr(0, self.rfind('/')) + "/" + rel;
}

// limd's control socket as lim-agent reads it: one status document per connection.
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
    ASSERT_EQ(verifier_.Start({"--store", "sqlite:" + dir_ + "/verifier.db", "--listen", "127.0.0.1:0", "--cert",
                               pki_.server_cert, "--key", pki_.server_key, "--ca", pki_.ca, "--interval-ms", "300",
                               "--on-failure", dir_ + "/hook"}),
              "");
    auto tls = net::MakeClientTls({pki_.client_cert, pki_.client_key, pki_.ca});
    ASSERT_TRUE(tls.ok()) << tls.status().message();
    net::ClientOptions o;
    o.port = verifier_.port();
    auto c = net::HttpsClient::Create(*tls, o);
    ASSERT_TRUE(c.ok());
    op_ = std::move(*c);
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
    auto r = op_->Request(method, target, body.is_null() ? std::string() : body.dump());
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  json Agent(const std::string& id) { return Api("GET", "/v1/agent?id=" + id).second; }

  // Polls the agent until pred holds (or timeout): the last document seen.
  template <typename Pred>
  json WaitFor(const std::string& id, Pred pred, int timeout_ms = 20000) {
    json a;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      a = Agent(id);
      if (a.is_object() && pred(a)) return a;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return a;
  }

  void AddLearntPolicy(const std::string& name, int paths = 20) {
    auto learnt = attest::LearnPolicy(host_.list());
    ASSERT_TRUE(learnt.ok()) << learnt.status().message();
    auto [code, body] = Api("POST", "/v1/policies", {{"name", name}, {"policy", json::parse(learnt->ToNativeJson())}});
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
  // Failed is sticky until an operator acknowledges.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(Agent("agent-1")["status"], "failed");
  ASSERT_EQ(Api("POST", "/v1/ack", {{"agent", "agent-1"}}).first, 200);
  a = WaitFor("agent-1", [](const json& j) { return j["status"] == "attested" && j["next_index"] == 22; });
  ASSERT_EQ(a["status"], "attested") << a.dump() << verifier_.Output();

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
  auto listen = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory: --listen nohost");
  EXPECT_EQ(listen.exit_code, 2);
  EXPECT_NE(listen.err.find("HOST:PORT"), std::string::npos) << listen.err;
  auto hook = lim::testing::Run(bin + " --cert a --key b --ca c --store sqlite::memory: --on-failure /nonexistent/hook");
  EXPECT_EQ(hook.exit_code, 2);
  EXPECT_NE(hook.err.find("--on-failure: /nonexistent/hook is not an executable file"), std::string::npos) << hook.err;
  EXPECT_EQ(ParseHostPort("127.0.0.1:70000").ok(), false);
  auto hp = ParseHostPort("[::1]:8891");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, 8891);
}

}  // namespace
}  // namespace lim::verifier
