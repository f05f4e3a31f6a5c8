// security.ima values (kernel-ima.md §10): the digest forms the kernel writes (0x04 + hash
// algorithm byte + digest; legacy 0x01 + SHA1, or MD5 in 16 or 20 bytes) and the
// signatures (0x03 signature_v2_hdr version 2; 0x06 version 3 over the fs-verity digest's
// ima_file_id). ParseImaXattr applies the kernel's rules (ima_get_hash_algo, xattr_verify)
// and names what is wrong with a hostile value; the Make* functions build what the kernel
// and evmctl write. Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "ima/ima_signature.h"

namespace lim::ima {

inline constexpr const char kImaXattrName[] = "security.ima";
// Largest value lim reads: a signature_v2_hdr is 9 bytes plus at most a 16384-bit RSA
// signature (2048 bytes); the kernel itself caps xattrs at 64 KiB.
inline constexpr size_t kMaxImaXattrSize = 4096;

struct ImaXattr {
  uint8_t type = 0;   // kXattrDigest, kXattrDigestNg, kXattrDigsig or kXattrVeritySig
  HashAlgo algo{};    // the digest's algorithm, or the signature header's
  ByteView digest;    // digest forms: the first algo.size bytes after the header
  SignatureV2 sig;    // signature forms

  bool is_signature() const { return type == kXattrDigsig || type == kXattrVeritySig; }
};

// Errors are Status::Corrupt / Unsupported whose message starts with "security.ima: ".
// A digest longer than its algorithm's size is accepted (the kernel compares the prefix).
Result<ImaXattr> ParseImaXattr(ByteView value);

// The kernel hash id a security.ima value implies for hashing the file (kernel
// ima_get_hash_algo, as lenient as the kernel: only the type, version and algorithm bytes
// are looked at): a v2/v3 signature's or an ima-ng digest's algorithm byte, md5 or sha1 by
// the length of a legacy digest. nullopt: none (the caller's default), also for an id the
// kernel does not know. limd's measurer chooses its hash with it.
std::optional<int> XattrHashAlgoId(ByteView xattr);

// The digest xattr the kernel writes for algo (ima_fix_xattr): 0x01 + digest for SHA1 (and
// md4/md5, ids ≤ 2), 0x04 + id + digest otherwise.
Bytes MakeImaDigestXattr(const HashAlgo& algo, ByteView digest);

// A signature_v2_hdr value: type, version, algo, big-endian key id and size, signature.
Result<Bytes> MakeSignatureV2(uint8_t type, uint8_t version, const HashAlgo& algo, uint32_t key_id, ByteView sig);

// What a type 0x06 (sigv3) signature signs: H(ima_file_id) with ima_file_id = { 0x06,
// algo id, verity digest } (only the used digest bytes; calc_file_id_hash).
Result<Bytes> VeritySignedDigest(const HashAlgo& algo, ByteView verity_digest);

// "0x04 sha256 digest", "0x03 v2 sha256 signature key 1a2b3c4d" — for messages.
std::string DescribeImaXattr(const ImaXattr& x);

}  // namespace lim::ima
