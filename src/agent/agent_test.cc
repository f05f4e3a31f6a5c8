// lim-agent end to end on loopback: a private swtpm, a throwaway PKI made by openssl, the
// lim-agent binary in pull mode (and in push mode against an in-test verifier), and checks
// with lim's own verifier-side code (MakeCredential, CheckQuote, `lim tpm checkquote`).
#include "agent/agent.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "agent/agent_test_util.h"
#include "attest/evidence_json.h"
#include "base/file.h"
#include "control/control_client.h"
#include "control/status_report.h"
#include "ima/synthetic_list.h"
#include "ima/list_reader.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/test_certs_test_util.h"
#include "tests/testing.h"
#include "tpm/credential.h"
#include "tpm/key.h"
#include "tpm/quote.h"
#include "tpm/swtpm_test_util.h"

namespace lim::agent {
namespace {

using lim::testing::ShellQuote;

Bytes RandomBytes(size_t n) {
  Bytes b(n);
  RAND_bytes(b.data(), static_cast<int>(n));
  return b;
}

attest::EvidenceRequest Request(const Bytes& nonce, uint64_t from) {
  attest::EvidenceRequest r;
  r.nonce = nonce;
  r.pcrs = {{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}};
  r.list_from = from;
  r.want_event_log = true;
  r.max_list_bytes = 1 << 20;
  return r;
}

tpm::PcrSelection SelectionOf(const attest::EvidenceRequest& r) {
  tpm::PcrSelection sel;
  for (const auto& b : r.pcrs) sel.push_back({b.alg, std::set<int>(b.pcrs.begin(), b.pcrs.end())});
  return sel;
}

struct Shared {
  net::testing::TestPki pki;
  std::string dir, list_path, event_log;
  Bytes list;
  std::vector<size_t> at;  // record boundaries
  testing::AgentProcess agent;
};
Shared* g = nullptr;

class AgentE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g = new Shared;
    g->pki = net::testing::MakeTestPki();
    g->dir = lim::testing::MakeTempDir();
    ima::SyntheticListSpec spec;
    spec.entries = 300;
    auto l = ima::MakeSyntheticList(spec);
    ASSERT_TRUE(l.ok());
    g->list = l->list;
    auto r = ima::ListReader::FromBytes(g->list);
    ima::Entry e;
    g->at.push_back(0);
    while (*(*r)->Next(&e)) g->at.push_back((*r)->next_offset());
    g->list_path = g->dir + "/binary_runtime_measurements";
    ASSERT_TRUE(WriteFileBytes(g->list_path, g->list).ok());
    g->event_log = g->dir + "/binary_bios_measurements";
    ASSERT_TRUE(WriteFileBytes(g->event_log, Bytes{1, 2, 3, 4, 5}).ok());
    std::string tcti = tpm::testing::SwtpmTctiForTests();
    std::string err = g->agent.Start({"--cert", g->pki.client_cert, "--key", g->pki.client_key, "--ca", g->pki.ca,
                                      "--agent-id", "agent-1", "--verifier-cn", "lim-server", "--listen", "127.0.0.1", "--port", "0", "--tpm", tcti,
                                      "--ak-dir", g->dir + "/ak", "--list", g->list_path, "--event-log", g->event_log,
                                      "--control-socket", g->dir + "/no-limd.sock", "--config", "/dev/null"});
    ASSERT_EQ(err, "");
  }
  static void TearDownTestSuite() {
    if (g) {
      g->agent.Stop();
      std::filesystem::remove_all(g->dir);
      std::filesystem::remove_all(g->pki.dir);
    }
    delete g;
    g = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(g, nullptr);
    ASSERT_EQ(g->pki.error, "");
    ASSERT_NE(g->agent.port(), 0);
  }

  // The verifier's side: a client with the verifier's certificate (the PKI's server cert
  // doubles as a client cert: extendedKeyUsage has both).
  std::unique_ptr<net::HttpsClient> Verifier(const std::string& cert = g->pki.server_cert,
                                             const std::string& key = g->pki.server_key) {
    auto tls = net::MakeClientTls({cert, key, g->pki.ca});
    EXPECT_TRUE(tls.ok()) << tls.status().message();
    net::ClientOptions o;
    o.port = g->agent.port();
    auto c = net::HttpsClient::Create(*tls, o);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }

