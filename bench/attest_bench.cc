// The verifier's round cost with simulated agents (lim's in-memory software TPM: real
// TPMS_ATTEST quotes signed by an ECC P-256 AK, sha1 and sha256 banks, a sha1 list):
//   BM_VerifyRound        one round = quote check + incremental replay of 10 new entries in
//                         two banks + 10 policy lookups (policy of 10,000 paths);
//   BM_QuoteCheckOnly     the quote check alone (signature, nonce, PCR digest);
//   BM_PolicyLookups10    the 10 policy lookups alone;
//   BM_EvidenceFromJson   one round's evidence (10 new entries) parsed from its JSON body;
//   BM_AgentStateToJson   the state a round stores, serialized;
//   BM_ReplayFromZero / BM_ReplayIncremental/N   a 100,000-entry list verified from entry 0
//                         versus the last 10 entries of an N-entry list (1,000, 100,000,
//                         1,000,000) from the saved state, split into quote, replay, policy.
//   BM_StoreRecordRound/T one round's store write (the new state, no findings) on SQLite in
//                         a file of /tmp, 2,000 enrolled agents, from T threads at once (the
//                         verifier's round threads): what a round pays after Verify.
// Evidence is made before timing: only Verify is measured. Run: build/bench/attest_bench
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attest/evidence_json.h"
#include "attest/round.h"
#include "attest/store.h"
#include "attest/runtime_policy.h"
#include "crypto/digest.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "tpm/quote.h"
#include "tpm/tpm.h"

namespace {

using namespace lim;
using namespace lim::attest;

Bytes Digest256(const std::string& s) {
  auto h = Hasher::Create(Sha256Algo());
  h->Update(AsBytes(s));
  return h->Final();
}

// A host on the software TPM: appends records (and extends PCR 10), makes evidence.
class SimHost {
 public:
  SimHost() : tpm_(tpm::OpenSoftwareTpm()) {
    banks_ = *tpm_->AllocatedBanks();
    ak_ = *tpm_->CreateAk(tpm::EkType::kEcc, tpm::AkAlg::kEccP256);
    ak_pub_ = std::make_unique<tpm::PublicKey>(std::move(tpm::PublicKey::FromTpmPublic(ak_.pub)).value());
    auto v = tpm_->ReadPcrs({{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}});
    auto h = Hasher::Create(Sha256Algo());
    for (int i = 0; i <= 9; ++i) h->Update((*v)[TPM2_ALG_SHA256][i]);
    Append(ima::ImaNgRecord(Sha256Algo(), h->Final(), "boot_aggregate"));
  }
  void Append(const ima::Record& r) {
    offsets_.push_back(list_.size());
    (void)ima::ListWriter(Sha1Algo(), ByteOrder::kLittle).Append(r, &list_);
    std::map<uint16_t, Bytes> d;
    for (uint16_t alg : banks_) d[alg] = *ima::TemplateDigestOf(r, *HashAlgoByTpmAlg(alg), ByteOrder::kLittle);
    (void)tpm_->Extend(10, d);
  }
  void AppendFile(uint64_t i) {
    Append(ima::ImaNgRecord(Sha256Algo(), Digest256("content " + std::to_string(i % 5000)),
                            "/usr/bin/tool" + std::to_string(i % 5000)));
  }
  Evidence Gather(const EvidenceRequest& req, ByteView nonce) {
    Evidence ev;
    tpm::PcrSelection sel;
    for (const auto& b : req.pcrs) sel.push_back({b.alg, std::set<int>(b.pcrs.begin(), b.pcrs.end())});
    auto q = tpm_->MakeQuote(ak_, sel, nonce);
    ev.quote = q->msg;
    ev.signature = q->sig;
    ev.pcrs = q->values;
    ev.nonce = Bytes(nonce.begin(), nonce.end());
    ev.list.first_index = req.list_from;
    ev.list.total_entries = offsets_.size();
    if (req.list_from < offsets_.size()) {
      ev.list.records.assign(list_.begin() + static_cast<ptrdiff_t>(offsets_[req.list_from]), list_.end());
    }
    ev.boot_id = "bench";
    ev.limd.running = true;
    return ev;
  }
  const tpm::PublicKey& ak() const { return *ak_pub_; }
  const std::vector<uint16_t>& banks() const { return banks_; }
  size_t entries() const { return offsets_.size(); }

