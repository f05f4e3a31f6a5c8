// boot_aggregate from replayed PCRs, exactly as the kernel computes it (kernel-ima.md §6,
// ima_calc_boot_aggregate): H_bank(PCR0‖…‖PCR7) for SHA1, H_bank(PCR0‖…‖PCR9) for every
// other bank (v5.8+); the bank is chosen kernel-style. Pure functions; thread-safe.
#pragma once

#include <string>

#include "base/status.h"
#include "crypto/hash_algo.h"
#include "tcg/pcr_bank.h"

namespace lim::tcg {

// The bank the kernel would use: the first bank whose algorithm is ima_hash, else the
// (last) SHA256 bank, else the first SHA1 bank; kNotFound when none applies.
Result<HashAlgo> ChooseBootAggregateBank(const PcrBanks& banks, const HashAlgo& ima_hash);

// The digest over the bank's PCRs (0–7 for sha1, 0–9 otherwise). pre_5_8 uses PCR 0–7 for
// every bank (kernels before v5.8).
Result<Bytes> BootAggregate(const PcrBanks& banks, const HashAlgo& bank, bool pre_5_8 = false);

}  // namespace lim::tcg
