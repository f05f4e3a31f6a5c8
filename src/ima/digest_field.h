// The digest-carrying template fields: 'd' (raw 20 bytes), 'd-ng' ("<algo>:" NUL digest),
// 'd-ngv2' ("<type>:<algo>:" NUL digest) and 'd-modsig' (as d-ng). Parse and build their
// payloads exactly as the kernel's ima_eventdigest_init_common writes them. Stateless.
#pragma once

#include <string>
#include <string_view>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

namespace lim::ima {

struct DigestField {
  std::string_view type;       // "ima" or "verity" for d-ngv2; empty otherwise
  std::string_view algo_name;  // as written ("sha256", "sm3_256"…); empty for 'd'
  ByteView digest;
  // An all-zero violation digest of a historic size that does not fit the algorithm.
  bool historic_violation = false;
};

// Splits a d-ng / d-ngv2 payload. with_type: d-ngv2. Errors describe the defect; the caller
// adds the entry index and offset. Unknown algorithm names and digests whose size does not
// fit the algorithm are errors, except all-zero violation digests of the historic sizes.
Result<DigestField> ParseDigestField(ByteView payload, bool with_type);

Bytes BuildDigestNg(std::string_view algo_name, ByteView digest);
Bytes BuildDigestNgV2(std::string_view type, std::string_view algo_name, ByteView digest);

bool IsAllZero(ByteView b);

}  // namespace lim::ima
