#include "ima/boot_aggregate.h"

#include "crypto/digest.h"

namespace lim::ima {

Result<Bytes> BootAggregate(const PcrSet& pcrs, const HashAlgo& bank, bool pre_5_8) {
  std::string name = bank.tpm_alg ? TpmBankName(bank.tpm_alg) : bank.tpm_name;
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(bank));
  const uint32_t last = (bank == Sha1Algo() || pre_5_8) ? 7 : 9;
  for (uint32_t i = 0; i <= last; ++i) {
    const Bytes* v = pcrs.Get(name, i);
    if (!v) return Status::InvalidArgument("boot_aggregate needs " + name + " PCR " + std::to_string(i) + ", which is missing");
    if (v->size() != bank.size) return Status::InvalidArgument(name + " PCR " + std::to_string(i) + " has the wrong size");
    h.Update(*v);
  }
  return h.Final();
}

Result<HashAlgo> ChooseBootAggregateBank(const std::vector<HashAlgo>& allocated, const HashAlgo& ima_hash) {
  for (const auto& a : allocated) {
    if (a == ima_hash) return a;
  }
  const HashAlgo* sha256 = nullptr;
  for (const auto& a : allocated) {
    if (a == Sha256Algo()) sha256 = &a;
  }
  if (sha256) return *sha256;
  for (const auto& a : allocated) {
    if (a == Sha1Algo()) return a;
  }
  return Status::Unsupported("no allocated bank can carry boot_aggregate (need ima_hash, sha256 or sha1)");
}

}  // namespace lim::ima
