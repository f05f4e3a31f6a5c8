// libFuzzer target for every PCR file `lim verify --pcrs` and `lim boot-aggregate --pcrs`
// accept (crypto::PcrSet::Parse: PCR-set JSON, evmctl PCR-NN text, tpm2_pcrread YAML, raw
// binary with ALG,FILE), with and without a default bank, and their round trips: a parsed
// set written as JSON must parse back to the same set. (tpm2-tools' binary `quote.pcrs` and
// `tpm checkquote --pcrs` are in tpm_quote_fuzz.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/pcr_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  PcrSet merged;
  for (const char* bank : {"", "sha1", "sha256", "sha384", "sm3"}) {
    auto set = PcrSet::Parse(in, bank, "fuzz");
    if (!set.ok()) {
      if (set.status().message().empty()) std::abort();
      continue;
    }
    std::string json = set->ToJson();
    auto again = PcrSet::Parse(json, "", "json");
    if (!again.ok() || again->banks() != set->banks()) std::abort();
    for (const auto& [name, values] : set->banks()) {
      (void)set->ToEvmctlText(name);
      (void)CanonicalBankName(name);
    }
    merged.Merge(*set);
  }
  (void)merged.ToJson();
  return 0;
}
