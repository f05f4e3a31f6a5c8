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

}  // namespace lim::ima
