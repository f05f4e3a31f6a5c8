// Replay of a measurement list into PCR values, and the template-digest check.
//
// BankDigester gives, for one bank, the digest the kernel extends for an entry: the bank's
// own hash over the template-digest input (kernels ≥ 5.8), or the SHA1 template digest
// zero-padded to the bank size (pre-5.8 kernels, and banks the kernel cannot compute,
// kernel-ima.md §4.2–4.3). Violations extend all-0xFF (§4.4). PcrReplayer keeps the running
// PCR values of one bank. Both are single-threaded objects: use one per thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/digest.h"
#include "crypto/pcr_set.h"
#include "ima/entry.h"

namespace lim::ima {

enum class ReplayMode { kPerBank, kPaddedSha1 };
const char* ReplayModeName(ReplayMode m);

class BankDigester {
 public:
  // bank: the PCR bank being replayed; list_bank: the bank of the digests stored in the list.
  static Result<BankDigester> Create(const HashAlgo& bank, const HashAlgo& list_bank, ReplayMode mode);

  const HashAlgo& bank() const { return bank_; }
  ReplayMode mode() const { return mode_; }
  // Writes bank().size bytes: what the kernel extends into this bank for e.
  void Compute(const Entry& e, uint8_t* out);

 private:
  BankDigester(const HashAlgo& bank, ReplayMode mode, std::optional<Hasher> h)
      : bank_(bank), mode_(mode), hasher_(std::move(h)) {}
  HashAlgo bank_;
  ReplayMode mode_;
  std::optional<Hasher> hasher_;  // bank hash (per-bank) or SHA1 (padded, non-SHA1 list)
  Bytes scratch_;
};

class PcrReplayer {
 public:
  static constexpr size_t kPcrs = 64;
  static Result<PcrReplayer> Create(const HashAlgo& bank);

  // PCR[pcr] = H(PCR[pcr] ‖ digest).
  void Extend(uint32_t pcr, const uint8_t* digest);
  const uint8_t* Value(uint32_t pcr) const { return values_.data() + pcr * bank_.size; }
  ByteView ValueView(uint32_t pcr) const { return {Value(pcr), bank_.size}; }
  uint64_t touched() const { return touched_; }  // bitmask of PCRs extended at least once
  const HashAlgo& bank() const { return bank_; }
  // Adds the touched PCRs to *set under the bank's TPM-style name.
  void ExportTo(PcrSet* set) const;

 private:
  PcrReplayer(const HashAlgo& bank, Hasher h) : bank_(bank), hasher_(std::move(h)), values_(kPcrs * bank.size) {}
  HashAlgo bank_;
  Hasher hasher_;
  Bytes values_;
  uint64_t touched_ = 0;
};

// Checks the stored template digest of every non-violation entry against the list bank's
// hash of its template-digest input.
class TemplateDigestChecker {
 public:
  static Result<TemplateDigestChecker> Create(const HashAlgo& list_bank);
  // False (and *computed filled) when the stored digest is wrong.
  bool Check(const Entry& e, Bytes* computed);

 private:
  explicit TemplateDigestChecker(Hasher h) : hasher_(std::move(h)) {}
  Hasher hasher_;
  Bytes scratch_;
  uint8_t buf_[64];
};

// Bank name (TPM style) → algorithm; unknown TPM ids ("tpm_alg_0x0099") are allowed and
// are replayed padded with a SHA1 digest of their size unknown: they are refused here.
Result<HashAlgo> BankAlgo(const std::string& bank_name);

}  // namespace lim::ima
