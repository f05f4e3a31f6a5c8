// LivePolicy: the IMA policy limd enforces, replaceable at run time through the securityfs
// view's `policy` file with the kernel's semantics (kernel-ima.md §5.2): one writer at a
// time; a batch with an invalid rule is refused as a whole; the first written policy
// replaces the built-in one and later ones are appended (a `--policy FILE` given at start
// counts as that first one); a written absolute path loads that file (as systemd does).
// Every load is recorded in the measurement list before it takes effect: POLICY_CHECK of
// the file when a rule asks for it, else an ima-buf `lim-policy-update` entry holding the
// exact accepted bytes.
//
// PolicyWriter is one open-for-write of the policy file with the kernel's write semantics
// (ima_write_policy): each write() is one rule line (or one policy-file path), checked at
// once; Flush() commits what was written since the last flush (the view calls it from FUSE
// flush, so the rules are live when close() returns). A policy file named by path is read
// bounded and off the caller's thread: a FIFO, a device, a huge file or a hung filesystem
// fails the write() (EINVAL, EFBIG, ETIMEDOUT) instead of blocking it.
//
// Threading: LivePolicy is thread-safe (loads are serialised by one mutex; matchers are
// published atomically and never freed before the LivePolicy, so a worker deciding with the
// previous one is safe). A PolicyWriter is used by one open file at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ima/policy.h"
#include "ima/policy_match.h"

namespace lim::daemon {

// How loads are recorded in the list (limd: Measurer and MeasurementList; tests: fakes).
struct PolicyRecorder {
  // Measures the policy file open at fd as POLICY_CHECK with the policy in force; returns
  // whether a measure rule matched (then the file is recorded, or already was).
  std::function<Result<bool>(int fd, const std::string& path)> measure_file;
  // Appends the ima-buf `lim-policy-update` entry for these exact bytes.
  std::function<Status(std::string_view bytes)> record_text;
  // Called with each new matcher once it is in force (limd: Measurer::SetMatcher).
  std::function<void(const ima::PolicyMatcher*)> install;
};

class PolicyWriter;

// The kernel looks at most at PAGE_SIZE - 1 bytes of one write() to the policy file.
inline constexpr size_t kPolicyWriteMax = 4095;
// A policy file named by path: at most this many bytes (the kernel allows INT_MAX; a real
// policy is a few KiB), read within kPolicyFileTimeout (open, read and its POLICY_CHECK
// measurement), else the write() fails with EFBIG / ETIMEDOUT.
inline constexpr size_t kPolicyFileMaxBytes = 4u << 20;
inline constexpr std::chrono::milliseconds kPolicyFileTimeout{5000};
// Policy-file reads still running after their write gave up (ETIMEDOUT) before further
// path writes fail at once with EBUSY: a hung filesystem costs at most this many threads.
inline constexpr int kMaxPolicyLoaders = 4;

// The rules one open-for-write has added so far (ima_temp_rules), with what records them.
struct PolicyBatch {
  std::vector<ima::PolicyRule> rules;
  // What the commit records as lim-policy-update entries, in order: the bytes written as
  // rule text (consecutive writes, comments too, in one entry) and each file read by path
  // that no POLICY_CHECK rule measured.
  std::vector<std::string> records;
  bool last_record_written = false;   // records.back() is written text (the next write joins it)
  std::string text;                   // every accepted byte, written or read (ima::Policy::text)
  std::vector<std::string> files;     // policy files read by path (for the source name)
  bool failed = false;                // a write failed: the batch is dropped at the flush
  bool empty() const { return rules.empty(); }
};

class LivePolicy {
 public:
  // initial: the policy in force at start; initial_loaded: it came from `--policy FILE`
  // (so the first written policy appends instead of replacing).
  LivePolicy(ima::Policy initial, bool initial_loaded, PolicyRecorder recorder);
  ~LivePolicy();

  const ima::PolicyMatcher* matcher() const;
  // The rules in force, as the kernel's policy file shows them.
  std::string Show() const;
  // Number of successful loads through the policy file.
  uint64_t loads() const;

  // Opens the policy file for writing: Unavailable (EBUSY) while another writer is open.
  Result<std::unique_ptr<PolicyWriter>> OpenWriter();

  // Loads text as if written to the policy file by one writer and closed (write() repeated
  // until all is consumed): all or nothing, recorded, live on return. InvalidArgument for a
  // bad rule or a batch without rules (which the policy file drops silently).
  Status Load(std::string_view text);

  // How long a policy file named by path may take (tests shorten it).
  void set_file_timeout(std::chrono::milliseconds t) { file_timeout_ = t; }

 private:
  friend class PolicyWriter;
  void CloseWriter();
  // One write(2): adds its first line (or the file it names) to *batch; returns the bytes
  // consumed, or the failure with the kernel's errno in *err.
  Result<size_t> WriteOne(std::string_view data, PolicyBatch* batch, int* err);
  // Reads the policy file at path and adds its rules (ima_read_policy).
  Status AddFile(const std::string& path, PolicyBatch* batch, int* err);
  // Records and installs a non-empty, unfailed batch.
  Status Commit(PolicyBatch batch);

  PolicyRecorder recorder_;
  // Load() holds mu_ while it records (which may open and hash a file). Nothing a reader of
  // the view needs waits on it: the shown text and the writer slot have their own locks, so
  // a policy path that points back into the view cannot deadlock the FUSE threads.
  std::mutex mu_;
  ima::Policy policy_;        // the rules in force (under mu_)
  bool written_ = false;      // the first policy was loaded (--policy or a write)
  mutable std::mutex show_mu_;
  std::string shown_;         // ShowPolicy(policy_) (under show_mu_)
  uint64_t loads_ = 0;        // (under show_mu_)
  std::atomic<bool> writer_open_{false};
  std::chrono::milliseconds file_timeout_ = kPolicyFileTimeout;
  std::vector<std::unique_ptr<ima::PolicyMatcher>> matchers_;  // all ever installed; last is live
  std::atomic<const ima::PolicyMatcher*> live_{nullptr};
};

class PolicyWriter {
 public:
  ~PolicyWriter();  // releases the writer slot; an unflushed batch is dropped
  // One write(2), as the kernel's ima_write_policy: only the first kPolicyWriteMax bytes
  // count. Data starting with '/' names a policy file (up to the first newline), whose
  // rules join the batch; all of data is consumed. Otherwise the first line (up to '\n', or
  // all of data: a line split across two writes is two lines, as in the kernel) is one rule,
  // comment or blank line, and only it is consumed (a short write: writers loop). Returns
  // the bytes consumed. A failure (bad rule, unreadable file) fails this write with
  // error_number() and marks the batch failed; later writes are still checked, and the
  // batch is dropped at the flush.
  Result<size_t> Write(std::string_view data);
  // The errno the kernel's write() would fail with, for the last failed Write().
  int error_number() const { return err_; }
  // Commits the rules written since the last flush. A batch without rules or with a failed
  // write is dropped and Flush() still succeeds (the kernel logs "policy update failed" and
  // its close() returns 0); an error means recording the load failed (nothing changed).
  Status Flush();

 private:
  friend class LivePolicy;
  explicit PolicyWriter(LivePolicy* owner) : owner_(owner) {}
  LivePolicy* owner_;
  PolicyBatch batch_;
  int err_ = 0;
};

}  // namespace lim::daemon
