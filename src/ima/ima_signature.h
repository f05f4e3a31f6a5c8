// The IMA/EVM signature header (signature_v2_hdr, kernel-ima.md §10.2): type, version, hash
// algorithm, big-endian key id and signature size, then the signature. Parsing validates
// every length the way the kernel does. Also the hash algorithm a security.ima value implies
// (what limd hashes a file with). Stateless.
#pragma once

#include <cstdint>
#include <optional>

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

// The kernel hash id a security.ima value implies (kernel ima_get_hash_algo): a v2/v3
// signature's or an ima-ng digest's algorithm byte, md5 or sha1 by the length of a legacy
// digest. nullopt: none (the caller's default), also for an id the kernel does not know.
std::optional<int> XattrHashAlgoId(ByteView xattr);

}  // namespace lim::ima
