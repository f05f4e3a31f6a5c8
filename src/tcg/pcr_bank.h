// PcrBanks: the values of PCRs 0–23 in each bank (sha1, sha256, sm3_256, tpm_alg_0xNNNN…),
// as a replay of an event log produces them. A small value type owned by tcg; the lead's
// ima PCR-set type will absorb it. Not thread-safe while being written; const use is.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/hex.h"
#include "crypto/pcr_set.h"

namespace lim::tcg {

constexpr int kNumPcrs = 24;

struct PcrBank {
  uint16_t tpm_alg = 0;
  std::string name;  // TPM-style bank name ("sha1", "sm3_256", "tpm_alg_0x0099")
  size_t digest_size = 0;
  std::array<Bytes, kNumPcrs> pcrs;
  uint32_t extended = 0;  // bit i set when PCR i was extended (or initialised by locality)
};

class PcrBanks {
 public:
  // Adds a bank with the platform reset values: PCRs 17–22 all 0xFF, the others zero.
  PcrBank& Add(uint16_t tpm_alg, size_t digest_size);
  // Finds a bank by TPM id or by any accepted name ("sm3", "sm3_256", "SHA256").
  const PcrBank* FindAlg(uint16_t tpm_alg) const;
  PcrBank* FindAlg(uint16_t tpm_alg);
  const PcrBank* Find(std::string_view name) const;
  const std::vector<PcrBank>& banks() const { return banks_; }
  bool empty() const { return banks_.empty(); }

  // The PCR-set JSON of cli.md: {"sha1":{"0":"hex",…},…}. all_pcrs=false lists only the
  // PCRs the log extended.
  std::string ToJson(bool all_pcrs = true) const;
  // The same values as the PcrSet that lim's other commands take (all 24 PCRs per bank).
  PcrSet ToPcrSet() const;

 private:
  std::vector<PcrBank> banks_;
};

}  // namespace lim::tcg
