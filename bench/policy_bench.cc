// IMA policy decisions per second (PolicyMatcher::Decide) for the kernel's tcb policy and for
// a 200-rule policy, plus parsing a 1018-rule distribution policy. See docs/performance.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "base/file.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"
#include "ima/policy_match.h"

namespace {

using lim::ima::ImaHook;
using lim::ima::PolicyAccess;

std::vector<PolicyAccess> Accesses() {
  std::vector<PolicyAccess> v;
  auto add = [&](ImaHook f, uint32_t mask, uint64_t magic, uint32_t uid, const char* obj_type) {
    PolicyAccess a;
    a.func = f;
    a.mask = mask;
    a.fsmagic = magic;
    a.uid = a.euid = a.suid = uid;
    a.fsname = magic == 0x01021994 ? "tmpfs" : "ext4";
    a.lsm[lim::ima::kObjType] = obj_type;
    v.push_back(a);
  };
  add(ImaHook::kBprmCheck, 0x1, 0xef53, 1000, "bin_t");
  add(ImaHook::kFileCheck, 0x4, 0xef53, 0, "etc_t");
  add(ImaHook::kFileCheck, 0x4, 0xef53, 1000, "user_home_t");
  add(ImaHook::kMmapCheck, 0x1, 0xef53, 1000, "lib_t");
  add(ImaHook::kFileCheck, 0x6, 0x01021994, 0, "tmp_t");
  add(ImaHook::kModuleCheck, 0x4, 0xef53, 0, "modules_object_t");
  add(ImaHook::kFileCheck, 0x2, 0x9fa0, 0, "proc_t");
  add(ImaHook::kFileCheck, 0x4, 0xef53, 0, "type_150_t");
  return v;
}

// 200 rules in the shape of real policies: pseudo-filesystem exclusions for measure and
// appraise, a long list of SELinux-type exclusions, then the measure/appraise rules — so an
// ordinary file is decided only near the end.
std::string Policy200() {
  const char* kMagics[] = {"0x9fa0",     "0x62656572", "0x64626720", "0x1021994",  "0x1cd1",
                           "0x42494e4d", "0x73636673", "0xf97cff8c", "0x43415d53", "0x27e0eb",
                           "0x63677270", "0x6e736673", "0xde5e81e4"};
  std::string text;
  for (const char* m : kMagics) text += std::string("dont_measure fsmagic=") + m + "\n";
  for (const char* m : kMagics) text += std::string("dont_appraise fsmagic=") + m + "\n";
  int rules = 26;
  for (int i = 0; rules < 192; ++i, ++rules) text += "dont_measure obj_type=type_" + std::to_string(i) + "_t\n";
  text +=
      "measure func=MMAP_CHECK mask=MAY_EXEC\n"
      "measure func=BPRM_CHECK mask=MAY_EXEC\n"
      "measure func=FILE_CHECK mask=^MAY_READ euid=0\n"
      "measure func=FILE_CHECK mask=^MAY_READ uid=0\n"
      "measure func=MODULE_CHECK\n"
      "appraise func=BPRM_CHECK appraise_type=imasig\n"
      "appraise func=MODULE_CHECK appraise_type=imasig|modsig\n"
      "appraise fowner=0\n";
  return text;
}

void RunDecisions(benchmark::State& state, const lim::ima::Policy& policy) {
  lim::ima::PolicyMatcher matcher(policy);
  std::vector<PolicyAccess> accesses = Accesses();
  size_t i = 0;
  for (auto _ : state) {
    lim::ima::PolicyDecision d = matcher.Decide(accesses[i]);
    benchmark::DoNotOptimize(d);
    i = (i + 1) % accesses.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["rules"] = static_cast<double>(matcher.size());
}

void BM_DecideTcb(benchmark::State& state) {
  auto policy = lim::ima::BuiltinPolicy("tcb");
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  RunDecisions(state, *policy);
}
BENCHMARK(BM_DecideTcb);

void BM_DecideTcbAppraiseTcb(benchmark::State& state) {
  auto policy = lim::ima::BuiltinPolicy("tcb|appraise_tcb");
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  RunDecisions(state, *policy);
}
BENCHMARK(BM_DecideTcbAppraiseTcb);

void BM_Decide200Rules(benchmark::State& state) {
  auto policy = lim::ima::ParsePolicy(Policy200(), "policy200");
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  if (policy->rules.size() != 200) return state.SkipWithError("expected 200 rules");
  RunDecisions(state, *policy);
}
BENCHMARK(BM_Decide200Rules);

// `dont_measure uid>… fowner=…` rules (nothing but id ranges), then the 8 measure/appraise
// rules of Policy200(): an ordinary access is decided only at the end.
std::string IdRangePolicy(int exclusions) {
  std::string text;
  for (int i = 0; i < exclusions; ++i) {
    text += "dont_measure uid>" + std::to_string(20000 + i) + " fowner=" + std::to_string(i + 1) + "\n";
  }
  std::string tail = Policy200();
  return text + tail.substr(tail.find("measure func=MMAP_CHECK"));
}

// 200 such rules: a rule-by-rule walk tests all of them; the classifier does two range lookups.
void BM_Decide200RulesIdRanges(benchmark::State& state) {
  auto policy = lim::ima::ParsePolicy(IdRangePolicy(192), "policy200ids");
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  if (policy->rules.size() != 200) return state.SkipWithError("expected 200 rules");
  RunDecisions(state, *policy);
}
BENCHMARK(BM_Decide200RulesIdRanges);

// Beyond 4096 rules the matcher walks rule by rule (the classifier's bitsets would grow with
// the square of the policy): 5000 id-range rules.
void BM_Decide5000RulesWalk(benchmark::State& state) {
  auto policy = lim::ima::ParsePolicy(IdRangePolicy(4992), "policy5000");
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  lim::ima::PolicyMatcher matcher(*policy);
  if (matcher.uses_classifier()) return state.SkipWithError("expected the rule walk");
  RunDecisions(state, *policy);
}
BENCHMARK(BM_Decide5000RulesWalk);

std::string FixturePath(const char* rel) {
  const char* env = std::getenv("LIM_FIXTURES");
  return std::string(env ? env : "../shared/fixtures") + "/" + rel;
}

// rust-keylime's Fedora/RHEL policy: 1018 rules, nearly all `dont_measure obj_type=…`.
void BM_DecideKeylime1018Rules(benchmark::State& state) {
  auto policy = lim::ima::LoadPolicyFile(FixturePath("rust-keylime/ima-policy/ima-policy"));
  if (!policy.ok()) return state.SkipWithError(policy.status().message().c_str());
  RunDecisions(state, *policy);
}
BENCHMARK(BM_DecideKeylime1018Rules);

void BM_ParseKeylime1018Rules(benchmark::State& state) {
  auto text = lim::ReadFileText(FixturePath("rust-keylime/ima-policy/ima-policy"));
  if (!text.ok()) return state.SkipWithError(text.status().message().c_str());
  for (auto _ : state) {
    auto policy = lim::ima::ParsePolicy(*text, "keylime");
    benchmark::DoNotOptimize(policy);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
}
BENCHMARK(BM_ParseKeylime1018Rules);

}  // namespace

BENCHMARK_MAIN();
