// limd's configuration file (/etc/lim/limd.conf, `limd --config FILE`): one `key = value`
// per line, keys are limd's long flags without the dashes, `#` or `;` starts a comment
// line, a key repeated adds another value (`watch`), `true`/`false` for switches. Flags on
// the command line override the file. Parsed by ParseConfigText (line-exact errors) and
// applied through CLI11's config machinery, so a flag and its key behave the same.
// See dist/limd.conf for a commented example. lim-agent and lim-verifier compile this file
// into their binaries for their own --config (dist/agent.conf, dist/verifier.conf).
// Functions are pure and thread-compatible.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace lim::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/lim/limd.conf";
// A larger config file is refused unread (/dev/zero must not exhaust memory).
inline constexpr size_t kMaxConfigBytes = 1u << 20;

struct ConfigEntry {
  int line = 0;
  std::string key;
  std::string value;
};

// Parses the text of a config file. check_key(key) returns a non-ok Status for a key that
// is not allowed. Errors read "LINE: message" (1-based).
Result<std::vector<ConfigEntry>> ParseConfigText(const std::string& text,
                                                 const std::function<Status(const std::string& key)>& check_key);

// Adds `--config FILE` to app (default default_path: a missing default file is fine, a
// missing explicit one is an error) with ParseConfigText as the parser. Keys are the app's
// long option names; help, version and config itself are refused.
void AddConfigOption(CLI::App* app, const std::string& default_path = kDefaultConfigPath);

// After app.parse(): the config file read when the command line overrode some of its lines
// (those lines were never checked: parse the file alone to check them), else "".
std::string ConfigFileWithHiddenEntries(const CLI::App& app);

// The message for a CLI11 parse error: "FILE:LINE: …" when it came from the config file
// (a syntax error, an unknown key, or a value CLI11 could not convert), else e.what().
std::string DescribeParseError(const CLI::App& app, const CLI::Error& e);

}  // namespace lim::daemon
