#include "ima/ima_signature.h"

#include "base/bytes.h"

namespace lim::ima {

Result<SignatureV2> ParseSignatureV2(ByteView value) {
  ByteReader r(value);
  SignatureV2 s;
  uint8_t algo;
  uint16_t size;
  if (!r.ReadU8(&s.type) || !r.ReadU8(&s.version) || !r.ReadU8(&algo) || !r.ReadU32(&s.key_id, ByteOrder::kBig) ||
      !r.ReadU16(&size, ByteOrder::kBig)) {
    return Status::Corrupt("signature shorter than its 9-byte header");
  }
  if (s.type != kXattrDigsig && s.type != kEvmXattrPortableDigsig && s.type != kXattrVeritySig) {
    return Status::Corrupt("signature type 0x" + ToHex(ByteView(&s.type, 1)) + " is not a digital signature");
  }
  if (s.version != 2 && !(s.version == 3 && s.type == kXattrVeritySig)) {
    return Status::Unsupported("signature version " + std::to_string(s.version) + " is not supported");
  }
  auto a = HashAlgoByKernelId(algo);
  if (!a.ok()) return a.status();
  s.algo = *a;
  if (r.remaining() != size) {
    return Status::Corrupt("signature size field says " + std::to_string(size) + " bytes, " +
                           std::to_string(r.remaining()) + " follow");
  }
  s.signature = r.Rest();
  if (size == 0) return Status::Corrupt("empty signature");
  return s;
}

std::optional<int> XattrHashAlgoId(ByteView x) {
  if (x.empty()) return std::nullopt;
  switch (x[0]) {
    case kXattrDigsig:     // signature v2
    case kXattrVeritySig:  // v3
      if (x.size() <= 9 || x[1] != (x[0] == kXattrDigsig ? 2 : 3) || x[2] >= kKernelHashAlgoCount) return std::nullopt;
      return x[2];
    case kXattrDigestNg:
      if (x.size() < 2 || x[1] >= kKernelHashAlgoCount) return std::nullopt;
      return x[1];
    case kXattrDigest: {
      // The legacy type carries a bare digest: 20 bytes are sha1 unless the last four are
      // zero (an md5 digest padded to 20), 16 are md5.
      constexpr int md5 = 1, sha1 = 2;  // HASH_ALGO_MD5, HASH_ALGO_SHA1
      if (x.size() == 1 + 20) {
        bool padded = x[17] == 0 && x[18] == 0 && x[19] == 0 && x[20] == 0;
        return padded ? md5 : sha1;
      }
      if (x.size() == 1 + 16) return md5;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace lim::ima
