#include "daemon/fanotify_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <system_error>

#include "base/file.h"
#include "base/mountinfo.h"
#include "base/own_threads.h"
#include "daemon/fanotify_uapi.h"
#include "daemon/proc_context.h"
#include "daemon/side_group.h"

namespace lim::daemon {

namespace {

constexpr uint64_t kMarkMask = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE;

}  // namespace

namespace {

// The syscall of the thread that queued the event. The thread may not be off the CPU yet
// ("running"): the kernel only reports the syscall of a blocked task. Retry briefly.
Result<SyscallState> ReadBlockedSyscall(SyscallReader& reader, pid_t pid) {
  Result<SyscallState> scr = Status::Unavailable("not read");
  for (int i = 0; i < 50; ++i) {
    scr = reader.Read(pid);
    if (!scr.ok() || scr->blocked || scr->line != "running") break;
    if (i < 10) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  return scr;
}

constexpr long kSysMmap = 9;  // x86_64

std::string FdPath(int fd) { return ReadLink("/proc/self/fd/" + std::to_string(fd)); }

}  // namespace

bool RefusedFsType(const std::string& fstype) {
  static const std::set<std::string> kRefused = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2",
                                                 "securityfs", "debugfs", "tracefs", "bpf", "pstore", "configfs",
                                                 "fusectl", "mqueue", "efivarfs", "binfmt_misc", "autofs"};
  return kRefused.count(fstype) > 0;
}

bool PolicyMeasuresMmap(const ima::Policy& policy) {
  for (const auto& r : policy.rules) {
    if (!(r.action & ima::action::kMeasure)) continue;
    if (!(r.flags & ima::rule_flag::kFunc) || r.func == ima::ImaHook::kMmapCheck ||
        r.func == ima::ImaHook::kMmapCheckReqprot) {
      return true;
    }
  }
  return false;
}

Status CheckWatchRoot(const std::string& path, bool allow_root_fs, std::string* fstype_out) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Status::InvalidArgument("--watch " + path + ": " + strerror(errno));
  std::string rp = real;
  bool is_root = false;
  std::string fstype;
  auto mounts = ReadMountinfo();
  if (!mounts.ok()) return Status::IoError("--watch " + path + ": " + mounts.status().message());
  for (const auto& m : *mounts) {
    if (m.mount_point == rp) {
      is_root = true;  // the last mount on a path is the visible one
      fstype = m.fstype;
    }
  }
  // Pseudo filesystems are never marked: limd reads /proc for every event (a mark there
  // would make it wait on itself), and the others are not files anyone measures.
  if (RefusedFsType(fstype)) {
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

Result<uint64_t> DeviceOf(const std::string& path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) != 0) {
    return Status::IoError("stat " + path + ": " + strerror(errno));
  }
  return static_cast<uint64_t>(makedev(sx.stx_dev_major, sx.stx_dev_minor));
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
  for (const auto& w : options.watch) LIM_RETURN_IF_ERROR(CheckWatchRoot(w, options.allow_root_fs));
  std::unique_ptr<FanotifyDaemon> d(new FanotifyDaemon(options, measurer, list, env, std::move(log)));
  LIM_RETURN_IF_ERROR(d->Init());
  return d;
}

