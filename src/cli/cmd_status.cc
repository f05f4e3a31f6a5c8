// lim status: is limd running on a state directory, on which TPM, and how it is doing —
// read from STATE/status.json (written by limd every second) and the STATE/lock flock.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "cli/command.h"

namespace lim::cli {
namespace {

struct StatusArgs {
  std::string state = "/var/lib/lim";
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

int RunStatus(const StatusArgs& a) {
  std::string path = a.state + "/status.json";
  auto text = ReadFileText(path);
  if (!text.ok()) return ReportError(Status::NotFound("no limd state at " + a.state + " (" + text.status().message() + ")"));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ReportError(Status::Corrupt(path + ": not a JSON object"));
  bool running = LockHeld(a.state);
  j["running"] = running;
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return running ? kExitOk : kExitCheckFailed;
  }
  auto num = [&](const char* k) -> uint64_t { return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0; };
  auto str = [&](const char* k) -> std::string { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "?"; };
  std::printf("limd: %s", running ? "running" : "not running");
  if (running) std::printf(" (pid %llu)", static_cast<unsigned long long>(num("pid")));
  std::printf("\n");
  std::string banks;
  if (j.contains("banks") && j["banks"].is_array()) {
    for (const auto& b : j["banks"]) banks += (banks.empty() ? "" : ", ") + b.get<std::string>();
  }
  std::string kind = str("tpm");
  std::printf("tpm: %s (banks %s), PCR %llu%s\n", kind.c_str(), banks.c_str(), static_cast<unsigned long long>(num("pcr")),
              kind == "hardware" ? "" : " — no hardware root of trust: no tamper evidence against root");
  std::printf("entries: %llu, violations: %llu, overflows: %llu, timeouts: %llu, reply errors: %llu\n",
              static_cast<unsigned long long>(num("entries")), static_cast<unsigned long long>(num("violations")),
              static_cast<unsigned long long>(num("overflows")), static_cast<unsigned long long>(num("timeouts")),
              static_cast<unsigned long long>(num("reply_errors")));
  uint64_t hits = num("cache_hits"), hashes = num("hashes");
  double rate = hits + hashes ? 100.0 * static_cast<double>(hits) / static_cast<double>(hits + hashes) : 0.0;
  std::printf("cache hit rate: %.1f%% (%llu hits, %llu hashes)\n", rate, static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(hashes));
  double eps = j.contains("events_per_second") && j["events_per_second"].is_number() ? j["events_per_second"].get<double>() : 0;
  std::printf("events/s: %.1f (%llu events, %llu marks)\n", eps, static_cast<unsigned long long>(num("events")),
              static_cast<unsigned long long>(num("marks")));
  if (j.contains("latency_us") && j["latency_us"].is_object()) {
    const auto& l = j["latency_us"];
    std::printf("decision latency: p50 < %llu us, p99 < %llu us, max %llu us\n",
                static_cast<unsigned long long>(l.value("p50", 0ull)), static_cast<unsigned long long>(l.value("p99", 0ull)),
                static_cast<unsigned long long>(l.value("max", 0ull)));
  }
  return running ? kExitOk : kExitCheckFailed;
}

void Register(CLI::App& app) {
  auto sa = std::make_shared<StatusArgs>();
  auto* s = app.add_subcommand("status", "is limd running: TPM kind and banks, entries, violations, latency");
  s->add_option("--state", sa->state, "limd's state directory (default /var/lib/lim)");
  s->add_flag("--json", sa->json, "print status.json (with the live running flag)");
  s->callback([sa] { ExitCode() = RunStatus(*sa); });
}

}  // namespace

LIM_REGISTER_COMMAND(Register);

}  // namespace lim::cli
