// boot_aggregate (kernel-ima.md §6): the digest IMA records first, over PCRs 0–7 for SHA1
// and PCRs 0–9 for any other bank, and the kernel's choice of bank. Stateless.
#pragma once

#include <string>
#include <vector>

#include "base/hex.h"
#include "crypto/hash_algo.h"
#include "crypto/pcr_set.h"

namespace lim::ima {

// H_bank(PCR0 ‖ … ‖ PCR7) for sha1, … ‖ PCR8 ‖ PCR9 otherwise (kernels ≥ 5.8; pre_5_8: PCR
// 0–7 in every bank). Missing PCRs are an error naming the bank and index.
Result<Bytes> BootAggregate(const PcrSet& pcrs, const HashAlgo& bank, bool pre_5_8 = false);

// The kernel's bank choice: the first allocated bank equal to ima_hash; else the (last)
// SHA256 bank; else the first SHA1 bank. Error if none applies.
Result<HashAlgo> ChooseBootAggregateBank(const std::vector<HashAlgo>& allocated, const HashAlgo& ima_hash);

}  // namespace lim::ima
