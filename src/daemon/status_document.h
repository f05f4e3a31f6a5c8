// The status document limd serves on its control socket and writes to STATE/status.json,
// as `lim status` reads it back. The reader trusts nothing in it (a stale or foreign file,
// or whatever answers on a socket path): the size is capped, it must be a JSON object, and
// every field may be missing or of any type. Pure functions, thread-compatible.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace lim::daemon {

// A status document is a few hundred bytes; anything past this is not one.
inline constexpr size_t kMaxStatusDocument = 1u << 20;

// The document as a JSON object (Corrupt otherwise; origin names the source in errors).
Result<nlohmann::json> ParseStatusDocument(std::string_view text, const std::string& origin);

// `lim status`'s text for the document: running or not (the caller decides), and the fields
// that are present with the expected type ("?" or 0 for the others).
std::string FormatStatusText(const nlohmann::json& doc, bool running, const std::string& state);

}  // namespace lim::daemon
