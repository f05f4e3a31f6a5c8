// The IMA/EVM signature header (signature_v2_hdr, kernel-ima.md §10.2): type, version, hash
// algorithm, big-endian key id and signature size, then the signature. Parsing validates
// every length the way the kernel does. Stateless.
#pragma once

#include <cstdint>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

namespace lim::ima {

constexpr uint8_t kXattrDigest = 0x01;
constexpr uint8_t kEvmXattrHmac = 0x02;
constexpr uint8_t kXattrDigsig = 0x03;
constexpr uint8_t kXattrDigestNg = 0x04;
constexpr uint8_t kEvmXattrPortableDigsig = 0x05;
constexpr uint8_t kXattrVeritySig = 0x06;

struct SignatureV2 {
  uint8_t type = 0;
  uint8_t version = 0;
  HashAlgo algo{};
  uint32_t key_id = 0;
  ByteView signature;
};

// Parses a whole xattr/sig-field value carrying a v2 (or v3) signature.
Result<SignatureV2> ParseSignatureV2(ByteView value);

}  // namespace lim::ima
