#include "ima/signature_check.h"

#include <cstdio>

#include "crypto/digest.h"
#include "ima/digest_field.h"
#include "ima/ima_signature.h"
#include "ima/ima_xattr.h"

namespace lim::ima {

SignatureVerdict EntrySignatureChecker::Check(const Entry& e) const {
  ByteView sig = e.FieldById(FieldId::kSig);
  if (sig.empty()) return {};
  // Only digital signatures are checked; a sig field may also carry an EVM portable one.
  if (sig[0] != kXattrDigsig && sig[0] != kXattrVeritySig) return {};
  auto parsed = ParseSignatureV2(sig);
  if (!parsed.ok()) return {SignatureVerdict::kBad, "malformed signature: " + parsed.status().message()};
  bool v2 = e.HasField(FieldId::kDNgV2);
  auto df = ParseDigestField(e.FieldById(v2 ? FieldId::kDNgV2 : FieldId::kDNg), v2);
  if (!df.ok()) return {SignatureVerdict::kBad, "no file digest to check the signature against"};
  auto algo = HashAlgoByName(df->algo_name);
  if (!algo.ok() || !(*algo == parsed->algo)) {
    return {SignatureVerdict::kBad, std::string("signature uses ") + parsed->algo.kernel_name + " but the entry's digest is " +
                                        std::string(df->algo_name)};
  }
  Bytes signed_digest(df->digest.begin(), df->digest.end());
  if (parsed->type == kXattrVeritySig) {
    auto h = VeritySignedDigest(parsed->algo, df->digest);
    if (!h.ok()) return {SignatureVerdict::kBad, h.status().message()};
    signed_digest = std::move(h).value();
  }
  return VerifySignature(*parsed, signed_digest, keys_);
}

SignatureVerdict VerifySignature(const SignatureV2& sig, ByteView signed_digest, const std::vector<PublicKey>& keys,
                                 const PublicKey** used) {
  char idhex[16];
  std::snprintf(idhex, sizeof idhex, "%08x", sig.key_id);
  bool known = false;
  for (const auto& k : keys) {
    if (k.key_id() != sig.key_id) continue;
    known = true;
    if (k.VerifyDigest(sig.algo, signed_digest, sig.signature)) {
      if (used) *used = &k;
      return {SignatureVerdict::kGood, {}};
    }
  }
  if (!known) return {SignatureVerdict::kUnknownKey, idhex};
  return {SignatureVerdict::kBad, std::string("signature by key ") + idhex + " does not verify"};
}

}  // namespace lim::ima
