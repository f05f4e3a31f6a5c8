// Reads the `pcrs:` block that tpm2_eventlog (tpm2-tools) prints after the events
// ("  sha256:" then "    0  : 0x…" lines), so lim can compare its replay with
// tpm2_eventlog's or with tpm2-tools' expected YAML files. Pure function; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace lim::tcg {

// bank name → PCR index → lowercase hex (without 0x). Lines that do not fit are ignored.
std::map<std::string, std::map<int, std::string>> ParseTpm2EventlogPcrs(std::string_view yaml);

}  // namespace lim::tcg
