#include "tcg/boot_aggregate.h"

#include "crypto/digest.h"

namespace lim::tcg {

Result<HashAlgo> ChooseBootAggregateBank(const PcrBanks& banks, const HashAlgo& ima_hash) {
  for (const auto& b : banks.banks()) {
    if (ima_hash.tpm_alg != 0 && b.tpm_alg == ima_hash.tpm_alg) return ima_hash;
  }
  if (banks.FindAlg(Sha256Algo().tpm_alg)) return Sha256Algo();
  if (banks.FindAlg(Sha1Algo().tpm_alg)) return Sha1Algo();
  return Status::NotFound("no PCR bank usable for boot_aggregate (need ima_hash, sha256 or sha1)");
}

Result<Bytes> BootAggregate(const PcrBanks& banks, const HashAlgo& bank, bool pre_5_8) {
  const PcrBank* b = banks.FindAlg(bank.tpm_alg);
  if (!b) return Status::NotFound(std::string("no ") + bank.tpm_name + " PCR bank");
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(bank));
  int last = (bank.tpm_alg == Sha1Algo().tpm_alg || pre_5_8) ? 7 : 9;
  for (int i = 0; i <= last; ++i) h.Update(b->pcrs[i]);
  return h.Final();
}

}  // namespace lim::tcg
