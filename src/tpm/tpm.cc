#include "tpm/tpm.h"

#include <sys/stat.h>
#include <tss2/tss2_mu.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tpm/key.h"
#include "tpm/seal.h"

namespace lim::tpm {

Result<SealedObject> Tpm::Seal(ByteView, const PcrSelection&) {
  return Status::Unsupported(Describe() + " cannot seal: sealing needs a TPM (--tpm)");
}

Result<SecretBytes> Tpm::Unseal(const SealedObject&) {
  return Status::Unsupported(Describe() + " cannot unseal: sealing needs a TPM (--tpm)");
}

const char* TpmKindName(TpmKind kind) {
  switch (kind) {
    case TpmKind::kDevice: return "hardware";
    case TpmKind::kSwtpm: return "swtpm";
    case TpmKind::kSimulator: return "simulator";
    case TpmKind::kTabrmd: return "tabrmd";
    case TpmKind::kOther: return "tcti";
    case TpmKind::kSoftware: return "software";
  }
  return "?";
}

const char* EkTypeName(EkType t) { return t == EkType::kRsa ? "rsa" : "ecc"; }

Result<EkType> ParseEkType(std::string_view s) {
  if (s == "rsa") return EkType::kRsa;
  if (s == "ecc") return EkType::kEcc;
  return Status::InvalidArgument("unknown EK type '" + std::string(s) + "' (rsa or ecc)");
}

Status ExtendWithData(Tpm& tpm, int pcr, ByteView data) {
  LIM_ASSIGN_OR_RETURN(std::vector<uint16_t> banks, tpm.AllocatedBanks());
  std::map<uint16_t, Bytes> digests;
  for (uint16_t alg : banks) {
    auto algo = HashAlgoByTpmAlg(alg);
    if (!algo.ok()) return Status::Unsupported("cannot hash for allocated bank " + TpmBankName(alg));
    LIM_ASSIGN_OR_RETURN(digests[alg], Digest(*algo, data));
  }
  return tpm.Extend(pcr, digests);
}

Result<PcrSelection> FullSelection(Tpm& tpm, const std::set<int>& pcrs) {
  LIM_ASSIGN_OR_RETURN(std::vector<uint16_t> banks, tpm.AllocatedBanks());
  PcrSelection sel;
  std::set<int> all;
  for (int i = 0; i < kMaxPcrs; ++i) all.insert(i);
  for (uint16_t alg : banks) sel.push_back({alg, pcrs.empty() ? all : pcrs});
  return sel;
}

std::string DefaultTcti() {
  const char* env = std::getenv("LIM_TCTI");
  if (env && *env) return env;
  return "device:/dev/tpmrm0";
}

namespace {

// PolicySecret(TPM_RH_ENDORSEMENT), the EK's authPolicy in the TCG EK Credential Profile.
constexpr uint8_t kEkPolicy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                   0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                   0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

Status WritePrivateFile(const std::string& path, ByteView data, mode_t mode) {
  // Created with the private mode (O_EXCL, O_NOFOLLOW): never readable by others, not even
  // between the write and a chmod; the chmod only makes the mode exact whatever the umask.
  LIM_RETURN_IF_ERROR(WriteFileBytes(path, data, mode));
  if (::chmod(path.c_str(), mode) != 0) return Status::IoError(path + ": chmod failed");
  return Status::Ok();
}

}  // namespace

TPM2B_PUBLIC EkTemplate(EkType ek) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  p.authPolicy.size = sizeof kEkPolicy;
  std::copy(kEkPolicy, kEkPolicy + sizeof kEkPolicy, p.authPolicy.buffer);
  if (ek == EkType::kRsa) {
    p.type = TPM2_ALG_RSA;
    auto& r = p.parameters.rsaDetail;
    r.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
    r.scheme.scheme = TPM2_ALG_NULL;
    r.keyBits = 2048;
    r.exponent = 0;
    p.unique.rsa.size = 256;  // zeros, as the template says
  } else {
    p.type = TPM2_ALG_ECC;
    auto& e = p.parameters.eccDetail;
    e.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
    e.scheme.scheme = TPM2_ALG_NULL;
    e.curveID = TPM2_ECC_NIST_P256;
    e.kdf.scheme = TPM2_ALG_NULL;
    p.unique.ecc.x.size = 32;
    p.unique.ecc.y.size = 32;
  }
  return t;
}

