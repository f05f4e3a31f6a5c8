#include "daemon/live_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>

#include "base/own_threads.h"

namespace lim::daemon {

namespace {

Status OsError(const std::string& what, const std::string& path, int e) {
  std::string m = what + " " + path + ": " + std::strerror(e);
  return e == ENOENT ? Status::NotFound(m) : Status::IoError(m);
}

// A policy file read off the writer's thread (ReadPolicyFile): the loader thread fills it
// in; the waiter may give up (abandoned), after which the loader touches nothing else.
struct FileLoad {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool abandoned = false;
  Status status;
  int err = 0;
  std::string text;
  bool measured = false;
};

// Opens and reads the policy file at path, never blocking on a FIFO or a device: stat
// first, open O_NONBLOCK|O_NOCTTY, fstat again (the name may have been swapped), bounded
// size. Symlinks are followed, as the kernel's filp_open does (the writer is root).
Status ReadBounded(const std::string& path, int* fd, std::string* text, int* err) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    *err = errno;
    return OsError("stat", path, *err);
  }
  auto not_regular = [&] {
    *err = EINVAL;  // kernel_read_file(): !S_ISREG -> -EINVAL
    return Status::InvalidArgument(path + ": not a regular file");
  };
  if (!S_ISREG(st.st_mode)) return not_regular();
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (*fd < 0) {
    *err = errno;
    return OsError("open", path, *err);
  }
  if (::fstat(*fd, &st) != 0) {
    *err = errno;
    return OsError("fstat", path, *err);
  }
  if (!S_ISREG(st.st_mode)) return not_regular();
  auto too_big = [&] {
    *err = EFBIG;
    return Status::InvalidArgument(path + ": larger than " + std::to_string(kPolicyFileMaxBytes) +
                                   " bytes (the policy file limit)");
  };
  if (static_cast<uint64_t>(st.st_size) > kPolicyFileMaxBytes) return too_big();
  char buf[65536];
  for (off_t off = 0;;) {
    ssize_t n = ::pread(*fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return OsError("read", path, *err);
    }
    if (n == 0) return Status::Ok();
    if (text->size() + static_cast<size_t>(n) > kPolicyFileMaxBytes) return too_big();  // grew, or lies
    text->append(buf, static_cast<size_t>(n));
    off += n;
  }
}

