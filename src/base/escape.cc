#include "base/escape.h"

namespace lim {

size_t Utf8SequenceLength(ByteView d) {
  if (d.empty()) return 0;
  uint8_t c = d[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || d.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((d[i] & 0xC0) != 0x80) return 0;
  }
  if (n == 3 && c == 0xE0 && d[1] < 0xA0) return 0;   // overlong
  if (n == 3 && c == 0xED && d[1] >= 0xA0) return 0;  // surrogate
  if (n == 4 && c == 0xF0 && d[1] < 0x90) return 0;   // overlong
  if (n == 4 && c == 0xF4 && d[1] >= 0x90) return 0;  // > U+10FFFF
  return n;
}

void AppendEscaped(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  ByteView b = AsBytes(s);
  for (size_t i = 0; i < b.size(); ++i) {
    uint8_t c = b[i];
    if (c == '\\') {
      out->append("\\\\");
    } else if (c >= 0x20 && c < 0x7f) {
      out->push_back(static_cast<char>(c));
    } else if (size_t n = c >= 0x80 ? Utf8SequenceLength(b.subspan(i)) : 0; n > 0) {
      out->append(s.substr(i, n));
      i += n - 1;
    } else {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

std::string Escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendEscaped(s, &out);
  return out;
}

bool PlainForJson(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace lim
