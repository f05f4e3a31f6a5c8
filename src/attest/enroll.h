// Enrollment, verifier side, with OpenSSL alone: an agent's Identity (EK public, EK
// certificate, AK public) is checked — EK certificate chain against a directory of CA
// certificates and its key equal to the EK public area sent; the AK's public area parsed
// here and required to be fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign and
// not decrypt (else an unrestricted key in the same TPM could sign forged quotes) — then a
// credential challenge is made for (EK, AK name) that only that TPM, holding that AK, can
// open (TPM2_ActivateCredential). No EK certificate: refused unless the operator allows
// trust on first use for this agent, and then marked so (tofu) everywhere it shows.
// Stateless functions; thread-safe.
#pragma once

#include <tss2/tss2_tpm2_types.h>

#include <string>

#include "attest/evidence.h"
#include "base/hex.h"
#include "base/status.h"

namespace lim::attest {

struct EnrollOptions {
  std::string ca_dir;       // PEM or DER CA certificates (every regular file)
  bool allow_tofu = false;  // accept an agent without an EK certificate
};

struct CheckedIdentity {
  TPMT_PUBLIC ek{};
  TPMT_PUBLIC ak{};
  Bytes ak_name;           // nameAlg ‖ H(TPMT_PUBLIC)
  bool tofu = false;       // no EK certificate: trusted on first use
  std::string ek_subject;  // of the EK certificate, when there is one
  std::string ek_issuer;
};

// All the checks that need no TPM round trip. Errors say which check failed.
Result<CheckedIdentity> CheckIdentity(const Identity& id, const EnrollOptions& options);

// A fresh 32-byte secret wrapped for (EK, AK name); keep *secret to check the response.
Result<CredentialChallenge> MakeChallenge(const CheckedIdentity& id, Bytes* secret);
// Constant-time comparison of the activated credential with the secret.
Status CheckChallengeResponse(ByteView secret, const CredentialResponse& response);

// The AK attribute rule alone (also used when an AK is replaced).
Status CheckAkPublic(const TPMT_PUBLIC& ak);

}  // namespace lim::attest