  attest::Identity GetIdentity(net::HttpsClient& c) {
    auto r = c.Request("GET", "/v1/identity");
    EXPECT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200) << r->body;
    auto id = attest::IdentityFromJson(r->body);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return *id;
  }

  Result<attest::Evidence> Evidence(net::HttpsClient& c, const attest::EvidenceRequest& req) {
    auto r = c.Request("POST", "/v1/evidence", attest::EvidenceRequestToJson(req));
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status::Internal("HTTP " + std::to_string(r->status) + ": " + r->body);
    return attest::EvidenceFromJson(r->body);
  }
};

TEST_F(AgentE2eTest, MutualTlsIsRequired) {
  auto good = Verifier();
  auto ok = good->Request("GET", "/v1/health");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);

  auto none = net::MakeClientTlsWithoutCertificate(g->pki.ca);
  ASSERT_TRUE(none.ok());
  net::ClientOptions o;
  o.port = g->agent.port();
  auto anon = net::HttpsClient::Create(*none, o);
  ASSERT_TRUE(anon.ok());
  auto refused = (*anon)->Request("GET", "/v1/identity");
  EXPECT_FALSE(refused.ok());

  auto intruder = Verifier(g->pki.other_client_cert, g->pki.other_client_key);
  EXPECT_FALSE(intruder->Request("GET", "/v1/identity").ok());

  // A certificate from the right CA with a CN not in --verifier-cn (another agent's).
  auto other_host = Verifier(g->pki.client_cert, g->pki.client_key);
  auto forbidden = other_host->Request("POST", "/v1/evidence", attest::EvidenceRequestToJson(Request(RandomBytes(16), 0)));
  ASSERT_TRUE(forbidden.ok()) << forbidden.status().message();
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_NE(forbidden->body.find("agent-1"), std::string::npos) << forbidden->body;
}

TEST_F(AgentE2eTest, IdentityAndCredentialActivationRoundTrip) {
  auto c = Verifier();
  attest::Identity id = GetIdentity(*c);
  EXPECT_EQ(id.agent_id, "agent-1");
  EXPECT_FALSE(id.ek_certificate.has_value());  // the test swtpm has none
  auto ek = tpm::ParsePublic(id.ek_public);
  ASSERT_TRUE(ek.ok()) << ek.status().message();
  EXPECT_EQ(ek->type, TPM2_ALG_ECC);
  auto ak = tpm::ParsePublic(id.ak_public);
  ASSERT_TRUE(ak.ok());
  EXPECT_TRUE(tpm::CheckAkAttributes(*ak).ok());
  EXPECT_EQ(tpm::DescribePublic(*ak), "ecc-prime256v1");
  auto name = tpm::PublicName(*ak);
  ASSERT_TRUE(name.ok());

  Bytes secret = RandomBytes(32);
  auto made = tpm::MakeCredential(*ek, *name, secret);
  ASSERT_TRUE(made.ok()) << made.status().message();
  auto r = c->Request("POST", "/v1/activate", attest::CredentialChallengeToJson({made->id_object, made->secret}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto cred = attest::CredentialResponseFromJson(r->body);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->credential, secret);

  // A challenge bound to another key's name cannot be opened by this AK.
  Bytes other_name = *name;
  other_name.back() ^= 1;
  auto wrong = tpm::MakeCredential(*ek, other_name, secret);
  ASSERT_TRUE(wrong.ok());
  auto bad = c->Request("POST", "/v1/activate", attest::CredentialChallengeToJson({wrong->id_object, wrong->secret}));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("ActivateCredential"), std::string::npos);
}

