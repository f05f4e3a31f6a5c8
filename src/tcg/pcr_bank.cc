#include "tcg/pcr_bank.h"


#include "crypto/hash_algo.h"

namespace lim::tcg {

PcrBank& PcrBanks::Add(uint16_t tpm_alg, size_t digest_size) {
  PcrBank b;
  b.tpm_alg = tpm_alg;
  b.name = TpmBankName(tpm_alg);
  b.digest_size = digest_size;
  for (int i = 0; i < kNumPcrs; ++i) b.pcrs[i].assign(digest_size, (i >= 17 && i <= 22) ? 0xFF : 0x00);
  banks_.push_back(std::move(b));
  return banks_.back();
}

const PcrBank* PcrBanks::FindAlg(uint16_t tpm_alg) const {
  for (const auto& b : banks_) {
    if (b.tpm_alg == tpm_alg) return &b;
  }
  return nullptr;
}

PcrBank* PcrBanks::FindAlg(uint16_t tpm_alg) {
  for (auto& b : banks_) {
    if (b.tpm_alg == tpm_alg) return &b;
  }
  return nullptr;
}

const PcrBank* PcrBanks::Find(std::string_view name) const {
  for (const auto& b : banks_) {
    if (b.name == name) return &b;
  }
  auto algo = HashAlgoByName(name);
  if (algo.ok() && algo->tpm_alg != 0) return FindAlg(algo->tpm_alg);
  return nullptr;
}

PcrSet PcrBanks::ToPcrSet() const {
  PcrSet set;
  for (const auto& b : banks_) {
    for (int i = 0; i < kNumPcrs; ++i) set.Set(b.name, static_cast<uint32_t>(i), b.pcrs[static_cast<size_t>(i)]);
  }
  return set;
}

std::string PcrBanks::ToJson(bool all_pcrs) const {
  PcrSet set;
  for (const auto& b : banks_) {
    for (int i = 0; i < kNumPcrs; ++i) {
      if (!all_pcrs && !(b.extended & (1u << i))) continue;
      set.Set(b.name, static_cast<uint32_t>(i), b.pcrs[static_cast<size_t>(i)]);
    }
  }
  return set.ToJson();
}

}  // namespace lim::tcg