 private:
  std::unique_ptr<tpm::Tpm> tpm_;
  std::vector<uint16_t> banks_;
  tpm::AkKey ak_;
  std::unique_ptr<tpm::PublicKey> ak_pub_;
  Bytes list_;
  std::vector<size_t> offsets_;
};

RuntimePolicy BenchPolicy() {
  RuntimePolicy p;
  for (int i = 0; i < 10000; ++i) {
    p.AllowPath("/usr/bin/tool" + std::to_string(i), Digest256("content " + std::to_string(i % 5000)));
  }
  (void)p.AddExclude("/tmp/.*");
  return p;
}

struct RoundInput {
  AgentState state;
  Evidence ev;
  Bytes nonce;
};

// 200 consecutive rounds of 10 new entries each, with the state before each round.
struct Rounds {
  SimHost host;
  RuntimePolicy policy = BenchPolicy();
  std::vector<RoundInput> rounds;
  Rounds() {
    for (uint64_t i = 0; i < 100; ++i) host.AppendFile(i);
    AgentState st;
    uint64_t next = 100;
    for (int r = 0; r < 201; ++r) {
      Bytes nonce(20, static_cast<uint8_t>(r));
      Evidence ev = host.Gather(NextRequest(st, host.banks()), nonce);
      RoundResult res = Verify(host.ak(), st, ev, policy, nonce);
      if (!res.attested) std::abort();
      if (r > 0) rounds.push_back({st, std::move(ev), nonce});
      st = res.state;
      for (int k = 0; k < 10; ++k) host.AppendFile(next++);
    }
  }
};

Rounds& GetRounds() {
  static Rounds* r = new Rounds;
  return *r;
}

void BM_VerifyRound(benchmark::State& state) {
  Rounds& r = GetRounds();
  size_t i = 0;
  for (auto _ : state) {
    const RoundInput& in = r.rounds[i++ % r.rounds.size()];
    RoundResult res = Verify(r.host.ak(), in.state, in.ev, r.policy, in.nonce);
    if (!res.attested || res.verified_entries != 10) state.SkipWithError("round did not attest 10 entries");
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyRound);

void BM_QuoteCheckOnly(benchmark::State& state) {
  Rounds& r = GetRounds();
  size_t i = 0;
  for (auto _ : state) {
    const RoundInput& in = r.rounds[i++ % r.rounds.size()];
    auto info = tpm::ParseAttest(in.ev.quote);
    auto q = tpm::CheckQuote(r.host.ak(), in.ev.quote, in.ev.signature, in.nonce, info->selection, in.ev.pcrs);
    if (!q.ok()) state.SkipWithError("quote");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QuoteCheckOnly);

// The two JSON steps of every round around Verify: the evidence's parse (the push body of
// one round, 10 new entries) and the new state's serialization for the store write.
void BM_EvidenceFromJson(benchmark::State& state) {
  Rounds& r = GetRounds();
  const std::string body = EvidenceToJson(r.rounds[0].ev);
  for (auto _ : state) {
    auto ev = EvidenceFromJson(body);
    if (!ev.ok()) state.SkipWithError("parse");
    benchmark::DoNotOptimize(ev);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_EvidenceFromJson);

void BM_AgentStateToJson(benchmark::State& state) {
  Rounds& r = GetRounds();
  const AgentState& st = r.rounds.back().state;
  for (auto _ : state) benchmark::DoNotOptimize(AgentStateToJson(st));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AgentStateToJson);

void BM_PolicyLookups10(benchmark::State& state) {
  Rounds& r = GetRounds();
  const RoundInput& in = r.rounds[0];
  Bytes list = in.ev.list.records;
  LearnedKeys none;
  for (auto _ : state) {
    auto rd = ima::ListReader::FromBytes(list);
    ima::Entry e;
    int n = 0;
    while (*(*rd)->Next(&e)) {
      if (r.policy.Check(e, none, nullptr)) state.SkipWithError("policy");
      ++n;
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PolicyLookups10);

// A list of `length` entries and a quote over all of it.
struct LongList {
  SimHost host;
  RuntimePolicy policy = BenchPolicy();
  Evidence from_zero, incremental;
  AgentState at_end_minus_10;
  Bytes nonce = Bytes(20, 7);
  explicit LongList(uint64_t length) {
    // The state after verifying the first length - 10 entries, 100,000 at a time (a tail
    // stays under VerifyOptions::max_list_bytes).
    Bytes n0(20, 1);
    AgentState st;
    for (uint64_t i = 1; i < length - 10; ++i) {
      host.AppendFile(i);
      if (i % 100000 == 0 || i == length - 11) {
        Evidence part = host.Gather(NextRequest(st, host.banks()), n0);
        RoundResult r = Verify(host.ak(), st, part, policy, n0);
        if (!r.attested || r.state.next_index != i + 1) std::abort();
        st = r.state;
      }
    }
    at_end_minus_10 = st;
    for (uint64_t i = length - 10; i < length; ++i) host.AppendFile(i);
    if (length <= 100000) from_zero = host.Gather(NextRequest(AgentState{}, host.banks()), nonce);
    EvidenceRequest req = NextRequest(at_end_minus_10, host.banks());
    incremental = host.Gather(req, nonce);
  }
};

LongList& GetLongList(uint64_t length = 100000) {
  static std::map<uint64_t, LongList*> lists;
  LongList*& l = lists[length];
  if (!l) l = new LongList(length);
  return *l;
}

void BM_ReplayFromZero(benchmark::State& state) {
  LongList& l = GetLongList();
  for (auto _ : state) {
    RoundResult r = Verify(l.host.ak(), AgentState{}, l.from_zero, l.policy, l.nonce);
    if (r.verified_entries != 100000) state.SkipWithError("not all entries verified");
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(BM_ReplayFromZero)->Unit(benchmark::kMillisecond);

// The last 10 entries of a list of range(0) entries: the cost must not grow with the list
// (the state keeps PCR 10 at the last verified entry; nothing before it is read).
void BM_ReplayIncremental(benchmark::State& state) {
  LongList& l = GetLongList(static_cast<uint64_t>(state.range(0)));
  RoundCpu cpu;
  VerifyOptions vo;
  vo.cpu = &cpu;
  for (auto _ : state) {
    RoundResult r = Verify(l.host.ak(), l.at_end_minus_10, l.incremental, l.policy, l.nonce, vo);
    if (r.verified_entries != 10) state.SkipWithError("not 10 entries verified");
  }
  double n = static_cast<double>(state.iterations());
  state.counters["quote_us"] = static_cast<double>(cpu.quote_ns) / 1e3 / n;
  state.counters["replay_us"] = static_cast<double>(cpu.list_ns - cpu.policy_ns) / 1e3 / n;
  state.counters["policy_us"] = static_cast<double>(cpu.policy_ns) / 1e3 / n;
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_ReplayIncremental)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);

// 2,000 enrolled agents in a fresh SQLite file (WAL, as lim-verifier opens it); each
// iteration writes the state a real round produced (Rounds above) for the next agent.
struct StoreFixture {
  std::string dir;
  std::unique_ptr<Store> store;
  AgentState state;
  std::atomic<uint64_t> next{0};
  static constexpr int kAgents = 2000;
  StoreFixture() {
    char tmpl[] = "/tmp/lim_store_bench.XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    auto s = OpenSqliteStore(dir + "/v.db");
    if (!s.ok()) std::abort();
    store = std::move(*s);
    state = GetRounds().rounds.back().state;
    for (int i = 0; i < kAgents; ++i) {
      AgentRecord a;
      a.id = "agent" + std::to_string(i);
      a.identity.ek_public = Bytes(300, 1);
      a.identity.ak_public = Bytes(90, 2);
      a.state = state;
      if (!store->PutAgent(a).ok()) std::abort();
    }
  }
  ~StoreFixture() {
    store.reset();
    (void)std::system(("rm -rf " + dir).c_str());
  }
};

void BM_StoreRecordRound(benchmark::State& state) {
  static StoreFixture* f = nullptr;
  if (state.thread_index() == 0) f = new StoreFixture;
  // Google Benchmark starts the timed loop of all threads together, after thread 0's set-up.
  for (auto _ : state) {
    uint64_t n = f->next.fetch_add(1);
    Status st = f->store->RecordRound("agent" + std::to_string(n % StoreFixture::kAgents), f->state,
                                      AgentStatus::kAttested, static_cast<int64_t>(n), {});
    if (!st.ok()) state.SkipWithError(st.message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete f;
    f = nullptr;
  }
}
BENCHMARK(BM_StoreRecordRound)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
