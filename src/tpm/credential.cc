#include "tpm/credential.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <memory>

#include "base/bytes.h"
#include "crypto/hash_algo.h"
#include "tpm/key.h"
#include "tpm/ossl_ptr.h"

namespace lim::tpm {

namespace {


Result<Bytes> Kdf(const char* name, std::vector<OSSL_PARAM> params, size_t bytes) {
  OsslPtr<EVP_KDF, EVP_KDF_free> kdf(EVP_KDF_fetch(nullptr, name, nullptr));
  if (!kdf) return Status::Unsupported(std::string("OpenSSL has no ") + name);
  OsslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free> ctx(EVP_KDF_CTX_new(kdf.get()));
  params.push_back(OSSL_PARAM_construct_end());
  Bytes out(bytes);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1) {
    return Status::Internal(std::string(name) + " derivation failed");
  }
  return out;
}

// KDFe(hash, Z, label, partyU, partyV, bits) = SP 800-56A single-step KDF with
// FixedInfo = label || 0x00 || partyU || partyV.
Result<Bytes> KdfE(const HashAlgo& algo, ByteView z, std::string_view label, ByteView u, ByteView v, size_t bits) {
  Bytes info(label.begin(), label.end());
  info.push_back(0);
  info.insert(info.end(), u.begin(), u.end());
  info.insert(info.end(), v.begin(), v.end());
  std::string md = algo.openssl_name;
  return Kdf("SSKDF",
             {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md.data(), 0),
              OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(z.data()), z.size()),
              OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size())},
             bits / 8);
}

void PutTpm2b(ByteWriter& w, ByteView b) {
  w.U16(static_cast<uint16_t>(b.size()), ByteOrder::kBig);
  w.Append(b);
}

}  // namespace

Result<Bytes> KdfA(uint16_t hash_alg, ByteView key, std::string_view label, ByteView context, size_t bits) {
  LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(hash_alg));
  std::string md = algo.openssl_name;
  std::string mac = "HMAC", mode = "COUNTER";
  Bytes lab(label.begin(), label.end());  // KBKDF adds the 0x00 separator itself
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, lab.data(), lab.size()),
  };
  Bytes ctx(context.begin(), context.end());
  if (!ctx.empty()) params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctx.data(), ctx.size()));
  return Kdf("KBKDF", params, (bits + 7) / 8);
}

