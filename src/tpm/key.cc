#include "tpm/key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tpm/ossl_ptr.h"

namespace lim::tpm {

void EvpPkeyFree::operator()(evp_pkey_st* p) const { EVP_PKEY_free(p); }

Result<TPMT_PUBLIC> ParsePublic(ByteView bytes) {
  if (bytes.size() >= 2 && static_cast<size_t>((bytes[0] << 8) | bytes[1]) == bytes.size() - 2) {
    TPM2B_PUBLIC pub2b{};
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(bytes.data(), bytes.size(), &off, &pub2b) == TSS2_RC_SUCCESS &&
        off == bytes.size()) {
      return pub2b.publicArea;
    }
  }
  TPMT_PUBLIC pub{};
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(bytes.data(), bytes.size(), &off, &pub);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::Corrupt("not a TPM2B_PUBLIC or TPMT_PUBLIC (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (off != bytes.size()) {
    return Status::Corrupt("TPMT_PUBLIC followed by " + std::to_string(bytes.size() - off) +
                           " unexpected bytes at offset " + std::to_string(off));
  }
  return pub;
}

Bytes MarshalPublicT(const TPMT_PUBLIC& pub) {
  Bytes out(sizeof(TPMT_PUBLIC) + 16);
  size_t off = 0;
  Tss2_MU_TPMT_PUBLIC_Marshal(&pub, out.data(), out.size(), &off);
  out.resize(off);
  return out;
}

Bytes MarshalPublic2B(const TPMT_PUBLIC& pub) {
  Bytes t = MarshalPublicT(pub);
  Bytes out;
  out.push_back(static_cast<uint8_t>(t.size() >> 8));
  out.push_back(static_cast<uint8_t>(t.size()));
  out.insert(out.end(), t.begin(), t.end());
  return out;
}

Result<Bytes> PublicName(const TPMT_PUBLIC& pub) {
  LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(pub.nameAlg));
  LIM_ASSIGN_OR_RETURN(Bytes h, Digest(algo, MarshalPublicT(pub)));
  Bytes name{static_cast<uint8_t>(pub.nameAlg >> 8), static_cast<uint8_t>(pub.nameAlg)};
  name.insert(name.end(), h.begin(), h.end());
  return name;
}

namespace {

Result<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM* params) {
  OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    return Status::Corrupt(std::string("OpenSSL rejected the ") + type + " public key");
  }
  return EvpPkeyPtr(pkey);
}

const char* CurveName(TPMI_ECC_CURVE curve, size_t* size) {
  switch (curve) {
    case TPM2_ECC_NIST_P256: *size = 32; return "prime256v1";
    case TPM2_ECC_NIST_P384: *size = 48; return "secp384r1";
    case TPM2_ECC_NIST_P521: *size = 66; return "secp521r1";
    default: return nullptr;
  }
}

}  // namespace

