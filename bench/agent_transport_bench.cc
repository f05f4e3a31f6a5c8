// lim's attestation transport (src/net) and lim-agent's evidence round, in one process on
// loopback with mutual TLS 1.3 (ECDSA P-256, certificates made by openssl here):
//  - BM_Transport/mode: one ~2 KiB POST per round over (0) one persistent connection,
//    (1) a new connection per round resumed with a session ticket, (2) a new connection
//    with a full handshake per round. Reports rounds/s and CPU µs per round (client and
//    server together: both run in this process).
//  - BM_InterleavedTransport: the three modes taken in turn round by round (so machine
//    noise hits them alike), medians and p10/p90 spread of wall µs per round.
//  - BM_EvidenceRound/mode: a full evidence round against lim-agent's handlers (quote on a
//    private swtpm + 10 new list entries + JSON both ways), persistent (0) vs full
//    handshake (2), and BM_InterleavedEvidence for medians and spread.
// Run: build/bench/agent_transport_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <openssl/rand.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "agent/agent.h"
#include "attest/evidence_json.h"
#include "base/file.h"
#include "ima/synthetic_list.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/test_certs_test_util.h"
#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace {

using namespace lim;
using Clock = std::chrono::steady_clock;

struct Env {
  net::testing::TestPki pki;
  tpm::SwtpmConfig swtpm;
  std::unique_ptr<agent::Agent> agent;
  std::unique_ptr<net::HttpsServer> server;
  std::shared_ptr<net::TlsContext> client_tls;
  std::string body = std::string(2048, 'x');
  uint64_t list_entries = 1000;
};

[[noreturn]] void Die(const std::string& m) {
  std::fprintf(stderr, "agent_transport_bench: %s\n", m.c_str());
  std::exit(1);
}

Env& E() {
  static Env* env = [] {
    ::setenv("TSS2_LOG", "all+none", 0);
    auto* e = new Env;
    e->pki = net::testing::MakeTestPki();
    if (!e->pki.error.empty()) Die(e->pki.error);
    std::string dir = e->pki.dir;
    e->swtpm.state_dir = dir + "/state";
    e->swtpm.run_dir = dir + "/run";
    e->swtpm.create_ek_cert = false;
    e->swtpm.die_with_parent = true;
    if (auto pid = tpm::SwtpmStart(e->swtpm); !pid.ok()) Die(pid.status().message());
    auto t = tpm::OpenTpm(tpm::SwtpmTcti(e->swtpm));
    if (!t.ok()) Die(t.status().message());
    ima::SyntheticListSpec spec;
    spec.entries = e->list_entries;
    auto list = ima::MakeSyntheticList(spec);
    if (!list.ok() || !WriteFileBytes(dir + "/list", list->list).ok()) Die("list");
    agent::AgentOptions ao;
    ao.agent_id = "bench";
    ao.ak_dir = dir + "/ak";
    ao.list_path = dir + "/list";
    ao.event_log_path = "";
    ao.control_socket = "";
    auto a = agent::Agent::Create(ao, std::move(*t));
    if (!a.ok()) Die(a.status().message());
    e->agent = std::move(*a);
    auto stls = net::MakeServerTls({e->pki.server_cert, e->pki.server_key, e->pki.ca});
    if (!stls.ok()) Die(stls.status().message());
    auto s = net::HttpsServer::Create(*stls, {});
    if (!s.ok()) Die(s.status().message());
    e->server = std::move(*s);
    e->server->Route("POST", "/echo", [](const net::HttpRequest& r) {
      net::HttpResponse res;
      res.body = r.body;
      return res;
    });
    e->agent->RegisterRoutes(*e->server);
    if (auto st = e->server->Start(); !st.ok()) Die(st.message());
    auto ctls = net::MakeClientTls({e->pki.client_cert, e->pki.client_key, e->pki.ca});
    if (!ctls.ok()) Die(ctls.status().message());
    e->client_tls = *ctls;
    std::atexit([] {
      E().server->Stop();
      (void)tpm::SwtpmStop(E().swtpm);
      std::filesystem::remove_all(E().pki.dir);
    });
    return e;
  }();
  return *env;
}

