#include "refs/scan.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <utility>

#include "crypto/digest.h"

namespace lim::refs {

namespace {

// A regular file the walk opened, waiting for a hashing thread.
struct Job {
  size_t index;
  int fd;
  uint64_t size;  // as the walk saw it
};

// What a hashing thread found out about one file.
struct Hashed {
  size_t index;
  Bytes digest;
  Classified kind;
  std::string error;
};

// Files go to the hashers in batches (kBatchFiles files or kBatchBytes bytes, whichever
// comes first): one hand-over per file costs a wake-up per file, and on a loaded machine
// every wake-up waits for a CPU — a scan of /usr/share (58,000 small files) spent more time
// handing files over than hashing them.
constexpr size_t kBatchFiles = 32;
constexpr uint64_t kBatchBytes = 8 << 20;
using Batch = std::vector<Job>;

// Bounded: the walk waits when the hashers are behind, so open descriptors stay few
// (capacity × kBatchFiles at most, plus the batch being filled and those being hashed).
class JobQueue {
 public:
  explicit JobQueue(size_t capacity) : capacity_(capacity) {}

  void Push(Batch b) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < capacity_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  bool Pop(Batch* b) {
    std::unique_lock<std::mutex> l(mu_);
    not_empty_.wait(l, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    *b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Batch> q_;
  size_t capacity_;
  bool closed_ = false;
};

// Reads and hashes one open file (and closes it).
Hashed HashOne(const Job& job, Hasher* hasher, Bytes* buf, ScanProgress* progress) {
  if (job.size > buf->size()) posix_fadvise(job.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hashed h{job.index, {}, {}, {}};
  uint64_t total = 0;
  bool first = true;
  for (;;) {
    ssize_t n = read(job.fd, buf->data(), buf->size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      h.error = std::string("read: ") + std::strerror(errno);
      break;
    }
    ByteView chunk(buf->data(), static_cast<size_t>(n));
    if (first) {
      h.kind = Classify(chunk, job.fd);
      first = false;
    }
    if (n == 0) break;
    hasher->Update(chunk);
    total += static_cast<uint64_t>(n);
    if (progress) progress->bytes_hashed.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    // A short read that reaches the size the walk saw is the end: no read(2) just to see 0
    // (one syscall in three for a small file). A file that grew after that read is taken as
    // it was when stat'ed; one that shrank, or grew before, is caught below.
    if (static_cast<size_t>(n) < buf->size() && total == job.size) break;
  }
  if (h.error.empty() && total != job.size) {
    h.error = "changed while read (size " + std::to_string(job.size) + ", read " + std::to_string(total) + " bytes)";
  }
  if (h.error.empty()) {
    h.digest = hasher->Final();
  } else {
    hasher->Reset();
  }
  close(job.fd);
  if (progress) progress->files_hashed.fetch_add(1, std::memory_order_relaxed);
  return h;
}

void HashFiles(JobQueue* queue, Hasher hasher, size_t read_size, ScanProgress* progress, std::vector<Hashed>* out) {
  Bytes buf(read_size);
  Batch batch;
  while (queue->Pop(&batch)) {
    for (const Job& job : batch) out->push_back(HashOne(job, &hasher, &buf, progress));
  }
}

std::string ReadLinkAt(int dir_fd, const char* name, uint64_t size_hint) {
  std::string target(static_cast<size_t>(std::min<uint64_t>(size_hint, 1 << 16)) + 1, '\0');
  for (;;) {
    ssize_t n = readlinkat(dir_fd, name, target.data(), target.size());
    if (n < 0) return {};
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    if (target.size() > (1 << 16)) return target;  // cut: longer than any path
    target.resize(target.size() * 2);
  }
}

}  // namespace

int DefaultScanJobs() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

Result<Manifest> Scan(const std::vector<std::string>& roots, const ScanOptions& options, const ScanErrorFn& on_error,
                      ScanProgress* progress) {
  const int jobs = options.jobs > 0 ? options.jobs : DefaultScanJobs();
  std::vector<Hasher> hashers;
  for (int i = 0; i < jobs; ++i) {
    LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(options.algo));
    hashers.push_back(std::move(h));
  }
  if (options.read_size == 0) return Status::InvalidArgument("scan: read size 0");

  Manifest m;
  m.algo = options.algo;
  auto report = [&](const std::string& path, const std::string& message) {
    if (on_error) on_error(path, message);
  };
  JobQueue queue(static_cast<size_t>(2 + 2 * jobs));
  Batch pending;
  uint64_t pending_bytes = 0;
  std::vector<std::vector<Hashed>> hashed(static_cast<size_t>(jobs));
  std::vector<std::thread> threads;
  for (int i = 0; i < jobs; ++i) {
    threads.emplace_back(HashFiles, &queue, std::move(hashers[static_cast<size_t>(i)]), options.read_size, progress,
                         &hashed[static_cast<size_t>(i)]);
  }

  uint64_t file_errors = 0;
  std::map<std::pair<dev_t, ino_t>, size_t> inodes;  // linked more than once: first entry
  std::vector<std::pair<size_t, size_t>> links;      // (later name, first name)
  std::unordered_set<std::string> seen;               // several roots may overlap
  auto visit = [&](const WalkEntry& e) {
    if (roots.size() > 1 && !seen.insert(e.path).second) return;
    ManifestEntry me;
    me.path = e.path;
    me.size = static_cast<uint64_t>(e.st.st_size);
    me.mode = e.st.st_mode & 07777;
    me.uid = e.st.st_uid;
    me.gid = e.st.st_gid;
    const size_t index = m.entries.size();
    if (S_ISLNK(e.st.st_mode)) {
      me.kind = FileKind::kSymlink;
      me.link_target = ReadLinkAt(e.dir_fd, e.name, me.size);
    } else if (!S_ISREG(e.st.st_mode)) {
      me.kind = FileKind::kOther;
    } else if (auto it = e.st.st_nlink > 1 ? inodes.find({e.st.st_dev, e.st.st_ino}) : inodes.end();
               it != inodes.end()) {
      me.hardlink_of = m.entries[it->second].path;
      links.emplace_back(index, it->second);
    } else {
      if (e.st.st_nlink > 1) inodes.emplace(std::make_pair(e.st.st_dev, e.st.st_ino), index);
      auto fd = OpenForRead(e);
      if (!fd.ok()) {
        me.error = fd.status().message().substr(e.path.size() + 2);  // without "PATH: "
        ++file_errors;
        report(e.path, me.error);
      } else {
        if (progress) {
          progress->files_found.fetch_add(1, std::memory_order_relaxed);
          progress->bytes_found.fetch_add(me.size, std::memory_order_relaxed);
        }
        pending.push_back(Job{index, *fd, me.size});
        pending_bytes += me.size;
        if (pending.size() >= kBatchFiles || pending_bytes >= kBatchBytes) {
          queue.Push(std::move(pending));
          pending.clear();
          pending_bytes = 0;
        }
      }
    }
    m.entries.push_back(std::move(me));
  };
  WalkOptions walk_options = options.walk;
  walk_options.open_files = true;  // every regular file is read: opened as the walk meets it
  TreeWalk walk(walk_options, visit, [&](const std::string& path, const std::string& message) {
    report(path, message);
  });
  for (const auto& root : roots) walk.Walk(root);
  if (!pending.empty()) queue.Push(std::move(pending));
  if (progress) progress->walk_done.store(true);
  queue.Close();
  for (auto& t : threads) t.join();

  for (auto& per_thread : hashed) {
    for (Hashed& h : per_thread) {
      ManifestEntry& me = m.entries[h.index];
      me.kind = h.kind.kind;
      me.interpreter = std::move(h.kind.interpreter);
      me.interpreter_arg = std::move(h.kind.interpreter_arg);
      if (h.error.empty()) {
        m.bytes_hashed += me.size;
        me.digest = std::move(h.digest);
      } else {
        me.error = std::move(h.error);
        ++file_errors;
      }
    }
  }
  // Read errors are named after the hashing, in walk order (the hashers do not hold the
  // paths: copying every path for the rare error cost more than the error lines).
  std::vector<size_t> unread;
  for (const auto& per_thread : hashed) {
    for (const Hashed& h : per_thread) {
      if (!h.error.empty()) unread.push_back(h.index);
    }
  }
  std::sort(unread.begin(), unread.end());
  for (size_t i : unread) report(m.entries[i].path, m.entries[i].error);
  // Later names of an inode take what its first name got.
  for (const auto& [later, first] : links) {
    const ManifestEntry& f = m.entries[first];
    ManifestEntry& me = m.entries[later];
    me.kind = f.kind;
    me.digest = f.digest;
    me.interpreter = f.interpreter;
    me.interpreter_arg = f.interpreter_arg;
    me.error = f.error;
  }
  if (options.owners) {
    // One slice of the entries per hashing thread: the lookups of a large tree were a tenth
    // of a warm scan, all of it on this thread while the other CPUs had nothing to do.
    m.owners_looked_up = true;
    const size_t n = m.entries.size(), slices = n >= 1024 ? static_cast<size_t>(jobs) : 1;
    auto look_up = [&](size_t slice) {
      for (size_t i = n * slice / slices; i < n * (slice + 1) / slices; ++i) {
        m.entries[i].owner = options.owners->Owner(m.entries[i].path);
      }
    };
    threads.clear();
    for (size_t s = 1; s < slices; ++s) threads.emplace_back(look_up, s);
    look_up(0);
    for (auto& t : threads) t.join();
  }
  m.errors = walk.stats().errors + file_errors;
  m.excluded = walk.stats().excluded;
  m.mounts_skipped = walk.stats().mounts_skipped;
  return m;
}

}  // namespace lim::refs
