// PcrSet: PCR values by bank and index, and its text forms: the PCR-set JSON of cli.md
// ({"sha256":{"10":"7fac…"}}), evmctl's `--pcrs` text (`PCR-NN: <hex>` lines),
// tpm2_pcrread's YAML output, and raw binary (consecutive digests from PCR 0). A value type;
// no thread rules of its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

namespace lim {

// The largest PCR file read: every form is a few KiB (the JSON of 8 banks × 64 PCRs of 64-byte
// values is about 70 KiB), so 1 MiB is generous and /dev/zero is refused at once.
constexpr size_t kMaxPcrFileSize = 1 << 20;

class PcrSet {
 public:
  // Bank names are TPM-style ("sha1", "sha256", "sm3_256", "tpm_alg_0xNNNN").
  using Bank = std::map<uint32_t, Bytes>;

  void Set(const std::string& bank, uint32_t pcr, Bytes value) { banks_[bank][pcr] = std::move(value); }
  const Bytes* Get(const std::string& bank, uint32_t pcr) const;
  const std::map<std::string, Bank>& banks() const { return banks_; }
  bool empty() const { return banks_.empty(); }
  // Adds every value of other (other wins on conflict).
  void Merge(const PcrSet& other);

  // {"sha1":{"0":"…","10":"…"},…}, banks in sha1, sha256, sha384, sha512, sm3_256, other order.
  std::string ToJson() const;
  // evmctl's `--pcrs` text for one bank: "PCR-00: <hex>" … "PCR-23: <hex>", every line present
  // (evmctl skips lines out of sequence), missing PCRs as zeros.
  std::string ToEvmctlText(const std::string& bank) const;

  // Parses any supported form. default_bank applies to formats that do not name their bank
  // (evmctl text: sha1 unless given; binary: required). `origin` names the file in errors.
  static Result<PcrSet> Parse(std::string_view text_or_binary, const std::string& default_bank,
                              const std::string& origin);
  // Reads a `--pcrs [ALG,]FILE` argument (at most kMaxPcrFileSize bytes).
  static Result<PcrSet> Load(const std::string& arg);

 private:
  std::map<std::string, Bank> banks_;
};

// Canonical bank name for user input ("sm3" → "sm3_256", "SHA256" → "sha256").
Result<std::string> CanonicalBankName(std::string_view name);
// Orders bank names the way lim prints them.
bool BankNameLess(const std::string& a, const std::string& b);

}  // namespace lim