Status FanotifyDaemon::Init() {
  self_ = ::getpid();
  task_dir_ = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (task_dir_ < 0) return Status::Unavailable(std::string("open /proc/self/task: ") + strerror(errno));
  unsigned flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
  if (options_.report_fd_error) {
    group_fd_ = fanotify_init(flags | FAN_REPORT_TID | FAN_REPORT_FD_ERROR, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (group_fd_ < 0) Log(std::string("FAN_REPORT_FD_ERROR refused (") + strerror(errno) + ")");
  }
  if (group_fd_ < 0) group_fd_ = fanotify_init(flags | FAN_REPORT_TID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  report_tid_ = group_fd_ >= 0;
  if (group_fd_ < 0 && errno == EINVAL) group_fd_ = fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (group_fd_ < 0) return Status::Unavailable(std::string("fanotify_init: ") + strerror(errno));
  if (!report_tid_) Log("FAN_REPORT_TID refused: /proc/<pid>/syscall of the main thread is used");
  if (options_.precontent) {
    unsigned pflags = FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
    pre_fd_ = fanotify_init(pflags | (report_tid_ ? FAN_REPORT_TID : 0), O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (pre_fd_ < 0) Log(std::string("no pre-content group (fanotify_init: ") + strerror(errno) + "): ELF-at-open");
  }
  if (options_.reader_close_group) {
    closes_ = ReaderCloseGroup::Create(report_tid_);
    if (!closes_) Log(std::string("no reader-close group (fanotify_init: ") + strerror(errno) + "): closes inline");
  }
  // Workers and the watchdog exist before the first mark: from then on, events must flow.
  // A thread that cannot be had (RLIMIT_NPROC, memory) is an error, not std::terminate; the
  // destructor joins the ones already running.
  try {
    for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.push_back(StartOwnThread([this] { Worker(); }));
    watchdog_ = StartOwnThread([this] { Watchdog(); });
  } catch (const std::system_error& e) {
    return Status::Unavailable("cannot start " + std::to_string(options_.workers) + " worker threads: " + e.what());
  }
  for (const auto& w : options_.watch) {
    std::string fstype;
    LIM_RETURN_IF_ERROR(CheckWatchRoot(w, options_.allow_root_fs, &fstype));
    LIM_RETURN_IF_ERROR(MarkFilesystem(w, fstype));
  }
  return Status::Ok();
}

Status FanotifyDaemon::MarkFilesystem(const std::string& w, const std::string& fstype, bool remeasure) {
  LIM_ASSIGN_OR_RETURN(uint64_t dev, DeviceOf(w));
  std::lock_guard<std::mutex> order(mark_order_mu_);
  if (closing_) return Status::Unavailable("limd is stopping: " + w + " not marked");
  {
    std::unique_lock<std::mutex> lk(marks_mu_);
    auto it = devs_.find(dev);
    if (it != devs_.end()) {
      lk.unlock();
      if (SuperblockMarked(dev)) return Status::Ok();
      // The superblock marked under this dev is gone, and a new one took its number.
      lk.lock();
      it = devs_.find(dev);
      if (it != devs_.end()) {
        if (it->second.precontent) precontent_marks_--;
        devs_.erase(it);
        marks_--;
      }
      lk.unlock();
      if (closes_) closes_->Forget(dev);
      Log("device " + std::to_string(major(static_cast<dev_t>(dev))) + ":" + std::to_string(minor(static_cast<dev_t>(dev))) +
          " is a new superblock (the one marked under it is gone): marking " + w);
    }
  }
  DevInfo info;
  info.fsname = fstype;
  info.remeasure = remeasure;
  // Readers' closes first: a reader counted at its open must have its close seen.
  info.reader_close_group = closes_ && closes_->Mark(w, dev);
  // Pre-content first: from the content mark on, opens decide ELF-at-open by this set.
  if (pre_fd_ >= 0) {
    if (fanotify_mark(pre_fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_PRE_ACCESS, AT_FDCWD, w.c_str()) == 0) {
      info.precontent = true;
      precontent_marks_++;
    } else {
      // tmpfs: EOPNOTSUPP (no FS_ALLOW_HSM); that filesystem keeps ELF-at-open.
      Log("no pre-content events on " + w + " (" + strerror(errno) + "): MMAP_CHECK by ELF-at-open there");
    }
  }
  {
    std::lock_guard<std::mutex> lk(marks_mu_);
    devs_[dev] = info;
  }
  uint64_t mask = kMarkMask & ~static_cast<uint64_t>(info.reader_close_group ? FAN_CLOSE_NOWRITE : 0);
  if (fanotify_mark(group_fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, w.c_str()) != 0) {
    return Status::Unavailable("fanotify_mark " + w + ": " + strerror(errno));
  }
  marks_++;
  return Status::Ok();
}

bool FanotifyDaemon::SuperblockMarked(uint64_t dev) {
  {
    // Not one of this group's (an overlay or FUSE side group's, or never marked): this
    // group cannot tell, and what limd believes stands.
    std::lock_guard<std::mutex> lk(marks_mu_);
    if (!devs_.count(dev)) return true;
  }
  auto text = ReadFileText("/proc/self/fdinfo/" + std::to_string(group_fd_));
  if (!text.ok()) return true;  // cannot tell: keep what limd believes
  // The kernel prints its own dev_t (major << 20 | minor) in hex.
  auto d = static_cast<dev_t>(dev);
  char want[48];
  std::snprintf(want, sizeof want, "sdev:%llx ",
                static_cast<unsigned long long>((static_cast<uint64_t>(major(d)) << 20) | minor(d)));
  return text->find(want) != std::string::npos;
}

FanotifyDaemon::DevInfo FanotifyDaemon::Dev(uint64_t dev) {
  std::lock_guard<std::mutex> lk(marks_mu_);
  auto it = devs_.find(dev);
  return it == devs_.end() ? DevInfo{} : it->second;
}

void FanotifyDaemon::LearnReaderHandles(const std::vector<ScanReport::ReaderHandle>& handles) {
  if (!closes_) return;
  for (const auto& h : handles) closes_->Learn(h.key, h.handle, h.ctime_ns);
}

void FanotifyDaemon::DrainReaderCloses() {
  if (!closes_) return;
  last_drain_ = std::chrono::steady_clock::now();
  auto n = closes_->Drain([this](const InodeKey& key, pid_t tid) {
    if (Own(tid)) return;  // limd's own opens were never counted
    measurer_->NoteReaderClose(key);
  });
  if (!n.ok()) {
    Log(n.status().message());
    return;
  }
  if (*n == 0) return;
  stats_.reader_closes += *n;
  stats_.reader_close_drains++;
  // Handles of inodes nobody reads are relearned at their next open; keep the map bounded.
  closes_->Prune(ReaderCloseGroup::kMaxKnown, [this](const InodeKey& key) { return measurer_->Readers(key) > 0; });
}

uint64_t FanotifyDaemon::IgnoreEpoch(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(ignore_mu_);
  return ignore_epoch_[InodeKeyHash()(key) % ignore_epoch_.size()];
}

void FanotifyDaemon::AddIgnore(int fd, const InodeKey& key, uint64_t epoch) {
  std::lock_guard<std::mutex> lk(ignore_mu_);
  if (ignore_epoch_[InodeKeyHash()(key) % ignore_epoch_.size()] != epoch) return;  // removed since
  if (fanotify_mark(pre_fd_, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE,
                    FAN_PRE_ACCESS, fd, nullptr) == 0) {
    stats_.ignores_added++;
  }
}

void FanotifyDaemon::RemoveIgnore(int fd, const InodeKey& key) {
  std::lock_guard<std::mutex> lk(ignore_mu_);
  ignore_epoch_[InodeKeyHash()(key) % ignore_epoch_.size()]++;
  if (fanotify_mark(pre_fd_, FAN_MARK_REMOVE | FAN_MARK_IGNORE, FAN_PRE_ACCESS, fd, nullptr) == 0) {
    stats_.ignores_removed++;
  }
}

FanotifyDaemon::~FanotifyDaemon() {
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    draining_done_ = true;
  }
  q_cv_.notify_all();
  for (auto& t : workers_) t.join();  // workers drain the queue first: every event answered
  {
    std::lock_guard<std::mutex> lk(inflight_mu_);
    watchdog_stop_ = true;
  }
  inflight_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (group_fd_ >= 0) ::close(group_fd_);
  if (pre_fd_ >= 0) ::close(pre_fd_);
  if (task_dir_ >= 0) ::close(task_dir_);
}

void FanotifyDaemon::Enqueue(Job j) {
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    queue_.push_back(std::move(j));
  }
  q_cv_.notify_one();
}

Status FanotifyDaemon::Run() {
  if (options_.reader_nice != 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.reader_nice) != 0) {
    Log("event reader stays at the default priority (setpriority " + std::to_string(options_.reader_nice) +
        ": " + strerror(errno) + ")");
  }
  Status loop;
  while (!stop_.load() && loop.ok()) loop = ReadReady(100).status();
  // Also after a read error: no mark may outlive the reader (its events would wait forever).
  Status flushed = FlushMarksAndDrain();
  return loop.ok() ? flushed : loop;
}

