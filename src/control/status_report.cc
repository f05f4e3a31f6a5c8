#include "control/status_report.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <iterator>

namespace lim::control {
namespace {

using json = nlohmann::json;

// The plain counters, by key. ToJson and FromJson walk the same tables, so a key is named
// once.
struct CountKey {
  const char* key;
  uint64_t StatusReport::*field;
};
constexpr CountKey kCounts[] = {
    {"pid", &StatusReport::pid},
    {"pcr", &StatusReport::pcr},
    {"entries", &StatusReport::entries},
    {"violations", &StatusReport::violations},
    {"duplicates", &StatusReport::duplicates},
    {"write_failures", &StatusReport::write_failures},
    {"overflows", &StatusReport::overflows},
    {"events", &StatusReport::events},
    {"permission_events", &StatusReport::permission_events},
    {"own_events", &StatusReport::own_events},
    {"answered", &StatusReport::answered},
    {"timeouts", &StatusReport::timeouts},
    {"reply_errors", &StatusReport::reply_errors},
    {"measure_errors", &StatusReport::measure_errors},
    {"unknown_syscall", &StatusReport::unknown_syscall},
    {"unknown_syscall_reads", &StatusReport::unknown_syscall_reads},
    {"unknown_syscall_writes", &StatusReport::unknown_syscall_writes},
    {"precontent_marks", &StatusReport::precontent_marks},
    {"precontent_events", &StatusReport::precontent_events},
    {"precontent_quick", &StatusReport::precontent_quick},
    {"ignore_marks_added", &StatusReport::ignore_marks_added},
    {"ignore_marks_removed", &StatusReport::ignore_marks_removed},
    {"reader_closes", &StatusReport::reader_closes},
    {"reader_close_drains", &StatusReport::reader_close_drains},
    {"count_probes", &StatusReport::count_probes},
    {"count_probes_by_kernel_counts", &StatusReport::count_probes_by_kernel_counts},
    {"count_resets", &StatusReport::count_resets},
    {"exec_open_reuses", &StatusReport::exec_open_reuses},
    {"exec_opens_unsure", &StatusReport::exec_opens_unsure},
    {"hashes", &StatusReport::hashes},
    {"cache_hits", &StatusReport::cache_hits},
    {"tracked_inodes", &StatusReport::tracked_inodes},
    {"inode_evictions", &StatusReport::inode_evictions},
    {"marks", &StatusReport::marks},
    {"overlay_fuse_marks", &StatusReport::overlay_fuse_marks},
    {"overlay_fuse_events", &StatusReport::overlay_fuse_events},
    {"overlay_fuse_permission_events", &StatusReport::overlay_fuse_permission_events},
    {"fuse_stalls", &StatusReport::fuse_stalls},
    {"overlay_fuse_retired", &StatusReport::overlay_fuse_retired},
    {"overlay_backing_events", &StatusReport::overlay_backing_events},
    {"mount_namespaces", &StatusReport::mount_namespaces},
    {"mount_pokes", &StatusReport::mount_pokes},
    {"trace_records", &StatusReport::trace_records},
    {"trace_lost", &StatusReport::trace_lost},
    {"late_execs", &StatusReport::late_execs},
    {"execs_measured_before_run", &StatusReport::execs_measured_before_run},
    {"execs_seen_by_record", &StatusReport::execs_seen_by_record},
    {"trace_passes", &StatusReport::trace_passes},
    {"exec_records_quiet", &StatusReport::exec_records_quiet},
    {"late_exec_gaps", &StatusReport::late_exec_gaps},
    {"late_exec_missed", &StatusReport::late_exec_missed},
    {"late_execs_after_exit", &StatusReport::late_execs_after_exit},
    {"execs_placed_by_own_mountinfo", &StatusReport::execs_placed_by_own_mountinfo},
    {"own_mountinfo_reads", &StatusReport::own_mountinfo_reads},
    {"keys_measured", &StatusReport::keys_measured},
    {"key_gaps", &StatusReport::key_gaps},
    {"memfd_execs", &StatusReport::memfd_execs},
    {"memfd_exec_gaps", &StatusReport::memfd_exec_gaps},
    {"own_files", &StatusReport::own_files},
    {"own_files_revoked", &StatusReport::own_files_revoked},
    {"appraised", &StatusReport::appraised},
    {"appraise_failures", &StatusReport::appraise_failures},
    {"appraise_denied", &StatusReport::appraise_denied},
    {"appraise_write_denied", &StatusReport::appraise_write_denied},
    {"appraise_fixed", &StatusReport::appraise_fixed},
    {"appraise_xattr_updates", &StatusReport::appraise_xattr_updates},
    {"appraise_update_errors", &StatusReport::appraise_update_errors},
    {"appraise_keys", &StatusReport::appraise_keys},
    {"evm_flags", &StatusReport::evm_flags},
    {"evm_verified", &StatusReport::evm_verified},
    {"evm_failed", &StatusReport::evm_failed},
    {"evm_rewritten", &StatusReport::evm_rewritten},
    {"evm_signatures_replaced", &StatusReport::evm_signatures_replaced},
    {"evm_refused", &StatusReport::evm_refused},
    {"evm_write_errors", &StatusReport::evm_write_errors},
    {"evm_forgotten", &StatusReport::evm_forgotten},
};

struct DelayKey {
  const char* key;
  DelayPercentiles StatusReport::*field;
};
constexpr DelayKey kDelays[] = {
    {"poke_to_mark_us", &StatusReport::poke_to_mark_us},
    {"late_exec_delay_us", &StatusReport::late_exec_delay_us},
    {"key_delay_us", &StatusReport::key_delay_us},
};

struct StringKey {
  const char* key;
  std::string StatusReport::*field;
};
constexpr StringKey kStrings[] = {
    {"tpm_describe", &StatusReport::tpm_describe},
    {"tracepoints", &StatusReport::tracepoints},
    {"exec_trace", &StatusReport::exec_trace},
    {"memfd_exec_trace", &StatusReport::memfd_exec_trace},
    {"control_socket", &StatusReport::control_socket},
    {"log", &StatusReport::log},
};

struct OptionalStringKey {
  const char* key;
  std::optional<std::string> StatusReport::*field;
};
constexpr OptionalStringKey kOptionalStrings[] = {
    {"tpm", &StatusReport::tpm},
    {"root_of_trust", &StatusReport::root_of_trust},
    {"state", &StatusReport::state},
    {"appraise", &StatusReport::appraise},
};

// A member as an unsigned count: 0 unless it is a non-negative integer.
uint64_t Count(const json& o, const char* k) {
  if (!o.is_object()) return 0;
  auto it = o.find(k);
  if (it == o.end() || !it->is_number_unsigned()) return 0;
  return it->get<uint64_t>();
}

// A member as a finite number, or nothing.
std::optional<double> Real(const json& o, const char* k) {
  auto it = o.find(k);
  if (it == o.end() || !it->is_number()) return std::nullopt;
  double d = it->get<double>();
  return std::isfinite(d) ? d : 0;
}

std::optional<std::string> Str(const json& o, const char* k) {
  auto it = o.find(k);
  if (it == o.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

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

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

double StatusReport::CacheHitRate() const {
  double total = static_cast<double>(cache_hits) + static_cast<double>(hashes);
  return total > 0 ? static_cast<double>(cache_hits) / total : 0.0;
}

json StatusReport::ToJson() const {
  json j = json::object();
  j["running"] = running;
  for (const auto& c : kCounts) j[c.key] = this->*c.field;
  for (const auto& d : kDelays) j[d.key] = {{"p50", (this->*d.field).p50}, {"p99", (this->*d.field).p99}};
  for (const auto& s : kStrings) j[s.key] = this->*s.field;
  for (const auto& s : kOptionalStrings) {
    if (this->*s.field) j[s.key] = *(this->*s.field);
  }
  j["banks"] = banks;
  j["cache_hit_rate"] = CacheHitRate();
  if (uptime_seconds) j["uptime_seconds"] = *uptime_seconds;
  j["events_per_second"] = events_per_second;
  if (latency_us) {
    j["latency_us"] = {{"p50", latency_us->p50}, {"p90", latency_us->p90}, {"p99", latency_us->p99}, {"max", latency_us->max}};
  }
  if (!source.empty()) j["source"] = source;
  if (error) j["error"] = *error;
  return j;
}

StatusReport StatusReport::FromJson(const json& doc) {
  StatusReport r;
  if (!doc.is_object()) return r;
  auto running = doc.find("running");
  r.running = running != doc.end() && running->is_boolean() && running->get<bool>();
  for (const auto& c : kCounts) r.*c.field = Count(doc, c.key);
  for (const auto& d : kDelays) {
    auto it = doc.find(d.key);
    if (it != doc.end()) r.*d.field = {Count(*it, "p50"), Count(*it, "p99")};
  }
  for (const auto& s : kStrings) r.*s.field = Str(doc, s.key).value_or("");
  for (const auto& s : kOptionalStrings) r.*s.field = Str(doc, s.key);
  auto banks = doc.find("banks");
  if (banks != doc.end() && banks->is_array()) {
    for (const auto& b : *banks) {
      if (b.is_string()) r.banks.push_back(b.get<std::string>());
    }
  }
  r.uptime_seconds = Real(doc, "uptime_seconds");
  r.events_per_second = Real(doc, "events_per_second").value_or(0);
  auto l = doc.find("latency_us");
  if (l != doc.end() && l->is_object()) {
    r.latency_us = DecisionLatency{Count(*l, "p50"), Count(*l, "p90"), Count(*l, "p99"), Count(*l, "max")};
  }
  r.source = Str(doc, "source").value_or("");
  auto e = doc.find("error");
  if (e != doc.end()) r.error = e->is_string() ? e->get<std::string>() : e->dump();
  return r;
}

Result<StatusReport> StatusReport::Parse(std::string_view text, const std::string& origin) {
  if (text.size() > kMaxStatusDocument) {
    return Status::Corrupt(origin + ": more than " + std::to_string(kMaxStatusDocument) + " bytes, not a status document");
  }
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(origin + ": not a JSON object");
  return FromJson(j);
}

std::string StatusReport::Text(const std::string& state_dir) const {
  std::string out = Printf("limd: %s", running ? "running" : "not running");
  if (running) out += Printf(" (pid %llu)", U(pid));
  if (running && uptime_seconds) out += ", up " + Duration(*uptime_seconds);
  out += "\n";
  out += Printf("state: %s (read from %s)\n", state.value_or(state_dir).c_str(), source.empty() ? "?" : source.c_str());
  std::string bank_list;
  for (const auto& b : banks) bank_list += (bank_list.empty() ? "" : ", ") + b;
  std::string kind = tpm.value_or("?");
  out += Printf("tpm: %s (banks %s), PCR %llu%s\n", kind.c_str(), bank_list.c_str(), U(pcr),
                kind == "hardware" ? "" : " — no hardware root of trust: no tamper evidence against root");
  if (kind == "swtpm" || kind == "software") {
    out += Printf("root of trust: none — root can reset and re-extend %s, so the list proves nothing against root;\n"
                  "  it still records what ran, for audit and for an attacker without root\n",
                  kind == "swtpm" ? "swtpm (an emulator)" : "the software bank (in limd's memory)");
  } else {
    out += Printf("root of trust: %s\n", root_of_trust.value_or("unknown").c_str());
  }
  out += Printf("entries: %llu, violations: %llu, overflows: %llu, timeouts: %llu, reply errors: %llu\n", U(entries),
                U(violations), U(overflows), U(timeouts), U(reply_errors));
  out += Printf("cache hit rate: %.1f%% (%llu hits, %llu hashes)\n", 100.0 * CacheHitRate(), U(cache_hits), U(hashes));
  out += Printf("events/s: %.1f (%llu events); marks: %llu (%llu with pre-content), %llu mount namespaces\n",
                events_per_second, U(events), U(marks), U(precontent_marks), U(mount_namespaces));
  if (appraise && *appraise != "off") {
    out += Printf("appraisal: %s, %llu keys; %llu appraised, %llu failed, %llu denied (%llu write-opens of signed files), "
                  "%llu fixed, %llu digests rewritten at close\n",
                  appraise->c_str(), U(appraise_keys), U(appraised), U(appraise_failures), U(appraise_denied),
                  U(appraise_write_denied), U(appraise_fixed), U(appraise_xattr_updates));
    if (*appraise == "enforce") {
      out += running ? "  enforce fails open while limd is not running: if limd stops, nothing is denied\n"
                     : "  NOT ENFORCED: limd is not running, so every access is allowed (enforce fails open)\n";
    }
  }
  if ((evm_flags & 3) != 0) {
    out += Printf("evm: %s; %llu verified, %llu failed, %llu HMACs rewritten after a seen change, %llu signatures "
                  "replaced by an HMAC, %llu rewrites refused, %llu forgotten\n",
                  (evm_flags & 3) == 3 ? "HMAC key and certificates" : (evm_flags & 3) == 1 ? "HMAC key" : "certificates",
                  U(evm_verified), U(evm_failed), U(evm_rewritten), U(evm_signatures_replaced), U(evm_refused),
                  U(evm_forgotten));
  }
  if (latency_us) {
    out += Printf("decision latency: p50 < %llu us, p90 < %llu us, p99 < %llu us, max %llu us\n", U(latency_us->p50),
                  U(latency_us->p90), U(latency_us->p99), U(latency_us->max));
  }
  return out;
}

std::string ErrorReply(const std::string& message) { return json{{"error", message}}.dump() + "\n"; }

}  // namespace lim::control
