// HashAlgo: the one table that maps between the kernel's hash ids and names (enum
// hash_algo, include/uapi/linux/hash_info.h), TPM 2.0 algorithm ids (TPM_ALG_*) and names,
// and OpenSSL digest names. Immutable static data: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct evp_md_st;

namespace lim {

// HASH_ALGO__LAST: kernel hash ids are 0 … 22, and every one is in AllHashAlgos().
inline constexpr int kKernelHashAlgoCount = 23;

struct HashAlgo {
  int kernel_id;             // enum hash_algo value, -1 if the kernel has none
  const char* kernel_name;   // d-ng prefix and per-bank file suffix ("sm3", "sha3-256")
  uint16_t tpm_alg;          // TPM_ALG_* id, 0 if the TPM has none
  const char* tpm_name;      // bank name in PCR sets ("sha256", "sm3_256")
  const char* openssl_name;  // name for EVP_MD_fetch; nullptr if OpenSSL cannot compute it
  size_t size;               // digest bytes

  bool operator==(const HashAlgo& o) const { return kernel_id == o.kernel_id && tpm_alg == o.tpm_alg; }
};

// Every algorithm the kernel or the TPM can name (computable or not).
const std::vector<HashAlgo>& AllHashAlgos();

const HashAlgo& Sha1Algo();
const HashAlgo& Sha256Algo();

// Accepts kernel names, TPM names, common aliases ("sm3-256", "sm3_256", "SHA256",
// "md_gost12_256"); case-insensitive.
Result<HashAlgo> HashAlgoByName(std::string_view name);
Result<HashAlgo> HashAlgoByKernelId(int id);
// Exact kernel name ("sha256", "sm3"), no aliases, no allocation: the hot path of list
// decoding. nullptr when unknown.
const HashAlgo* HashAlgoByKernelName(std::string_view name);
Result<HashAlgo> HashAlgoByTpmAlg(uint16_t alg);

// True when OpenSSL in this process can compute it (checked once, lazily).
bool HashAlgoAvailable(const HashAlgo& algo);

// EVP_MD_fetch that falls back to OpenSSL's legacy provider (md4, whirlpool…). Caller frees.
::evp_md_st* FetchMdWithLegacy(const char* openssl_name);

// Bank name used in PCR sets: the TPM name, or "tpm_alg_0xNNNN" for unknown TPM ids.
std::string TpmBankName(uint16_t tpm_alg);

}  // namespace lim