TPM2B_PUBLIC AkTemplate(AkAlg alg) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  if (alg == AkAlg::kRsa2048) {
    p.type = TPM2_ALG_RSA;
    auto& r = p.parameters.rsaDetail;
    r.symmetric.algorithm = TPM2_ALG_NULL;
    r.scheme.scheme = TPM2_ALG_RSASSA;
    r.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    r.keyBits = 2048;
    r.exponent = 0;
  } else {
    p.type = TPM2_ALG_ECC;
    auto& e = p.parameters.eccDetail;
    e.symmetric.algorithm = TPM2_ALG_NULL;
    e.scheme.scheme = TPM2_ALG_ECDSA;
    e.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    e.curveID = TPM2_ECC_NIST_P256;
    e.kdf.scheme = TPM2_ALG_NULL;
  }
  return t;
}

Status SaveAk(const AkKey& ak, const std::string& dir) {
  ::mkdir(dir.c_str(), 0700);
  LIM_ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromTpmPublic(ak.pub));
  LIM_ASSIGN_OR_RETURN(Bytes name, PublicName(ak.pub));
  LIM_RETURN_IF_ERROR(WriteFileBytes(dir + "/ak.pub", MarshalPublic2B(ak.pub)));
  LIM_RETURN_IF_ERROR(WriteFileBytes(dir + "/ak.name", name));
  LIM_RETURN_IF_ERROR(WriteFileBytes(dir + "/ak.pub.pem", AsBytes(key.ToPem())));
  if (ak.software) {
    LIM_RETURN_IF_ERROR(WritePrivateFile(dir + "/ak.key.pem", ak.private_blob, 0600));
  } else {
    LIM_RETURN_IF_ERROR(WritePrivateFile(dir + "/ak.priv", ak.private_blob, 0600));
  }
  nlohmann::ordered_json j;
  j["backend"] = ak.software ? "software" : "tpm";
  j["ek"] = EkTypeName(ak.ek);
  j["key"] = DescribePublic(ak.pub);
  j["name"] = ToHex(name);
  return WriteFileBytes(dir + "/ak.json", AsBytes(j.dump(2) + "\n"));
}

Result<AkKey> LoadAk(const std::string& dir) {
  LIM_ASSIGN_OR_RETURN(std::string meta_text, ReadFileTextBounded(dir + "/ak.json", kMaxTpmFileSize, "an AK description"));
  nlohmann::json meta = nlohmann::json::parse(meta_text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("ek") || !meta["ek"].is_string() ||
      !meta.contains("backend") || !meta["backend"].is_string()) {
    return Status::Corrupt(dir + "/ak.json: not an AK description (needs \"ek\" and \"backend\")");
  }
  AkKey ak;
  LIM_ASSIGN_OR_RETURN(ak.ek, ParseEkType(meta["ek"].get<std::string>()));
  ak.software = meta["backend"] == "software";
  LIM_ASSIGN_OR_RETURN(Bytes pub, ReadFileBounded(dir + "/ak.pub", kMaxTpmFileSize, "a TPM public area"));
  auto parsed = ParsePublic(pub);
  if (!parsed.ok()) return parsed.status().WithPrefix(dir + "/ak.pub");
  ak.pub = *parsed;
  LIM_ASSIGN_OR_RETURN(ak.private_blob, ReadFileBounded(dir + (ak.software ? "/ak.key.pem" : "/ak.priv"), kMaxTpmFileSize, "an AK private blob"));
  return ak;
}

}  // namespace lim::tpm