Result<PublicKey> PublicKey::FromTpmPublic(const TPMT_PUBLIC& pub) {
  OsslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> bld(OSSL_PARAM_BLD_new());
  PublicKey key;
  if (pub.type == TPM2_ALG_RSA) {
    const auto& u = pub.unique.rsa;
    if (u.size == 0) return Status::Corrupt("RSA public key has an empty modulus");
    OsslPtr<BIGNUM, BN_free> n(BN_bin2bn(u.buffer, u.size, nullptr));
    uint32_t exp = pub.parameters.rsaDetail.exponent ? pub.parameters.rsaDetail.exponent : 65537;
    OsslPtr<BIGNUM, BN_free> e(BN_new());
    BN_set_word(e.get(), exp);
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    OsslPtr<OSSL_PARAM, OSSL_PARAM_free> params(OSSL_PARAM_BLD_to_param(bld.get()));
    LIM_ASSIGN_OR_RETURN(key.pkey_, FromData("RSA", params.get()));
  } else if (pub.type == TPM2_ALG_ECC) {
    size_t size = 0;
    const char* curve = CurveName(pub.parameters.eccDetail.curveID, &size);
    if (!curve) return Status::Unsupported("ECC curve 0x" + ToHex(Bytes{static_cast<uint8_t>(pub.parameters.eccDetail.curveID >> 8), static_cast<uint8_t>(pub.parameters.eccDetail.curveID)}) + " is not supported");
    const auto& x = pub.unique.ecc.x;
    const auto& y = pub.unique.ecc.y;
    if (x.size > size || y.size > size) return Status::Corrupt("ECC point larger than the curve");
    Bytes point(1 + 2 * size, 0);
    point[0] = 0x04;  // uncompressed
    std::copy(x.buffer, x.buffer + x.size, point.begin() + 1 + static_cast<long>(size - x.size));
    std::copy(y.buffer, y.buffer + y.size, point.begin() + 1 + static_cast<long>(2 * size - y.size));
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve, 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    OsslPtr<OSSL_PARAM, OSSL_PARAM_free> params(OSSL_PARAM_BLD_to_param(bld.get()));
    LIM_ASSIGN_OR_RETURN(key.pkey_, FromData("EC", params.get()));
  } else {
    return Status::Unsupported("public key type 0x" + ToHex(Bytes{static_cast<uint8_t>(pub.type >> 8), static_cast<uint8_t>(pub.type)}) + " is neither RSA nor ECC");
  }
  key.tpm_public_ = pub;
  return key;
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!pkey) return Status::Corrupt("not a PEM public key");
  PublicKey key;
  key.pkey_.reset(pkey);
  return key;
}

Result<PublicKey> PublicKey::FromFile(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(Bytes data, ReadFileBounded(path, kMaxTpmFileSize, "a public key file"));
  std::string_view text = AsChars(data);
  Result<PublicKey> key = text.find("-----BEGIN") != std::string_view::npos
                              ? FromPem(text)
                              : [&]() -> Result<PublicKey> {
                                  LIM_ASSIGN_OR_RETURN(TPMT_PUBLIC pub, ParsePublic(data));
                                  return FromTpmPublic(pub);
                                }();
  if (!key.ok()) return key.status().WithPrefix(path);
  return key;
}

std::string PublicKey::ToPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey_.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

bool PublicKey::is_rsa() const { return EVP_PKEY_is_a(pkey_.get(), "RSA"); }

Status CheckAkAttributes(const TPMT_PUBLIC& pub) {
  std::string wrong;
  auto need = [&](TPMA_OBJECT bit, bool set, const char* what) {
    if (((pub.objectAttributes & bit) != 0) != set) wrong += std::string(wrong.empty() ? "" : ", ") + what;
  };
  need(TPMA_OBJECT_RESTRICTED, true, "not restricted");
  need(TPMA_OBJECT_SIGN_ENCRYPT, true, "cannot sign");
  need(TPMA_OBJECT_DECRYPT, false, "can decrypt (not sign-only)");
  need(TPMA_OBJECT_FIXEDTPM, true, "not fixedTPM");
  need(TPMA_OBJECT_FIXEDPARENT, true, "not fixedParent");
  // A key imported from outside (sensitiveDataOrigin clear) may have a copy outside the TPM.
  need(TPMA_OBJECT_SENSITIVEDATAORIGIN, true, "not sensitiveDataOrigin (its private part may exist outside the TPM)");
  if (!wrong.empty()) return Status::Mismatch("AK not enrolable: " + wrong);
  return Status::Ok();
}

std::string DescribePublic(const TPMT_PUBLIC& pub) {
  if (pub.type == TPM2_ALG_RSA) return "rsa-" + std::to_string(pub.parameters.rsaDetail.keyBits);
  if (pub.type == TPM2_ALG_ECC) {
    size_t size = 0;
    const char* c = CurveName(pub.parameters.eccDetail.curveID, &size);
    return std::string("ecc-") + (c ? c : "unknown");
  }
  return "type-" + std::to_string(pub.type);
}

}  // namespace lim::tpm
