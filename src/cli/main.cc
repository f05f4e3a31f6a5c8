// lim: the command-line front end. Thin: every subcommand lives in its own cmd_*.cc.
#include <cstdio>

#include "base/escape.h"
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
  // Messages carry names from the input (paths, template names) as raw bytes: escaped here,
  // a newline cannot split the message and a NUL cannot cut it.
  std::fprintf(stderr, "lim: %s\n", Escaped(s.message()).c_str());
  return ExitCodeFor(s);
}

}  // namespace lim::cli

int main(int argc, char** argv) {
  CLI::App app{"lim: Linux IMA measurement lists, boot event logs, TPM and policies in user space"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lim 0.1.0");
  app.footer(
      "Run `lim COMMAND --help` for a command's flags. Exit codes: 0 ok, 1 a check failed (e.g. the list\n"
      "does not replay to the PCRs, limd not running), 2 unusable input.\n"
      "Examples:\n"
      "  lim log /sys/kernel/security/ima/binary_runtime_measurements   # the kernel's list, as the kernel prints it\n"
      "  lim log /var/lib/lim/binary_runtime_measurements --follow     # limd's list, live\n"
      "  lim status                                                    # is limd running, on which TPM\n"
      "  lim verify LIST --tpm swtpm:path=/run/lim/swtpm/sock          # replay the list against the TPM\n"
      "The daemon that measures files is limd (limd --help, man limd).");
  for (auto fn : lim::cli::Registry()) fn(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : lim::cli::kExitBadInput;
  }
  return lim::cli::ExitCode();
}
