// TPM layer benchmarks against their floors, on a private swtpm (unix socket) started here:
//  - extend of PCR 16 in all allocated banks through lim's Tpm (connection held within a
//    burst) vs a raw Esys_PCR_Extend loop on one ESAPI context (the floor);
//  - the reconnect cost: lim releasing after every call vs raw TCTI+ESAPI setup per extend;
//  - quote checks per second at library level (CheckQuote, AK key parsed once) — compare
//    with `openssl speed ecdsap256` verify/s, run by bench/tpm.sh in the same run.
// Run: bench/tpm.sh   (or build/bench/tpm_bench directly)
#include <benchmark/benchmark.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <cstdlib>
#include <cstring>

#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace {

using namespace lim;
using namespace lim::tpm;

const std::string& Tcti() {
  static std::string tcti = [] {
    ::setenv("TSS2_LOG", "all+none", 0);
    char tmpl[] = "/tmp/lim-tpm-bench.XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    static SwtpmConfig c;
    c.state_dir = dir + "/state";
    c.run_dir = dir + "/run";
    c.create_ek_cert = false;
    c.die_with_parent = true;
    auto pid = SwtpmStart(c);
    if (!pid.ok()) {
      std::fprintf(stderr, "swtpm: %s\n", pid.status().message().c_str());
      std::exit(1);
    }
    std::atexit([] { (void)SwtpmStop(c); });
    return SwtpmTcti(c);
  }();
  return tcti;
}

std::map<uint16_t, Bytes> Digests() {
  return {{TPM2_ALG_SHA1, Bytes(20, 1)}, {TPM2_ALG_SHA256, Bytes(32, 2)}, {TPM2_ALG_SHA384, Bytes(48, 3)},
          {TPM2_ALG_SHA512, Bytes(64, 4)}};
}

TPML_DIGEST_VALUES RawDigests() {
  TPML_DIGEST_VALUES v{};
  for (const auto& [alg, d] : Digests()) {
    v.digests[v.count].hashAlg = alg;
    std::memcpy(&v.digests[v.count].digest, d.data(), d.size());
    ++v.count;
  }
  return v;
}

void BM_RawEsysExtendHeld(benchmark::State& state) {
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* ctx = nullptr;
  if (Tss2_TctiLdr_Initialize(Tcti().c_str(), &tcti) || Esys_Initialize(&ctx, tcti, nullptr)) {
    state.SkipWithError("cannot open swtpm");
    return;
  }
  TPML_DIGEST_VALUES v = RawDigests();
  for (auto _ : state) {
    if (Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + 16, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v) != TSS2_RC_SUCCESS) {
      state.SkipWithError("extend failed");
      break;
    }
  }
  Esys_Finalize(&ctx);
  Tss2_TctiLdr_Finalize(&tcti);
}
BENCHMARK(BM_RawEsysExtendHeld)->Unit(benchmark::kMicrosecond)->MinTime(2);

// Extends PCR 16 through lim's Tpm opened with options, once per iteration.
void RunLimExtend(benchmark::State& state, const OpenOptions& options) {
  auto tpm = OpenTpm(Tcti(), options);
  if (!tpm.ok()) {
    state.SkipWithError(tpm.status().message().c_str());
    return;
  }
  auto d = Digests();
  for (auto _ : state) {
    Status st = (*tpm)->Extend(16, d);
    if (!st.ok()) {
      state.SkipWithError(st.message().c_str());
      break;
    }
  }
}

void BM_LimExtendHeld(benchmark::State& state) { RunLimExtend(state, OpenOptions{}); }
BENCHMARK(BM_LimExtendHeld)->Unit(benchmark::kMicrosecond)->MinTime(2);

void BM_RawEsysExtendReconnect(benchmark::State& state) {
  TPML_DIGEST_VALUES v = RawDigests();
  for (auto _ : state) {
    TSS2_TCTI_CONTEXT* tcti = nullptr;
    ESYS_CONTEXT* ctx = nullptr;
    if (Tss2_TctiLdr_Initialize(Tcti().c_str(), &tcti) || Esys_Initialize(&ctx, tcti, nullptr) ||
        Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + 16, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v)) {
      state.SkipWithError("raw reconnect+extend failed");
      break;
    }
    Esys_Finalize(&ctx);
    Tss2_TctiLdr_Finalize(&tcti);
  }
}
BENCHMARK(BM_RawEsysExtendReconnect)->Unit(benchmark::kMicrosecond)->MinTime(2);

void BM_LimExtendReconnect(benchmark::State& state) {
  OpenOptions opt;
  opt.idle_release = std::chrono::milliseconds(0);  // release after every call
  RunLimExtend(state, opt);
}
BENCHMARK(BM_LimExtendReconnect)->Unit(benchmark::kMicrosecond)->MinTime(2);

struct QuoteFixture {
  PublicKey key;
  Quote quote;
  Bytes nonce;
};

const QuoteFixture& GetQuote() {
  static QuoteFixture* f = [] {
    auto tpm = OpenTpm(Tcti());
    if (!tpm.ok()) std::exit(1);
    auto ak = (*tpm)->CreateAk(EkType::kEcc, AkAlg::kEccP256);
    Bytes nonce(32, 0x5a);
    PcrSelection sel = {{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}};
    auto q = (*tpm)->MakeQuote(*ak, sel, nonce);
    auto key = PublicKey::FromTpmPublic(ak->pub);
    if (!ak.ok() || !q.ok() || !key.ok()) std::exit(1);
    return new QuoteFixture{std::move(*key), std::move(*q), nonce};
  }();
  return *f;
}

void BM_CheckQuoteEcdsaP256(benchmark::State& state) {
  const QuoteFixture& f = GetQuote();
  for (auto _ : state) {
    auto r = CheckQuote(f.key, f.quote.msg, f.quote.sig, f.nonce, f.quote.selection, f.quote.values);
    if (!r.ok()) {
      state.SkipWithError(r.status().message().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.counters["checks/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CheckQuoteEcdsaP256)->Unit(benchmark::kMicrosecond)->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
