// TPM2_MakeCredential done off the TPM with OpenSSL (TPM 2.0 Part 1 §24 "Credential
// Protection"): a verifier wraps a secret for (EK public, AK name) so that only the TPM
// holding that EK — and only for an object with that name loaded in it — can recover it
// with TPM2_ActivateCredential. KDFa is SP 800-108 counter-mode HMAC (OpenSSL KBKDF), KDFe
// the SP 800-56A concatenation KDF (OpenSSL SSKDF). Stateless; thread-safe.
#pragma once

#include <tss2/tss2_tpm2_types.h>

#include "base/hex.h"
#include "base/status.h"

namespace lim::tpm {

struct MadeCredential {
  Bytes id_object;  // marshalled TPM2B_ID_OBJECT (credentialBlob)
  Bytes secret;     // marshalled TPM2B_ENCRYPTED_SECRET
};

// ek: an RSA-2048 or ECC P-256 storage key with AES-128-CFB symmetric parameters (the
// standard EK templates); ak_name: the AK's TPM name; credential: at most 64 bytes.
Result<MadeCredential> MakeCredential(const TPMT_PUBLIC& ek, ByteView ak_name, ByteView credential);

// KDFa(hash, key, label, contextU||contextV, bits), exposed for tests.
Result<Bytes> KdfA(uint16_t hash_alg, ByteView key, std::string_view label, ByteView context, size_t bits);

// tpm2-tools' tpm2_makecredential output file: magic 0xBADCC0DE, version 1, then the
// TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET — so tpm2_activatecredential -i reads it.
Bytes ToTpm2ToolsCredentialFile(const MadeCredential& c);
Result<MadeCredential> FromTpm2ToolsCredentialFile(ByteView data);

}  // namespace lim::tpm
