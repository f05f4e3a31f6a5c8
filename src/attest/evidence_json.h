// The wire form of attestation messages (evidence.h) between lim-agent and the verifier:
// JSON objects (nlohmann-json), byte fields in standard base64 with padding, PCR banks by
// name ("sha256"), PCR indices as decimal strings. docs/agent.md shows each document.
//
// Parsing is strict: a document must be a JSON object with exactly the known keys, each
// of its type and within its bounds (nonce 8..64 bytes, PCR 0..23, known banks, no
// duplicates); the first violation is returned as an error naming the field path, e.g.
// "evidence.list.records: bad base64 at character 17". Stateless functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "attest/evidence.h"
#include "base/status.h"

namespace lim::attest {

// Quote nonces: long enough to be unguessable, short enough for TPM2B_DATA (64 bytes).
constexpr size_t kMinNonceBytes = 8;
constexpr size_t kMaxNonceBytes = 64;
// The most list bytes one round may carry (EvidenceRequest::max_list_bytes).
constexpr uint64_t kMaxListBytesPerRound = 64ull << 20;

std::string Base64Encode(const Bytes& bytes);
// Standard alphabet, '=' padding required, no whitespace.
Result<Bytes> Base64Decode(std::string_view text);

std::string EvidenceRequestToJson(const EvidenceRequest& r);
Result<EvidenceRequest> EvidenceRequestFromJson(std::string_view json);

std::string EvidenceToJson(const Evidence& e);
Result<Evidence> EvidenceFromJson(std::string_view json);

std::string IdentityToJson(const Identity& id);
Result<Identity> IdentityFromJson(std::string_view json);

std::string CredentialChallengeToJson(const CredentialChallenge& c);
Result<CredentialChallenge> CredentialChallengeFromJson(std::string_view json);
std::string CredentialResponseToJson(const CredentialResponse& c);
Result<CredentialResponse> CredentialResponseFromJson(std::string_view json);

}  // namespace lim::attest
