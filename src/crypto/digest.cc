#include "crypto/digest.h"

#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <mutex>

namespace lim {

Result<const EVP_MD*> FetchMd(const HashAlgo& algo) {
  static std::mutex mu;
  static std::array<const EVP_MD*, 32> cache{};
  if (!algo.openssl_name || algo.kernel_id < 0 || static_cast<size_t>(algo.kernel_id) >= cache.size()) {
    return Status::Unsupported(std::string("hash algorithm ") + algo.kernel_name + " is not provided by OpenSSL");
  }
  std::lock_guard<std::mutex> lock(mu);
  const EVP_MD*& slot = cache[static_cast<size_t>(algo.kernel_id)];
  if (!slot) {
    EVP_MD* md = FetchMdWithLegacy(algo.openssl_name);
    if (!md) {
      return Status::Unsupported(std::string("hash algorithm ") + algo.kernel_name +
                                 " is not available in this OpenSSL (" + algo.openssl_name + ")");
    }
    slot = md;  // kept for the life of the process
  }
  return slot;
}

Result<Hasher> Hasher::Create(const HashAlgo& algo) {
  LIM_ASSIGN_OR_RETURN(const EVP_MD* md, FetchMd(algo));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex2(ctx, md, nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return Status::Internal(std::string("EVP_DigestInit failed for ") + algo.kernel_name);
  }
  return Hasher(algo, md, ctx);
}

Hasher::Hasher(Hasher&& o) noexcept : algo_(o.algo_), md_(o.md_), ctx_(o.ctx_) { o.ctx_ = nullptr; }

Hasher& Hasher::operator=(Hasher&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(ctx_);
    algo_ = o.algo_;
    md_ = o.md_;
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

Hasher::~Hasher() { EVP_MD_CTX_free(ctx_); }

void Hasher::Reset() { EVP_DigestInit_ex2(ctx_, md_, nullptr); }

void Hasher::Update(ByteView data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }

void Hasher::Final(uint8_t* out) {
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_, out, &n);
  EVP_DigestInit_ex2(ctx_, md_, nullptr);
}

Bytes Hasher::Final() {
  Bytes out(algo_.size);
  Final(out.data());
  return out;
}

Result<Bytes> Digest(const HashAlgo& algo, ByteView data) {
  LIM_ASSIGN_OR_RETURN(const EVP_MD* md, FetchMd(algo));
  Bytes out(algo.size);
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, md, nullptr) != 1) {
    return Status::Internal(std::string("EVP_Digest failed for ") + algo.kernel_name);
  }
  return out;
}

}  // namespace lim
