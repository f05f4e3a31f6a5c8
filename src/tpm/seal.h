// Sealing a small secret (the EVM HMAC key) to the TPM under a PCR policy: the TPM keeps a
// keyed-hash data object whose sensitive part is the secret, wrapped by the owner
// hierarchy's storage primary key (created from a fixed template, so it is the same key on
// every run and never stored), with authPolicy = PolicyPCR(selection, values at sealing).
// Only TPM2_Unseal in a policy session whose PCRs still hold those values gives the secret
// back; userWithAuth is clear, so no password opens it. The blob is useless on another TPM
// (fixedTPM, fixedParent) and the secret crosses the wire encrypted both ways (a session
// salted with the primary key, AES-128-CFB parameter encryption).
//
// What it proves depends on the TPM: with a hardware TPM or a hypervisor vTPM, root cannot
// unseal once a policy PCR has moved past the sealed value (it can extend, never reset).
// With swtpm, root can read or reset the emulator's state: sealing then proves nothing
// against root.
//
// SealedObject is what Tpm::Seal returns and Tpm::Unseal takes; the file form is JSON
// (hex TPM2B_PUBLIC / TPM2B_PRIVATE as tpm2_create writes them with -u / -r). Plain values;
// no thread rules of their own.
#pragma once

#include <string>
#include <string_view>

#include "base/hex.h"
#include "base/status.h"
#include "tpm/pcr.h"

namespace lim::tpm {

// TPM2B_SENSITIVE_DATA holds at most MAX_SYM_DATA = 128 bytes (the EVM key's maximum too).
inline constexpr size_t kMaxSealedSecret = 128;
// A sealed file holds two small TPM structures and some PCR values.
inline constexpr size_t kMaxSealedFileSize = 64 << 10;

struct SealedObject {
  PcrSelection pcrs;          // the policy's PCRs
  PcrValues values_at_seal;   // their values when sealed (to say which PCR moved)
  Bytes public_area;          // TPM2B_PUBLIC of the data object
  Bytes private_area;         // TPM2B_PRIVATE, wrapped by the storage primary key
};

// "sha256:0,7" or "sha256:0,7+sha1:0" (tpm2-tools' form). Every bank must be named.
Result<PcrSelection> ParsePcrSelection(std::string_view text);

std::string EncodeSealedObject(const SealedObject& s);
// what names the input in errors.
Result<SealedObject> DecodeSealedObject(std::string_view text, const std::string& what);
Result<SealedObject> ReadSealedFile(const std::string& path);

// "sha256:7 (sealed 3f2a…, now 9b1c…)" for each policy PCR whose value differs; empty when
// none does.
std::string DescribePcrChanges(const SealedObject& s, const PcrValues& now);

}  // namespace lim::tpm