TEST_F(AgentE2eTest, QuoteForAFreshNonceVerifiesInProcessAndWithLimTpmCheckquote) {
  auto c = Verifier();
  attest::Identity id = GetIdentity(*c);
  auto ak = tpm::ParsePublic(id.ak_public);
  ASSERT_TRUE(ak.ok());
  auto key = tpm::PublicKey::FromTpmPublic(*ak);
  ASSERT_TRUE(key.ok());
  Bytes nonce = RandomBytes(32);
  auto req = Request(nonce, 0);
  auto e = Evidence(*c, req);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->nonce, nonce);
  auto info = tpm::CheckQuote(*key, e->quote, e->signature, nonce, SelectionOf(req), e->pcrs);
  ASSERT_TRUE(info.ok()) << info.status().message();
  // Another nonce (a replayed quote) fails with the nonce named.
  tpm::QuoteFailure why{};
  EXPECT_FALSE(tpm::CheckQuote(*key, e->quote, e->signature, RandomBytes(32), SelectionOf(req), e->pcrs, &why).ok());
  EXPECT_EQ(why, tpm::QuoteFailure::kNonce);
  EXPECT_EQ(e->event_log, (Bytes{1, 2, 3, 4, 5}));
  EXPECT_EQ(e->boot_id.size(), 36u);
  EXPECT_FALSE(e->limd.running);
  EXPECT_NE(e->limd.detail.find("no-limd.sock"), std::string::npos) << e->limd.detail;

  // The same quote through the CLI, from files.
  std::string d = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(d + "/ak.pub", id.ak_public).ok());
  ASSERT_TRUE(WriteFileBytes(d + "/quote.msg", e->quote).ok());
  ASSERT_TRUE(WriteFileBytes(d + "/quote.sig", e->signature).ok());
  ASSERT_TRUE(WriteFileBytes(d + "/quote.pcrs", tpm::WritePcrsFile(SelectionOf(req), e->pcrs)).ok());
  std::string args = "tpm checkquote --ak " + ShellQuote(d + "/ak.pub") + " --msg " + ShellQuote(d + "/quote.msg") +
                     " --sig " + ShellQuote(d + "/quote.sig") + " --pcrs " + ShellQuote(d + "/quote.pcrs") + " --nonce ";
  auto good = lim::testing::Run(lim::testing::LimCommand(args + ToHex(nonce)));
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  auto replay = lim::testing::Run(lim::testing::LimCommand(args + ToHex(RandomBytes(32))));
  EXPECT_EQ(replay.exit_code, 1) << replay.out << replay.err;
  std::filesystem::remove_all(d);
}

TEST_F(AgentE2eTest, ListFromEntryNReturnsExactlyTheTail) {
  auto c = Verifier();
  for (uint64_t from : {uint64_t{0}, uint64_t{1}, uint64_t{123}, uint64_t{299}, uint64_t{300}}) {
    auto e = Evidence(*c, Request(RandomBytes(16), from));
    ASSERT_TRUE(e.ok()) << e.status().message();
    EXPECT_EQ(e->list.first_index, from);
    EXPECT_EQ(e->list.total_entries, 300u);
    EXPECT_EQ(e->list.records, Bytes(g->list.begin() + g->at[from], g->list.end())) << "from " << from;
    EXPECT_EQ(e->list.source, "limd");
  }
  auto beyond = Evidence(*c, Request(RandomBytes(16), 1000));
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->list.records.empty());
  EXPECT_EQ(beyond->list.total_entries, 300u);
}

TEST_F(AgentE2eTest, HostileRequestsGetErrorsNotCrashes) {
  auto c = Verifier();
  auto huge = c->Request("GET", "/v1/identity?x=" + std::string(20000, 'a'));
  ASSERT_TRUE(huge.ok()) << huge.status().message();
  EXPECT_EQ(huge->status, 431);
  auto big = c->Request("POST", "/v1/evidence", std::string(200 << 10, ' '));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->status, 413);
  auto bad_json = c->Request("POST", "/v1/evidence", "{\"nonce\":");
  ASSERT_TRUE(bad_json.ok());
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_NE(bad_json->body.find("not valid JSON"), std::string::npos) << bad_json->body;
  auto short_nonce = Request(Bytes{1, 2, 3}, 0);
  auto r = c->Request("POST", "/v1/evidence", attest::EvidenceRequestToJson(short_nonce));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("nonce: 3 bytes"), std::string::npos) << r->body;
  auto long_nonce = Request(RandomBytes(65), 0);
  r = c->Request("POST", "/v1/evidence", attest::EvidenceRequestToJson(long_nonce));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  auto bad_pcr = c->Request(
      "POST", "/v1/evidence",
      R"({"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","pcrs":[{"bank":"sha256","pcrs":[99]}],"list_from":0,"want_event_log":false,"max_list_bytes":1})");
  ASSERT_TRUE(bad_pcr.ok());
  EXPECT_EQ(bad_pcr->status, 400);
  auto bad_blob = c->Request("POST", "/v1/activate", R"({"id_object":"AAAA","secret":"AAAA"})");
  ASSERT_TRUE(bad_blob.ok());
  EXPECT_EQ(bad_blob->status, 400) << bad_blob->body;
  // Still alive and serving.
  auto e = Evidence(*c, Request(RandomBytes(16), 0));
  EXPECT_TRUE(e.ok()) << e.status().message();
  EXPECT_GT(g->agent.pid(), 0);
  EXPECT_EQ(::kill(g->agent.pid(), 0), 0);
}

