// Evidence and Identity: what an agent hands the verifier, as plain C++ data. lim-agent
// fills these from the TPM, limd's (or the kernel's) measurement list and the firmware event
// log; the wire form (JSON) lives in evidence_json.{h,cc}; the verifier (attest/verify.h)
// checks them. Only standard containers and integers, so any transport can serialise them
// field by field and a fuzzer can build them from bytes. Byte fields hold TPM structures in
// their marshalled (big-endian, TPM 2.0 Part 2) form, unparsed: parsing is the verifier's
// job and happens once, in one place. Plain values; no thread rules.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lim::attest {

using Bytes = std::vector<uint8_t>;

// TPM bank algorithm id (TPM_ALG_SHA1 = 0x0004, TPM_ALG_SHA256 = 0x000b, …) → PCR index →
// value. Same shape as tpm::PcrValues.
using PcrValueMap = std::map<uint16_t, std::map<int, Bytes>>;

// One bank's PCR selection for a quote (ascending indices 0..23).
struct PcrBankRequest {
  uint16_t alg = 0;
  std::vector<int> pcrs;
};

// What the verifier asks for in one round.
struct EvidenceRequest {
  Bytes nonce;                        // fresh per round; the quote's extraData (≤ 64 bytes)
  std::vector<PcrBankRequest> pcrs;   // e.g. sha256:0-10 (and sha1:0-10 when both banks)
  uint64_t list_from = 0;             // first measurement-list entry wanted (0-based index)
  bool want_event_log = false;        // firmware (TCG) event log, usually only after a reboot
  uint64_t max_list_bytes = 16 << 20; // the agent sends at most this much list per round
};

// The measurement-list tail: binary_runtime_measurements records (kernel-ima.md §3), the
// whole records starting with entry first_index. The verifier checks first_index against
// what it asked and what it holds (a list that no longer reaches there is "rewound").
struct ListTail {
  uint64_t first_index = 0;
  Bytes records;
  // Hash of the template digests in the records: "sha1" for the classic file, "sha256" for
  // binary_runtime_measurements_sha256, etc. (kernel-ima.md §3.2).
  std::string list_bank = "sha1";
  // "little" or "big" (ima_canonical_fmt), the byte order of the records' u32 fields.
  std::string byte_order = "little";
  // Entries in the list when it was read (first_index + entries in records, unless the
  // agent cut the tail at max_list_bytes: then more follow next round).
  uint64_t total_entries = 0;
  // Where the agent read it: "limd" (limd's store) or "kernel" (securityfs).
  std::string source = "limd";
};

// limd's liveness as the agent saw it when it gathered the evidence.
struct LimdStatus {
  bool running = false;    // limd answered on its control socket
  std::string detail;      // its status line, or why it did not answer
};

struct Evidence {
  Bytes nonce;       // echo of the request's nonce (the quote's extraData is what counts)
  Bytes quote;       // TPMS_ATTEST, marshalled (tpm2_quote -m)
  Bytes signature;   // TPMT_SIGNATURE, marshalled (tpm2_quote -s)
  // The PCR values the quote covers, every bank and index of its selection (tpm2_quote -o).
  PcrValueMap pcrs;
  ListTail list;
  // The firmware event log (/sys/kernel/security/tpm0/binary_bios_measurements), when asked.
  std::optional<Bytes> event_log;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id
  LimdStatus limd;
};

// What an agent presents at enrollment.
struct Identity {
  std::string agent_id;      // the operator's name for the host (unique per verifier)
  Bytes ek_public;           // TPM2B_PUBLIC of the endorsement key
  std::optional<Bytes> ek_certificate;  // DER, from the TPM's NV index, when it has one
  Bytes ak_public;           // TPM2B_PUBLIC of the attestation key
};

// Enrollment's proof that the AK lives in the TPM holding the EK: the verifier's
// MakeCredential output, which only that TPM can open with TPM2_ActivateCredential.
struct CredentialChallenge {
  Bytes id_object;  // TPM2B_ID_OBJECT (credentialBlob)
  Bytes secret;     // TPM2B_ENCRYPTED_SECRET
};
struct CredentialResponse {
  Bytes credential;  // the secret ActivateCredential recovered
};

}  // namespace lim::attest
