// Checks the ima-sig / ima-sigv2 / ima-modsig `sig` field of a list entry against trusted
// public keys, on the file digest the entry records (evmctl ima_measurement --verify-sig
// semantics, without touching local files): v2 signs the digest itself, v3 (type 0x06)
// signs H(ima_file_id). Read-only after construction; Check is safe to call concurrently.
#pragma once

#include <vector>

#include "crypto/public_key.h"
#include "ima/verify.h"

namespace lim::ima {

class EntrySignatureChecker {
 public:
  explicit EntrySignatureChecker(std::vector<PublicKey> keys) : keys_(std::move(keys)) {}
  SignatureVerdict Check(const Entry& e) const;

 private:
  std::vector<PublicKey> keys_;
};

}  // namespace lim::ima
