#include "ima/appraise.h"

#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "crypto/digest.h"
#include "crypto/fsverity.h"
#include "ima/ima_xattr.h"
#include "ima/signature_check.h"

namespace lim::ima {

namespace {

std::string KeyText(uint32_t id, const PublicKey* k) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", id);
  return k ? std::string(hex) + " (" + k->origin() + ")" : std::string(hex);
}

// The signature check's verdict as (cause, detail); cause empty when good.
std::pair<std::string, std::string> Judge(const SignatureVerdict& v, const char* invalid_cause) {
  switch (v.kind) {
    case SignatureVerdict::kGood:
      return {};
    case SignatureVerdict::kUnknownKey:
      // The kernel's keyring lookup fails with -ENOKEY and the signature is invalid; lim
      // names the missing key.
      return {invalid_cause, "no trusted key has id " + v.detail};
    default:
      return {invalid_cause, v.detail};
  }
}

}  // namespace

Result<std::optional<Bytes>> ReadXattr(int fd, const char* name, size_t max, const std::string& what) {
  Bytes buf(max + 1);
  ssize_t r = fgetxattr(fd, name, buf.data(), buf.size());
  if (r < 0) {
    if (errno == ENODATA || errno == ENOTSUP) return std::optional<Bytes>();
    if (errno == ERANGE) return Status::Corrupt(what + ": " + name + " is larger than " + std::to_string(max) + " bytes");
    return Status::IoError(what + ": getxattr " + name + ": " + std::strerror(errno));
  }
  if (static_cast<size_t>(r) > max) return Status::Corrupt(what + ": " + name + " is larger than " + std::to_string(max) + " bytes");
  buf.resize(static_cast<size_t>(r));
  return std::optional<Bytes>(std::move(buf));
}

EvmVerdict VerifyEvm(const std::optional<Bytes>& evm_xattr, const EvmInputs& in, const EvmConfig& evm) {
  if (!evm.enabled) return {"unknown", "EVM is not initialised (no HMAC key, no EVM keys)", {}};
  // Nothing protected at all: the kernel's INTEGRITY_NOXATTRS.
  bool any = false;
  for (auto name : ProtectedNames(in, false)) any = any || in.Xattr(name);
  if (!evm_xattr) {
    if (!any) return {"no_xattrs", "no EVM-protected xattr and no security.evm", {}};
    return {"no_label", "security.evm is missing", {}};
  }
  auto x = ParseEvmXattr(*evm_xattr);
  if (!x.ok()) return {"fail", x.status().message(), {}};
  bool portable = x->type == kEvmXattrPortableDigsig;
  if (!portable && !evm.fsuuid && !evm.fsuuid_error.empty()) {
    return {"fail", "no filesystem UUID to hash: " + evm.fsuuid_error, {}};
  }
  if (x->type == kEvmXattrHmac) {
    if (evm.hmac_key.empty()) return {"unknown", "security.evm is an HMAC and no HMAC key is loaded", {}};
    auto h = EvmHmac(evm.hmac_key, in);
    if (!h.ok()) return {h.status().code() == StatusCode::kNotFound ? "no_xattrs" : "fail", h.status().message(), {}};
    if (h->size() != x->hmac.size() || std::memcmp(h->data(), x->hmac.data(), h->size()) != 0) {
      return {"fail", "HMAC over the protected xattrs, inode, generation, uid, gid, mode" +
                          std::string(evm.fsuuid ? " and fs UUID" : "") + " does not match",
              {}};
    }
    return {"pass", "HMAC matches", {}};
  }
  // The kernel's evm_verify_hmac: only a portable signature's failure is "immutable"
  // (INTEGRITY_FAIL_IMMUTABLE, cause invalid-fail-immutable); a failed 0x03 signature is
  // INTEGRITY_FAIL, which IMA reports as invalid-HMAC, as for an HMAC.
  const char* fail = portable ? "fail_immutable" : "fail";
  auto d = EvmDigest(x->sig.algo, in, portable);
  if (!d.ok()) return {fail, d.status().message(), {}};
  static const std::vector<PublicKey> none;
  const PublicKey* used = nullptr;
  SignatureVerdict v = VerifySignature(x->sig, *d, evm.keys ? *evm.keys : none, &used);
  std::string key = KeyText(x->sig.key_id, used);
  if (v.kind == SignatureVerdict::kGood) {
    return {portable ? "pass_immutable" : "pass", std::string(portable ? "portable " : "") + "EVM signature verifies", key};
  }
  return {fail, v.kind == SignatureVerdict::kUnknownKey ? "no trusted EVM key has id " + v.detail : v.detail, key};
}

