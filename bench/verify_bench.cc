// `lim verify` at library level against the digest floor: the four OpenSSL digests every
// entry of a two-bank verify needs (SHA1 and SHA256 of the template data, one SHA1 and one
// SHA256 extend; violations skip the template hashes), with the same reused EVP contexts.
// The list is the 200,000-entry synthetic mix of bench/make_list.cc (ima-ng, unsigned
// ima-sig, ima-buf, violations). Run: build/bench/verify_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/file.h"
#include "crypto/digest.h"
#include "ima/list_reader.h"
#include "ima/synthetic_list.h"
#include "ima/verify.h"

namespace {

using namespace lim;

struct Fixture {
  std::string path;
  PcrSet pcrs;
  std::vector<Bytes> data;  // template data per entry (empty for violations)
};

const Fixture& GetFixture() {
  static Fixture f = [] {
    Fixture x;
    ima::SyntheticListSpec spec;
    spec.entries = 200000;
    spec.violation_every = 97;
    spec.buf_every = 11;
    spec.sig_every = 5;
    auto l = ima::MakeSyntheticList(spec);
    x.path = "/tmp/lim-verify-bench-" + std::to_string(::getpid()) + ".list";
    (void)WriteFileBytes(x.path, l->list);
    static std::string cleanup = x.path;
    std::atexit([] { ::unlink(cleanup.c_str()); });
    x.pcrs = l->pcrs;
    auto r = ima::ListReader::FromBytes(l->list);
    ima::Entry e;
    while (*(*r)->Next(&e)) {
      x.data.emplace_back(e.violation ? Bytes{} : Bytes(e.template_data.begin(), e.template_data.end()));
    }
    return x;
  }();
  return f;
}

void BM_DigestFloor(benchmark::State& state) {
  const Fixture& f = GetFixture();
  auto sha1 = std::move(Hasher::Create(Sha1Algo())).value();
  auto sha256 = std::move(Hasher::Create(Sha256Algo())).value();
  uint8_t pcr1[20] = {}, pcr256[32] = {}, d1[20], d256[32];
  for (auto _ : state) {
    for (const Bytes& data : f.data) {
      if (data.empty()) {
        std::memset(d1, 0xff, 20);
        std::memset(d256, 0xff, 32);
      } else {
        sha1.Update(data);
        sha1.Final(d1);
        sha256.Update(data);
        sha256.Final(d256);
      }
      sha1.Update({pcr1, 20});
      sha1.Update({d1, 20});
      sha1.Final(pcr1);
      sha256.Update({pcr256, 32});
      sha256.Update({d256, 32});
      sha256.Final(pcr256);
    }
    benchmark::DoNotOptimize(pcr1);
    benchmark::DoNotOptimize(pcr256);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.data.size()));
}
BENCHMARK(BM_DigestFloor)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

// Decoding alone (streaming read, record and field validation), for the overhead budget.
void BM_Decode(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    auto r = ima::ListReader::Open(f.path);
    ima::Entry e;
    uint64_t n = 0;
    while (*(*r)->Next(&e)) ++n;
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.data.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

void BM_Verify(benchmark::State& state) {
  const Fixture& f = GetFixture();
  ima::VerifyOptions o;
  o.pcrs = f.pcrs;
  o.parallel = state.range(0) == 2;
  for (auto _ : state) {
    auto r = ima::VerifyList(f.path, o);
    if (!r.ok() || !r->matched) state.SkipWithError("verify failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.data.size()));
}
BENCHMARK(BM_Verify)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
