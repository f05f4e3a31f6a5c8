// StatusReport: the status document limd serves on its control socket and writes to
// STATE/status.json every second, as one struct — limd fills it and writes ToJson();
// `lim status` reads it back with FromJson() and shows Text(). The key names live only in
// status_report.cc.
//
// The reader trusts nothing in a document (a stale or foreign file, or whatever answers on
// a socket path): the size is capped, it must be a JSON object, and every field may be
// missing or of any type — a count that is not a non-negative integer reads as 0, a string
// that is not a string as missing. Plain value type; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace lim::control {

// A status document is a few hundred bytes; anything past this is not one.
inline constexpr size_t kMaxStatusDocument = 1u << 20;

// Two exact percentiles of a delay, µs (latency_samples.h).
struct DelayPercentiles {
  uint64_t p50 = 0, p99 = 0;
};

// The permission-decision latency, µs: bucket upper bounds (powers of two) and the maximum.
struct DecisionLatency {
  uint64_t p50 = 0, p90 = 0, p99 = 0, max = 0;
};

struct StatusReport {
  bool running = false;
  uint64_t pid = 0;
  std::optional<std::string> tpm;            // tpm::TpmKindName: "hardware", "swtpm", "software"
  std::optional<std::string> root_of_trust;  // "tpm" or "none"
  std::string tpm_describe;
  uint64_t pcr = 0;
  std::vector<std::string> banks;  // TCG bank names

  // The list.
  uint64_t entries = 0, violations = 0, duplicates = 0, write_failures = 0;
  // The fanotify daemon (fanotify_daemon.h Stats).
  uint64_t overflows = 0, events = 0, permission_events = 0, own_events = 0, answered = 0, timeouts = 0,
           reply_errors = 0, measure_errors = 0, unknown_syscall = 0, unknown_syscall_reads = 0,
           unknown_syscall_writes = 0;
  uint64_t precontent_marks = 0, precontent_events = 0, precontent_quick = 0, ignore_marks_added = 0,
           ignore_marks_removed = 0, reader_closes = 0, reader_close_drains = 0, count_probes = 0,
           count_probes_by_kernel_counts = 0, count_resets = 0, exec_open_reuses = 0, exec_opens_unsure = 0;
  // The measurer.
  uint64_t hashes = 0, cache_hits = 0, tracked_inodes = 0, inode_evictions = 0;
  // Marks and mounts.
  uint64_t marks = 0, overlay_fuse_marks = 0, overlay_fuse_events = 0, overlay_fuse_permission_events = 0,
           fuse_stalls = 0, overlay_fuse_retired = 0, overlay_backing_events = 0, mount_namespaces = 0, mount_pokes = 0;
  DelayPercentiles poke_to_mark_us;
  // Tracepoints, late execs, keys, memfd execs.
  std::string tracepoints;  // "on", "partial", "off: why"
  // What reports exec completions to the late-exec path: "bpf" (a raw tracepoint,
  // exec_trace_bpf.h), "perf" (the perf tracepoint event, which another tool's tracepoint
  // program can silence) or "off". Exec starts are perf events either way.
  std::string exec_trace = "off";
  // The same for memfd execs (execs through a descriptor): "bpf", "perf" or "off".
  std::string memfd_exec_trace = "off";
  uint64_t trace_records = 0, trace_lost = 0, late_execs = 0, execs_measured_before_run = 0, late_exec_gaps = 0,
           late_exec_missed = 0, late_execs_after_exit = 0;
  // Exec completions settled as seen by fanotify from the BPF record's file alone, without
  // a look at /proc/<pid>/exe (LateExecs::OnExec).
  uint64_t execs_seen_by_record = 0;
  // Passes of the late-exec trace consumer over its rings (each a wake-up or its poll
  // timeout), and the exec completions among its records that woke nobody (ExecTraceBpf::quiet()).
  uint64_t trace_passes = 0, exec_records_quiet = 0;
  // Execs from unmarked superblocks placed by limd's own mountinfo (the process shares
  // limd's mount namespace and root), and how often limd read that text.
  uint64_t execs_placed_by_own_mountinfo = 0, own_mountinfo_reads = 0;
  DelayPercentiles late_exec_delay_us;
  uint64_t keys_measured = 0, key_gaps = 0;
  DelayPercentiles key_delay_us;
  uint64_t memfd_execs = 0, memfd_exec_gaps = 0;
  // limd's own files (own_files.h).
  uint64_t own_files = 0, own_files_revoked = 0;
  // Appraisal (daemon/appraiser.h): the mode (off, log, enforce, fix; missing: an older
  // limd), files appraised, failures, accesses denied (write-opens of signed files among
  // them), digests written by fix mode and at writers' closes, trusted keys.
  std::optional<std::string> appraise;
  uint64_t appraised = 0, appraise_failures = 0, appraise_denied = 0, appraise_write_denied = 0, appraise_fixed = 0,
           appraise_xattr_updates = 0, appraise_update_errors = 0, appraise_keys = 0;
  // EVM (daemon/evm_state.h): the kernel's init flags (bit 0 HMAC key, bit 1 certificates,
  // bit 31 setup complete; 0: off),
  // files whose security.evm verified or failed, HMACs rewritten after a change limd saw to a
  // file it verified, 0x03 signatures replaced by an HMAC, rewrites refused (a change to a
  // file not verified this run: recorded failed, never blessed), write errors, and files
  // forgotten (queue overflow or table full: their next change fails).
  uint64_t evm_flags = 0, evm_verified = 0, evm_failed = 0, evm_rewritten = 0, evm_signatures_replaced = 0,
           evm_refused = 0, evm_write_errors = 0, evm_forgotten = 0;

  std::optional<double> uptime_seconds;
  double events_per_second = 0;
  std::optional<DecisionLatency> latency_us;
  std::optional<std::string> state;  // limd's state directory, absolute
  std::string control_socket;
  std::string log;  // logger.h Describe()

  // Set by the reader, never by limd: where the document was read ("control socket PATH"
  // or the status.json path); written only when not empty.
  std::string source;
  // A refusing control socket answers {"error": …} instead of a report (ErrorReply).
  std::optional<std::string> error;

  // cache_hits / (cache_hits + hashes), 0 when nothing was looked up.
  double CacheHitRate() const;

  // The document (a JSON object; `cache_hit_rate` derived). Every field limd sets is
  // written, so the document's keys do not depend on the values.
  nlohmann::json ToJson() const;
  // Fields that are missing or of the wrong type keep their defaults; `error` holds the
  // error member's text (a string's value, anything else as JSON).
  static StatusReport FromJson(const nlohmann::json& doc);
  // Parses text as a JSON object of at most kMaxStatusDocument bytes (Corrupt otherwise;
  // origin names the source in errors), then FromJson.
  static Result<StatusReport> Parse(std::string_view text, const std::string& origin);

  // `lim status`'s text: running or not, and the fields that are present ("?" or 0 for the
  // others); state_dir stands in for a missing `state`.
  std::string Text(const std::string& state_dir) const;
};

// The reply of a control socket to a peer it does not serve, one line.
std::string ErrorReply(const std::string& message);

}  // namespace lim::control