const char* ModeName(int mode) { return mode == 0 ? "persistent" : mode == 1 ? "resumed" : "full"; }

std::unique_ptr<net::HttpsClient> Client(int mode) {
  net::ClientOptions o;
  o.port = E().server->port();
  o.keep_alive = mode == 0;
  o.resume_sessions = mode == 1;
  auto c = net::HttpsClient::Create(E().client_tls, o);
  if (!c.ok()) Die(c.status().message());
  return std::move(*c);
}

double CpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string EvidenceRequestBody() {
  attest::EvidenceRequest r;
  r.nonce.resize(32);
  RAND_bytes(r.nonce.data(), 32);
  r.pcrs = {{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}};
  r.list_from = E().list_entries - 10;
  return attest::EvidenceRequestToJson(r);
}

void Round(net::HttpsClient& c, bool evidence, benchmark::State& state) {
  auto r = evidence ? c.Request("POST", "/v1/evidence", EvidenceRequestBody()) : c.Request("POST", "/echo", E().body);
  if (!r.ok() || r->status != 200) {
    state.SkipWithError((r.ok() ? r->body : r.status().message()).c_str());
  }
}

void RunModes(benchmark::State& state, bool evidence) {
  int mode = static_cast<int>(state.range(0));
  auto c = Client(mode);
  Round(*c, evidence, state);  // the first handshake outside the timing
  double cpu0 = CpuSeconds();
  for (auto _ : state) Round(*c, evidence, state);
  double cpu = CpuSeconds() - cpu0;
  state.SetLabel(ModeName(mode));
  state.counters["rounds_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["cpu_us_per_round"] = cpu * 1e6 / static_cast<double>(state.iterations());
  auto st = c->stats();
  state.counters["handshakes"] = static_cast<double>(st.handshakes);
  state.counters["resumed"] = static_cast<double>(st.resumed);
}

void BM_Transport(benchmark::State& state) { RunModes(state, false); }
BENCHMARK(BM_Transport)->Arg(0)->Arg(1)->Arg(2)->UseRealTime();

void BM_EvidenceRound(benchmark::State& state) { RunModes(state, true); }
BENCHMARK(BM_EvidenceRound)->Arg(0)->Arg(2)->UseRealTime();

// Round by round in turn: persistent, resumed, full (or persistent, full for evidence).
void Interleaved(benchmark::State& state, bool evidence) {
  std::vector<int> modes = evidence ? std::vector<int>{0, 2} : std::vector<int>{0, 1, 2};
  std::vector<std::unique_ptr<net::HttpsClient>> clients;
  for (int m : modes) {
    clients.push_back(Client(m));
    Round(*clients.back(), evidence, state);
  }
  std::vector<std::vector<double>> us(modes.size());
  for (auto _ : state) {
    for (size_t i = 0; i < modes.size(); ++i) {
      auto t0 = Clock::now();
      Round(*clients[i], evidence, state);
      us[i].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  }
  for (size_t i = 0; i < modes.size(); ++i) {
    auto& v = us[i];
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
    std::string m = ModeName(modes[i]);
    state.counters[m + "_p50_us"] = at(0.5);
    state.counters[m + "_p10_us"] = at(0.1);
    state.counters[m + "_p90_us"] = at(0.9);
  }
}

void BM_InterleavedTransport(benchmark::State& state) { Interleaved(state, false); }
BENCHMARK(BM_InterleavedTransport)->UseRealTime()->Iterations(2000);

void BM_InterleavedEvidence(benchmark::State& state) { Interleaved(state, true); }
BENCHMARK(BM_InterleavedEvidence)->UseRealTime()->Iterations(200);

}  // namespace

BENCHMARK_MAIN();
