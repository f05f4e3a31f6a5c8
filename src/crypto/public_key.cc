#include "crypto/public_key.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/bytes.h"
#include "base/file.h"
#include "crypto/digest.h"

namespace lim {

uint32_t KeyIdFromPublicKey(const EVP_PKEY* pkey) {
  X509_PUBKEY* xpk = nullptr;
  if (X509_PUBKEY_set(&xpk, const_cast<EVP_PKEY*>(pkey)) != 1) return 0;
  const unsigned char* bits = nullptr;
  int len = 0;
  uint32_t id = 0;
  if (X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, xpk) == 1 && len > 0) {
    auto d = Digest(Sha1Algo(), ByteView(bits, static_cast<size_t>(len)));
    if (d.ok()) id = LoadU32(d->data() + 16, ByteOrder::kBig);
  }
  X509_PUBKEY_free(xpk);
  return id;
}

namespace {

std::string SubjectOf(const X509* cert) {
  if (!cert) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string s(p, static_cast<size_t>(n > 0 ? n : 0));
  BIO_free(bio);
  return s;
}

}  // namespace

Result<PublicKey> PublicKey::Wrap(evp_pkey_st* pkey, const void* cert_ptr, std::string origin) {
  auto* cert = static_cast<const X509*>(cert_ptr);
  uint32_t id = 0;
  const ASN1_OCTET_STRING* skid = cert ? X509_get0_subject_key_id(const_cast<X509*>(cert)) : nullptr;
  if (skid && ASN1_STRING_length(skid) >= 4) {
    id = LoadU32(ASN1_STRING_get0_data(skid) + ASN1_STRING_length(skid) - 4, ByteOrder::kBig);
  } else {
    id = KeyIdFromPublicKey(pkey);
  }
  PublicKey k(std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free), id, std::move(origin), SubjectOf(cert));
  if (cert) {
    // The certificate's DER: what the kernel's KEY_CHECK records for a key (ima-buf).
    int len = i2d_X509(const_cast<X509*>(cert), nullptr);
    if (len > 0) {
      k.der_.resize(static_cast<size_t>(len));
      unsigned char* out = k.der_.data();
      i2d_X509(const_cast<X509*>(cert), &out);
    }
  }
  return k;
}

std::string PublicKey::description() const {
  switch (EVP_PKEY_get_base_id(key_.get())) {
    case EVP_PKEY_RSA:
      return "rsa-" + std::to_string(EVP_PKEY_get_bits(key_.get()));
    case EVP_PKEY_EC: {
      char group[80] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key_.get(), "group", group, sizeof group, &len) != 1) return "ec";
      return std::string("ec-") + group;
    }
    default:
      return EVP_PKEY_get0_type_name(key_.get()) ? EVP_PKEY_get0_type_name(key_.get()) : "unknown";
  }
}

bool PublicKey::Matches(const evp_pkey_st* pkey) const { return EVP_PKEY_eq(key_.get(), pkey) == 1; }

Result<PublicKey> PublicKey::FromDer(ByteView der, const std::string& origin) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!cert) return Status::InvalidArgument(origin + ": not a DER X.509 certificate");
  EVP_PKEY* pkey = X509_get_pubkey(cert);
  if (!pkey) {
    X509_free(cert);
    return Status::InvalidArgument(origin + ": certificate has no usable public key");
  }
  auto k = Wrap(pkey, cert, origin);
  X509_free(cert);
  return k;
}

Result<PublicKey> PublicKey::FromSpkiDer(ByteView der, const std::string& origin) {
  const unsigned char* p = der.data();
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!pkey || p != der.data() + der.size()) {
    EVP_PKEY_free(pkey);
    return Status::InvalidArgument(origin + ": not a DER SubjectPublicKeyInfo");
  }
  return Wrap(pkey, nullptr, origin);
}

Bytes PublicKey::SpkiDer() const {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key_.get(), &der);
  if (n <= 0) return {};
  Bytes out(der, der + n);
  OPENSSL_free(der);
  return out;
}

Result<std::vector<PublicKey>> PublicKey::LoadFile(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(Bytes data, ReadFileBounded(path, kMaxKeyFileSize, "a certificate file"));
  std::vector<PublicKey> keys;
  std::string_view text = AsChars(data);
  if (text.find("-----BEGIN") == std::string_view::npos) {
    LIM_ASSIGN_OR_RETURN(PublicKey k, FromDer(data, path));
    keys.push_back(std::move(k));
    return keys;
  }
  BIO* bio = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    EVP_PKEY* pkey = X509_get_pubkey(cert);
    if (pkey) {
      auto k = Wrap(pkey, cert, path);
      if (k.ok()) keys.push_back(std::move(k).value());
    }
    X509_free(cert);
  }
  BIO_free(bio);
  if (keys.empty()) {
    bio = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
    EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (pkey) {
      LIM_ASSIGN_OR_RETURN(PublicKey k, Wrap(pkey, nullptr, path));
      keys.push_back(std::move(k));
    }
  }
  if (keys.empty()) return Status::InvalidArgument(path + ": no certificate or public key found");
  return keys;
}

bool PublicKey::VerifyDigest(const HashAlgo& algo, ByteView digest, ByteView sig) const {
  auto md = FetchMd(algo);
  if (!md.ok()) return false;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_.get(), nullptr);
  if (!ctx) return false;
  bool ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, *md) == 1 &&
            EVP_PKEY_verify(ctx, sig.data(), sig.size(), digest.data(), digest.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

}  // namespace lim
