// Public keys for IMA/EVM signature checks: loaded from X.509 certificates (PEM or DER) or
// PEM public keys, with the 4-byte key id the kernel and evmctl use (kernel-ima.md §10.4:
// last 4 bytes of the Subject Key Identifier, else bytes 16..19 of SHA1 over the
// subjectPublicKey bits). Verification goes through OpenSSL's EVP_PKEY_verify (RSA
// PKCS#1 v1.5 with DigestInfo, ECDSA DER). A loaded key is immutable; verifying from several
// threads at once is safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

struct evp_pkey_st;

namespace lim {

class PublicKey {
 public:
  // A certificate or public key file; PEM files may hold several certificates.
  // At most kMaxKeyFileSize bytes: a certificate is a few KiB and a bundle of every CA
  // certificate a distribution ships is about 200 KiB.
  static constexpr size_t kMaxKeyFileSize = 4 << 20;
  static Result<std::vector<PublicKey>> LoadFile(const std::string& path);
  // A DER certificate.
  static Result<PublicKey> FromDer(ByteView der, const std::string& origin = "<der>");
  // A DER SubjectPublicKeyInfo (no certificate): keylime's verification keys.
  static Result<PublicKey> FromSpkiDer(ByteView der, const std::string& origin = "<spki>");
  // This key as DER SubjectPublicKeyInfo.
  Bytes SpkiDer() const;

  uint32_t key_id() const { return key_id_; }
  const std::string& origin() const { return origin_; }
  // The certificate's subject (one line, RFC 2253), empty for a bare public key.
  const std::string& subject() const { return subject_; }
  // The certificate in DER (what the kernel's KEY_CHECK records); empty for a bare key.
  const Bytes& der() const { return der_; }
  // "rsa-2048", "ec-prime256v1", …
  std::string description() const;
  // Whether pkey (e.g. a private key) has this public key.
  bool Matches(const evp_pkey_st* pkey) const;
  // Verifies sig over an already-computed digest made with algo.
  bool VerifyDigest(const HashAlgo& algo, ByteView digest, ByteView sig) const;

 private:
  PublicKey(std::shared_ptr<evp_pkey_st> key, uint32_t id, std::string origin, std::string subject)
      : key_(std::move(key)), key_id_(id), origin_(std::move(origin)), subject_(std::move(subject)) {}
  static Result<PublicKey> Wrap(evp_pkey_st* pkey, const void* cert, std::string origin);
  std::shared_ptr<evp_pkey_st> key_;
  uint32_t key_id_ = 0;
  std::string origin_;
  std::string subject_;
  Bytes der_;
};

// The key id evmctl derives without a certificate: bytes 16..19 (big-endian) of SHA1 over the
// subjectPublicKey BIT STRING contents (calc_keyid_v2; equals an RFC 5280 method-1 SKID).
uint32_t KeyIdFromPublicKey(const evp_pkey_st* pkey);

}  // namespace lim
