// Test helpers shared by every module's tests: fixture paths, scratch directories and
// running the lim binary. Used from the test thread only.
#pragma once

#include <sys/types.h>

#include <string>

namespace lim::testing {

// Absolute path of a file under shared/fixtures (env LIM_FIXTURES, else ../shared/fixtures).
std::string Fixture(const std::string& relative);
// Absolute path of a file in the source tree (scripts/…), independent of how the test was
// compiled (__FILE__ is relative under ccache's base_dir).
std::string SourcePath(const std::string& relative);
// Path of the built lim binary (env LIM_BIN).
std::string LimBinary();
// The permission bits of path itself (lstat: a link is not followed); 0 when it is missing.
mode_t ModeOf(const std::string& path);
// The whole file, or "<cannot read PATH: why>" so that a comparison fails visibly.
std::string Slurp(const std::string& path);
// A fresh empty directory under $TMPDIR, removed by the caller (or left for inspection).
std::string MakeTempDir();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult Run(const std::string& command_line);
// Same as Run; usable unqualified inside TEST bodies (where Test::Run hides Run).
inline CommandResult RunCommand(const std::string& command_line) { return Run(command_line); }
// Single-quotes s for a POSIX shell.
std::string ShellQuote(const std::string& s);
// "'<lim binary>' ARGS": a command line for Run().
std::string LimCommand(const std::string& args);

}  // namespace lim::testing
