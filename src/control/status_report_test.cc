#include "control/status_report.h"

#include <gtest/gtest.h>

#include <string>

namespace lim::control {
namespace {

StatusReport Sample() {
  StatusReport r;
  r.running = true;
  r.pid = 4242;
  r.tpm = "swtpm";
  r.root_of_trust = "none";
  r.tpm_describe = "swtpm at /tmp/x";
  r.pcr = 10;
  r.banks = {"sha1", "sha256"};
  r.entries = 5;
  r.cache_hits = 3;
  r.hashes = 1;
  r.key_delay_us = {7, 9};
  r.tracepoints = "on";
  r.uptime_seconds = 3725;
  r.events_per_second = 2.5;
  r.latency_us = DecisionLatency{8, 16, 32, 40};
  r.state = "/var/lib/lim";
  return r;
}

// What limd writes is what `lim status` reads back, field for field.
TEST(StatusReport, RoundTrips) {
  StatusReport r = Sample();
  auto back = StatusReport::Parse(r.ToJson().dump(2), "x");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->ToJson(), r.ToJson());
  EXPECT_EQ(back->pid, 4242u);
  EXPECT_EQ(back->banks, r.banks);
  EXPECT_EQ(back->key_delay_us.p99, 9u);
  ASSERT_TRUE(back->latency_us);
  EXPECT_EQ(back->latency_us->p90, 16u);
  EXPECT_EQ(back->tpm_describe, "swtpm at /tmp/x");
  EXPECT_DOUBLE_EQ(r.ToJson()["cache_hit_rate"].get<double>(), 0.75);
}

// The document's keys are limd's interface (docs/limd.md, scripts and benches read them):
// every key is written whatever the values, and only `source` and `error` are the reader's.
TEST(StatusReport, WritesEveryKey) {
  nlohmann::json j = StatusReport{}.ToJson();
  for (const char* k : {"running", "pid", "pcr", "banks", "entries", "violations", "duplicates", "write_failures",
                        "overflows", "events", "permission_events", "own_events", "answered", "timeouts",
                        "reply_errors", "measure_errors", "unknown_syscall", "unknown_syscall_reads", "unknown_syscall_writes", "hashes", "cache_hits", "cache_hit_rate",
                        "tracked_inodes", "inode_evictions", "marks", "overlay_fuse_marks", "overlay_fuse_events",
                        "overlay_fuse_permission_events", "fuse_stalls", "overlay_fuse_retired", "overlay_backing_events", "mount_namespaces", "mount_pokes",
                        "poke_to_mark_us", "tracepoints", "exec_trace", "memfd_exec_trace", "trace_records", "trace_lost", "late_execs",
                        "execs_measured_before_run", "execs_seen_by_record", "trace_passes", "exec_records_quiet", "late_exec_gaps", "late_exec_missed", "late_execs_after_exit", "execs_placed_by_own_mountinfo", "own_mountinfo_reads", "count_probes", "count_probes_by_kernel_counts", "count_resets", "late_exec_delay_us",
                        "precontent_marks", "precontent_events", "precontent_quick", "ignore_marks_added",
                        "reader_closes", "reader_close_drains", "exec_open_reuses", "ignore_marks_removed",
                        "keys_measured", "key_gaps", "key_delay_us", "memfd_execs", "memfd_exec_gaps", "own_files",
                        "own_files_revoked", "evm_flags", "evm_verified", "evm_failed", "evm_rewritten", "evm_refused", "events_per_second", "tpm_describe", "control_socket", "log"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_FALSE(j.contains("source"));
  EXPECT_FALSE(j.contains("error"));
  nlohmann::json full = Sample().ToJson();
  for (const char* k : {"tpm", "root_of_trust", "state", "uptime_seconds", "latency_us"}) EXPECT_TRUE(full.contains(k)) << k;
  EXPECT_EQ(full["late_exec_delay_us"], (nlohmann::json{{"p50", 0}, {"p99", 0}}));
}

TEST(StatusReport, Text) {
  StatusReport r = Sample();
  r.source = "control socket /s.sock";
  std::string t = r.Text("/ignored");
  EXPECT_NE(t.find("limd: running (pid 4242), up 1h 2m\n"), std::string::npos) << t;
  EXPECT_NE(t.find("state: /var/lib/lim (read from control socket /s.sock)"), std::string::npos) << t;
  EXPECT_NE(t.find("tpm: swtpm (banks sha1, sha256), PCR 10 — no hardware root of trust"), std::string::npos) << t;
  EXPECT_NE(t.find("cache hit rate: 75.0% (3 hits, 1 hashes)"), std::string::npos) << t;
  EXPECT_NE(t.find("events/s: 2.5 (0 events)"), std::string::npos) << t;
  EXPECT_NE(t.find("p50 < 8 us, p90 < 16 us, p99 < 32 us, max 40 us"), std::string::npos) << t;
  r.running = false;
  r.latency_us.reset();
  r.tpm = "hardware";
  r.root_of_trust = "tpm";
  t = r.Text("/ignored");
  EXPECT_EQ(t.find("pid"), std::string::npos) << t;
  EXPECT_EQ(t.find("decision latency"), std::string::npos) << t;
  EXPECT_NE(t.find("root of trust: tpm\n"), std::string::npos) << t;
}

// `lim status` renders any object without throwing: fields of the wrong type read as
// missing (a non-string bank, a string latency and a negative pid used to abort it with
// an uncaught nlohmann::json::type_error).
TEST(StatusReport, WrongTypesAndNonObjectsAreHandled) {
  EXPECT_EQ(StatusReport::Parse("[1,2]", "x").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(StatusReport::Parse("{", "x").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(StatusReport::Parse(std::string(kMaxStatusDocument + 1, ' '), "x").status().code(), StatusCode::kCorrupt);
  auto r = StatusReport::Parse(
      R"({"running":true,"pid":-5,"banks":["sha1",7,null],"latency_us":{"p50":"x","max":3},"state":{},"uptime_seconds":-1e300,)"
      R"("tpm":"software","entries":1.5,"events_per_second":"fast","key_delay_us":[1],"log":7})",
      "x");
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::string text;
  ASSERT_NO_THROW(text = r->Text("/s"));
  EXPECT_NE(text.find("(pid 0)"), std::string::npos) << text;
  EXPECT_NE(text.find("(banks sha1)"), std::string::npos) << text;
  EXPECT_NE(text.find("p50 < 0 us"), std::string::npos) << text;
  EXPECT_NE(text.find("max 3 us"), std::string::npos) << text;
  EXPECT_NE(text.find("state: /s "), std::string::npos) << text;
  EXPECT_NE(text.find("entries: 0,"), std::string::npos) << text;
  EXPECT_EQ(r->log, "");
  EXPECT_EQ(r->key_delay_us.p50, 0u);
}

TEST(StatusReport, ErrorReply) {
  std::string reply = ErrorReply("permission denied: \"x\"");
  EXPECT_EQ(reply, "{\"error\":\"permission denied: \\\"x\\\"\"}\n");
  auto r = StatusReport::Parse(reply, "x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->error);
  EXPECT_EQ(*r->error, "permission denied: \"x\"");
  EXPECT_FALSE(StatusReport::Parse("{}", "x")->error);
}

}  // namespace
}  // namespace lim::control
