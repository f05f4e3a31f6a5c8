#include "daemon/fanotify_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "base/file.h"
#include "daemon/proc_context.h"

namespace lim::daemon {

namespace {

constexpr uint64_t kMarkMask = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE;

// Undoes mountinfo's octal escapes (\040 for a space…).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string FdPath(int fd) {
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

Status CheckWatchRoot(const std::string& path, bool allow_root_fs, std::string* fstype_out) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Status::InvalidArgument("--watch " + path + ": " + strerror(errno));
  std::string rp = real;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool is_root = false;
  std::string fstype;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mnt;
    ls >> id >> parent >> devno >> root >> mnt;
    if (Unescape(mnt) == rp) {
      is_root = true;  // the last mount on a path is the visible one
      size_t sep = line.find(" - ");
      fstype = sep == std::string::npos ? "" : line.substr(sep + 3, line.find(' ', sep + 3) - sep - 3);
    }
  }
  // Pseudo filesystems are never marked: limd reads /proc for every event (a mark there
  // would make it wait on itself), and the others are not files anyone measures.
  static const std::set<std::string> kRefused = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2",
                                                 "securityfs", "debugfs", "tracefs", "bpf", "pstore", "configfs",
                                                 "fusectl", "mqueue", "efivarfs", "binfmt_misc", "autofs"};
  if (kRefused.count(fstype) || fstype.rfind("fuse", 0) == 0) {
    return Status::InvalidArgument("--watch " + path + ": " + fstype + " is not a filesystem limd marks");
  }
  if (fstype_out) *fstype_out = fstype;
  if (!is_root) {
    return Status::InvalidArgument("--watch " + path + ": not a mount root (limd marks whole filesystems; give the "
                                   "mount point)");
  }
  struct stat a, r;
  if (::stat(rp.c_str(), &a) != 0 || ::stat("/", &r) != 0) return Status::IoError("stat " + rp + ": " + strerror(errno));
  if (a.st_dev == r.st_dev && !allow_root_fs) {
    return Status::InvalidArgument("--watch " + path +
                                   ": this is the root filesystem; marking it needs --allow-root-fs (a stuck limd "
                                   "would freeze the host)");
  }
  return Status::Ok();
}

uint64_t DaemonStats::Percentile(double p) const {
  uint64_t total = 0;
  for (const auto& b : latency_log2) total += b.load();
  if (total == 0) return 0;
  uint64_t want = static_cast<uint64_t>(p * static_cast<double>(total));
  uint64_t seen = 0;
  for (size_t i = 0; i < latency_log2.size(); ++i) {
    seen += latency_log2[i].load();
    if (seen > want || seen == total) return 1ull << i;
  }
  return 1ull << (latency_log2.size() - 1);
}

FanotifyDaemon::Pending::~Pending() {
  if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<FanotifyDaemon>> FanotifyDaemon::Create(const DaemonOptions& options, Measurer* measurer,
                                                               MeasurementList* list, Env* env,
                                                               std::function<void(const std::string&)> log) {
  if (options.watch.empty()) return Status::InvalidArgument("no --watch mount given");
  for (const auto& w : options.watch) LIM_RETURN_IF_ERROR(CheckWatchRoot(w, options.allow_root_fs));
  std::unique_ptr<FanotifyDaemon> d(new FanotifyDaemon(options, measurer, list, env, std::move(log)));
  LIM_RETURN_IF_ERROR(d->Init());
  return d;
}

Status FanotifyDaemon::Init() {
  self_ = ::getpid();
  unsigned flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
  group_fd_ = fanotify_init(flags | FAN_REPORT_TID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  report_tid_ = group_fd_ >= 0;
  if (group_fd_ < 0 && errno == EINVAL) group_fd_ = fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (group_fd_ < 0) return Status::Unavailable(std::string("fanotify_init: ") + strerror(errno));
  if (!report_tid_) Log("FAN_REPORT_TID refused: /proc/<pid>/syscall of the main thread is used");
  // Workers and the watchdog exist before the first mark: from then on, events must flow.
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Worker(); });
  watchdog_ = std::thread([this] { Watchdog(); });
  for (const auto& w : options_.watch) {
    std::string fstype;
    struct stat st;
    if (CheckWatchRoot(w, options_.allow_root_fs, &fstype).ok() && ::stat(w.c_str(), &st) == 0) {
      fsnames_[static_cast<uint64_t>(st.st_dev)] = fstype;
    }
  }
  for (const auto& w : options_.watch) {
    if (fanotify_mark(group_fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kMarkMask, AT_FDCWD, w.c_str()) != 0) {
      return Status::Unavailable("fanotify_mark " + w + ": " + strerror(errno));
    }
    marks_++;
  }
  return Status::Ok();
}

