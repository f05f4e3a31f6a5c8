// Debian version strings ("[epoch:]upstream[-revision]") and their order, as dpkg
// --compare-versions decides it (lib/dpkg/version.c: '~' sorts before everything, even the
// end; letters before other characters; digit runs numerically). Used to keep a policy's
// versions newest first and to cut its update window. Stateless; thread-safe.
#pragma once

#include <string_view>

namespace lim::debs {

// <0, 0, >0 as a is older than, equal to, newer than b. Malformed strings compare by the
// same rules (no error: a package set from the wild may carry any text).
int CompareVersions(std::string_view a, std::string_view b);

}  // namespace lim::debs
