#include "ima/ima_xattr.h"

#include <cstdio>

#include "base/bytes.h"
#include "crypto/digest.h"

namespace lim::ima {

namespace {

Status Bad(const std::string& what) { return Status::Corrupt(std::string(kImaXattrName) + ": " + what); }

std::string TypeHex(uint8_t t) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", t);
  return b;
}

// ima_get_hash_algo's rule for the legacy type (0x01): 21 bytes is SHA1 — or MD5 padded
// with four zero bytes — and 17 bytes MD5; nothing else.
std::optional<HashAlgo> LegacyDigestAlgo(ByteView value) {
  if (value.size() == 21) {
    bool md5 = value[17] == 0 && value[18] == 0 && value[19] == 0 && value[20] == 0;
    return md5 ? *HashAlgoByName("md5") : Sha1Algo();
  }
  if (value.size() == 17) return *HashAlgoByName("md5");
  return std::nullopt;
}

}  // namespace

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
      auto algo = LegacyDigestAlgo(x);
      if (!algo) return std::nullopt;
      return algo->kernel_id;
    }
    default:
      return std::nullopt;
  }
}

Result<ImaXattr> ParseImaXattr(ByteView value) {
  if (value.empty()) return Bad("empty value");
  if (value.size() > kMaxImaXattrSize) {
    return Bad(std::to_string(value.size()) + " bytes, more than any digest or signature (" +
               std::to_string(kMaxImaXattrSize) + ")");
  }
  ImaXattr x;
  x.type = value[0];
  switch (x.type) {
    case kXattrDigest: {
      // Any other length than LegacyDigestAlgo's falls back to the kernel's default
      // algorithm in ima_get_hash_algo; lim has no default to fall back to, and such a value
      // was never written by anyone.
      auto algo = LegacyDigestAlgo(value);
      if (!algo) {
        return Bad("legacy digest (0x01) of " + std::to_string(value.size() - 1) +
                   " bytes; only SHA1 (20) and MD5 (16) exist");
      }
      x.algo = *algo;
      x.digest = value.subspan(1, x.algo.size);
      return x;
    }
    case kXattrDigestNg: {
      if (value.size() < 2) return Bad("digest (0x04) without its algorithm byte");
      auto algo = HashAlgoByKernelId(value[1]);
      if (!algo.ok()) return Bad("digest (0x04) names hash algorithm " + std::to_string(value[1]) + ", which the kernel does not know");
      x.algo = *algo;
      if (value.size() - 2 < x.algo.size) {
        return Bad(std::string("digest (0x04) of ") + std::to_string(value.size() - 2) + " bytes, " + x.algo.kernel_name +
                   " needs " + std::to_string(x.algo.size));
      }
      x.digest = value.subspan(2, x.algo.size);
      return x;
    }
    case kXattrDigsig:
    case kXattrVeritySig: {
      // xattr_verify checks the version before the lengths: a version ≥ 3 inside 0x03 and
      // anything but version 3 in 0x06 are "invalid-signature-version".
      if (value.size() >= 2) {
        uint8_t version = value[1];
        if (x.type == kXattrDigsig && version != 2) {
          return Bad("signature (0x03) version " + std::to_string(version) + ", must be 2 (invalid-signature-version)");
        }
        if (x.type == kXattrVeritySig && version != 3) {
          return Bad("verity signature (0x06) version " + std::to_string(version) + ", must be 3 (invalid-signature-version)");
        }
      }
      auto sig = ParseSignatureV2(value);
      if (!sig.ok()) return Bad(sig.status().message());
      x.sig = *sig;
      x.algo = sig->algo;
      return x;
    }
    case kEvmXattrHmac:
    case kEvmXattrPortableDigsig:
      return Bad("type " + TypeHex(x.type) + " belongs in security.evm, not security.ima (unknown-ima-data)");
    default:
      return Bad("unknown type " + TypeHex(x.type) + " (unknown-ima-data)");
  }
}

Bytes MakeImaDigestXattr(const HashAlgo& algo, ByteView digest) {
  Bytes out;
  if (algo.kernel_id >= 0 && algo.kernel_id <= 2) {
    out.push_back(kXattrDigest);
  } else {
    out.push_back(kXattrDigestNg);
    out.push_back(static_cast<uint8_t>(algo.kernel_id));
  }
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Result<Bytes> MakeSignatureV2(uint8_t type, uint8_t version, const HashAlgo& algo, uint32_t key_id, ByteView sig) {
  if (algo.kernel_id < 0) return Status::InvalidArgument(std::string(algo.tpm_name) + " has no kernel hash id");
  if (sig.empty() || sig.size() > 0xffff) return Status::InvalidArgument("signature of " + std::to_string(sig.size()) + " bytes");
  Bytes out;
  ByteWriter w(&out);
  w.U8(type);
  w.U8(version);
  w.U8(static_cast<uint8_t>(algo.kernel_id));
  w.U32(key_id, ByteOrder::kBig);
  w.U16(static_cast<uint16_t>(sig.size()), ByteOrder::kBig);
  w.Append(sig);
  return out;
}

Result<Bytes> VeritySignedDigest(const HashAlgo& algo, ByteView verity_digest) {
  Bytes id = {kXattrVeritySig, static_cast<uint8_t>(algo.kernel_id)};
  id.insert(id.end(), verity_digest.begin(), verity_digest.end());
  return Digest(algo, id);
}

std::string DescribeImaXattr(const ImaXattr& x) {
  std::string s = TypeHex(x.type) + " ";
  if (!x.is_signature()) return s + x.algo.kernel_name + " digest";
  char id[16];
  std::snprintf(id, sizeof id, "%08x", x.sig.key_id);
  return s + "v" + std::to_string(x.sig.version) + " " + x.algo.kernel_name + " signature by key " + id;
}

}  // namespace lim::ima
