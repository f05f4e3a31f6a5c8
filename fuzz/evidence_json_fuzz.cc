// libFuzzer target: the wire form of attestation messages (attest/evidence_json.h) — what
// the verifier parses from an agent (evidence, identity, credential response) and what the
// agent parses from a verifier (evidence request, credential challenge). Any input must end
// in a value or a clean error; a value must serialise again and parse back to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "attest/evidence_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim::attest;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto e = EvidenceFromJson(in); e.ok()) {
    auto again = EvidenceFromJson(EvidenceToJson(*e));
    if (!again.ok() || again->list.records != e->list.records || again->pcrs != e->pcrs) abort();
  }
  if (auto r = EvidenceRequestFromJson(in); r.ok()) {
    auto again = EvidenceRequestFromJson(EvidenceRequestToJson(*r));
    if (!again.ok() || again->nonce != r->nonce) abort();
  }
  if (auto id = IdentityFromJson(in); id.ok()) {
    if (!IdentityFromJson(IdentityToJson(*id)).ok()) abort();
  }
  (void)CredentialChallengeFromJson(in);
  (void)CredentialResponseFromJson(in);
  if (auto b = Base64Decode(in); b.ok() && Base64Encode(*b) != in) abort();
  return 0;
}
