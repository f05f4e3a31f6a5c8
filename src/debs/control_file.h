// Debian control data (deb822): the stanzas of /var/lib/dpkg/status and of a .deb's
// control file — "Field: value" lines, continuation lines starting with a space or tab, a
// blank line between stanzas. Parsing is bounded by the input (callers read files with a
// size limit) and never trusts it: a line that is neither a field nor a continuation is an
// error naming the place ("status:12: …"). Field names compare case-insensitively, as dpkg
// does. Plain data; thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace lim::debs {

struct Stanza {
  size_t line = 0;  // 1-based line of its first field
  std::vector<std::pair<std::string, std::string>> fields;  // value: first line, continuation lines joined by '\n'

  // The field's value ("" when absent), first occurrence, name case-insensitive.
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const;
};

// where names the input in errors ("/var/lib/dpkg/status").
Result<std::vector<Stanza>> ParseControl(std::string_view text, std::string_view where);

}  // namespace lim::debs