// Push mode: the agent connects to a verifier (here a minimal one in the test), enrolls
// with credential activation and posts evidence for the verifier's nonces on one connection.
TEST_F(AgentE2eTest, PushModeEnrollsAndPostsVerifiableEvidenceOnOneConnection) {
  auto tls = net::MakeServerTls({g->pki.server_cert, g->pki.server_key, g->pki.ca});
  ASSERT_TRUE(tls.ok());
  auto server = net::HttpsServer::Create(*tls, {});
  ASSERT_TRUE(server.ok());
  std::mutex mu;
  Bytes secret = RandomBytes(32), nonce;
  std::optional<tpm::PublicKey> ak;
  std::atomic<int> activated{0}, verified{0}, failed{0};
  std::string peer, last_error;
  (*server)->Route("POST", "/v1/push/enroll", [&](const net::HttpRequest& r) {
    std::lock_guard<std::mutex> lk(mu);
    auto id = attest::IdentityFromJson(r.body);
    if (!id.ok()) return net::JsonError(400, id.status().message());
    peer = r.peer.common_name;
    auto ek = tpm::ParsePublic(id->ek_public);
    auto akp = tpm::ParsePublic(id->ak_public);
    if (!ek.ok() || !akp.ok() || !tpm::CheckAkAttributes(*akp).ok()) return net::JsonError(400, "bad keys");
    auto k = tpm::PublicKey::FromTpmPublic(*akp);
    if (!k.ok()) return net::JsonError(400, k.status().message());
    ak.emplace(std::move(*k));
    auto made = tpm::MakeCredential(*ek, *tpm::PublicName(*akp), secret);
    net::HttpResponse res;
    res.body = attest::CredentialChallengeToJson({made->id_object, made->secret});
    return res;
  });
  (*server)->Route("POST", "/v1/push/activate", [&](const net::HttpRequest& r) {
    auto c = attest::CredentialResponseFromJson(r.body);
    if (!c.ok() || c->credential != secret) return net::JsonError(400, "activation failed");
    ++activated;
    net::HttpResponse res;
    res.status = 204;
    return res;
  });
  (*server)->Route("POST", "/v1/push/request", [&](const net::HttpRequest&) {
    std::lock_guard<std::mutex> lk(mu);
    nonce = RandomBytes(20);
    net::HttpResponse res;
    res.body = attest::EvidenceRequestToJson(Request(nonce, 0));
    return res;
  });
  (*server)->Route("POST", "/v1/push/evidence", [&](const net::HttpRequest& r) {
    std::lock_guard<std::mutex> lk(mu);
    auto e = attest::EvidenceFromJson(r.body);
    Status st = e.ok() ? Status::Ok() : e.status();
    if (st.ok() && ak) st = tpm::CheckQuote(*ak, e->quote, e->signature, nonce, SelectionOf(Request(nonce, 0)), e->pcrs).status();
    if (!st.ok() || !ak) {
      ++failed;
      last_error = st.message();
      return net::JsonError(400, st.message());
    }
    ++verified;
    net::HttpResponse res;
    res.body = R"({"verdict":"attested"})";
    return res;
  });
  ASSERT_TRUE((*server)->Start().ok());

  testing::AgentProcess pusher;
  ASSERT_EQ(pusher.Start({"--cert", g->pki.client_cert, "--key", g->pki.client_key, "--ca", g->pki.ca, "--agent-id",
                          "agent-1", "--push", "127.0.0.1:" + std::to_string((*server)->port()), "--push-interval-ms",
                          "100", "--tpm", tpm::testing::SwtpmTctiForTests(), "--ak-dir", g->dir + "/ak-push", "--list",
                          g->list_path, "--event-log", g->event_log, "--control-socket", "none", "--config", "/dev/null"},
                         /*wait_for_port=*/false),
            "");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (verified < 3 && failed == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(pusher.Stop() >> 8, 0);
  (*server)->Stop();
  EXPECT_EQ(failed, 0) << last_error << "\n" << pusher.Output();
  EXPECT_GE(verified, 3) << pusher.Output();
  EXPECT_EQ(activated, 1);
  EXPECT_EQ(peer, "agent-1");
  EXPECT_EQ((*server)->stats().connections, 1u);  // every round on one connection
}

TEST(AgentFlags, HelpRangesAndConfigErrors) {
  std::string bin = ShellQuote(testing::AgentBinary());
  auto help = lim::testing::Run(bin + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--push"), std::string::npos);
  EXPECT_NE(help.out.find("docs/agent.md"), std::string::npos);
  auto range = lim::testing::Run(bin + " --cert a --key b --ca c --port 70000 --config /dev/null");
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("--port"), std::string::npos) << range.err;
  auto interval = lim::testing::Run(bin + " --cert a --key b --ca c --push-interval-ms 5 --config /dev/null");
  EXPECT_EQ(interval.exit_code, 2);
  auto missing = lim::testing::Run(bin + " --config /dev/null");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--cert"), std::string::npos) << missing.err;
  std::string d = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(d + "/agent.conf", AsBytes(std::string("cert = a\nkey = b\nca = c\nbogus = 1\n"))).ok());
  auto conf = lim::testing::Run(bin + " --config " + ShellQuote(d + "/agent.conf"));
  EXPECT_EQ(conf.exit_code, 2);
  EXPECT_NE(conf.err.find("agent.conf:4"), std::string::npos) << conf.err;
  auto push = lim::testing::Run(bin + " --cert a --key b --ca c --push nohostport --config /dev/null --tpm swtpm:path=/nonexistent");
  EXPECT_EQ(push.exit_code, 2);
  EXPECT_NE(push.err.find("HOST:PORT"), std::string::npos) << push.err;
  // Every value of the file is checked where it stands: FILE:LINE names the line.
  for (const auto& [line, flag] : std::vector<std::pair<std::string, std::string>>{
           {"push = nohostport", "--push"}, {"push = v.example:0", "--push"}, {"port = 70000", "--port"},
           {"agent-id = " + std::string(256, 'a'), "--agent-id"}, {"threads = 0", "--threads"},
           {"ek = dsa", "--ek"}, {"tpm-timeout-ms = 99", "--tpm-timeout-ms"}}) {
    ASSERT_TRUE(WriteFileBytes(d + "/bad.conf", AsBytes("cert = a\nkey = b\nca = c\n" + line + "\n")).ok());
    auto bad = lim::testing::Run(bin + " --config " + ShellQuote(d + "/bad.conf"));
    EXPECT_EQ(bad.exit_code, 2) << line;
    EXPECT_NE(bad.err.find(d + "/bad.conf:4: " + flag), std::string::npos) << line << "\n" << bad.err;
  }
  auto shipped = lim::testing::Run(bin + " --config " + ShellQuote(lim::testing::SourcePath("dist/agent.conf")) + " --help");
  EXPECT_EQ(shipped.exit_code, 0) << shipped.err;
  std::filesystem::remove_all(d);
}

