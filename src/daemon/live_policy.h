// LivePolicy: the IMA policy limd enforces, replaceable at run time through the securityfs
// view's `policy` file with the kernel's semantics (kernel-ima.md §5.2): one writer at a
// time; a batch with an invalid rule is refused as a whole; the first written policy
// replaces the built-in one and later ones are appended (a `--policy FILE` given at start
// counts as that first one); a written absolute path loads that file (as systemd does).
// Every load is recorded in the measurement list before it takes effect: POLICY_CHECK of
// the file when a rule asks for it, else an ima-buf `lim-policy-update` entry holding the
// exact accepted bytes.
//
// PolicyWriter is one open-for-write of the policy file: Write() checks each complete line
// as it arrives (EINVAL at once for a bad rule), Flush() commits what was written since the
// last flush (the view calls it from FUSE flush, so the rules are live when close() returns).
//
// Threading: LivePolicy is thread-safe (loads are serialised by one mutex; matchers are
// published atomically and never freed before the LivePolicy, so a worker deciding with the
// previous one is safe). A PolicyWriter is used by one open file at a time.
#pragma once

#include <atomic>
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

  // Loads one batch (rule text, or one absolute path): all or nothing, recorded, live on
  // return. InvalidArgument for a bad rule or an empty batch.
  Status Load(std::string_view batch);
  // Whether the policy file at path would load (readable, every rule valid, one at least).
  Status CheckPath(const std::string& path);

 private:
  friend class PolicyWriter;
  void CloseWriter();

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
  std::vector<std::unique_ptr<ima::PolicyMatcher>> matchers_;  // all ever installed; last is live
  std::atomic<const ima::PolicyMatcher*> live_{nullptr};
};

class PolicyWriter {
 public:
  ~PolicyWriter();  // releases the writer slot; an unflushed batch is dropped
  // Appends bytes to the batch; InvalidArgument when a completed line is a bad rule (the
  // batch is then discarded, and later writes of this open fail too, as in the kernel).
  Status Write(std::string_view data);
  // Commits the batch written since the last flush, if any.
  Status Flush();

 private:
  friend class LivePolicy;
  explicit PolicyWriter(LivePolicy* owner) : owner_(owner) {}
  LivePolicy* owner_;
  std::string batch_;
  size_t checked_ = 0;  // bytes of batch_ whose complete lines were checked
  bool failed_ = false;
};

}  // namespace lim::daemon
