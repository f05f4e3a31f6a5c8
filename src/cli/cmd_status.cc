// lim status: is limd running, on which TPM, and how it is doing. Asks limd's root-only
// control socket first (live numbers); when nothing answers there (limd stopped, another
// limd's socket, not root) it reads STATE/status.json (written by limd every second) and
// tells from the STATE/lock flock whether limd still runs.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "base/file.h"
#include "base/escape.h"
#include "cli/command.h"
#include "control/control_client.h"
#include "control/status_report.h"

namespace lim::cli {
namespace {

struct StatusArgs {
  std::string state = "/var/lib/lim";
  std::string socket = control::kDefaultControlSocket;
  bool state_given = false, socket_given = false;
  bool json = false;
};

// limd holds an exclusive flock on STATE/lock while it runs.
bool LockHeld(const std::string& state) {
  int fd = ::open((state + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
  if (!held) flock(fd, LOCK_UN);
  ::close(fd);
  return held;
}

bool SameDir(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

// The live report from the control socket, or nothing (with a note on stderr when the
// socket answered but could not be used).
std::optional<control::StatusReport> FromSocket(const StatusArgs& a) {
  auto text = control::QueryControlSocket(a.socket);
  if (!text.ok()) {
    if (a.socket_given) std::fprintf(stderr, "lim: control socket %s\n", Escaped(text.status().message()).c_str());
    return std::nullopt;
  }
  auto report = control::StatusReport::Parse(*text, "control socket " + Escaped(a.socket));
  if (!report.ok()) {
    std::fprintf(stderr, "lim: %s\n", report.status().message().c_str());
    return std::nullopt;
  }
  if (report->error) {
    std::fprintf(stderr, "lim: control socket %s: \"%s\"\n", Escaped(a.socket).c_str(), Escaped(*report->error).c_str());
    return std::nullopt;
  }
  // The default socket may belong to a limd on another state directory.
  if (a.state_given && !a.socket_given && !SameDir(report->state.value_or(""), a.state)) return std::nullopt;
  report->running = true;  // it answered
  report->source = "control socket " + a.socket;
  return std::move(report).value();
}

int RunStatus(const StatusArgs& a) {
  std::optional<control::StatusReport> report = FromSocket(a);
  if (!report) {
    std::string path = a.state + "/status.json";
    auto text = ReadFileTextBounded(path, control::kMaxStatusDocument, "limd's status.json");  // limd writes a few KiB
    if (!text.ok()) return ReportError(Status::NotFound("no limd state at " + a.state + " (" + text.status().message() + ")"));
    auto parsed = control::StatusReport::Parse(*text, path);
    if (!parsed.ok()) return ReportError(parsed.status());
    report = std::move(parsed).value();
    report->running = LockHeld(a.state);
    report->source = path;
  }
  if (a.json) {
    std::printf("%s\n", report->ToJson().dump().c_str());
  } else {
    std::fputs(report->Text(a.state).c_str(), stdout);
  }
  return report->running ? kExitOk : kExitCheckFailed;
}

void Register(CLI::App& app) {
  auto sa = std::make_shared<StatusArgs>();
  auto* s = app.add_subcommand("status", "is limd running: TPM kind and banks, entries, violations, latency");
  s->footer(
      "Asks limd's control socket (root only) first; when it does not answer, reads STATE/status.json\n"
      "and STATE/lock. Exit 0: limd runs; 1: it does not (the last numbers are shown); 2: no state.\n"
      "Latencies are bucket bounds (powers of two, microseconds).");
  auto* st = s->add_option("--state", sa->state, "limd's state directory")->capture_default_str();
  auto* so = s->add_option("--socket", sa->socket, "limd's control socket")->capture_default_str();
  s->add_flag("--json", sa->json, "print the status document (JSON) with the live running flag");
  s->callback([sa, st, so] {
    sa->state_given = st->count() > 0;
    sa->socket_given = so->count() > 0;
    ExitCode() = RunStatus(*sa);
  });
}

}  // namespace

LIM_REGISTER_COMMAND(Register);

}  // namespace lim::cli