Result<bool> FanotifyDaemon::ReadReady(int timeout_ms) {
  pollfd pfd[2] = {{group_fd_, POLLIN, 0}, {pre_fd_, POLLIN, 0}};
  int r = ::poll(pfd, pre_fd_ >= 0 ? 2 : 1, timeout_ms);
  if (r < 0) {
    if (errno == EINTR) return true;  // a signal: not "quiet", the caller looks again
    return Status::IoError(std::string("poll: ") + strerror(errno));
  }
  if (r == 0) {
    DrainReaderCloses();  // quiet: the queued closes, in one read
    return false;
  }
  // The content group first: its opens and closes set the counts pre-content events see.
  if (pfd[0].revents & POLLIN) LIM_RETURN_IF_ERROR(ReadEvents(group_fd_));
  if (pre_fd_ >= 0 && (pfd[1].revents & POLLIN)) LIM_RETURN_IF_ERROR(ReadEvents(pre_fd_));
  if (closes_ && std::chrono::steady_clock::now() - last_drain_ > kDrainInterval) DrainReaderCloses();
  return true;
}

Status FanotifyDaemon::FlushMarksAndDrain() {
  {
    std::lock_guard<std::mutex> lk(mark_order_mu_);
    closing_ = true;
    if (closes_) closes_->FlushMarks();
    for (int g : {group_fd_, pre_fd_}) {
      if (g >= 0 && fanotify_mark(g, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, nullptr) != 0) {
        Log(std::string("flushing fanotify marks: ") + strerror(errno));
      }
    }
  }
  // No mark is left, so the queues only hold what was queued before the flush (an access
  // already past its fsnotify hook may still land): read until both stay quiet for 50 ms.
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool any, ReadReady(50));
    if (!any) return Status::Ok();  // the quiet poll also read the last reader closes
  }
}

