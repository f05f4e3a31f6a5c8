// lim: the command-line front end. Thin: every subcommand lives in its own cmd_*.cc.
#include <cstdio>

#include "cli/command.h"

namespace lim::cli {

int& ExitCode() {
  static int code = 0;
  return code;
}

std::vector<RegisterFn>& Registry() {
  static std::vector<RegisterFn> fns;
  return fns;
}

int ExitCodeFor(const Status& s) {
  return s.code() == StatusCode::kMismatch ? kExitCheckFailed : kExitBadInput;
}

int ReportError(const Status& s) {
  std::fprintf(stderr, "lim: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

}  // namespace lim::cli

int main(int argc, char** argv) {
  CLI::App app{"lim: Linux IMA measurement lists, boot event logs, TPM and policies in user space"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lim 0.1.0");
  for (auto fn : lim::cli::Registry()) fn(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : lim::cli::kExitBadInput;
  }
  return lim::cli::ExitCode();
}
