// Lowercase hex encoding and tolerant decoding of byte strings. Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lim {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

std::string ToHex(ByteView bytes);
// Appends hex of bytes to out (no allocation beyond growth of out).
void AppendHex(ByteView bytes, std::string* out);
// Decodes hex (either case). An optional "0x" prefix is accepted. Odd length or a non-hex
// character is an error naming the offending position.
Result<Bytes> FromHex(std::string_view hex);

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsChars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace lim