Status FanotifyDaemon::ReadEvents(int group) {
  alignas(struct fanotify_event_metadata) static thread_local char buf[64 * 1024];
  ssize_t n = ::read(group, buf, sizeof buf);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return Status::Ok();
    return Status::IoError(std::string("read fanotify: ") + strerror(errno));
  }
  auto* m = reinterpret_cast<struct fanotify_event_metadata*>(buf);
  while (FAN_EVENT_OK(m, n)) {
    if (m->vers != FANOTIFY_METADATA_VERSION) return Status::Unsupported("fanotify metadata version mismatch");
    if (m->fd < 0 && (m->mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS))) {
      HandleFdError(m->fd, m->mask, m->pid);
    } else if (group == pre_fd_ && (m->mask & FAN_PRE_ACCESS) && m->fd != FAN_NOFD) {
      HandlePreContent(m->fd, m->pid);
    } else {
      HandleEvent(m->fd, m->mask, m->pid);
    }
    m = FAN_EVENT_NEXT(m, n);
  }
  return Status::Ok();
}

bool FanotifyDaemon::Own(pid_t pid) const {
  if (pid == self_) return true;
  // Every thread limd starts registers itself (base/own_threads.h): no /proc lookup per
  // event. Only if a registration ever failed is the kernel asked.
  if (report_tid_ && OwnThreads::Contains(pid)) return true;
  if (report_tid_ && !OwnThreads::Complete()) {
    char name[16];
    std::snprintf(name, sizeof name, "%d", static_cast<int>(pid));
    if (::faccessat(task_dir_, name, F_OK, 0) == 0) return true;  // one lookup in /proc/self/task
  }
  // A trusted peer (the TPM server): its main thread, or (FAN_REPORT_TID) any of its threads.
  for (pid_t peer : options_.trusted_peers) {
    if (pid == peer) return true;
    if (report_tid_ &&
        ::access(("/proc/" + std::to_string(peer) + "/task/" + std::to_string(pid)).c_str(), F_OK) == 0) {
      return true;
    }
  }
  return false;
}

void FanotifyDaemon::HandleFdError(int error, uint64_t mask, pid_t pid) {
  // The kernel finished the event with FAN_DENY before it reached limd (fanotify_read: a
  // permission event without an fd is denied); there is nothing to answer.
  stats_.events++;
  if (stats_.fd_errors++ == 0) {
    // Every later access would be denied the same way: unmark this group's filesystems.
    std::lock_guard<std::mutex> lk(mark_order_mu_);
    if (fanotify_mark(group_fd_, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, nullptr) == 0) marks_ = 0;
    std::string fs;
    {
      std::lock_guard<std::mutex> dl(marks_mu_);
      for (const auto& [dev, info] : devs_) fs += (fs.empty() ? "" : ", ") + info.fsname;
    }
    Log("the kernel cannot open files of " + fs + " for limd (" + strerror(-error) + ", an " +
        (mask & FAN_OPEN_EXEC_PERM ? "exec " : "") + "open by tid " + std::to_string(pid) +
        " was denied): unmarked, its files are not measured");
  }
  Job j;
  j.open_failed = "reason=event_fd_error;errno=" + std::to_string(-error) + ";pid=" + std::to_string(pid) +
                  ";exec=" + (mask & FAN_OPEN_EXEC_PERM ? "1" : "0") + ";unmarked=1;";
  Enqueue(std::move(j));
}

