// Escaping of untrusted bytes — file names, template names, paths read from a list — for
// every place lim shows them: error messages, table rows and JSON strings. One scheme:
// printable ASCII and well-formed UTF-8 pass through; a backslash becomes "\\"; every other
// byte (control characters such as a newline, DEL, NUL, bytes that are not well-formed
// UTF-8) becomes "\xNN" (two lower-case hex digits). So an escaped string is one line
// without NULs, is valid UTF-8, and two different strings never escape alike: undo "\\" and
// "\xNN" to get the bytes back. Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/bytes.h"

namespace lim {

// Appends the escaped form of s to *out.
void AppendEscaped(std::string_view s, std::string* out);
std::string Escaped(std::string_view s);

// True when s is printable ASCII (0x20–0x7e) without '"' and '\\': then Escaped(s) == s and
// s is the body of its own JSON string — writers copy such strings as they are.
bool PlainForJson(std::string_view s);

// Length of the well-formed UTF-8 sequence at the start of d whose lead byte is ≥ 0x80
// (2 to 4), or 0 when there is none (overlong forms, surrogates and code points above
// U+10FFFF are not well formed).
size_t Utf8SequenceLength(ByteView d);

}  // namespace lim
