// TPM public keys as lim handles them off the TPM: parsing a TPM2B_PUBLIC / TPMT_PUBLIC,
// turning it into an OpenSSL key (PEM export, signature checks), its TPM name, and the
// attribute check an AK must pass before a verifier enrols it. Also loading an AK given as
// PEM. PublicKey is an immutable value once built: share it across threads freely.
#pragma once

#include <tss2/tss2_tpm2_types.h>

#include <memory>
#include <optional>
#include <string>

#include "base/hex.h"
#include "base/status.h"

struct evp_pkey_st;

namespace lim::tpm {

// The largest file read for one TPM structure (TPMS_ATTEST, TPMT_SIGNATURE, TPM2B_PUBLIC, an
// AK blob or description, a credential, a PEM public key): each is bounded by the TPM's
// command/response buffer (TPM2_MAX_RESPONSE_SIZE, 4 KiB), so 64 KiB is 16 times that and a
// 4 GiB file or /dev/zero is refused at once.
constexpr size_t kMaxTpmFileSize = 64 << 10;

struct EvpPkeyFree {
  void operator()(evp_pkey_st* p) const;
};
using EvpPkeyPtr = std::unique_ptr<evp_pkey_st, EvpPkeyFree>;

// Parses either a marshalled TPM2B_PUBLIC (tpm2-tools' `ak.pub`) or a bare TPMT_PUBLIC
// (go-attestation's AK.Public): the TPM2B form is recognised by its size prefix matching the
// rest of the buffer.
Result<TPMT_PUBLIC> ParsePublic(ByteView bytes);
Bytes MarshalPublic2B(const TPMT_PUBLIC& pub);  // TPM2B_PUBLIC
Bytes MarshalPublicT(const TPMT_PUBLIC& pub);   // TPMT_PUBLIC

// The TPM name: nameAlg (big-endian u16) || H_nameAlg(TPMT_PUBLIC).
Result<Bytes> PublicName(const TPMT_PUBLIC& pub);

// An RSA or ECC public key usable by OpenSSL; from a TPM public area or a PEM file.
class PublicKey {
 public:
  static Result<PublicKey> FromTpmPublic(const TPMT_PUBLIC& pub);
  static Result<PublicKey> FromPem(std::string_view pem);
  // A file holding PEM ("-----BEGIN PUBLIC KEY-----"), TPM2B_PUBLIC or TPMT_PUBLIC.
  // At most kMaxTpmFileSize bytes.
  static Result<PublicKey> FromFile(const std::string& path);

  evp_pkey_st* pkey() const { return pkey_.get(); }
  std::string ToPem() const;
  bool is_rsa() const;
  // Present when the key came from a TPM public area (PEM carries no TPM attributes).
  const std::optional<TPMT_PUBLIC>& tpm_public() const { return tpm_public_; }

 private:
  EvpPkeyPtr pkey_;
  std::optional<TPMT_PUBLIC> tpm_public_;
};

// An AK a verifier may enrol: restricted, sign-only (sign set, decrypt clear), fixedTPM and
// fixedParent. The error names every attribute that is wrong.
Status CheckAkAttributes(const TPMT_PUBLIC& pub);

// "ecc-p256" / "rsa-2048" etc. for display.
std::string DescribePublic(const TPMT_PUBLIC& pub);

}  // namespace lim::tpm
