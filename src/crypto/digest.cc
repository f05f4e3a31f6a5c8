// The direct SHA-1/SHA-2 path uses OpenSSL's low-level functions, deprecated in 3.0 (see
// digest.h for why).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto/digest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

static_assert(sizeof(SHA512_CTX) <= 224 && sizeof(SHA256_CTX) <= 224 && sizeof(SHA_CTX) <= 224);

namespace {
bool EvpOnly() {
  static const bool only = [] {
    const char* v = std::getenv("LIM_OPENSSL_EVP_ONLY");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return only;
}
}  // namespace

Result<Hasher> Hasher::Create(const HashAlgo& algo) {
  LIM_ASSIGN_OR_RETURN(const EVP_MD* md, FetchMd(algo));
  Direct direct = Direct::kNone;
  if (!EvpOnly()) {
    switch (algo.kernel_id) {
      case 2: direct = Direct::kSha1; break;
      case 7: direct = Direct::kSha224; break;
      case 4: direct = Direct::kSha256; break;
      case 5: direct = Direct::kSha384; break;
      case 6: direct = Direct::kSha512; break;
      default: break;
    }
  }
  EVP_MD_CTX* ctx = nullptr;
  if (direct == Direct::kNone) {
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex2(ctx, md, nullptr) != 1) {
      EVP_MD_CTX_free(ctx);
      return Status::Internal(std::string("EVP_DigestInit failed for ") + algo.kernel_name);
    }
  }
  Hasher h(algo, md, ctx, direct);
  h.Reset();
  return h;
}

Hasher::Hasher(Hasher&& o) noexcept : algo_(o.algo_), md_(o.md_), ctx_(o.ctx_), direct_(o.direct_) {
  std::memcpy(state_, o.state_, sizeof state_);
  o.ctx_ = nullptr;
}

Hasher& Hasher::operator=(Hasher&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(ctx_);
    algo_ = o.algo_;
    md_ = o.md_;
    ctx_ = o.ctx_;
    direct_ = o.direct_;
    std::memcpy(state_, o.state_, sizeof state_);
    o.ctx_ = nullptr;
  }
  return *this;
}

Hasher::~Hasher() { EVP_MD_CTX_free(ctx_); }

void Hasher::Reset() {
  switch (direct_) {
    case Direct::kSha1: SHA1_Init(reinterpret_cast<SHA_CTX*>(state_)); return;
    case Direct::kSha224: SHA224_Init(reinterpret_cast<SHA256_CTX*>(state_)); return;
    case Direct::kSha256: SHA256_Init(reinterpret_cast<SHA256_CTX*>(state_)); return;
    case Direct::kSha384: SHA384_Init(reinterpret_cast<SHA512_CTX*>(state_)); return;
    case Direct::kSha512: SHA512_Init(reinterpret_cast<SHA512_CTX*>(state_)); return;
    case Direct::kNone: EVP_DigestInit_ex2(ctx_, md_, nullptr); return;
  }
}

void Hasher::Update(ByteView data) {
  switch (direct_) {
    case Direct::kSha1: SHA1_Update(reinterpret_cast<SHA_CTX*>(state_), data.data(), data.size()); return;
    case Direct::kSha224:
    case Direct::kSha256: SHA256_Update(reinterpret_cast<SHA256_CTX*>(state_), data.data(), data.size()); return;
    case Direct::kSha384:
    case Direct::kSha512: SHA512_Update(reinterpret_cast<SHA512_CTX*>(state_), data.data(), data.size()); return;
    case Direct::kNone: EVP_DigestUpdate(ctx_, data.data(), data.size()); return;
  }
}

void Hasher::Final(uint8_t* out) {
  switch (direct_) {
    case Direct::kSha1: SHA1_Final(out, reinterpret_cast<SHA_CTX*>(state_)); break;
    case Direct::kSha224: SHA224_Final(out, reinterpret_cast<SHA256_CTX*>(state_)); break;
    case Direct::kSha256: SHA256_Final(out, reinterpret_cast<SHA256_CTX*>(state_)); break;
    case Direct::kSha384: SHA384_Final(out, reinterpret_cast<SHA512_CTX*>(state_)); break;
    case Direct::kSha512: SHA512_Final(out, reinterpret_cast<SHA512_CTX*>(state_)); break;
    case Direct::kNone: {
      unsigned int n = 0;
      EVP_DigestFinal_ex(ctx_, out, &n);
      break;
    }
  }
  Reset();
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

namespace lim {

Result<Bytes> DigestFd(const HashAlgo& algo, int fd, const std::string& what) {
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(algo));
  Bytes buf(1 << 20);
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError(what + ": read: " + std::strerror(errno));
    if (n == 0) break;
    h.Update(ByteView(buf.data(), static_cast<size_t>(n)));
  }
  return h.Final();
}

}  // namespace lim
