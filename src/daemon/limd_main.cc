// limd: the measuring daemon (cli.md "The daemon"). Parses flags, then Limd (limd.h) opens
// the policy, the TPM and the measurement list (recovering it), writes limd's own start
// entries, marks the --watch mounts and answers fanotify events until SIGTERM/SIGINT.
// Errors at start print "limd: …" and exit 2 (bad usage) or 1 (a check did not hold, e.g.
// the TPM disagrees).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "base/own_threads.h"
#include "daemon/limd.h"
#include "daemon/limd_flags.h"

namespace {

int Fail(const lim::Status& s) {
  std::fprintf(stderr, "limd: %s\n", s.message().c_str());
  return s.code() == lim::StatusCode::kMismatch ? 1 : 2;
}

int Run(int argc, char** argv) {
  lim::OwnThreadScope main_thread;  // the main thread is limd too (its tid is also the pid)
  lim::daemon::LimdFlags flags;
  auto parsed = lim::daemon::ParseLimdFlags(std::vector<std::string>(argv, argv + argc), &flags);
  if (parsed.exit_code >= 0) {
    std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  auto limd = lim::daemon::Limd::Open(flags);
  if (!limd.ok()) return Fail(limd.status());
  lim::Status s = (*limd)->Run();
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int main(int argc, char** argv) {
  // Every failure limd can foresee is a Status and a message; this catches the rest at start
  // (an allocation, a thread that cannot be had) so that limd does not abort with exit 134.
  // It is the last line of defence, not the check: the ranges are (limd_flags.cc).
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "limd: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "limd: internal error: unknown exception\n");
  }
  return 2;
}
