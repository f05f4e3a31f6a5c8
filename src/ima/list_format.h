// Text renderings of list entries: the kernel's ascii_runtime_measurements line (byte for
// byte, trailing spaces included — kernel-ima.md §5.1), the JSON Lines object of cli.md, and
// the IMA rows of the integrated table. Stateless functions; thread-safe.
#pragma once

#include <string>

#include "ima/entry.h"

namespace lim::ima {

// Appends one ASCII line (with "\n") for e, showing `digest` (normally e.digest).
void AppendAsciiLine(const Entry& e, ByteView digest, std::string* out);
// Appends the ASCII rendering of field i of e (nothing for an empty field).
void AppendFieldAscii(const Entry& e, size_t i, std::string* out);

// One JSON object (no newline): index, pcr, template, template_digest, fields, violation.
// The template name and string fields (n, n-ng, …) are Escaped (base/escape.h): lossless.
std::string EntryJson(const Entry& e, ByteView digest);

// The EventData cell of the integrated table: "[IMA:<name>]" (name with spaces as stored,
// escaped so that a newline or a control byte in it cannot split or forge a row).
std::string TableEventData(const Entry& e);

}  // namespace lim::ima
