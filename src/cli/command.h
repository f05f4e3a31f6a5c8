// The lim CLI's command registry. Each cmd_*.cc adds its subcommands with
// LIM_REGISTER_COMMAND(fn); main() builds the CLI11 app from every registered function.
// Commands report failure by returning an exit code (0 ok, 1 check failed, 2 bad usage or
// unusable input) and print a one-line error naming the file and the place on stderr.
// Single-threaded: registration happens during static initialisation, before main().
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace lim::cli {

constexpr int kExitOk = 0;
constexpr int kExitCheckFailed = 1;
constexpr int kExitBadInput = 2;

// Set by a subcommand's callback; main() returns it.
int& ExitCode();

using RegisterFn = void (*)(CLI::App& app);
std::vector<RegisterFn>& Registry();

// Prints "lim: <message>" to stderr (escaped, base/escape.h) and returns the exit code for the
// status. Other lines that show a name from the input escape it with Escaped() too.
int ReportError(const Status& s);
// Exit code for a non-OK status: kMismatch → 1, everything else → 2.
int ExitCodeFor(const Status& s);

}  // namespace lim::cli

#define LIM_REGISTER_COMMAND(fn)                                                   \
  static const bool LIM_CONCAT(lim_registered_, __LINE__) = [] {                 \
    ::lim::cli::Registry().push_back(fn);                                          \
    return true;                                                                   \
  }()
