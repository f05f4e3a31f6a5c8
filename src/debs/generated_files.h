// Files a Debian host generates itself, which therefore no package ships and no .deb can give
// a digest for: caches and indexes rebuilt by maintainer scripts and triggers. Classifying
// them keeps "not owned by any package" for files that really came from nowhere. The table
// is Debian's (bookworm); each entry says what writes the file. Stateless; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lim::debs {

// Why path is generated on the host ("ldconfig's cache of the installed libraries"), or
// nullopt when it is not a known generated file. path as measured (/usr/… or its alias).
std::optional<std::string> GeneratedReason(std::string_view path);

}  // namespace lim::debs