// Reads the file and measures it (POLICY_CHECK, through the same fd) on a thread of its
// own, waiting at most timeout: a file on a hung FUSE or NFS mount must not hold the FUSE
// request (and with it the writer's process) forever. A loader that outlives its waiter
// finishes alone and only closes its fd; a measurement it had begun may still be recorded
// (as the kernel records a policy file it then fails to parse).
Status ReadPolicyFile(const std::string& path,
                      const std::function<Result<bool>(int, const std::string&)>& measure,
                      std::chrono::milliseconds timeout, std::string* text, bool* measured, int* err) {
  // Loaders left behind by hung filesystems are bounded: past a few, refuse at once.
  static std::atomic<int> loaders{0};
  if (loaders.fetch_add(1) >= kMaxPolicyLoaders) {
    loaders.fetch_sub(1);
    *err = EBUSY;
    return Status::Unavailable(path + ": " + std::to_string(kMaxPolicyLoaders) +
                               " earlier policy-file reads have not finished (a hung filesystem?)");
  }
  auto job = std::make_shared<FileLoad>();
  StartOwnThread([job, path, measure] {
    struct Done {
      ~Done() { loaders.fetch_sub(1); }
    } done;
    int fd = -1, e = 0;
    std::string t;
    bool m = false;
    Status s = ReadBounded(path, &fd, &t, &e);
    bool go_on = false;
    {
      std::lock_guard<std::mutex> lk(job->mu);
      go_on = !job->abandoned;
    }
    if (s.ok() && go_on && measure) {
      auto r = measure(fd, path);
      if (!r.ok()) {
        s = r.status().WithPrefix("measure " + path);
        e = EIO;
      } else {
        m = *r;
      }
    }
    if (fd >= 0) ::close(fd);
    std::lock_guard<std::mutex> lk(job->mu);
    job->status = std::move(s);
    job->err = e;
    job->text = std::move(t);
    job->measured = m;
    job->done = true;
    job->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lk(job->mu);
  if (!job->cv.wait_for(lk, timeout, [&] { return job->done; })) {
    job->abandoned = true;
    *err = ETIMEDOUT;
    return Status::Unavailable(path + ": not read within " + std::to_string(timeout.count()) +
                               " ms (a FIFO, device or hung filesystem?)");
  }
  *err = job->err;
  if (!job->status.ok()) return job->status;
  *text = std::move(job->text);
  *measured = job->measured;
  return Status::Ok();
}

// One line of a write or of a policy file: a rule added to *batch, or a comment or blank
// line (ima_parse_add_rule skips leading blanks, then '#' or nothing).
Status AddLine(std::string_view line, std::string_view source, int line_no, PolicyBatch* batch) {
  size_t p = line.find_first_not_of(" \t");
  if (p == std::string_view::npos || line[p] == '#') return Status::Ok();
  ima::PolicyParseOutput out = ima::CheckPolicy(line, source);
  if (!out.errors.empty()) {
    ima::PolicyDiagnostic d = out.errors.front();
    d.line = line_no;
    return Status::InvalidArgument(ima::FormatDiagnostic(source, d));
  }
  for (auto& r : out.policy.rules) batch->rules.push_back(std::move(r));
  return Status::Ok();
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

Result<size_t> LivePolicy::WriteOne(std::string_view data, PolicyBatch* batch, int* err) {
  // memdup_user_nul(): at most PAGE_SIZE - 1 bytes, and a NUL ends the string.
  if (data.empty()) return size_t{0};
  data = data.substr(0, std::min(data.size(), kPolicyWriteMax));
  const size_t size = data.size();
  data = data.substr(0, std::min(data.size(), data.find('\0')));
  Status s;
  size_t consumed;
  if (!data.empty() && data.front() == '/') {
    // ima_read_policy(): the path ends at the first newline; the whole write is consumed.
    std::string path(data.substr(0, data.find('\n')));
    s = AddFile(path, batch, err);
    consumed = data.size();
  } else {
    size_t nl = data.find('\n');
    std::string_view line = data.substr(0, nl);
    consumed = nl == std::string_view::npos ? data.size() : nl + 1;
    if (nl == std::string_view::npos && data.size() < size) consumed++;  // the NUL ending the line
    s = AddLine(line, "policy", 1, batch);
    if (s.ok()) {
      // Recorded one line per write: an unterminated write is a line of its own.
      std::string bytes(data.substr(0, consumed));
      if (bytes.empty() || bytes.back() != '\n') bytes += '\n';
      if (!batch->last_record_written) batch->records.emplace_back();
      batch->records.back() += bytes;
      batch->last_record_written = true;
      batch->text += bytes;
    } else {
      *err = EINVAL;
    }
  }
  if (!s.ok()) {
    batch->failed = true;  // ima_write_policy(): valid_policy = 0
    return s;
  }
  return consumed;
}

Status LivePolicy::AddFile(const std::string& path, PolicyBatch* batch, int* err) {
  std::string text;
  bool measured = false;
  // Read, and recorded with the policy in force before the load, as the kernel measures it
  // (ima_post_read_file, before parsing): the bytes parsed are the bytes measured.
  LIM_RETURN_IF_ERROR(ReadPolicyFile(path, recorder_.measure_file, file_timeout_, &text, &measured, err));
  PolicyBatch from_file;
  int line_no = 0;
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string::npos ? text.size() : nl;
    Status s = AddLine(std::string_view(text).substr(start, end - start), path, ++line_no, &from_file);
    if (!s.ok()) {
      *err = EINVAL;
      return s;
    }
    start = end + 1;
  }
  for (auto& r : from_file.rules) batch->rules.push_back(std::move(r));
  batch->files.push_back(path);
  batch->text += text;
  if (!measured) {
    batch->records.push_back(std::move(text));
    batch->last_record_written = false;
  }
  return Status::Ok();
}

Status LivePolicy::Commit(PolicyBatch batch) {
  std::lock_guard<std::mutex> lk(mu_);
  // Every load is in the list before it takes effect (files measured as POLICY_CHECK were
  // recorded when read).
  if (recorder_.record_text) {
    for (const auto& t : batch.records) LIM_RETURN_IF_ERROR(recorder_.record_text(t));
  }
  ima::Policy loaded;
  loaded.rules = std::move(batch.rules);
  loaded.text = std::move(batch.text);
  for (const auto& f : batch.files) loaded.source += (loaded.source.empty() ? "" : "+") + f;
  if (loaded.source.empty()) loaded.source = "policy";
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

Status LivePolicy::Load(std::string_view text) {
  PolicyBatch batch;
  int err = 0;
  while (!text.empty()) {
    LIM_ASSIGN_OR_RETURN(size_t n, WriteOne(text, &batch, &err));
    text.remove_prefix(std::min(n, text.size()));
  }
  if (batch.empty()) return Status::InvalidArgument("policy: no rule in the batch");
  return Commit(std::move(batch));
}

PolicyWriter::~PolicyWriter() { owner_->CloseWriter(); }

Result<size_t> PolicyWriter::Write(std::string_view data) {
  auto n = owner_->WriteOne(data, &batch_, &err_);
  if (!n.ok() && err_ == 0) err_ = EINVAL;
  return n;
}

Status PolicyWriter::Flush() {
  PolicyBatch batch = std::move(batch_);
  batch_ = PolicyBatch();
  // ima_release_policy(): a failed or empty batch is dropped ("policy update failed").
  if (batch.failed || batch.empty()) return Status::Ok();
  return owner_->Commit(std::move(batch));
}

}  // namespace lim::daemon
