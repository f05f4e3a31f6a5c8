// TPM 2.0 quotes off the TPM: the tpm2-tools file forms (quote.msg = marshalled TPMS_ATTEST,
// quote.sig = marshalled TPMT_SIGNATURE, quote.pcrs = tpm2_quote -o's PCR file), building a
// quote's pcrDigest, and checking a quote with OpenSSL alone. Every check that fails is
// named (QuoteFailure) so a verifier can report exactly what did not hold. Stateless
// functions over values: thread-safe; a PublicKey may be shared by concurrent checks.
#pragma once

#include <cstdint>
#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "tpm/key.h"
#include "tpm/pcr.h"

namespace lim::tpm {

struct ClockInfo {
  uint64_t clock = 0;  // ms the TPM has been powered, roughly
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
};

// What a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE says.
struct QuoteInfo {
  uint32_t magic = 0;
  uint16_t type = 0;
  Bytes qualified_signer;
  Bytes extra_data;  // the nonce
  ClockInfo clock;
  uint64_t firmware_version = 0;
  PcrSelection selection;
  Bytes pcr_digest;
};

// A TPMT_SIGNATURE's algorithm pair, e.g. sig_alg TPM_ALG_ECDSA, hash_alg TPM_ALG_SHA256.
struct SignatureInfo {
  uint16_t sig_alg = 0;
  uint16_t hash_alg = 0;
};

enum class QuoteFailure {
  kNone,
  kMalformed,   // quote.msg / quote.sig / PCR file does not parse
  kSignature,   // signature does not verify with the AK (different AK, altered message)
  kMagic,       // magic != TPM_GENERATED_VALUE: not made by a TPM
  kType,        // not TPM_ST_ATTEST_QUOTE
  kNonce,       // extraData != the verifier's nonce
  kPcrSelect,   // quoted selection != the supplied PCRs' selection
  kPcrDigest,   // pcrDigest != hash of the supplied PCR values
};
const char* QuoteFailureName(QuoteFailure f);

// Parses TPMS_ATTEST (or TPM2B_ATTEST, recognised by its size prefix). Any attestation
// type parses; the quote fields are filled only for TPM_ST_ATTEST_QUOTE.
Result<QuoteInfo> ParseAttest(ByteView msg);
Result<SignatureInfo> ParseSignature(ByteView sig);

// Verifies sig (TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA) over msg with key.
Status VerifySignature(const PublicKey& key, ByteView msg, ByteView sig);

// H_alg(concatenation of the values selected, bank by bank in selection order, ascending
// index) — the TPM's pcrDigest. Missing values are an error naming the bank and index.
Result<Bytes> ComputePcrDigest(uint16_t hash_alg, const PcrSelection& sel, const PcrValues& values);

// All checks; returns the quote's contents when every one holds. On failure the Status is
// kMismatch (or kCorrupt for kMalformed) with a message starting with the failure's name,
// and *failure (if given) says which.
Result<QuoteInfo> CheckQuote(const PublicKey& ak, ByteView msg, ByteView sig, ByteView nonce,
                             const PcrSelection& selection, const PcrValues& values,
                             QuoteFailure* failure = nullptr);

// tpm2_quote -o / tpm2_checkquote -f format: native (little-endian) TPML_PCR_SELECTION, a
// u32 count, then that many TPML_DIGEST structs (8 digests each), values in selection order.
Bytes WritePcrsFile(const PcrSelection& selection, const PcrValues& values);
struct PcrsFile {
  PcrSelection selection;
  PcrValues values;
};
Result<PcrsFile> ReadPcrsFile(ByteView data);

// PcrSelection ↔ tpm2-tss TPML_PCR_SELECTION (at most 16 banks, PCRs < 32).
Result<TPML_PCR_SELECTION> ToTssSelection(const PcrSelection& sel);
PcrSelection FromTssSelection(const TPML_PCR_SELECTION& sel);

}  // namespace lim::tpm
