// Digests through OpenSSL 3. Hasher is one incremental hash (not thread-safe; one per
// thread); Digest() is the one-shot form. EVP_MD objects are fetched once per algorithm and
// cached process-wide (fetching is the expensive part of a short hash).
#pragma once

#include <memory>

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
  Hasher(const HashAlgo& algo, const evp_md_st* md, evp_md_ctx_st* ctx) : algo_(algo), md_(md), ctx_(ctx) {}
  HashAlgo algo_;
  const evp_md_st* md_;
  evp_md_ctx_st* ctx_;
};

Result<Bytes> Digest(const HashAlgo& algo, ByteView data);

}  // namespace lim