TEST(AgentAkDir, RefusesLinksAndDirectoriesOpenToOthers) {
  auto tpm = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(tpm.ok()) << tpm.status().message();
  std::string d = lim::testing::MakeTempDir();
  ASSERT_EQ(::mkdir((d + "/open").c_str(), 0755), 0);
  ::chmod((d + "/open").c_str(), 0755);
  auto open = LoadOrCreateAk(**tpm, tpm::EkType::kEcc, d + "/open");
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("0700"), std::string::npos) << open.status().message();
  ASSERT_EQ(::mkdir((d + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((d + "/real").c_str(), (d + "/link").c_str()), 0);
  auto link = LoadOrCreateAk(**tpm, tpm::EkType::kEcc, d + "/link");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.status().message().find("symbolic link"), std::string::npos) << link.status().message();
  // Created once, then loaded: the same key both times, files private.
  auto first = LoadOrCreateAk(**tpm, tpm::EkType::kEcc, d + "/real");
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto again = LoadOrCreateAk(**tpm, tpm::EkType::kEcc, d + "/real");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(tpm::MarshalPublicT(first->pub), tpm::MarshalPublicT(again->pub));
  EXPECT_EQ(lim::testing::ModeOf(d + "/real/ak.priv"), 0600u);
  auto other_ek = LoadOrCreateAk(**tpm, tpm::EkType::kRsa, d + "/real");
  EXPECT_FALSE(other_ek.ok());
  std::filesystem::remove_all(d);
}