Appraisal AppraiseFile(int fd, const std::string& what, const AppraiseRequirements& req,
                       const std::vector<PublicKey>& ima_keys, const EvmConfig& evm) {
  auto ima = ReadXattr(fd, kImaXattrName, kMaxImaXattrSize, what);
  std::function<EvmVerdict()> evm_check;
  if (evm.enabled) {
    evm_check = [&] {
      auto in = ReadEvmInputs(fd, what, evm.names);
      auto evm_x = ReadXattr(fd, kEvmXattrName, kMaxImaXattrSize, what);
      if (!in.ok()) return EvmVerdict{"fail", in.status().message(), {}};
      if (!evm_x.ok()) return EvmVerdict{"fail", evm_x.status().message(), {}};
      EvmInputs with_uuid = std::move(in).value();
      with_uuid.fsuuid = evm.fsuuid;
      return VerifyEvm(*evm_x, with_uuid, evm);
    };
  }
  auto digest = [&](const HashAlgo& algo, bool verity) -> Result<Bytes> {
    if (lseek(fd, 0, SEEK_SET) != 0) return Status::IoError(what + ": lseek: " + std::strerror(errno));
    return verity ? FsVerityDigest(algo, fd, what) : DigestFd(algo, fd, what);
  };
  static const std::optional<Bytes> kNone;
  return AppraiseValues(ima.ok() ? *ima : kNone, ima.status(), evm_check, req, ima_keys, digest);
}

Appraisal AppraiseValues(const std::optional<Bytes>& ima, const Status& ima_read, const std::function<EvmVerdict()>& evm,
                         const AppraiseRequirements& req, const std::vector<PublicKey>& ima_keys,
                         const ContentDigest& content_digest) {
  Appraisal a;
  a.xattr = kImaXattrName;
  auto fail = [&](std::string cause, std::string detail) {
    a.pass = false;
    a.cause = std::move(cause);
    a.detail = std::move(detail);
    return a;
  };
  const char* sig_required = req.verity_required ? "verity-signature-required" : "IMA-signature-required";
  if (!ima_read.ok()) return fail(ima_read.code() == StatusCode::kCorrupt ? "unknown-ima-data" : "read-error", ima_read.message());
  if (!ima) {
    return fail(req.signature_required ? sig_required : "missing-hash",
                std::string("no security.ima") + (req.signature_required ? "; the rule needs a signature" : ""));
  }
  // EVM before IMA (evm_verifyxattr in ima_appraise_measurement).
  if (evm) {
    EvmVerdict v = evm();
    a.evm_status = v.status;
    a.key = v.key;
    if (v.status == "no_label" || v.status == "no_xattrs") {
      a.xattr = kEvmXattrName;
      return fail("missing-HMAC", v.detail);
    }
    if (v.status == "fail" || v.status == "fail_immutable") {
      a.xattr = kEvmXattrName;
      return fail(v.status == "fail" ? "invalid-HMAC" : "invalid-fail-immutable", v.detail);
    }
    a.key.clear();
  }
  auto x = ParseImaXattr(*ima);
  if (!x.ok()) {
    const std::string& m = x.status().message();
    return fail(m.find("invalid-signature-version") != std::string::npos ? "invalid-signature-version" : "unknown-ima-data", m);
  }
  a.form = DescribeImaXattr(*x);
  a.algo = x->algo;
  if (!x->is_signature() && req.signature_required) return fail(sig_required, "security.ima is a digest; the rule needs a signature");
  if (x->type == kXattrDigsig && req.verity_required) return fail("verity-signature-required", "security.ima is a v2 signature; the rule needs a verity (0x06) signature");
  if (x->type == kXattrVeritySig && req.signature_required && !req.verity_required) {
    return fail("IMA-signature-required", "security.ima is a verity (0x06) signature; the rule does not ask for digest_type=verity");
  }
  // The content digest, with the xattr's algorithm (ima_get_hash_algo) — the fs-verity
  // digest for 0x06.
  Result<Bytes> digest = content_digest(x->algo, x->type == kXattrVeritySig);
  if (!digest.ok()) return fail(x->type == kXattrVeritySig ? "sigv3-hashing-error" : "collect-data", digest.status().message());
  a.file_digest = *digest;
  if (!x->is_signature()) {
    if (std::memcmp(digest->data(), x->digest.data(), digest->size()) != 0) {
      return fail("invalid-hash", std::string("file ") + x->algo.kernel_name + " " + ToHex(*digest) + " != security.ima " +
                                      ToHex(x->digest));
    }
    a.detail = std::string("file ") + x->algo.kernel_name + " digest matches security.ima";
  } else {
    Bytes signed_digest = *digest;
    if (x->type == kXattrVeritySig) {
      auto h = VeritySignedDigest(x->algo, *digest);
      if (!h.ok()) return fail("sigv3-hashing-error", h.status().message());
      signed_digest = *h;
    }
    const PublicKey* used = nullptr;
    SignatureVerdict v = VerifySignature(x->sig, signed_digest, ima_keys, &used);
    a.key = KeyText(x->sig.key_id, used);
    auto [cause, why] = Judge(v, x->type == kXattrVeritySig ? "invalid-verity-signature" : "invalid-signature");
    if (!cause.empty()) return fail(cause, why + " (file " + x->algo.kernel_name + " " + ToHex(*digest) + ")");
    a.detail = std::string(x->type == kXattrVeritySig ? "fs-verity " : "") + x->algo.kernel_name + " signature verifies";
  }
  // appraise_algos (process_measurement: "denied-hash-algorithm").
  if (req.allowed_algos != 0 && (x->algo.kernel_id < 0 || x->algo.kernel_id >= 32 ||
                                 !(req.allowed_algos & (1u << x->algo.kernel_id)))) {
    return fail("denied-hash-algorithm", std::string(x->algo.kernel_name) + " is not in the rule's appraise_algos");
  }
  a.pass = true;
  return a;
}

}  // namespace lim::ima