FanotifyDaemon::~FanotifyDaemon() {
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    draining_done_ = true;
  }
  q_cv_.notify_all();
  for (auto& t : workers_) t.join();  // workers drain the queue first: every event answered
  watchdog_stop_ = true;
  if (watchdog_.joinable()) watchdog_.join();
  if (group_fd_ >= 0) ::close(group_fd_);
}

void FanotifyDaemon::Enqueue(Job j) {
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    queue_.push_back(std::move(j));
  }
  q_cv_.notify_one();
}

Status FanotifyDaemon::Run() {
  alignas(struct fanotify_event_metadata) static thread_local char buf[64 * 1024];
  while (!stop_.load()) {
    pollfd pfd{group_fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, 100);
    if (r < 0 && errno != EINTR) return Status::IoError(std::string("poll: ") + strerror(errno));
    if (r <= 0) continue;
    ssize_t n = ::read(group_fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::IoError(std::string("read fanotify: ") + strerror(errno));
    }
    auto* m = reinterpret_cast<struct fanotify_event_metadata*>(buf);
    while (FAN_EVENT_OK(m, n)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) return Status::Unsupported("fanotify metadata version mismatch");
      HandleEvent(m->fd, m->mask, m->pid);
      m = FAN_EVENT_NEXT(m, n);
    }
  }
  return Status::Ok();
}

