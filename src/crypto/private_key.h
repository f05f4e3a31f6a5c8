// A private key for making IMA/EVM signatures (`lim sign`, `lim evm sign`): loaded from a
// PEM or DER file (PKCS#8, traditional RSA/EC), optionally with the certificate whose
// Subject Key Identifier names it. SignDigest produces what the kernel verifies for
// signature_v2_hdr (kernel-ima.md §10.2): RSA PKCS#1 v1.5 with the DigestInfo of the hash,
// ECDSA as a DER Ecdsa-Sig-Value — OpenSSL's EVP_PKEY_sign with the signature digest set.
// Immutable after loading; signing from several threads at once is safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

struct evp_pkey_st;

namespace lim {

class PrivateKey {
 public:
  static constexpr size_t kMaxKeyFileSize = 1 << 20;
  // key_path: the private key. cert_path (may be empty): a certificate whose key id (last 4
  // bytes of its SKID) names the signatures; it must hold the key's public half. Without it
  // the key id is derived from the public key as evmctl does (kernel-ima.md §10.4).
  // LIM_KEY_PASSWORD, when set, decrypts an encrypted PEM key.
  static Result<PrivateKey> Load(const std::string& key_path, const std::string& cert_path = {});

  uint32_t key_id() const { return key_id_; }
  // Signs an already-computed digest made with algo.
  Result<Bytes> SignDigest(const HashAlgo& algo, ByteView digest) const;

 private:
  PrivateKey(std::shared_ptr<evp_pkey_st> key, uint32_t id) : key_(std::move(key)), key_id_(id) {}
  std::shared_ptr<evp_pkey_st> key_;
  uint32_t key_id_ = 0;
};

}  // namespace lim
