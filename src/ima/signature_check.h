// Checks the ima-sig / ima-sigv2 / ima-modsig `sig` field of a list entry against trusted
// public keys, on the file digest the entry records (evmctl ima_measurement --verify-sig
// semantics, without touching local files): v2 signs the digest itself, v3 (type 0x06)
// signs H(ima_file_id). Read-only after construction; Check is safe to call concurrently.
#pragma once

#include <vector>

#include "crypto/public_key.h"
#include "ima/ima_signature.h"
#include "ima/verify.h"

namespace lim::ima {

// Verifies sig over signed_digest (the file digest for v2, VeritySignedDigest for v3) with
// every key whose id is the signature's: kGood with *used set to the key that verified,
// kUnknownKey (detail: the id in hex) when no key has the id, else kBad.
SignatureVerdict VerifySignature(const SignatureV2& sig, ByteView signed_digest, const std::vector<PublicKey>& keys,
                                 const PublicKey** used = nullptr);

class EntrySignatureChecker {
 public:
  explicit EntrySignatureChecker(std::vector<PublicKey> keys) : keys_(std::move(keys)) {}
  SignatureVerdict Check(const Entry& e) const;

 private:
  std::vector<PublicKey> keys_;
};

}  // namespace lim::ima