void FanotifyDaemon::HandleEvent(int fd, uint64_t mask, pid_t pid) {
  stats_.events++;
  bool perm = mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM);
  if (fd == FAN_NOFD) {
    if (mask & FAN_Q_OVERFLOW) {
      stats_.overflows++;
      Job j;
      j.overflow = true;
      Enqueue(std::move(j));
    }
    return;
  }
  // limd's own accesses: answered at once, never measured or waited on (invariant 4).
  bool own = pid == self_;
  if (!own && report_tid_) own = ::access(("/proc/self/task/" + std::to_string(pid)).c_str(), F_OK) == 0;
  if (own) {
    stats_.own_events++;
    if (perm) {
      struct fanotify_response resp{fd, FAN_ALLOW};
      if (::write(group_fd_, &resp, sizeof resp) != sizeof resp) stats_.reply_errors++;
      stats_.answered++;
    }
    ::close(fd);
    return;
  }
  struct stat st;
  bool have_stat = ::fstat(fd, &st) == 0;
  InodeKey key{have_stat ? static_cast<uint64_t>(st.st_dev) : 0, have_stat ? static_cast<uint64_t>(st.st_ino) : 0};
  if (!perm) {
    if (!have_stat || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return;
    }
    Job j;
    j.close_fd = fd;
    j.key = key;
    j.note = measurer_->NoteClose(key, mask & FAN_CLOSE_WRITE);
    Enqueue(std::move(j));
    return;
  }
  stats_.perm_events++;
  auto p = std::make_shared<Pending>();
  p->fd = fd;
  p->mask = mask;
  p->start = std::chrono::steady_clock::now();
  if (!have_stat || !S_ISREG(st.st_mode)) {  // directories, devices: IMA looks at regular files only
    Answer(*p, true);
    return;
  }
  // The thread queued the event and may not be off the CPU yet ("running"): the kernel
  // only reports the syscall of a blocked task. Retry briefly.
  SyscallState sc;
  Result<SyscallState> scr = Status::Unavailable("not read");
  for (int i = 0; i < 50; ++i) {
    scr = ReadSyscall(pid);
    if (!scr.ok() || scr->blocked || scr->line != "running") break;
    if (i < 10) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  if (scr.ok()) sc = *scr;
  OpenIntent intent = IntentOf(sc, pid);
  Access& a = p->access;
  a.fd = fd;
  a.pid = pid;
  a.key = key;
  a.path = FdPath(fd);
  if (auto it = fsnames_.find(key.dev); it != fsnames_.end()) a.fsname = it->second;
  if (mask & FAN_OPEN_EXEC_PERM) {
    p->is_exec_perm = true;
    auto& t = exec_[pid];
    if (sc.blocked && t.last && t.line == sc.line) {
      p->exec_first = false;
      p->prev_exec = t.last;
    }
    p->this_exec = std::make_shared<ExecInfo>();
    t.line = sc.line;
    t.last = p->this_exec;
    if (exec_.size() > 4096) exec_.clear();
  } else if (!intent.exec) {
    exec_.erase(pid);
  }
  // Tickets: one per measurer step, taken here in event order.
  OpenCounts exec_ticket, open_ticket, elf_ticket;
  if (p->is_exec_perm) exec_ticket = measurer_->NoteOpen(key, false, false);
  if (mask & FAN_OPEN_PERM) {
    p->is_open_perm = true;
    bool write = false, ro = false;
    if (intent.known) {
      write = OpensForWrite(intent.flags);
      ro = OpensReadOnly(intent.flags);
      a.mask = intent.exec ? ima::may::kExec : FileCheckMask(intent.flags);
      a.open_for_write = write;
      a.direct_io = intent.flags & O_DIRECT;
    } else {
      // io_uring, a running thread, an unreadable /proc: measure as a read; no counts and
      // no violation inferred (docs/limd.md).
      if (stats_.unknown_syscall++ < 5) {
        Log("open of " + a.path + " by tid " + std::to_string(pid) + ": syscall unknown (" +
            (scr.ok() ? "\"" + sc.line + "\"" : scr.status().message()) + "): measured as a read");
      }
      a.mask = ima::may::kRead;
    }
    open_ticket = measurer_->NoteOpen(key, write, ro);
    p->elf_candidate = options_.elf_at_open && intent.known && !intent.exec && ro;
    if (p->elf_candidate) elf_ticket = measurer_->NoteOpen(key, false, false);
  }
  p->access.counts = open_ticket;
  p->exec_ticket = exec_ticket.ticket;
  p->elf_ticket = elf_ticket.ticket;
  {
    std::lock_guard<std::mutex> lk(inflight_mu_);
    inflight_.push_back(p);
  }
  Job j;
  j.perm = std::move(p);
  Enqueue(std::move(j));
}

void FanotifyDaemon::Worker() {
  for (;;) {
    Job j;
    {
      std::unique_lock<std::mutex> lk(q_mu_);
      q_cv_.wait(lk, [&] { return !queue_.empty() || draining_done_; });
      if (queue_.empty()) return;
      j = std::move(queue_.front());
      queue_.pop_front();
    }
    if (j.overflow) {
      // The kernel allowed events limd never saw: a visible gap, and no stale verdicts.
      measurer_->Flush();
      Status s = list_->AppendBuffer("lim-event-overflow", "reason=fanotify_queue_overflow;", true);
      Log("fanotify queue overflow: caches flushed" + (s.ok() ? std::string() : ", gap entry failed: " + s.message()));
    } else if (j.perm) {
      DoPerm(*j.perm);
    } else {
      auto facts = env_->Facts(j.close_fd);
      FileFacts f = facts.ok() ? *facts : FileFacts{};
      measurer_->ApplyClose(j.key, j.note, f);
      ::close(j.close_fd);
    }
  }
}

