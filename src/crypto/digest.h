// Digests through OpenSSL 3. Hasher is one incremental hash (not thread-safe; one per
// thread); Digest() is the one-shot form. EVP_MD objects are fetched once per algorithm and
// cached process-wide (fetching is the expensive part of a short hash).
//
// SHA-1 and SHA-2 run through OpenSSL's own SHA*_Init/Update/Final: OpenSSL 3.0's EVP frees
// and re-allocates the provider context on every re-initialisation, which costs a quarter
// of a 64-byte SHA-256 — and a measurement list is millions of short hashes. Same OpenSSL
// code, no provider round trip. Set LIM_OPENSSL_EVP_ONLY=1 (e.g. to force a FIPS provider)
// to use EVP for everything.
#pragma once

#include <memory>
#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

struct evp_md_st;
struct evp_md_ctx_st;

namespace lim {

// The cached EVP_MD for algo, or an error if OpenSSL here cannot compute it.
Result<const evp_md_st*> FetchMd(const HashAlgo& algo);

class Hasher {
 public:
  static Result<Hasher> Create(const HashAlgo& algo);
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  ~Hasher();

  const HashAlgo& algo() const { return algo_; }
  void Reset();
  void Update(ByteView data);
  // Writes algo().size bytes to out and resets for reuse.
  void Final(uint8_t* out);
  Bytes Final();

 private:
  enum class Direct : uint8_t { kNone, kSha1, kSha224, kSha256, kSha384, kSha512 };
  Hasher(const HashAlgo& algo, const evp_md_st* md, evp_md_ctx_st* ctx, Direct direct)
      : algo_(algo), md_(md), ctx_(ctx), direct_(direct) {}
  HashAlgo algo_;
  const evp_md_st* md_;
  evp_md_ctx_st* ctx_;  // EVP path only
  Direct direct_;
  alignas(16) unsigned char state_[224];  // SHA_CTX / SHA256_CTX / SHA512_CTX
};

Result<Bytes> Digest(const HashAlgo& algo, ByteView data);

}  // namespace lim

namespace lim {

// Digest of everything read from fd from its current offset to the end (read(2) in 1 MiB
// chunks, EINTR retried). what names the file in errors.
Result<Bytes> DigestFd(const HashAlgo& algo, int fd, const std::string& what);

}  // namespace lim