void FanotifyDaemon::HandlePreContent(int fd, pid_t pid) {
  stats_.events++;
  stats_.precontent_events++;
  auto allow_now = [&] {
    struct fanotify_response resp{fd, FAN_ALLOW};
    if (::write(pre_fd_, &resp, sizeof resp) != sizeof resp) stats_.reply_errors++;
    stats_.answered++;
    ::close(fd);
  };
  // Only mmap(PROT_EXEC) is a measurement point; read(), write(), a PROT_READ mmap and
  // execve's own reads and mappings (the exec opens decide those) pass at once — also
  // limd's own, so the pid test is left to the rare exec mapping.
  auto scr = ReadBlockedSyscall(syscalls_, pid);
  if (!scr.ok() || !scr->blocked || scr->nr != kSysMmap || !(scr->args[2] & PROT_EXEC)) {
    stats_.precontent_quick++;
    allow_now();
    return;
  }
  if (Own(pid)) {  // e.g. a lazy dlopen inside limd: never waited on (invariant 4)
    stats_.own_events++;
    allow_now();
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    allow_now();
    return;
  }
  stats_.perm_events++;
  InodeKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  auto p = std::make_shared<Pending>();
  p->fd = fd;
  p->group = pre_fd_;
  p->mask = FAN_PRE_ACCESS;
  p->start = std::chrono::steady_clock::now();
  p->pre_exec = true;
  p->precontent_fs = true;
  p->ignore_epoch = IgnoreEpoch(key);
  Access& a = p->access;
  a.fd = fd;
  a.pid = pid;
  a.key = key;
  a.path = FdPath(fd);
  a.func = ima::ImaHook::kMmapCheck;
  a.mask = ima::may::kExec;
  a.fsname = Dev(key.dev).fsname;
  a.counts = measurer_->NoteOpen(key, false, false);  // counts now, and this step's turn
  {
    std::lock_guard<std::mutex> lk(inflight_mu_);
    inflight_.push_back(p);
  }
  Job j;
  j.perm = std::move(p);
  Enqueue(std::move(j));
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
  // limd's own accesses and the TPM server's: answered at once, never measured or waited
  // on (invariant 4).
  if (Own(pid)) {
    stats_.own_events++;
    if (perm) {
      struct fanotify_response resp{fd, FAN_ALLOW};
      if (::write(group_fd_, &resp, sizeof resp) != sizeof resp) stats_.reply_errors++;
      stats_.answered++;
    }
    ::close(fd);
    return;
  }
  // A permission event's facts (one fstat; the superblock's are cached) serve the key, the
  // type and the fast path's change tuple; a close needs only the key and type.
  FileFacts facts;
  bool have_stat;
  if (perm) {
    auto r = env_->FactsForCacheCheck(fd);
    have_stat = r.ok();
    if (have_stat) facts = *r;
  } else {
    struct stat st;
    have_stat = ::fstat(fd, &st) == 0;
    facts.dev = static_cast<uint64_t>(st.st_dev), facts.ino = static_cast<uint64_t>(st.st_ino);
    facts.regular = S_ISREG(st.st_mode);
  }
  InodeKey key{have_stat ? facts.dev : 0, have_stat ? facts.ino : 0};
  if (!perm) {
    if (!have_stat || !facts.regular) {
      ::close(fd);
      return;
    }
    CloseNote note = measurer_->NoteClose(key, mask & FAN_CLOSE_WRITE);
    // The last writer is gone: the change tuple decides anew, pre-content must see the inode.
    if (note.last_writer && Dev(key.dev).precontent) RemoveIgnore(fd, key);
    if (measurer_->TryApplyClose(key, note, fd)) {  // its turn: no worker hop
      ::close(fd);
      return;
    }
    Job j;
    j.close_fd = fd;
    j.key = key;
    j.note = note;
    Enqueue(std::move(j));
    return;
  }
  stats_.perm_events++;
  auto p = std::make_shared<Pending>();
  p->fd = fd;
  p->group = group_fd_;
  p->mask = mask;
  p->start = std::chrono::steady_clock::now();
  if (!have_stat || !facts.regular) {  // directories, devices: IMA looks at regular files only
    Answer(*p, true);
    return;
  }
  SyscallState sc;
  Result<SyscallState> scr = Status::Unavailable("not read");
  if (!ExecOpenFollows(mask, pid, key, &sc)) {
    scr = ReadBlockedSyscall(syscalls_, pid);
    if (scr.ok()) sc = *scr;
  } else {
    scr = sc;
  }
  DevInfo dev = Dev(key.dev);
  p->precontent_fs = dev.precontent;
  p->ignore_epoch = p->precontent_fs ? IgnoreEpoch(key) : 0;
  OpenIntent intent = IntentOf(sc, pid);
  Access& a = p->access;
  a.fd = fd;
  a.pid = pid;
  a.key = key;  // a.path: FdPath() only when a worker needs it (entries, logs)
  a.fsname = std::move(dev.fsname);
  a.remeasure = dev.remeasure;
  if (options_.overlay_opens) {  // overlay backing files (side_group.h)
    const std::string& line = sc.blocked ? sc.line : std::string();
    p->backing = options_.overlay_opens->IsBackingOpen(fd, pid, line);
    if (p->backing) stats_.backing_events++;
    if (options_.overlay_group && !p->backing) options_.overlay_opens->Note(pid, line);
  }
  if (mask & FAN_OPEN_EXEC_PERM) {
    p->is_exec_perm = true;
    auto& t = exec_[pid];
    if (sc.blocked && t.last && t.line == sc.line) {
      p->exec_first = false;
      p->prev_exec = t.last;
      // The open after an ELF binary's in one execve: its interpreter.
      if (options_.unmarked_exec && t.last->kind.load() == FileKindCache::kElf) interps_.Learn(key.dev, key.ino);
    } else if (sc.blocked && options_.unmarked_exec && interps_.Contains(key.dev, key.ino)) {
      p->check_origin = true;  // an interpreter opened first: ld.so itself, or the binary is unmarked
      p->sc = sc;
    }
    p->this_exec = std::make_shared<ExecInfo>();
    t.line = sc.line;
    t.last = p->this_exec;
    t.open_follows = sc.blocked;
    t.open_key = key;
    t.open_sc = sc;
    t.open_at = p->start;
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
        Log("open of " + FdPath(fd) + " by tid " + std::to_string(pid) + ": syscall unknown (" +
            (scr.ok() ? "\"" + sc.line + "\"" : scr.status().message()) + "): measured as a read");
      }
      a.mask = ima::may::kRead;
    }
    // A write-open looks at reader counts (ToMToU, the pre-content shortcut below): every
    // reader close that happened before it is queued by now. A reader's open of an inode
    // with a close still queued reads them too: fanotify merges identical queued events
    // (same thread, same file), and two closes merged into one would leave the count high.
    if (dev.reader_close_group && (write || (ro && measurer_->Readers(key) > 0))) DrainReaderCloses();
    open_ticket = measurer_->NoteOpen(key, write, ro);
    if (ro && dev.reader_close_group) closes_->Learn(fd, key, facts.ctime_ns);
    if (p->precontent_fs) {
      // A write-only opener of an inode nobody else has open: its writes need no round
      // trip. Any other opener while a writer exists may map it PROT_EXEC: pre-content
      // must see it again (design.md).
      bool write_only = intent.known && (intent.flags & O_ACCMODE) == O_WRONLY;
      if (write_only && open_ticket.readers == 0 && open_ticket.writers == 0) {
        AddIgnore(fd, key, p->ignore_epoch);
      } else if (!write_only && open_ticket.writers > 0) {
        RemoveIgnore(fd, key);
        p->ignore_epoch = IgnoreEpoch(key);
      }
    }
    p->elf_candidate = options_.elf_at_open && !p->precontent_fs && intent.known && !intent.exec && ro;
    if (p->elf_candidate) elf_ticket = measurer_->NoteOpen(key, false, false);
  }
  p->access.counts = open_ticket;
  p->exec_ticket = exec_ticket.ticket;
  p->elf_ticket = elf_ticket.ticket;
  if (TryFastPath(*p, facts)) return;
  {
    std::lock_guard<std::mutex> lk(inflight_mu_);
    if (inflight_.empty()) inflight_cv_.notify_one();  // the watchdog sleeps while none wait
    inflight_.push_back(p);
  }
  Job j;
  j.perm = std::move(p);
  Enqueue(std::move(j));
}

