// lim status: is limd running, on which TPM, and how it is doing. Asks limd's root-only
// control socket first (live numbers); when nothing answers there (limd stopped, another
// limd's socket, not root) it reads STATE/status.json (written by limd every second) and
// tells from the STATE/lock flock whether limd still runs.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/escape.h"
#include "cli/command.h"
#include "daemon/control_socket.h"

namespace lim::cli {
namespace {

struct StatusArgs {
  std::string state = "/var/lib/lim";
  std::string socket = daemon::kDefaultControlSocket;
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

// The live document from the control socket, or nothing (with a note on stderr when the
// socket answered but could not be used).
std::optional<nlohmann::json> FromSocket(const StatusArgs& a) {
  auto text = daemon::QueryControlSocket(a.socket);
  if (!text.ok()) {
    if (a.socket_given) std::fprintf(stderr, "lim: control socket %s\n", Escaped(text.status().message()).c_str());
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::fprintf(stderr, "lim: control socket %s: not a JSON object\n", Escaped(a.socket).c_str());
    return std::nullopt;
  }
  if (j.contains("error")) {
    std::fprintf(stderr, "lim: control socket %s: %s\n", Escaped(a.socket).c_str(), j["error"].dump().c_str());
    return std::nullopt;
  }
  // The default socket may belong to a limd on another state directory.
  if (a.state_given && !a.socket_given && !SameDir(j.value("state", ""), a.state)) return std::nullopt;
  j["source"] = "control socket " + a.socket;
  return j;
}

std::string Duration(double s) {
  auto t = static_cast<unsigned long long>(s);
  char buf[64];
  if (t >= 86400) {
    std::snprintf(buf, sizeof buf, "%llud %lluh", t / 86400, t % 86400 / 3600);
  } else if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lluh %llum", t / 3600, t % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llum %llus", t / 60, t % 60);
  }
  return buf;
}

int RunStatus(const StatusArgs& a) {
  std::optional<nlohmann::json> live = FromSocket(a);
  nlohmann::json j;
  bool running;
  if (live) {
    j = std::move(*live);
    running = true;
  } else {
    std::string path = a.state + "/status.json";
    auto text = ReadFileTextBounded(path, 1 << 20, "limd's status.json");  // limd writes a few KiB
    if (!text.ok()) return ReportError(Status::NotFound("no limd state at " + a.state + " (" + text.status().message() + ")"));
    j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return ReportError(Status::Corrupt(path + ": not a JSON object"));
    running = LockHeld(a.state);
    j["running"] = running;
    j["source"] = path;
  }
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return running ? kExitOk : kExitCheckFailed;
  }
  auto num = [&](const char* k) -> uint64_t { return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0; };
  auto str = [&](const char* k) -> std::string { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "?"; };
  std::printf("limd: %s", running ? "running" : "not running");
  if (running) std::printf(" (pid %llu)", static_cast<unsigned long long>(num("pid")));
  if (running && j.contains("uptime_seconds") && j["uptime_seconds"].is_number()) {
    std::printf(", up %s", Duration(j["uptime_seconds"].get<double>()).c_str());
  }
  std::printf("\n");
  std::printf("state: %s (read from %s)\n", j.contains("state") ? str("state").c_str() : a.state.c_str(), str("source").c_str());
  std::string banks;
  if (j.contains("banks") && j["banks"].is_array()) {
    for (const auto& b : j["banks"]) banks += (banks.empty() ? "" : ", ") + b.get<std::string>();
  }
  std::string kind = str("tpm");
  std::printf("tpm: %s (banks %s), PCR %llu%s\n", kind.c_str(), banks.c_str(), static_cast<unsigned long long>(num("pcr")),
              kind == "hardware" ? "" : " — no hardware root of trust: no tamper evidence against root");
  if (kind == "swtpm" || kind == "software") {
    std::printf("root of trust: none — root can reset and re-extend %s, so the list proves nothing against root;\n"
                "  it still records what ran, for audit and for an attacker without root\n",
                kind == "swtpm" ? "swtpm (an emulator)" : "the software bank (in limd's memory)");
  } else {
    std::printf("root of trust: %s\n", j.contains("root_of_trust") ? str("root_of_trust").c_str() : "unknown");
  }
  std::printf("entries: %llu, violations: %llu, overflows: %llu, timeouts: %llu, reply errors: %llu\n",
              static_cast<unsigned long long>(num("entries")), static_cast<unsigned long long>(num("violations")),
              static_cast<unsigned long long>(num("overflows")), static_cast<unsigned long long>(num("timeouts")),
              static_cast<unsigned long long>(num("reply_errors")));
  uint64_t hits = num("cache_hits"), hashes = num("hashes");
  double rate = hits + hashes ? 100.0 * static_cast<double>(hits) / static_cast<double>(hits + hashes) : 0.0;
  std::printf("cache hit rate: %.1f%% (%llu hits, %llu hashes)\n", rate, static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(hashes));
  double eps = j.contains("events_per_second") && j["events_per_second"].is_number() ? j["events_per_second"].get<double>() : 0;
  std::printf("events/s: %.1f (%llu events); marks: %llu (%llu with pre-content), %llu mount namespaces\n", eps,
              static_cast<unsigned long long>(num("events")), static_cast<unsigned long long>(num("marks")),
              static_cast<unsigned long long>(num("precontent_marks")),
              static_cast<unsigned long long>(num("mount_namespaces")));
  if (j.contains("latency_us") && j["latency_us"].is_object()) {
    const auto& l = j["latency_us"];
    std::printf("decision latency: p50 < %llu us, p90 < %llu us, p99 < %llu us, max %llu us\n",
                static_cast<unsigned long long>(l.value("p50", 0ull)), static_cast<unsigned long long>(l.value("p90", 0ull)),
                static_cast<unsigned long long>(l.value("p99", 0ull)), static_cast<unsigned long long>(l.value("max", 0ull)));
  }
  return running ? kExitOk : kExitCheckFailed;
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
