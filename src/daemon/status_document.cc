#include "daemon/status_document.h"

#include <cmath>
#include <cstdint>
#include <cstdarg>
#include <cstdio>

namespace lim::daemon {

namespace {

std::string Duration(double s) {
  // Out-of-range values (negative, NaN, huge) from a hostile document: no UB in the cast.
  auto t = std::isfinite(s) && s > 0 && s < 1e15 ? static_cast<unsigned long long>(s) : 0ull;
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

// A field as an unsigned count: 0 unless it is a non-negative integer.
unsigned long long Count(const nlohmann::json& o, const char* k) {
  if (!o.is_object()) return 0;
  auto it = o.find(k);
  if (it == o.end() || !it->is_number_unsigned()) return 0;
  return it->get<unsigned long long>();
}

double Real(const nlohmann::json& o, const char* k) {
  auto it = o.find(k);
  if (it == o.end() || !it->is_number()) return 0;
  double d = it->get<double>();
  return std::isfinite(d) ? d : 0;
}

std::string Str(const nlohmann::json& o, const char* k, const std::string& missing = "?") {
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : missing;
}

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return "";
  if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, static_cast<size_t>(n));
  std::string out(static_cast<size_t>(n) + 1, '\0');
  va_start(ap, fmt);
  std::vsnprintf(out.data(), out.size(), fmt, ap);
  va_end(ap);
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

Result<nlohmann::json> ParseStatusDocument(std::string_view text, const std::string& origin) {
  if (text.size() > kMaxStatusDocument) {
    return Status::Corrupt(origin + ": more than " + std::to_string(kMaxStatusDocument) + " bytes, not a status document");
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(origin + ": not a JSON object");
  return j;
}

std::string FormatStatusText(const nlohmann::json& j, bool running, const std::string& state) {
  std::string out = Printf("limd: %s", running ? "running" : "not running");
  if (running) out += Printf(" (pid %llu)", Count(j, "pid"));
  if (running && j.contains("uptime_seconds") && j["uptime_seconds"].is_number()) {
    out += ", up " + Duration(Real(j, "uptime_seconds"));
  }
  out += "\n";
  out += Printf("state: %s (read from %s)\n", Str(j, "state", state).c_str(), Str(j, "source").c_str());
  std::string banks;
  auto b = j.find("banks");
  if (b != j.end() && b->is_array()) {
    for (const auto& e : *b) {
      if (e.is_string()) banks += (banks.empty() ? "" : ", ") + e.get<std::string>();
    }
  }
  std::string kind = Str(j, "tpm");
  out += Printf("tpm: %s (banks %s), PCR %llu%s\n", kind.c_str(), banks.c_str(), Count(j, "pcr"),
                kind == "hardware" ? "" : " — no hardware root of trust: no tamper evidence against root");
  if (kind == "swtpm" || kind == "software") {
    out += Printf("root of trust: none — root can reset and re-extend %s, so the list proves nothing against root;\n"
                  "  it still records what ran, for audit and for an attacker without root\n",
                  kind == "swtpm" ? "swtpm (an emulator)" : "the software bank (in limd's memory)");
  } else {
    out += Printf("root of trust: %s\n", Str(j, "root_of_trust", "unknown").c_str());
  }
  out += Printf("entries: %llu, violations: %llu, overflows: %llu, timeouts: %llu, reply errors: %llu\n",
                Count(j, "entries"), Count(j, "violations"), Count(j, "overflows"), Count(j, "timeouts"),
                Count(j, "reply_errors"));
  unsigned long long hits = Count(j, "cache_hits"), hashes = Count(j, "hashes");
  double total = static_cast<double>(hits) + static_cast<double>(hashes);
  double rate = total > 0 ? 100.0 * static_cast<double>(hits) / total : 0.0;
  out += Printf("cache hit rate: %.1f%% (%llu hits, %llu hashes)\n", rate, hits, hashes);
  out += Printf("events/s: %.1f (%llu events); marks: %llu (%llu with pre-content), %llu mount namespaces\n",
                Real(j, "events_per_second"), Count(j, "events"), Count(j, "marks"), Count(j, "precontent_marks"),
                Count(j, "mount_namespaces"));
  auto l = j.find("latency_us");
  if (l != j.end() && l->is_object()) {
    out += Printf("decision latency: p50 < %llu us, p90 < %llu us, p99 < %llu us, max %llu us\n", Count(*l, "p50"),
                  Count(*l, "p90"), Count(*l, "p99"), Count(*l, "max"));
  }
  return out;
}

}  // namespace lim::daemon