// In process: a missing event log is left out (the verifier decides), a missing list is
// an error naming the list.
TEST(AgentInProcess, MissingEventLogIsOmittedMissingListIsNamed) {
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok());
  std::string d = lim::testing::MakeTempDir();
  AgentOptions o;
  o.agent_id = "in-process";
  o.ak_dir = d + "/ak";
  o.list_path = d + "/list";
  o.event_log_path = d + "/no-event-log";
  o.control_socket = "";
  auto a = Agent::Create(o, std::move(*t));
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto missing_list = (*a)->Gather(Request(RandomBytes(16), 0));
  ASSERT_FALSE(missing_list.ok());
  EXPECT_EQ(HttpStatusFor(missing_list.status()), 503);
  EXPECT_NE(missing_list.status().message().find("measurement list"), std::string::npos);
  ASSERT_TRUE(WriteFileBytes(d + "/list", Bytes{}).ok());
  auto e = (*a)->Gather(Request(RandomBytes(16), 0));
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_FALSE(e->event_log.has_value());
  EXPECT_TRUE(e->list.records.empty());
  EXPECT_EQ(e->list.total_entries, 0u);
  EXPECT_NE(e->limd.detail.find("not checked"), std::string::npos);
  std::filesystem::remove_all(d);
}

// The agent and limd take turns at a one-client swtpm: a second Tpm (limd's role)
// extending PCR 16 in a loop while the agent makes quotes — neither side fails.
TEST(AgentInProcess, SharesTheOneClientSwtpmWithAnotherUser) {
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok());
  auto limd_tpm = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(limd_tpm.ok());
  std::string d = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(d + "/list", Bytes{}).ok());
  AgentOptions o;
  o.agent_id = "shared";
  o.ak_dir = d + "/ak";
  o.list_path = d + "/list";
  o.control_socket = "";
  auto a = Agent::Create(o, std::move(*t));
  ASSERT_TRUE(a.ok()) << a.status().message();
  std::atomic<bool> done{false};
  std::atomic<int> extends{0}, extend_errors{0};
  std::thread limd([&] {
    while (!done) {
      if (tpm::ExtendWithData(**limd_tpm, 16, Bytes{1, 2, 3}).ok()) ++extends;
      else ++extend_errors;
    }
  });
  int quotes = 0;
  for (int i = 0; i < 10; ++i) {
    auto e = (*a)->Gather(Request(RandomBytes(16), 0));
    EXPECT_TRUE(e.ok()) << e.status().message();
    quotes += e.ok();
  }
  done = true;
  limd.join();
  EXPECT_EQ(quotes, 10);
  EXPECT_GT(extends, 0);
  EXPECT_EQ(extend_errors, 0);
  std::filesystem::remove_all(d);
}

