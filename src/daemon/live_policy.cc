#include "daemon/live_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lim::daemon {

namespace {

// The kernel takes a batch starting with '/' as the path of a policy file.
bool IsPathBatch(std::string_view batch) { return !batch.empty() && batch.front() == '/'; }

Status OsError(const std::string& what, const std::string& path) {
  std::string m = what + " " + path + ": " + std::strerror(errno);
  return errno == ENOENT ? Status::NotFound(m) : Status::IoError(m);
}

std::string_view TrimLineEnd(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Reads the whole file behind fd.
Result<std::string> ReadAll(int fd, const std::string& path) {
  std::string text;
  char buf[65536];
  for (off_t off = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return OsError("read", path);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
}

// Opens and parses a policy file: all its rules valid, at least one.
Result<ima::Policy> ParseFile(int* fd, const std::string& path) {
  if (path.find('\n') != std::string::npos) return Status::InvalidArgument("a policy path must be alone in its write");
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return OsError("open", path);
  LIM_ASSIGN_OR_RETURN(std::string text, ReadAll(*fd, path));
  auto parsed = ima::ParsePolicy(text, path);
  if (!parsed.ok()) return Status::InvalidArgument(parsed.status().message());
  if (parsed->rules.empty()) return Status::InvalidArgument(path + ": no rule");
  return parsed;
}

}  // namespace

LivePolicy::LivePolicy(ima::Policy initial, bool initial_loaded, PolicyRecorder recorder)
    : recorder_(std::move(recorder)), policy_(std::move(initial)), written_(initial_loaded) {
  matchers_.push_back(std::make_unique<ima::PolicyMatcher>(policy_));
  live_.store(matchers_.back().get());
  shown_ = ima::ShowPolicy(policy_);
}

LivePolicy::~LivePolicy() = default;

const ima::PolicyMatcher* LivePolicy::matcher() const { return live_.load(std::memory_order_acquire); }

std::string LivePolicy::Show() const {
  std::lock_guard<std::mutex> lk(show_mu_);
  return shown_;
}

uint64_t LivePolicy::loads() const {
  std::lock_guard<std::mutex> lk(show_mu_);
  return loads_;
}

Result<std::unique_ptr<PolicyWriter>> LivePolicy::OpenWriter() {
  if (writer_open_.exchange(true)) return Status::Unavailable("the policy file is open for writing elsewhere");
  return std::unique_ptr<PolicyWriter>(new PolicyWriter(this));
}

void LivePolicy::CloseWriter() { writer_open_.store(false); }

Status LivePolicy::Load(std::string_view batch) {
  std::lock_guard<std::mutex> lk(mu_);
  ima::Policy loaded;
  if (IsPathBatch(batch)) {
    // A policy file, read once through one fd: the bytes parsed are the bytes measured.
    std::string path(TrimLineEnd(batch));
    int fd = -1;
    auto parsed = ParseFile(&fd, path);
    if (!parsed.ok()) {
      if (fd >= 0) ::close(fd);
      return parsed.status();
    }
    loaded = std::move(parsed).value();
    // Recorded with the policy in force before the load, as the kernel measures it.
    auto measured = recorder_.measure_file ? recorder_.measure_file(fd, path) : Result<bool>(false);
    ::close(fd);
    if (!measured.ok()) return measured.status().WithPrefix("measure " + path);
    if (!*measured && recorder_.record_text) LIM_RETURN_IF_ERROR(recorder_.record_text(loaded.text));
  } else {
    auto parsed = ima::ParsePolicy(batch, "policy");
    if (!parsed.ok()) return Status::InvalidArgument(parsed.status().message());
    if (parsed->rules.empty()) return Status::InvalidArgument("policy: no rule in the batch");
    loaded = std::move(parsed).value();
    if (recorder_.record_text) LIM_RETURN_IF_ERROR(recorder_.record_text(batch));
  }
  if (!written_) {
    // The first written policy replaces the built-in one (kernel: ima_update_policy).
    policy_ = std::move(loaded);
    written_ = true;
  } else {
    policy_.rules.insert(policy_.rules.end(), loaded.rules.begin(), loaded.rules.end());
    policy_.text += loaded.text;
    policy_.source += "+" + loaded.source;
  }
  matchers_.push_back(std::make_unique<ima::PolicyMatcher>(policy_));
  live_.store(matchers_.back().get(), std::memory_order_release);
  if (recorder_.install) recorder_.install(matchers_.back().get());
  std::string shown = ima::ShowPolicy(policy_);
  std::lock_guard<std::mutex> show(show_mu_);
  shown_ = std::move(shown);
  loads_++;
  return Status::Ok();
}

PolicyWriter::~PolicyWriter() { owner_->CloseWriter(); }

Status LivePolicy::CheckPath(const std::string& path) {
  int fd = -1;
  auto parsed = ParseFile(&fd, path);
  if (fd >= 0) ::close(fd);
  return parsed.status();
}

Status PolicyWriter::Write(std::string_view data) {
  if (failed_) return Status::InvalidArgument("policy update failed: an earlier rule of this batch was invalid");
  batch_.append(data);
  if (IsPathBatch(batch_)) {
    // A complete path line: fail this write() if the file cannot be loaded (the kernel's
    // write returns the load's error). It is read again, and recorded, at the flush.
    if (batch_.back() != '\n') return Status::Ok();
    Status s = owner_->CheckPath(std::string(TrimLineEnd(batch_)));
    if (!s.ok()) {
      failed_ = true;
      batch_.clear();
    }
    return s;
  }
  // Check the lines completed by this write, so a bad rule fails its own write().
  size_t end = batch_.rfind('\n');
  if (end == std::string::npos || end + 1 <= checked_) return Status::Ok();
  std::string_view fresh(batch_.data() + checked_, end + 1 - checked_);
  ima::PolicyParseOutput out = ima::CheckPolicy(fresh, "policy");
  checked_ = end + 1;
  if (!out.errors.empty()) {
    failed_ = true;
    batch_.clear();
    checked_ = 0;
    return Status::InvalidArgument(ima::FormatDiagnostic("policy", out.errors.front()));
  }
  return Status::Ok();
}

Status PolicyWriter::Flush() {
  if (failed_) return Status::InvalidArgument("policy update failed");
  if (batch_.empty()) return Status::Ok();
  std::string batch = std::move(batch_);
  batch_.clear();
  checked_ = 0;
  Status s = owner_->Load(batch);
  if (!s.ok()) failed_ = true;
  return s;
}

}  // namespace lim::daemon