void FanotifyDaemon::DoPerm(Pending& p) {
  Access base = p.access;
  auto creds = ReadCreds(base.pid);
  if (creds.ok()) {
    base.uid = creds->uid, base.euid = creds->euid, base.suid = creds->suid;
    base.gid = creds->gid, base.egid = creds->egid, base.sgid = creds->sgid;
    base.cap_setuid = creds->cap_setuid, base.cap_setgid = creds->cap_setgid;
    base.comm = creds->comm;
  }
  auto run = [&](const Access& a) {
    Verdict v = measurer_->Process(a);
    if (!v.error.empty()) {
      stats_.measure_errors++;
      Log("measure " + a.path + ": " + v.error);
    }
  };
  if (p.is_exec_perm) {
    int kind = IsScript(env_, p.fd) ? 1 : (ElfHasExecLoad(env_, p.fd) ? 2 : 0);
    p.this_exec->kind.store(kind);
    Access a = base;
    a.mask = ima::may::kExec;
    a.open_for_write = false;
    // The first exec open of an execve is BPRM_CHECK, as is a #! interpreter; the ELF
    // interpreter that follows an ELF binary is the kernel's MMAP_CHECK.
    a.func = (!p.exec_first && p.prev_exec && p.prev_exec->kind.load() == 2) ? ima::ImaHook::kMmapCheck
                                                                            : ima::ImaHook::kBprmCheck;
    a.counts = OpenCounts{0, 0, p.exec_ticket};
    run(a);
  }
  if (p.is_open_perm) {
    Access a = base;
    a.func = ima::ImaHook::kFileCheck;
    run(a);
  }
  if (p.elf_candidate) {
    if (ElfHasExecLoad(env_, p.fd)) {
      Access a = base;
      a.func = ima::ImaHook::kMmapCheck;
      a.mask = ima::may::kExec;
      a.open_for_write = false;
      a.counts = OpenCounts{0, 0, p.elf_ticket};
      run(a);
    } else {
      measurer_->Skip(base.key, p.elf_ticket);
    }
  }
  Answer(p, true);
}

void FanotifyDaemon::Answer(Pending& p, bool allow) {
  if (p.answered.exchange(true)) return;  // the watchdog answered already
  struct fanotify_response resp{p.fd, static_cast<__u32>(allow ? FAN_ALLOW : FAN_DENY)};
  if (::write(group_fd_, &resp, sizeof resp) != sizeof resp) {
    stats_.reply_errors++;
    Log(std::string("fanotify response rejected: ") + strerror(errno) + "; retrying plain");
    struct fanotify_response plain{p.fd, static_cast<__u32>(allow ? FAN_ALLOW : FAN_DENY)};
    (void)!::write(group_fd_, &plain, sizeof plain);
  }
  stats_.answered++;
  auto us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.start).count());
  size_t b = 0;
  while (b + 1 < stats_.latency_log2.size() && (1ull << b) <= us) ++b;
  stats_.latency_log2[b]++;
  uint64_t prev = stats_.latency_max_us.load();
  while (us > prev && !stats_.latency_max_us.compare_exchange_weak(prev, us)) {
  }
}

void FanotifyDaemon::Watchdog() {
  while (!watchdog_stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::vector<std::shared_ptr<Pending>> late;
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lk(inflight_mu_);
      std::vector<std::weak_ptr<Pending>> keep;
      for (auto& w : inflight_) {
        auto p = w.lock();
        if (!p || p->answered.load()) continue;
        if (now - p->start > options_.decision_timeout) {
          late.push_back(p);
        } else {
          keep.push_back(w);
        }
      }
      inflight_.swap(keep);
    }
    for (auto& p : late) {
      // Measure mode: record first, then allow; the worker appends the real entry later.
      if (p->answered.load()) continue;
      stats_.timeouts++;
      Status s = list_->AppendBuffer("lim-decision-timeout",
                                     "path=" + p->access.path + ";pid=" + std::to_string(p->access.pid) + ";", true);
      if (!s.ok()) Log("decision timeout gap entry failed: " + s.message());
      Answer(*p, true);
    }
  }
}

}  // namespace lim::daemon
