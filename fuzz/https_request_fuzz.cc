// libFuzzer target: what lim's HTTPS server parses from a peer after the TLS handshake —
// one HTTP/1.1 request through the same Beast parser setup and limits (net/http.h), its
// query string, and, for the agent's routes, the JSON bodies they accept. Any input must end
// in a request or a clean error, never a crash or unbounded memory.
#include <cstddef>
#include <cstdint>

#include "attest/evidence_json.h"
#include "net/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  net::HttpLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 16 << 10;
  auto r = net::ParseHttpRequest(ByteView(data, size), limits);
  if (r.ok()) {
    (void)attest::EvidenceRequestFromJson(r->body);
    (void)attest::CredentialChallengeFromJson(r->body);
  }
  return 0;
}
