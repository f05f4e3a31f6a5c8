#include "ima/digest_field.h"

#include <algorithm>
#include <cstring>

namespace lim::ima {

bool IsAllZero(ByteView b) {
  // Word at a time: every record's digest goes through here.
  size_t i = 0;
  for (; i + 8 <= b.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, b.data() + i, 8);
    if (w != 0) return false;
  }
  for (; i < b.size(); ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

Result<DigestField> ParseDigestField(ByteView payload, bool with_type) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(payload.data(), 0, payload.size()));
  if (!nul) return Status::Corrupt("digest field has no NUL after its algorithm prefix");
  std::string_view prefix(reinterpret_cast<const char*>(payload.data()), static_cast<size_t>(nul - payload.data()));
  if (prefix.empty() || prefix.back() != ':') {
    return Status::Corrupt("digest field prefix '" + std::string(prefix) + "' does not end in ':'");
  }
  prefix.remove_suffix(1);
  DigestField f;
  if (with_type) {
    size_t colon = prefix.find(':');
    if (colon == std::string_view::npos) {
      return Status::Corrupt("d-ngv2 prefix '" + std::string(prefix) + ":' lacks a digest type");
    }
    f.type = prefix.substr(0, colon);
    prefix.remove_prefix(colon + 1);
    if (f.type != "ima" && f.type != "verity") {
      return Status::Unsupported("unknown digest type '" + std::string(f.type) + "'");
    }
  }
  f.algo_name = prefix;
  f.digest = payload.subspan(static_cast<size_t>(nul - payload.data()) + 1);
  size_t size;
  if (const HashAlgo* exact = HashAlgoByKernelName(f.algo_name)) {
    size = exact->size;
  } else {
    auto algo = HashAlgoByName(f.algo_name);  // aliases such as keylime's "sm3_256"
    if (!algo.ok()) return algo.status();
    size = algo->size;
  }
  if (f.digest.size() != size) {
    // Violations: ≤5.18 wrote "sha1:" + 20 zeros, 5.19 wrote "<ima_hash>:" + 20 zeros.
    bool historic_violation = IsAllZero(f.digest) && f.digest.size() == 20;
    f.historic_violation = historic_violation;
    if (!historic_violation) {
      return Status::Corrupt("digest of " + std::to_string(f.digest.size()) + " bytes for " +
                             std::string(f.algo_name) + " (expected " + std::to_string(size) + ")");
    }
  }
  return f;
}

Bytes BuildDigestNg(std::string_view algo_name, ByteView digest) {
  Bytes out(algo_name.begin(), algo_name.end());
  out.push_back(':');
  out.push_back(0);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Bytes BuildDigestNgV2(std::string_view type, std::string_view algo_name, ByteView digest) {
  Bytes out(type.begin(), type.end());
  out.push_back(':');
  out.insert(out.end(), algo_name.begin(), algo_name.end());
  out.push_back(':');
  out.push_back(0);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

}  // namespace lim::ima
