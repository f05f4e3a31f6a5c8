// The software TPM: PCR banks in memory and an AK whose private key is an OpenSSL key in a
// file. It exists so lim works on machines with no TPM at all, and it says so: its kind is
// kSoftware, its quotes' AK lacks fixedTPM/fixedParent (so enrolment refuses it) and its
// clock is this process's. Never chosen silently (OpenTpm refuses "software").
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include <memory>
#include <mutex>

#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tpm/key.h"
#include "tpm/tpm.h"

namespace lim::tpm {

namespace {

class SoftwareTpm final : public Tpm {
 public:
  explicit SoftwareTpm(std::vector<uint16_t> banks) : banks_(std::move(banks)), start_(std::chrono::steady_clock::now()) {
    for (uint16_t alg : banks_) {
      auto algo = HashAlgoByTpmAlg(alg);
      size_t size = algo.ok() ? algo->size : 32;
      for (int i = 0; i < kMaxPcrs; ++i) {
        // PCRs 17-22 start at all ones on a real TPM (locality-reset PCRs); 0 elsewhere.
        pcrs_[alg][i] = Bytes(size, (i >= 17 && i <= 22) ? 0xff : 0x00);
      }
    }
  }

  TpmKind kind() const override { return TpmKind::kSoftware; }
  std::string Describe() const override { return "software (in-memory PCR banks, no TPM: nothing is attested by hardware)"; }

  Result<std::vector<uint16_t>> AllocatedBanks() override { return banks_; }

  Result<PcrValues> ReadPcrs(const PcrSelection& selection) override {
    std::lock_guard<std::mutex> lk(mu_);
    PcrValues out;
    for (const auto& b : selection) {
      auto bank = pcrs_.find(b.alg);
      if (bank == pcrs_.end()) return Status::NotFound("software TPM has no bank " + TpmBankName(b.alg));
      for (int i : b.pcrs) {
        if (i < 0 || i >= kMaxPcrs) return Status::InvalidArgument("PCR " + std::to_string(i) + " out of range");
        out[b.alg][i] = bank->second[i];
      }
    }
    return out;
  }