bool FanotifyDaemon::ExecOpenFollows(uint64_t mask, pid_t pid, const InodeKey& key, SyscallState* sc) {
  if (!(mask & FAN_OPEN_PERM) || (mask & FAN_OPEN_EXEC_PERM)) return false;
  auto it = exec_.find(pid);
  if (it == exec_.end() || !it->second.open_follows) return false;
  ExecTrack& t = it->second;
  t.open_follows = false;  // only the very next event of the thread
  // The same inode, and soon: a thread killed between the two events cannot hand its tid
  // to a new thread within a second (tids are reused only after the pid space wraps).
  if (!(t.open_key == key) || std::chrono::steady_clock::now() - t.open_at > std::chrono::seconds(1)) return false;
  *sc = t.open_sc;
  stats_.exec_open_reuses++;
  return true;
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
      if (pre_fd_ >= 0) {  // no verdict is left: neither is any ignore mark
        std::lock_guard<std::mutex> lk(ignore_mu_);
        for (auto& e : ignore_epoch_) e++;
        (void)fanotify_mark(pre_fd_, FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
      }
      Status s = list_->AppendBuffer("lim-event-overflow", "reason=fanotify_queue_overflow;", true);
      Log("fanotify queue overflow: caches flushed" + (s.ok() ? std::string() : ", gap entry failed: " + s.message()));
    } else if (!j.open_failed.empty()) {
      // The kernel could not open the file for limd and denied the access: a visible gap.
      Status s = list_->AppendBuffer("lim-open-failed", j.open_failed, true);
      if (!s.ok()) Log("open-failed gap entry failed: " + s.message());
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

Access FanotifyDaemon::ExecStep(const Pending& p, const Access& base) {
  Access a = base;
  a.mask = ima::may::kExec;
  a.open_for_write = false;
  // The first exec open of an execve is BPRM_CHECK, as is a #! interpreter; the ELF
  // interpreter that follows an ELF binary is the kernel's MMAP_CHECK.
  a.func = p.interp_of_unmarked || (!p.exec_first && p.prev_exec && p.prev_exec->kind.load() == FileKindCache::kElf)
               ? ima::ImaHook::kMmapCheck
               : ima::ImaHook::kBprmCheck;
  a.counts = OpenCounts{0, 0, p.exec_ticket};
  return a;
}

Access FanotifyDaemon::OpenStep(const Access& base) {
  Access a = base;
  a.func = ima::ImaHook::kFileCheck;
  return a;
}

Access FanotifyDaemon::ElfStep(const Pending& p, const Access& base) {
  Access a = base;
  a.func = ima::ImaHook::kMmapCheck;
  a.mask = ima::may::kExec;
  a.open_for_write = false;
  a.counts = OpenCounts{0, 0, p.elf_ticket};
  return a;
}

bool FanotifyDaemon::TryFastPath(Pending& p, const FileFacts& facts) {
  if (p.check_origin) return false;  // /proc reads and maybe a hash: a worker's
  Access base = p.access;
  bool have_creds = false;
  // One step, built from base by make(). Credentials are read only when a rule for the
  // step looks at them and the cached outcome depends on them (/proc/<tid>/status is the
  // costliest read of the event).
  auto run = [&](auto make) {
    if (p.backing) return measurer_->TrySkip(base.key, make().counts.ticket);  // the overlay file is measured
    auto r = measurer_->TryProcessCached(make(), facts, have_creds);
    if (r != Measurer::Fast::kNeedsCreds) return r == Measurer::Fast::kDone;
    auto creds = ReadCreds(base.pid);
    if (!creds.ok()) return false;
    SetCreds(base, *creds);
    have_creds = true;
    return measurer_->TryProcessCached(make(), facts, true) == Measurer::Fast::kDone;
  };
  if (p.is_exec_perm) {
    auto kind = kinds_.Get(base.key, facts);
    if (!kind) return false;
    p.this_exec->kind.store(*kind);
    if (!run([&] { return ExecStep(p, base); })) return false;
    p.exec_done = true;
  }
  if (p.is_open_perm) {
    if (!run([&] { return OpenStep(base); })) return false;
    p.open_done = true;
  }
  if (p.elf_candidate) {
    auto kind = p.access.counts.writers == 0 ? kinds_.Get(base.key, facts) : std::nullopt;
    if (!kind) return false;
    bool done = *kind == FileKindCache::kElf ? run([&] { return ElfStep(p, base); })
                                             : measurer_->TrySkip(base.key, p.elf_ticket);
    if (!done) return false;
    p.elf_done = true;
  }
  Answer(p, true);
  return true;
}

void FanotifyDaemon::CheckOrigin(Pending& p) {
  auto target = ResolveExecTarget(p.access.pid, p.access.pid, p.sc);
  if (!target || (options_.may_resolve && !options_.may_resolve(p.access.pid, *target))) return;
  struct stat st;
  if (::stat(target->open_path.c_str(), &st) != 0) return;
  if (static_cast<uint64_t>(st.st_dev) == p.access.key.dev && static_cast<uint64_t>(st.st_ino) == p.access.key.ino) {
    return;  // the interpreter run as the program (`ld.so /path/prog`)
  }
  p.interp_of_unmarked = true;
  options_.unmarked_exec(p.access.pid, *target, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

void FanotifyDaemon::DoPerm(Pending& p) {
  if (p.check_origin) CheckOrigin(p);
  Access base = p.access;
  base.path = FdPath(p.fd);
  if (base.path.empty()) {
    // Longer than PATH_MAX: the kernel records the file's own name (OpenedFileName).
    auto scr = ReadSyscall(base.pid);
    if (scr.ok()) base.path = OpenedFileName(*scr, base.pid);
  }
  auto creds = ReadCreds(base.pid);
  if (creds.ok()) SetCreds(base, *creds);
  auto run = [&](const Access& a) {
    if (p.backing) return measurer_->Skip(a.key, a.counts.ticket);  // the overlay file is measured
    Verdict v = measurer_->Process(a);
    if (!v.error.empty()) {
      stats_.measure_errors++;
      Log("measure " + a.path + ": " + v.error);
    }
    // Measured into its PCR and unchanged: a PROT_EXEC mmap would only hit the cache, so
    // pre-content events for this inode need no round trip until a removal (epoch).
    if (p.precontent_fs && v.error.empty() && (v.measured || v.cached || v.duplicate) && !a.direct_io &&
        a.counts.writers == 0) {
      AddIgnore(p.fd, a.key, p.ignore_epoch);
    }
  };
  if (p.pre_exec) {
    run(base);
    Answer(p, true);
    return;
  }
  // The file's kind, from its header (the tuple first, so a later change is a miss).
  auto facts = env_->Facts(p.fd);
  auto kind_of = [&] {
    int kind = IsScript(env_, p.fd) ? FileKindCache::kScript
               : ElfHasExecLoad(env_, p.fd) ? FileKindCache::kElf
                                            : FileKindCache::kOther;
    if (facts.ok() && p.access.counts.writers == 0) kinds_.Put(base.key, *facts, kind);
    return kind;
  };
  if (p.is_exec_perm && !p.exec_done) {
    p.this_exec->kind.store(kind_of());
    run(ExecStep(p, base));
  }
  if (p.is_open_perm && !p.open_done) run(OpenStep(base));
  if (p.elf_candidate && !p.elf_done) {
    if (kind_of() == FileKindCache::kElf) {
      run(ElfStep(p, base));
    } else {
      measurer_->Skip(base.key, p.elf_ticket);
    }
  }
  Answer(p, true);
}

void FanotifyDaemon::Answer(Pending& p, bool allow) {
  if (p.answered.exchange(true)) return;  // the watchdog answered already
  struct fanotify_response resp{p.fd, static_cast<__u32>(allow ? FAN_ALLOW : FAN_DENY)};
  if (::write(p.group, &resp, sizeof resp) != sizeof resp) {
    stats_.reply_errors++;
    Log(std::string("fanotify response rejected: ") + strerror(errno) + "; retrying plain");
    struct fanotify_response plain{p.fd, static_cast<__u32>(allow ? FAN_ALLOW : FAN_DENY)};
    (void)!::write(p.group, &plain, sizeof plain);
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
    {
      // No periodic wake-ups while no event waits for a worker (the reader's fast path
      // answers the rest at once).
      std::unique_lock<std::mutex> lk(inflight_mu_);
      inflight_cv_.wait(lk, [&] { return !inflight_.empty() || watchdog_stop_.load(); });
    }
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
                                     "path=" + FdPath(p->fd) + ";pid=" + std::to_string(p->access.pid) + ";", true);
      if (!s.ok()) Log("decision timeout gap entry failed: " + s.message());
      Answer(*p, true);
    }
  }
}

}  // namespace lim::daemon
