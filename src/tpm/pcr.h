// PCR selections and PCR values as lim passes them around: a bank is a TPM hash algorithm
// id (TPM_ALG_*), a selection maps banks (in order) to PCR indices, and PcrValues maps banks
// to index→value. Also the text forms used by the CLI: "0-10,14" index lists and the PCR-set
// JSON ({"sha1":{"0":"hex"}}). Plain values; no thread rules of their own.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/pcr_set.h"

namespace lim::tpm {

constexpr int kMaxPcrs = 24;

// One bank's selected PCRs. Order of banks matters for quotes (the TPM hashes the selected
// values bank by bank, in the order of the selection).
struct PcrBankSelection {
  uint16_t alg = 0;
  std::set<int> pcrs;
  bool operator==(const PcrBankSelection&) const = default;
};
using PcrSelection = std::vector<PcrBankSelection>;

// bank alg → PCR index → value.
using PcrValues = std::map<uint16_t, std::map<int, Bytes>>;

// "0-23", "0,1,7", "0-7,10". Each index must be < kMaxPcrs.
Result<std::set<int>> ParsePcrList(std::string_view text);
// "sha256" / "sha1" / "sm3_256" / "0x000b" → TPM_ALG id (must be a hash the TPM knows).
Result<uint16_t> ParseBankName(std::string_view name);

// {"sha1":{"0":"hex",...},...} with bank names from TpmBankName().
// The PCR-set JSON is crypto/pcr_set.h's; these convert to and from it.
PcrSet ToPcrSet(const PcrValues& values);
std::string PcrValuesToJson(const PcrValues& values);
Result<PcrValues> PcrValuesFromJson(std::string_view json);

// The selection covered by values (banks in ascending alg order).
PcrSelection SelectionOf(const PcrValues& values);

// Human form "sha256:0,1,10+sha1:0" as tpm2-tools writes selections.
std::string SelectionToString(const PcrSelection& sel);

}  // namespace lim::tpm