  Status Extend(int pcr, const std::map<uint16_t, Bytes>& digests) override {
    if (pcr < 0 || pcr >= kMaxPcrs) return Status::InvalidArgument("PCR " + std::to_string(pcr) + " out of range 0-23");
    std::lock_guard<std::mutex> lk(mu_);
    for (uint16_t alg : banks_) {
      auto it = digests.find(alg);
      if (it == digests.end()) return Status::InvalidArgument("no digest for allocated bank " + TpmBankName(alg));
      LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(alg));
      if (it->second.size() != algo.size) return Status::InvalidArgument("digest for bank " + TpmBankName(alg) + " has the wrong size");
    }
    for (const auto& [alg, d] : digests) {
      if (!pcrs_.count(alg)) return Status::InvalidArgument("bank " + TpmBankName(alg) + " is not allocated in the software TPM");
    }
    for (uint16_t alg : banks_) {
      LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(alg));
      LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(algo));
      h.Update(pcrs_[alg][pcr]);
      h.Update(digests.at(alg));
      pcrs_[alg][pcr] = h.Final();
    }
    return Status::Ok();
  }

  Result<ClockInfo> ReadClock() override {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
    return ClockInfo{static_cast<uint64_t>(ms), 0, 0, true};
  }

  Result<TPMT_PUBLIC> ReadEkPublic(EkType) override { return Status::Unsupported("the software TPM has no EK"); }

  Result<AkKey> CreateAk(EkType ek, AkAlg alg) override {
    if (alg != AkAlg::kEccP256) return Status::Unsupported("the software TPM makes ECC P-256 AKs only");
    EVP_PKEY* key = EVP_EC_gen("P-256");
    if (!key) return Status::Internal("OpenSSL could not generate a P-256 key");
    EvpPkeyPtr holder(key);
    uint8_t x[32], y[32];
    BIGNUM* bx = nullptr;
    BIGNUM* by = nullptr;
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &bx);
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &by);
    bool ok = bx && by && BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32;
    BN_free(bx);
    BN_free(by);
    if (!ok) return Status::Internal("cannot read the P-256 public point");
    AkKey ak;
    ak.ek = ek;
    ak.software = true;
    ak.pub = AkTemplate(alg).publicArea;
    // Honest attributes: a key in a file is neither fixedTPM nor fixedParent.
    ak.pub.objectAttributes &= ~(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT);
    ak.pub.unique.ecc.x.size = 32;
    std::copy(x, x + 32, ak.pub.unique.ecc.x.buffer);
    ak.pub.unique.ecc.y.size = 32;
    std::copy(y, y + 32, ak.pub.unique.ecc.y.buffer);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    ak.private_blob.assign(data, data + n);
    BIO_free(bio);
    return ak;
  }

  Result<Quote> MakeQuote(const AkKey& ak, const PcrSelection& selection, ByteView nonce) override {
    if (!ak.software) return Status::InvalidArgument("this AK belongs to a TPM, not to the software TPM");
    if (nonce.size() > 64) return Status::InvalidArgument("nonce longer than 64 bytes");
    std::shared_ptr<EVP_PKEY> key;
    {
      // The last AK's key stays parsed: a PEM parse per quote cost as much as the signature.
      std::lock_guard<std::mutex> lk(key_mu_);
      if (!key_ || key_blob_ != ak.private_blob) {
        BIO* bio = BIO_new_mem_buf(ak.private_blob.data(), static_cast<int>(ak.private_blob.size()));
        EVP_PKEY* parsed = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
        if (!parsed) return Status::Corrupt("software AK private key does not parse");
        key_.reset(parsed, EVP_PKEY_free);
        key_blob_ = ak.private_blob;
      }
      key = key_;
    }
    LIM_ASSIGN_OR_RETURN(TPML_PCR_SELECTION tss_sel, ToTssSelection(selection));
    Quote q;
    LIM_ASSIGN_OR_RETURN(q.values, ReadPcrs(selection));
    q.selection = selection;
    LIM_ASSIGN_OR_RETURN(Bytes digest, ComputePcrDigest(TPM2_ALG_SHA256, selection, q.values));
    LIM_ASSIGN_OR_RETURN(Bytes name, PublicName(ak.pub));
    LIM_ASSIGN_OR_RETURN(ClockInfo clock, ReadClock());
    TPMS_ATTEST a{};
    a.magic = TPM2_GENERATED_VALUE;
    a.type = TPM2_ST_ATTEST_QUOTE;
    a.qualifiedSigner.size = static_cast<UINT16>(name.size());
    std::copy(name.begin(), name.end(), a.qualifiedSigner.name);
    a.extraData.size = static_cast<UINT16>(nonce.size());
    std::copy(nonce.begin(), nonce.end(), a.extraData.buffer);
    a.clockInfo = {clock.clock, clock.reset_count, clock.restart_count, TPM2_YES};
    a.attested.quote.pcrSelect = tss_sel;
    a.attested.quote.pcrDigest.size = static_cast<UINT16>(digest.size());
    std::copy(digest.begin(), digest.end(), a.attested.quote.pcrDigest.buffer);
    q.msg.resize(sizeof(TPMS_ATTEST));
    size_t off = 0;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&a, q.msg.data(), q.msg.size(), &off) != TSS2_RC_SUCCESS) {
      return Status::Internal("cannot marshal TPMS_ATTEST");
    }
    q.msg.resize(off);
    // ECDSA-SHA256 over the attestation, r and s into a TPMT_SIGNATURE.
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t der_len = 0;
    Bytes der;
    bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
              EVP_DigestSign(ctx, nullptr, &der_len, q.msg.data(), q.msg.size()) == 1;
    if (ok) {
      der.resize(der_len);
      ok = EVP_DigestSign(ctx, der.data(), &der_len, q.msg.data(), q.msg.size()) == 1;
      der.resize(der_len);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return Status::Internal("ECDSA signing failed");
    const uint8_t* p = der.data();
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (!es) return Status::Internal("ECDSA signature does not decode");
    TPMT_SIGNATURE sig{};
    sig.sigAlg = TPM2_ALG_ECDSA;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    sig.signature.ecdsa.signatureR.size = 32;
    sig.signature.ecdsa.signatureS.size = 32;
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig.signature.ecdsa.signatureR.buffer, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig.signature.ecdsa.signatureS.buffer, 32);
    ECDSA_SIG_free(es);
    q.sig.resize(sizeof(TPMT_SIGNATURE));
    off = 0;
    Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, q.sig.data(), q.sig.size(), &off);
    q.sig.resize(off);
    return q;
  }

  Result<Bytes> ActivateCredential(const AkKey&, ByteView, ByteView) override {
    return Status::Unsupported("the software TPM has no EK, so no credential activation");
  }

 private:
  std::mutex mu_;
  std::vector<uint16_t> banks_;
  std::map<uint16_t, std::map<int, Bytes>> pcrs_;
  std::chrono::steady_clock::time_point start_;
  std::mutex key_mu_;
  Bytes key_blob_;                 // PEM of the AK whose key is key_
  std::shared_ptr<EVP_PKEY> key_;  // shared: a quote in progress keeps it while another replaces it
};

}  // namespace

std::unique_ptr<Tpm> OpenSoftwareTpm(std::vector<uint16_t> banks) {
  if (banks.empty()) banks = {TPM2_ALG_SHA1, TPM2_ALG_SHA256};
  return std::make_unique<SoftwareTpm>(std::move(banks));
}

}  // namespace lim::tpm
