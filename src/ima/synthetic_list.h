// Synthetic measurement lists for tests, benchmarks and demos: a boot_aggregate entry, then
// a deterministic mix of ima-ng, unsigned ima-sig, ima-buf and violation entries, written in
// one list bank, together with the PCR values a kernel would have extended (per-bank, every
// requested bank). Stateless; deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/hex.h"
#include "crypto/pcr_set.h"

namespace lim::ima {

struct SyntheticListSpec {
  uint64_t entries = 1000;       // including boot_aggregate
  uint32_t seed = 1;
  unsigned violation_every = 0;  // 0: none; else every Nth entry is a violation
  unsigned buf_every = 0;        // every Nth entry is ima-buf
  unsigned sig_every = 0;        // every Nth entry is an unsigned ima-sig
  std::string list_bank = "sha1";
  std::vector<std::string> pcr_banks = {"sha1", "sha256"};
  size_t max_path = 60;          // path length varies up to this
};

struct SyntheticList {
  Bytes list;
  PcrSet pcrs;  // PCR 10 of every pcr_bank after all entries
};

Result<SyntheticList> MakeSyntheticList(const SyntheticListSpec& spec);

}  // namespace lim::ima