Result<MadeCredential> MakeCredential(const TPMT_PUBLIC& ek, ByteView ak_name, ByteView credential) {
  if (credential.empty() || credential.size() > 64) return Status::InvalidArgument("credential must be 1-64 bytes");
  LIM_ASSIGN_OR_RETURN(HashAlgo name_algo, HashAlgoByTpmAlg(ek.nameAlg));
  const TPMT_SYM_DEF_OBJECT& sym = ek.type == TPM2_ALG_RSA ? ek.parameters.rsaDetail.symmetric : ek.parameters.eccDetail.symmetric;
  if (sym.algorithm != TPM2_ALG_AES || sym.mode.aes != TPM2_ALG_CFB || (sym.keyBits.aes != 128 && sym.keyBits.aes != 256)) {
    return Status::Unsupported("EK symmetric scheme is not AES-CFB (128 or 256)");
  }
  LIM_ASSIGN_OR_RETURN(PublicKey ek_key, PublicKey::FromTpmPublic(ek));
  Bytes seed;
  MadeCredential out;
  ByteWriter sw(&out.secret);
  if (ek.type == TPM2_ALG_RSA) {
    seed.resize(name_algo.size);
    if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1) return Status::Internal("RAND_bytes failed");
    OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free> ctx(EVP_PKEY_CTX_new(ek_key.pkey(), nullptr));
    static const char kLabel[] = "IDENTITY";  // OAEP label includes the terminating NUL
    auto* label = static_cast<unsigned char*>(OPENSSL_memdup(kLabel, sizeof kLabel));
    size_t len = 0;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), name_algo.openssl_name, nullptr) != 1 ||
        EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof kLabel) != 1 ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &len, seed.data(), seed.size()) != 1) {
      return Status::Internal("RSA-OAEP setup for the EK failed");
    }
    Bytes enc(len);
    if (EVP_PKEY_encrypt(ctx.get(), enc.data(), &len, seed.data(), seed.size()) != 1) return Status::Internal("RSA-OAEP failed");
    enc.resize(len);
    PutTpm2b(sw, enc);
  } else if (ek.type == TPM2_ALG_ECC) {
    // Ephemeral key on the EK's curve; Z = x of the ECDH shared point.
    OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free> gen(EVP_PKEY_CTX_new(ek_key.pkey(), nullptr));
    EVP_PKEY* eph_raw = nullptr;
    if (!gen || EVP_PKEY_keygen_init(gen.get()) != 1 || EVP_PKEY_keygen(gen.get(), &eph_raw) != 1) {
      return Status::Internal("ephemeral ECC key generation failed");
    }
    EvpPkeyPtr eph(eph_raw);
    OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free> dctx(EVP_PKEY_CTX_new(eph.get(), nullptr));
    size_t zlen = 0;
    if (!dctx || EVP_PKEY_derive_init(dctx.get()) != 1 || EVP_PKEY_derive_set_peer(dctx.get(), ek_key.pkey()) != 1 ||
        EVP_PKEY_derive(dctx.get(), nullptr, &zlen) != 1) {
      return Status::Internal("ECDH with the EK failed");
    }
    Bytes z(zlen);
    if (EVP_PKEY_derive(dctx.get(), z.data(), &zlen) != 1) return Status::Internal("ECDH with the EK failed");
    size_t field = ek.unique.ecc.x.size;
    Bytes point(1 + 2 * field + 1);
    size_t plen = 0;
    if (EVP_PKEY_get_octet_string_param(eph.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(), &plen) != 1 ||
        plen != 1 + 2 * field || point[0] != 0x04) {
      return Status::Internal("cannot read the ephemeral public point");
    }
    ByteView ex(point.data() + 1, field), ey(point.data() + 1 + field, field);
    LIM_ASSIGN_OR_RETURN(seed, KdfE(name_algo, z, "IDENTITY", ex, ByteView(ek.unique.ecc.x.buffer, ek.unique.ecc.x.size),
                                    name_algo.size * 8));
    Bytes ecc_point;
    ByteWriter pw(&ecc_point);
    PutTpm2b(pw, ex);
    PutTpm2b(pw, ey);
    PutTpm2b(sw, ecc_point);
  } else {
    return Status::Unsupported("EK is neither RSA nor ECC");
  }

  // Inner: the credential as a TPM2B_DIGEST, AES-CFB with a zero IV under the storage key.
  LIM_ASSIGN_OR_RETURN(Bytes sym_key, KdfA(ek.nameAlg, seed, "STORAGE", ak_name, sym.keyBits.aes));
  Bytes plain;
  ByteWriter cw(&plain);
  PutTpm2b(cw, credential);
  Bytes enc_identity(plain.size());
  OsslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free> cctx(EVP_CIPHER_CTX_new());
  uint8_t iv[16] = {};
  int outl = 0, finl = 0;
  const EVP_CIPHER* cipher = sym.keyBits.aes == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128();
  if (EVP_EncryptInit_ex(cctx.get(), cipher, nullptr, sym_key.data(), iv) != 1 ||
      EVP_EncryptUpdate(cctx.get(), enc_identity.data(), &outl, plain.data(), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(cctx.get(), enc_identity.data() + outl, &finl) != 1) {
    return Status::Internal("AES-CFB encryption failed");
  }
  // Outer: HMAC over encIdentity || name with the integrity key.
  LIM_ASSIGN_OR_RETURN(Bytes hmac_key, KdfA(ek.nameAlg, seed, "INTEGRITY", {}, name_algo.size * 8));
  Bytes mac_input = enc_identity;
  mac_input.insert(mac_input.end(), ak_name.begin(), ak_name.end());
  Bytes mac(EVP_MAX_MD_SIZE);
  size_t maclen = 0;
  std::string md = name_algo.openssl_name;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, md.c_str(), nullptr, hmac_key.data(), hmac_key.size(), mac_input.data(),
                 mac_input.size(), mac.data(), mac.size(), &maclen)) {
    return Status::Internal("HMAC failed");
  }
  mac.resize(maclen);
  Bytes body;
  ByteWriter bw(&body);
  PutTpm2b(bw, mac);
  bw.Append(enc_identity);
  ByteWriter iw(&out.id_object);
  PutTpm2b(iw, body);
  return out;
}

Bytes ToTpm2ToolsCredentialFile(const MadeCredential& c) {
  Bytes out;
  ByteWriter w(&out);
  w.U32(0xBADCC0DE, ByteOrder::kBig);
  w.U32(1, ByteOrder::kBig);
  w.Append(c.id_object);
  w.Append(c.secret);
  return out;
}

Result<MadeCredential> FromTpm2ToolsCredentialFile(ByteView data) {
  ByteReader r(data);
  uint32_t magic = 0, version = 0;
  if (!r.ReadU32(&magic, ByteOrder::kBig) || !r.ReadU32(&version, ByteOrder::kBig) || magic != 0xBADCC0DE || version != 1) {
    return Status::Corrupt("not a tpm2-tools credential file (magic 0xBADCC0DE, version 1)");
  }
  MadeCredential c;
  for (Bytes* part : {&c.id_object, &c.secret}) {
    uint16_t n = 0;
    ByteView body;
    size_t at = r.offset();
    if (!r.ReadU16(&n, ByteOrder::kBig) || !r.ReadView(n, &body)) {
      return Status::Corrupt("credential file truncated at offset " + std::to_string(at));
    }
    part->assign(data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(r.offset()));
  }
  if (!r.empty()) return Status::Corrupt("credential file has trailing bytes at offset " + std::to_string(r.offset()));
  return c;
}

}  // namespace lim::tpm