// limd's liveness comes from its control socket's status document (here a stand-in that
// serves one document per connection, as limd's does).
TEST(AgentInProcess, LimdLivenessFromTheControlSocket) {
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok());
  std::string d = lim::testing::MakeTempDir();
  std::string sock = d + "/limd.sock";
  auto addr = control::ControlSocketAddress(sock);
  ASSERT_TRUE(addr.ok());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  std::thread limd([fd] {
    control::StatusReport r;
    r.running = true;
    r.pid = 4242;
    r.entries = 77;
    r.tpm = "swtpm";
    std::string doc = r.ToJson().dump();
    int c = ::accept(fd, nullptr, nullptr);
    if (c >= 0) {
      (void)!::write(c, doc.data(), doc.size());
      ::close(c);
    }
  });
  ASSERT_TRUE(WriteFileBytes(d + "/list", Bytes{}).ok());
  AgentOptions o;
  o.agent_id = "in-process";
  o.ak_dir = d + "/ak";
  o.list_path = d + "/list";
  o.control_socket = sock;
  auto a = Agent::Create(o, std::move(*t));
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto e = (*a)->Gather(Request(RandomBytes(16), 0));
  limd.join();
  ::close(fd);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_TRUE(e->limd.running);
  EXPECT_EQ(e->limd.detail, "limd pid 4242, 77 entries, tpm swtpm");
  std::filesystem::remove_all(d);
}

// A swtpm manufactured by swtpm_setup with a private configuration (nothing under /etc or
// /var is touched) holds an RSA-2048 EK certificate in NV: the identity carries it.
TEST(AgentEkCertificate, IdentityCarriesTheNvCertificate) {
  std::string d = lim::testing::MakeTempDir();
  std::string conf =
      "cd " + ShellQuote(d) +
      " && mkdir -p state localca && printf 'statedir = %s/localca\\nsigningkey = %s/localca/signkey.pem\\n"
      "issuercert = %s/localca/issuercert.pem\\ncertserial = %s/localca/certserial\\n' \"$PWD\" \"$PWD\" \"$PWD\" \"$PWD\""
      " > swtpm-localca.conf && printf 'create_certs_tool = /usr/bin/swtpm_localca\\ncreate_certs_tool_config = "
      "%s/swtpm-localca.conf\\ncreate_certs_tool_options = /dev/null\\n' \"$PWD\" > swtpm_setup.conf && "
      "timeout 60 swtpm_setup --tpm2 --tpmstate \"$PWD/state\" --create-ek-cert --config \"$PWD/swtpm_setup.conf\" "
      "--pcr-banks sha256 --overwrite";
  auto made = lim::testing::Run("sh -c " + ShellQuote(conf));
  if (made.exit_code != 0) GTEST_SKIP() << "swtpm_setup failed: " << made.out << made.err;
  tpm::SwtpmConfig sc = tpm::testing::OtherSwtpmConfig(d);
  auto pid = tpm::SwtpmStart(sc);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  {
    auto t = tpm::OpenTpm(tpm::SwtpmTcti(sc));
    ASSERT_TRUE(t.ok());
    AgentOptions o;
    o.agent_id = "cert-host";
    o.ek = tpm::EkType::kRsa;
    o.ak_dir = d + "/ak";
    o.list_path = d + "/none";
    auto a = Agent::Create(o, std::move(*t));
    ASSERT_TRUE(a.ok()) << a.status().message();
    auto id = (*a)->Identity();
    ASSERT_TRUE(id.ok()) << id.status().message();
    ASSERT_TRUE(id->ek_certificate.has_value());
    const uint8_t* p = id->ek_certificate->data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(id->ek_certificate->size()));
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(p, id->ek_certificate->data() + id->ek_certificate->size());  // exactly one DER object
    // The certificate's key is the EK the identity names.
    auto ek = tpm::ParsePublic(id->ek_public);
    ASSERT_TRUE(ek.ok());
    auto ek_key = tpm::PublicKey::FromTpmPublic(*ek);
    ASSERT_TRUE(ek_key.ok());
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert), ek_key->pkey()), 1);
    X509_free(cert);
    // The ECC (P-256) index is empty on this TPM: no certificate, no error.
    auto t2 = tpm::OpenTpm(tpm::SwtpmTcti(sc));
    ASSERT_TRUE(t2.ok());
    auto none = (*t2)->ReadEkCertificate(tpm::EkType::kEcc);
    ASSERT_TRUE(none.ok()) << none.status().message();
    EXPECT_FALSE(none->has_value());
  }
  EXPECT_TRUE(tpm::SwtpmStop(sc).ok());
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace lim::agent
