#include "crypto/private_key.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <cstring>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/public_key.h"

namespace lim {

namespace {

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

EVP_PKEY* ParseKey(ByteView data) {
  const char* pass = std::getenv("LIM_KEY_PASSWORD");
  void* u = pass ? const_cast<char*>(pass) : nullptr;
  BIO* bio = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, u);
  BIO_free(bio);
  if (k) return k;
  const unsigned char* p = data.data();
  return d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(data.size()));
}

}  // namespace

Result<PrivateKey> PrivateKey::Load(const std::string& key_path, const std::string& cert_path) {
  LIM_ASSIGN_OR_RETURN(Bytes data, ReadFileBounded(key_path, kMaxKeyFileSize, "a private key file"));
  EVP_PKEY* raw = ParseKey(data);
  OPENSSL_cleanse(data.data(), data.size());
  if (!raw) return Status::InvalidArgument(key_path + ": not a private key (" + OpensslError() + ")");
  std::shared_ptr<EVP_PKEY> key(raw, EVP_PKEY_free);
  uint32_t id = KeyIdFromPublicKey(raw);
  if (!cert_path.empty()) {
    LIM_ASSIGN_OR_RETURN(std::vector<PublicKey> certs, PublicKey::LoadFile(cert_path));
    const PublicKey* match = nullptr;
    for (const auto& c : certs) {
      if (c.Matches(raw)) {
        match = &c;
        break;
      }
    }
    if (!match) return Status::InvalidArgument(cert_path + ": no certificate for the key in " + key_path);
    id = match->key_id();
  }
  return PrivateKey(std::move(key), id);
}

Result<Bytes> PrivateKey::SignDigest(const HashAlgo& algo, ByteView digest) const {
  LIM_ASSIGN_OR_RETURN(const evp_md_st* md, FetchMd(algo));
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_.get(), nullptr);
  if (!ctx) return Status::Internal("EVP_PKEY_CTX_new: " + OpensslError());
  Bytes sig;
  size_t len = 0;
  bool ok = EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
            EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_PKEY_sign(ctx, sig.data(), &len, digest.data(), digest.size()) == 1;
    sig.resize(len);
  }
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return Status::InvalidArgument(std::string("signing with ") + algo.kernel_name + ": " + OpensslError());
  return sig;
}

}  // namespace lim
