#include "crypto/hash_algo.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <mutex>

namespace lim {

namespace {

// Kernel ids from hash_info.h; TPM ids from the TCG algorithm registry.
const std::vector<HashAlgo> kAlgos = {
    {0, "md4", 0, "md4", "MD4", 16},
    {1, "md5", 0, "md5", "MD5", 16},
    {2, "sha1", 0x0004, "sha1", "SHA1", 20},
    {3, "rmd160", 0, "rmd160", "RIPEMD160", 20},
    {4, "sha256", 0x000B, "sha256", "SHA256", 32},
    {5, "sha384", 0x000C, "sha384", "SHA384", 48},
    {6, "sha512", 0x000D, "sha512", "SHA512", 64},
    {7, "sha224", 0, "sha224", "SHA224", 28},
    {8, "rmd128", 0, "rmd128", nullptr, 16},
    {9, "rmd256", 0, "rmd256", nullptr, 32},
    {10, "rmd320", 0, "rmd320", nullptr, 40},
    {11, "wp256", 0, "wp256", nullptr, 32},
    {12, "wp384", 0, "wp384", nullptr, 48},
    {13, "wp512", 0, "wp512", "WHIRLPOOL", 64},
    {14, "tgr128", 0, "tgr128", nullptr, 16},
    {15, "tgr160", 0, "tgr160", nullptr, 20},
    {16, "tgr192", 0, "tgr192", nullptr, 24},
    {17, "sm3", 0x0012, "sm3_256", "SM3", 32},
    {18, "streebog256", 0, "streebog256", "md_gost12_256", 32},
    {19, "streebog512", 0, "streebog512", "md_gost12_512", 64},
    {20, "sha3-256", 0x0027, "sha3_256", "SHA3-256", 32},
    {21, "sha3-384", 0x0028, "sha3_384", "SHA3-384", 48},
    {22, "sha3-512", 0x0029, "sha3_512", "SHA3-512", 64},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

::evp_md_st* FetchMdWithLegacy(const char* openssl_name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, openssl_name, nullptr);
  if (md) return md;
  // MD4, RIPEMD-160 (before 3.0.7), Whirlpool live in OpenSSL's legacy provider: load it
  // (with the default provider, which an explicit load would otherwise displace) once.
  // The providers stay loaded for the life of the process (kept reachable here).
  static std::once_flag once;
  static OSSL_PROVIDER* legacy = nullptr;
  static OSSL_PROVIDER* fallback = nullptr;
  std::call_once(once, [] {
    legacy = OSSL_PROVIDER_load(nullptr, "legacy");
    fallback = OSSL_PROVIDER_load(nullptr, "default");
  });
  if (!legacy || !fallback) return nullptr;
  ERR_clear_error();
  return EVP_MD_fetch(nullptr, openssl_name, "provider=legacy");
}

const std::vector<HashAlgo>& AllHashAlgos() { return kAlgos; }
const HashAlgo& Sha1Algo() { return kAlgos[2]; }
const HashAlgo& Sha256Algo() { return kAlgos[4]; }

Result<HashAlgo> HashAlgoByName(std::string_view name) {
  std::string n = Lower(name);
  if (n == "sm3-256" || n == "sm3_256") n = "sm3";
  if (n == "md_gost12_256") n = "streebog256";
  if (n == "md_gost12_512") n = "streebog512";
  if (n == "sha3_256") n = "sha3-256";
  if (n == "sha3_384") n = "sha3-384";
  if (n == "sha3_512") n = "sha3-512";
  if (n == "sha-1") n = "sha1";
  for (const auto& a : kAlgos) {
    if (n == a.kernel_name) return a;
  }
  if (n.rfind("tpm_alg_", 0) == 0) {
    unsigned v = 0;
    if (std::sscanf(n.c_str() + 8, "%x", &v) == 1) return HashAlgoByTpmAlg(static_cast<uint16_t>(v));
  }
  return Status::Unsupported("unknown hash algorithm '" + std::string(name) + "'");
}

const HashAlgo* HashAlgoByKernelName(std::string_view name) {
  for (const auto& a : kAlgos) {
    std::string_view k = a.kernel_name;
    if (k.size() == name.size() && k == name) return &a;
  }
  return nullptr;
}

Result<HashAlgo> HashAlgoByKernelId(int id) {
  for (const auto& a : kAlgos) {
    if (a.kernel_id == id) return a;
  }
  return Status::Unsupported("unknown kernel hash algorithm id " + std::to_string(id));
}

Result<HashAlgo> HashAlgoByTpmAlg(uint16_t alg) {
  for (const auto& a : kAlgos) {
    if (a.tpm_alg != 0 && a.tpm_alg == alg) return a;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "unknown TPM hash algorithm 0x%04x", alg);
  return Status::Unsupported(buf);
}

bool HashAlgoAvailable(const HashAlgo& algo) {
  static std::once_flag once;
  static std::array<bool, 32> avail{};
  std::call_once(once, [] {
    for (size_t i = 0; i < kAlgos.size(); ++i) {
      if (!kAlgos[i].openssl_name) continue;
      EVP_MD* md = FetchMdWithLegacy(kAlgos[i].openssl_name);
      avail[i] = md != nullptr && static_cast<size_t>(EVP_MD_get_size(md)) == kAlgos[i].size;
      EVP_MD_free(md);
    }
  });
  if (algo.kernel_id < 0 || static_cast<size_t>(algo.kernel_id) >= kAlgos.size()) return false;
  return avail[static_cast<size_t>(algo.kernel_id)];
}

std::string TpmBankName(uint16_t tpm_alg) {
  auto a = HashAlgoByTpmAlg(tpm_alg);
  if (a.ok()) return a->tpm_name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "tpm_alg_0x%04x", tpm_alg);
  return buf;
}

}  // namespace lim
