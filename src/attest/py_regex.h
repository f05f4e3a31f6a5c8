// PyRegex: one Python regular expression (keylime's policies are written for Python's re)
// compiled with PCRE2, matched as re.fullmatch or re.match (anchored at the start). PCRE2
// reads Python's syntax — (?P<name>…), inline flags, lookarounds — with one translation:
// Python's \Z is PCRE2's \z. A match limit bounds backtracking; a match that hits it counts
// as no match, so a hostile pattern or subject costs bounded time and is never waved through.
//
// Immutable once compiled; Match/FullMatch are const and thread-safe (match data per call).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace lim::attest {

class PyRegex {
 public:
  // where names the pattern in errors ("dm_policy.rules.root.table_load.name").
  static Result<PyRegex> Compile(const std::string& python_regex, const std::string& where);
  // Python → PCRE2 syntax (\Z → \z).
  static std::string Translate(const std::string& python_regex);

  bool FullMatch(std::string_view subject) const;  // re.fullmatch
  bool Match(std::string_view subject) const;      // re.match (anchored at the start)
  const std::string& source() const { return source_; }

 private:
  struct Code;
  bool Run(std::string_view subject, bool full) const;
  std::string source_;
  std::shared_ptr<const Code> code_;
};

}  // namespace lim::attest
