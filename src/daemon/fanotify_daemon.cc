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
#include "daemon/write_probe.h"

namespace lim::daemon {

namespace {

// No FAN_OPEN_EXEC_PERM: for an exec open the kernel raises FAN_OPEN_EXEC_PERM and then,
// once that is answered, FAN_OPEN_PERM of the same open (fsnotify_open_perm) — two round
// trips where one carries all there is to know. The OPEN_PERM alone is read as an exec open
// when its thread is blocked in execve/execveat/uselib (every open inside those is an exec
// open: do_open_execat, open_exec), and conservatively also when the thread's syscall cannot
// tell (MayBeExecOpen). docs/limd.md "One event per exec open".
constexpr uint64_t kMarkMask = FAN_OPEN_PERM | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE;

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
  // Mask 0: the device only, which fuse_getattr gives even to a caller it refuses.
  if (::statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC, 0, &sx) != 0) {
    return Status::IoError("stat " + path + ": " + strerror(errno));
  }
  return static_cast<uint64_t>(makedev(sx.stx_dev_major, sx.stx_dev_minor));
}

FanotifyDaemon::Pending::~Pending() {
  if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<FanotifyDaemon>> FanotifyDaemon::Create(const DaemonOptions& options, Measurer* measurer,
                                                               MeasurementList* list, Env* env,
                                                               std::function<void(const std::string&)> log) {
  for (const auto& w : options.watch) LIM_RETURN_IF_ERROR(CheckWatchRoot(w, options.allow_root_fs));
  LIM_ASSIGN_OR_RETURN(FanotifyGroups groups, OpenKernelGroups(options, log));
  return CreateWithGroups(options, std::move(groups), measurer, list, env, std::move(log));
}

Result<std::unique_ptr<FanotifyDaemon>> FanotifyDaemon::CreateWithGroups(const DaemonOptions& options,
                                                                         FanotifyGroups groups, Measurer* measurer,
                                                                         MeasurementList* list, Env* env,
                                                                         std::function<void(const std::string&)> log) {
  std::unique_ptr<FanotifyDaemon> d(new FanotifyDaemon(options, measurer, list, env, std::move(log)));
  LIM_RETURN_IF_ERROR(d->Init(std::move(groups)));
  return d;
}

Result<FanotifyGroups> FanotifyDaemon::OpenKernelGroups(const DaemonOptions& options,
                                                        const std::function<void(const std::string&)>& log) {
  auto say = [&log](const std::string& s) {
    if (log) log(s);
  };
  FanotifyGroups g;
  const unsigned flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
  const unsigned event_flags = O_RDONLY | O_LARGEFILE | O_CLOEXEC;
  Result<std::unique_ptr<FanotifyGroup>> content = Status::Unavailable("not opened");
  if (options.report_fd_error) {
    content = OpenFanotifyGroup(flags | FAN_REPORT_TID | FAN_REPORT_FD_ERROR, event_flags);
    if (!content.ok()) say(std::string("FAN_REPORT_FD_ERROR refused (") + strerror(errno) + ")");
  }
  if (!content.ok()) content = OpenFanotifyGroup(flags | FAN_REPORT_TID, event_flags);
  g.report_tid = content.ok();
  if (!content.ok() && errno == EINVAL) content = OpenFanotifyGroup(flags, event_flags);
  if (!content.ok()) return content.status();
  g.content = std::move(*content);
  if (!g.report_tid) say("FAN_REPORT_TID refused: /proc/<pid>/syscall of the main thread is used");
  if (options.precontent) {
    unsigned pflags = FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
    auto pre = OpenFanotifyGroup(pflags | (g.report_tid ? FAN_REPORT_TID : 0), event_flags);
    if (pre.ok()) {
      g.precontent = std::move(*pre);
    } else {
      say("no pre-content group (" + pre.status().message() + "): ELF-at-open");
    }
  }
  if (options.reader_close_group) {
    g.closes = ReaderCloseGroup::Create(g.report_tid);
    if (!g.closes) say(std::string("no reader-close group (fanotify_init: ") + strerror(errno) + "): closes inline");
  }
  return g;
}

Status FanotifyDaemon::Init(FanotifyGroups groups) {
  self_ = ::getpid();
  task_dir_ = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (task_dir_ < 0) return Status::Unavailable(std::string("open /proc/self/task: ") + strerror(errno));
  // A trusted peer's threads, known without a syscall per event (peer_threads.h).
  for (pid_t peer : options_.trusted_peers) {
    std::string mode;
    if (auto p = PeerThreads::Open(peer, &mode)) peers_.push_back(std::move(p));
    Log("TPM server pid " + std::to_string(peer) + " threads: " + mode);
  }
  if (!groups.content) return Status::InvalidArgument("no content group");
  group_ = std::move(groups.content);
  pre_ = std::move(groups.precontent);
  closes_ = std::move(groups.closes);
  report_tid_ = groups.report_tid;
  if (pre_) {
    ignores_ = std::make_unique<PrecontentIgnores>(pre_.get(), &stats_.ignores_added, &stats_.ignores_removed);
    // A policy written later that appraises PROT_EXEC mmaps: the marks added under one
    // that did not would skip those appraisals.
    measurer_->SetPublishHook([this] {
      if (measurer_->AppraisesMmap()) ignores_->Flush();
    });
  }
  // The program is loaded where the probe will use it, and always for --open-counts kernel:
  // a flag that cannot be honoured stops limd whether or not this kernel needs the probe.
  const bool probe = closes_ && report_tid_;  // open_count_probe.h
  if (options_.open_counts == DaemonOptions::OpenCounts::kKernel ||
      (probe && options_.open_counts == DaemonOptions::OpenCounts::kAuto)) {
    auto loaded = InodeOpenCounts::Load();
    if (loaded.ok()) {
      open_counts_ = std::move(*loaded);
    } else if (options_.open_counts == DaemonOptions::OpenCounts::kKernel) {
      return loaded.status().WithPrefix("--open-counts kernel");
    } else {
      Log(loaded.status().message() + "; files whose closes merged are checked with a write lease instead");
    }
  }
  if (probe) {
    probe_ = std::make_unique<OpenCountProbe>(measurer_, closes_.get(), env_, open_counts_.get(),
                                              [this](int fd, const InodeKey& key, const Measurer::CountsSnapshot& s) {
                                                if (s.writers > 0 && ignores_ && Dev(key.dev).precontent) ignores_->Remove(fd, key);
                                              });
  }
  // Workers and the watchdog exist before the first mark: from then on, events must flow.
  // A thread that cannot be had (RLIMIT_NPROC, memory) is an error, not std::terminate; the
  // destructor joins the ones already running.
  try {
    for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.push_back(StartOwnThread([this] { Worker(); }));
    watchdog_ = StartOwnThread([this] { Watchdog(); });
    if (probe_) probe_->Start();
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

Status FanotifyDaemon::MarkFilesystem(const std::string& w, const std::string& fstype, bool remeasure,
                                      uint64_t* placed, uint64_t* placed_sdev) {
  LIM_ASSIGN_OR_RETURN(uint64_t dev, DeviceOf(w));
  if (placed) *placed = dev;
  std::lock_guard<std::mutex> order(mark_order_mu_);
  if (closing_) return Status::Unavailable("limd is stopping: " + w + " not marked");
  {
    std::unique_lock<std::mutex> lk(marks_mu_);
    auto it = devs_.find(dev);
    if (it != devs_.end()) {
      lk.unlock();
      if (MarkedHere(dev, w).value_or(true)) return Status::Ok();
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
  if (pre_) {
    if (Status s = pre_->MarkFilesystem(w, FAN_PRE_ACCESS); s.ok()) {
      info.precontent = true;
      precontent_marks_++;
    } else {
      // tmpfs: EOPNOTSUPP (no FS_ALLOW_HSM); that filesystem keeps ELF-at-open.
      Log("no pre-content events on " + w + " (" + s.message() + "): MMAP_CHECK by ELF-at-open there");
    }
  }
  {
    std::lock_guard<std::mutex> lk(marks_mu_);
    devs_[dev] = info;
  }
  uint64_t mask = kMarkMask & ~static_cast<uint64_t>(info.reader_close_group ? FAN_CLOSE_NOWRITE : 0);
  auto before = group_->FdInfo();
  if (Status s = group_->MarkFilesystem(w, mask); !s.ok()) {
    return Status::Unavailable("fanotify_mark " + w + ": " + s.message());
  }
  marks_++;
  // The superblock's kernel device, from the mark it gained (RecordDevMarked, MarkedHere):
  // the same as st_dev, or not (btrfs: s_dev is none of its subvolumes' st_dev).
  auto after = group_->FdInfo();
  if (!before.ok() || !after.ok()) {
    std::lock_guard<std::mutex> lk(marks_mu_);
    sdevs_unknown_ = true;  // not learned: RecordDevMarked says no from now on
    return Status::Ok();
  }
  std::set<uint64_t> had = SuperblockDevsIn(*before), added;
  for (uint64_t s : SuperblockDevsIn(*after)) {
    if (!had.count(s)) added.insert(s);
  }
  uint64_t sdev = 0;  // unknown: MarkedHere looks for st_dev
  if (added.size() == 1) {
    sdev = *added.begin();
  } else if (added.empty()) {
    // The superblock was marked already (another subvolume of a marked btrfs, another
    // mount of it): listed under st_dev, or asked of a group of its own.
    if (SuperblockDevsIn(*after).count(dev)) {
      sdev = dev;
    } else if (auto k = KernelDevAt(w)) {
      sdev = *k;
    } else {
      Log("the kernel device of " + w + " is unknown: its mark is checked under its st_dev");
    }
  }
  std::lock_guard<std::mutex> lk(marks_mu_);
  for (uint64_t s : added) {
    if (s == dev) foreign_sdevs_.erase(s); else foreign_sdevs_.insert(s);
    // No mark was on s before this one: every other entry that named s as its superblock
    // names a gone one (its number taken by this superblock).
    for (auto& [d, i] : devs_) {
      if (d != dev && (i.sdev == s || (i.sdev == 0 && d == s))) i.sdev = kGoneSdev;
    }
  }
  if (sdev != 0 && sdev != dev) foreign_sdevs_.insert(sdev);
  devs_[dev].sdev = sdev;
  if (placed_sdev && added.size() == 1 && sdev != dev) *placed_sdev = sdev;
  return Status::Ok();
}

bool FanotifyDaemon::RecordDevMarked(uint64_t dev) {
  {
    std::lock_guard<std::mutex> lk(marks_mu_);
    if (sdevs_unknown_) return false;
    // A kernel device this group learned at a mark: a btrfs's (foreign_sdevs_), or a plain
    // superblock's own st_dev.
    auto it = devs_.find(dev);
    bool plain = it != devs_.end() && (it->second.sdev == dev || it->second.sdev == 0);
    if (!plain && !foreign_sdevs_.count(dev)) return false;
  }
  return GroupListsMark(dev).value_or(false);  // unreadable: it cannot vouch
}

std::optional<uint64_t> FanotifyDaemon::KernelDevAt(const std::string& path) {
  // A mount's superblock never changes, and unique mount ids are never reused: one lookup
  // per mount (the mount watcher asks at every mount-table change).
  uint64_t mount = 0;
  bool unique = UniqueMountId(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, &mount);
  if (unique) {
    std::lock_guard<std::mutex> lk(kernel_devs_mu_);
    if (auto it = kernel_devs_.find(mount); it != kernel_devs_.end()) return it->second;
  }
  auto k = SuperblockDevOf(path);
  if (!k.ok()) return std::nullopt;  // cannot tell
  if (unique) {
    std::lock_guard<std::mutex> lk(kernel_devs_mu_);
    if (kernel_devs_.size() >= 4096) kernel_devs_.clear();
    kernel_devs_[mount] = *k;
  }
  return *k;
}

uint64_t FanotifyDaemon::ForeignSdevOf(uint64_t dev) {
  std::lock_guard<std::mutex> lk(marks_mu_);
  auto it = devs_.find(dev);
  if (it == devs_.end() || it->second.sdev == 0 || it->second.sdev == dev || it->second.sdev == kGoneSdev) return 0;
  return it->second.sdev;
}

std::optional<bool> FanotifyDaemon::GroupListsMark(uint64_t dev) {
  auto text = group_->FdInfo();
  if (!text.ok()) return std::nullopt;
  return text->find(SuperblockMarkLine(dev)) != std::string::npos;
}

std::optional<bool> FanotifyDaemon::MarkedHere(uint64_t dev, const std::string& path) {
  uint64_t sdev;
  {
    std::lock_guard<std::mutex> lk(marks_mu_);
    auto it = devs_.find(dev);
    if (it == devs_.end()) {
      // A btrfs's own device, learned at one of its marks (exec records and their mark
      // time name it): the fdinfo answers.
      if (!foreign_sdevs_.count(dev)) return std::nullopt;
      sdev = dev;
    } else {
      sdev = it->second.sdev != 0 ? it->second.sdev : dev;
      if (sdev == kGoneSdev) return false;  // a later mark showed its superblock gone
      // A stale entry whose number is now a btrfs's own device.
      if (sdev == dev && foreign_sdevs_.count(dev)) return false;
    }
  }
  if (sdev != dev) {
    // A btrfs subvolume's st_dev: the btrfs's own mark says nothing of it — the number,
    // freed by a subvolume's deletion while the btrfs stays mounted, may be another
    // superblock's now. Only the superblock under the path can tell; without a path, no
    // (exec records name the btrfs by its own device, which is asked instead).
    if (path.empty()) return false;
    if (auto now = KernelDevAt(path); now && *now != sdev) return false;
  }
  return GroupListsMark(sdev).value_or(true);  // unreadable: cannot tell, keep what limd believes
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
    if (Own(tid)) {  // limd's own opens were never counted
      if (probe_) probe_->OwnClose(key, tid);
      return;
    }
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
  closes_->Prune(ReaderCloseGroup::kMaxKnown,
                 [this](const InodeKey& key) { return measurer_->Readers(key) > 0 || measurer_->Writers(key) > 0; });
}

FanotifyDaemon::~FanotifyDaemon() {
  if (ignores_) measurer_->SetPublishHook(nullptr);  // the Measurer outlives this daemon
  probe_.reset();  // while workers still serve the turns its last-writer closes wait for
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
  ignores_.reset();
  group_.reset();
  pre_.reset();
  if (task_dir_ >= 0) ::close(task_dir_);
}

void FanotifyDaemon::Enqueue(Job j) {
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    queue_.push_back(std::move(j));
  }
  q_cv_.notify_one();
}

void FanotifyDaemon::EnqueuePerm(std::shared_ptr<Pending> p) {
  {
    std::lock_guard<std::mutex> lk(inflight_mu_);
    if (inflight_.empty()) inflight_cv_.notify_one();  // the watchdog sleeps while none wait
    inflight_.push_back(p);
  }
  Job j;
  j.perm = std::move(p);
  Enqueue(std::move(j));
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
  pollfd pfd[2] = {{group_->poll_fd(), POLLIN, 0}, {pre_ ? pre_->poll_fd() : -1, POLLIN, 0}};
  int r = ::poll(pfd, pre_ ? 2 : 1, timeout_ms);
  if (r < 0) {
    if (errno == EINTR) return true;  // a signal: not "quiet", the caller looks again
    return Status::IoError(std::string("poll: ") + strerror(errno));
  }
  if (r == 0) {
    DrainReaderCloses();  // quiet: the queued closes, in one read
    return false;
  }
  // The content group first: its opens and closes set the counts pre-content events see.
  if (pfd[0].revents & POLLIN) LIM_RETURN_IF_ERROR(ReadEvents(group_.get()));
  if (pre_ && (pfd[1].revents & POLLIN)) LIM_RETURN_IF_ERROR(ReadEvents(pre_.get()));
  if (closes_ && std::chrono::steady_clock::now() - last_drain_ > kDrainInterval) DrainReaderCloses();
  return true;
}

Status FanotifyDaemon::FlushMarksAndDrain() {
  {
    std::lock_guard<std::mutex> lk(mark_order_mu_);
    closing_ = true;
    if (closes_) closes_->FlushMarks();
    for (FanotifyGroup* g : {group_.get(), pre_.get()}) {
      if (!g) continue;
      if (Status s = g->FlushFilesystemMarks(); !s.ok()) Log("flushing fanotify marks: " + s.message());
    }
  }
  // No mark is left, so the queues only hold what was queued before the flush (an access
  // already past its fsnotify hook may still land): read until both stay quiet for 50 ms.
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool any, ReadReady(50));
    if (!any) return Status::Ok();  // the quiet poll also read the last reader closes
  }
}

Status FanotifyDaemon::ReadEvents(FanotifyGroup* group) {
  static thread_local std::vector<FanotifyEvent> events;  // the reader's, reused
  events.clear();
  Status read = group->Read(&events);
  for (const FanotifyEvent& e : events) {
    if (e.fd < 0 && (e.mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS))) {
      HandleFdError(e.fd, e.mask, e.pid);
    } else if (group == pre_.get() && (e.mask & FAN_PRE_ACCESS) && e.fd != FAN_NOFD) {
      HandlePreContent(e.fd, e.pid);
    } else {
      HandleEvent(e);
    }
  }
  return read;
}

bool FanotifyDaemon::Own(pid_t pid) const {
  if (pid == self_) return true;
  // Every thread limd starts registers itself (base/own_threads.h): no /proc lookup per
  // event. Only if a registration ever failed is the kernel asked.
  if (report_tid_ && OwnThreads::Contains(pid)) return true;
  char name[16];
  std::snprintf(name, sizeof name, "%d", static_cast<int>(pid));
  if (report_tid_ && !OwnThreads::Complete() && ::faccessat(task_dir_, name, F_OK, 0) == 0) {
    return true;  // one lookup in /proc/self/task
  }
  // A trusted peer (the TPM server): its main thread, or (FAN_REPORT_TID) any of its threads.
  // Everyone else's events cost no syscall here (peer_threads.h); a "yes" is confirmed in
  // the peer's task directory, so a recycled pid is never taken for the peer.
  for (const auto& peer : peers_) {
    if (report_tid_ ? peer->Contains(pid) : (pid == peer->pid() && peer->Contains(pid))) return true;
  }
  return false;
}

Result<SyscallState> FanotifyDaemon::ReadEventSyscall(pid_t pid) {
  if (options_.read_syscall) return options_.read_syscall(pid);
  return ReadBlockedSyscall(syscalls_, pid);
}

void FanotifyDaemon::AllowNow(FanotifyGroup* group, int fd, bool perm) {
  if (perm) {
    if (!group->Respond(fd, FAN_ALLOW)) stats_.reply_errors++;
    stats_.answered++;
  }
  ::close(fd);
}

void FanotifyDaemon::HandleFdError(int error, uint64_t mask, pid_t pid) {
  // The kernel finished the event with FAN_DENY before it reached limd (fanotify_read: a
  // permission event without an fd is denied); there is nothing to answer.
  stats_.events++;
  if (stats_.fd_errors++ == 0) {
    // Every later access would be denied the same way: unmark this group's filesystems.
    std::lock_guard<std::mutex> lk(mark_order_mu_);
    unmarked_after_denial_.store(true);  // before the marks go: MarkedHere's "gone" would be wrong
    if (group_->FlushFilesystemMarks().ok()) marks_ = 0;
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
  // Only mmap(PROT_EXEC) is a measurement point; read(), write(), a PROT_READ mmap and
  // execve's own reads and mappings (the exec opens decide those) pass at once — also
  // limd's own, so the pid test is left to the rare exec mapping.
  auto scr = ReadEventSyscall(pid);
  if (!scr.ok() || !scr->blocked || scr->nr != kSysMmap || !(scr->args[2] & PROT_EXEC)) {
    stats_.precontent_quick++;
    AllowNow(pre_.get(), fd, true);
    return;
  }
  if (Own(pid)) {  // e.g. a lazy dlopen inside limd: never waited on (invariant 4)
    stats_.own_events++;
    AllowNow(pre_.get(), fd, true);
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    AllowNow(pre_.get(), fd, true);
    return;
  }
  stats_.perm_events++;
  InodeKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  auto p = std::make_shared<Pending>();
  p->fd = fd;
  p->group = pre_.get();
  p->mask = FAN_PRE_ACCESS;
  p->start = std::chrono::steady_clock::now();
  p->steps = kPreExecStep;
  p->precontent_fs = true;
  p->ignore_epoch = ignores_->Epoch(key);
  Access& a = p->access;
  a.fd = fd;
  a.pid = pid;
  a.key = key;
  a.path = FdPath(fd);
  a.func = ima::ImaHook::kMmapCheck;
  a.mask = ima::may::kExec;
  a.answerable = true;
  a.fsname = Dev(key.dev).fsname;
  a.counts = measurer_->NoteOpen(key, false, false);  // counts now, and this step's turn
  EnqueuePerm(std::move(p));
}

void FanotifyDaemon::HandleEvent(const FanotifyEvent& e) {
  stats_.events++;
  bool perm = e.mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM);
  if (e.fd == FAN_NOFD) {
    if (e.mask & FAN_Q_OVERFLOW) {
      stats_.overflows++;
      Job j;
      j.overflow = true;
      Enqueue(std::move(j));
    }
    return;
  }
  // limd's own accesses and the TPM server's: answered at once, never measured or waited
  // on (invariant 4).
  if (Own(e.pid)) {
    stats_.own_events++;
    AllowNow(group_.get(), e.fd, perm);
    return;
  }
  if (perm) {
    HandleOpenPerm(e.fd, e.mask, e.pid);
  } else {
    HandleClose(e.fd, e.mask);
  }
}

void FanotifyDaemon::HandleClose(int fd, uint64_t mask) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  InodeKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  CloseNote note = measurer_->NoteClose(key, mask & FAN_CLOSE_WRITE);
  // Writers left after a writer's close (or a merged close): the handle an open-count
  // probe needs (open_count_probe.h). Rare, so learned here, not at every write-open.
  if (probe_ && (mask & FAN_CLOSE_WRITE) && !note.last_writer) closes_->Learn(fd, key, 0);
  // The last writer is gone: the change tuple decides anew, pre-content must see the inode.
  if (note.last_writer && Dev(key.dev).precontent) ignores_->Remove(fd, key);
  if (measurer_->TryApplyClose(key, note, fd)) {  // its turn: no worker hop
    ::close(fd);
    return;
  }
  Job j;
  j.close_fd = fd;
  j.key = key;
  j.note = note;
  Enqueue(std::move(j));
}

void FanotifyDaemon::HandleOpenPerm(int fd, uint64_t mask, pid_t pid) {
  // The event's facts (one fstat; the superblock's are cached) serve the key, the type and
  // the fast path's change tuple.
  auto r = env_->FactsForCacheCheck(fd);
  stats_.perm_events++;
  auto p = std::make_shared<Pending>();
  p->fd = fd;
  p->group = group_.get();
  p->mask = mask;
  p->start = std::chrono::steady_clock::now();
  if (!r.ok() || !r->regular) {  // directories, devices: IMA looks at regular files only
    Answer(*p, true);
    return;
  }
  const FileFacts& facts = *r;
  InodeKey key{facts.dev, facts.ino};
  SyscallState sc;
  Result<SyscallState> scr = Status::Unavailable("not read");
  // An OPEN_PERM that follows an OPEN_EXEC_PERM of the same open (a group that marks both,
  // as limd did before: kMarkMask) is that exec open's FILE_CHECK only.
  bool following = false;
  if ((mask & FAN_OPEN_PERM) && !(mask & FAN_OPEN_EXEC_PERM) && execs_.FollowingOpen(pid, key, p->start, &sc)) {
    stats_.exec_open_reuses++;  // the OPEN_PERM right after an OPEN_EXEC_PERM of the same open
    scr = sc;
    following = true;
  } else {
    scr = ReadEventSyscall(pid);
    if (scr.ok()) sc = *scr;
  }
  DevInfo dev = Dev(key.dev);
  p->precontent_fs = dev.precontent;
  p->ignore_epoch = p->precontent_fs ? ignores_->Epoch(key) : 0;
  OpenIntent intent = IntentOf(sc, pid);
  Access& a = p->access;
  a.fd = fd;
  a.pid = pid;
  a.key = key;  // a.path: FdPath() only when a worker needs it (entries, logs)
  a.answerable = true;
  a.fsname = std::move(dev.fsname);
  a.remeasure = dev.remeasure;
  if (options_.overlay_opens) {  // overlay backing files (side_group.h)
    const std::string& line = sc.blocked ? sc.line : std::string();
    p->backing = options_.overlay_opens->IsBackingOpen(fd, pid, line);
    if (p->backing) stats_.backing_events++;
    if (options_.overlay_group && !p->backing) options_.overlay_opens->Note(pid, line);
  }
  // No flags from the syscall: the kernel says whether anyone holds the inode open for
  // write (write_probe.h; NoteOpen and the exec decision both use it).
  OpenForWrite unknown_ow = OpenForWrite::kUnknown;
  if ((mask & FAN_OPEN_PERM) && !intent.known) unknown_ow = ProbeOpenForWrite(fd);
  // The exec step: an OPEN_EXEC_PERM, or (kMarkMask) the one OPEN_PERM of an exec open.
  bool exec_open = mask & FAN_OPEN_EXEC_PERM;
  if (!exec_open && (mask & FAN_OPEN_PERM) && !following) {
    exec_open = intent.exec;
    // An open for write cannot be an exec that runs: the kernel refuses to exec a file open
    // for write (ETXTBSY) before BPRM_CHECK.
    if (!intent.known && unknown_ow != OpenForWrite::kYes && MayBeExecOpen(scr, pid)) {
      // No syscall that says which open this is (a thread the kernel made, an unreadable
      // /proc): an exec open cannot be ruled out, so BPRM_CHECK is decided too — at worst an
      // entry the kernel would not have made, never an exec without one.
      exec_open = true;
      if (stats_.exec_unsure++ < 5) {
        Log("open of " + FdPath(fd) + " by tid " + std::to_string(pid) + ": syscall unknown (" +
            (scr.ok() ? "\"" + sc.line + "\"" : scr.status().message()) + "): decided as an exec open too");
      }
    }
  }
  if (exec_open) {
    NoteExecOpen(*p, sc, /*open_follows=*/!(mask & FAN_OPEN_PERM));
  } else if (!intent.exec) {
    execs_.OnOtherOpen(pid);
  }
  if (mask & FAN_OPEN_PERM) NoteOpen(*p, intent, unknown_ow, sc, scr, dev.reader_close_group, facts.ctime_ns);
  if (TryFastPath(*p, facts)) return;
  EnqueuePerm(std::move(p));
}

void FanotifyDaemon::NoteExecOpen(Pending& p, const SyscallState& sc, bool open_follows) {
  const InodeKey& key = p.access.key;
  p.steps |= kExecStep;
  p.exec = execs_.OnExecOpen(p.access.pid, sc, key, p.start, open_follows);
  if (p.exec.prev) {
    // The open after an ELF binary's in one execve: its interpreter.
    if (options_.unmarked_exec && p.exec.prev->kind.load() == FileKindCache::kElf) interps_.Learn(key.dev, key.ino);
  } else if (sc.blocked && options_.unmarked_exec && interps_.Contains(key.dev, key.ino)) {
    p.origin = Origin::kCheck;  // an interpreter opened first: ld.so itself, or the binary is unmarked
    p.sc = sc;
  }
  // Tickets: one per measurer step, taken here in event order.
  p.exec_ticket = measurer_->NoteOpen(key, false, false).ticket;
}

void FanotifyDaemon::NoteOpen(Pending& p, const OpenIntent& intent, OpenForWrite ow, const SyscallState& sc,
                              const Result<SyscallState>& scr, bool reader_close_group, int64_t ctime_ns) {
  Access& a = p.access;
  const InodeKey& key = a.key;
  p.steps |= kOpenStep;
  bool write = false, ro = false;
  if (intent.known) {
    write = OpensForWrite(intent.flags);
    ro = OpensReadOnly(intent.flags);
    a.mask = intent.exec ? ima::may::kExec : FileCheckMask(intent.flags);
    a.open_for_write = write;
    a.direct_io = intent.flags & O_DIRECT;
    a.created = (intent.flags & O_CREAT) || (intent.flags & O_TMPFILE) == O_TMPFILE;
  } else {
    // io_uring (the submitter in io_uring_enter, an io-wq worker), a running thread, an
    // unreadable /proc: no flags. The kernel says whether anyone holds the inode open for
    // write, this opener included (write_probe.h): nobody — a read-only open; somebody
    // while limd counts no writer — this opener, a write-open (O_WRONLY or O_RDWR: taken
    // as MAY_READ|MAY_WRITE, and as possibly creating the file). Otherwise (a counted
    // writer too, or no leases here) it stays a read, uncounted (docs/appraisal.md).
    std::string as = "measured as a read";
    a.mask = ima::may::kRead;
    if (ow == OpenForWrite::kNo) {
      ro = true;
      stats_.unknown_syscall_reads++;
      as = "no writer: a read-only open";
    } else if (ow == OpenForWrite::kYes && measurer_->Writers(key) == 0) {
      write = true;
      a.open_for_write = true;
      a.mask = ima::may::kRead | ima::may::kWrite;
      a.created = true;
      stats_.unknown_syscall_writes++;
      as = "open for write: a write-open";
    }
    if (stats_.unknown_syscall++ < 5) {
      Log("open of " + FdPath(p.fd) + " by tid " + std::to_string(a.pid) + ": syscall unknown (" +
          (scr.ok() ? "\"" + sc.line + "\"" : scr.status().message()) + "): " + as);
    }
  }
  // A write-open looks at reader counts (ToMToU, the pre-content shortcut below): every
  // reader close that happened before it is queued by now. A reader's open of an inode
  // with a close still queued reads them too: fanotify merges identical queued events
  // (same thread, same file), and two closes merged into one would leave the count high.
  if (reader_close_group && (write || (ro && measurer_->Readers(key) > 0))) DrainReaderCloses();
  OpenCounts counts = measurer_->NoteOpen(key, write, ro);
  p.noted_write = write;
  p.noted_ro = ro;
  if (ro && reader_close_group) closes_->Learn(p.fd, key, ctime_ns);
  if (p.precontent_fs) {
    // A write-only opener of an inode nobody else has open: its writes need no round
    // trip. Any other opener while a writer exists may map it PROT_EXEC: pre-content
    // must see it again (design.md).
    bool write_only = intent.known && (intent.flags & O_ACCMODE) == O_WRONLY;
    if (write_only && counts.readers == 0 && counts.writers == 0) {
      ignores_->Add(p.fd, key, p.ignore_epoch);
    } else if (!write_only && counts.writers > 0) {
      ignores_->Remove(p.fd, key);
      p.ignore_epoch = ignores_->Epoch(key);
    }
  }
  // MMAP_CHECK by ELF-at-open (no pre-content events here): read-only opens, and while
  // appraising also O_RDWR ones without O_TRUNC — any fd that can be mapped PROT_EXEC with
  // the content it opened (docs/appraisal.md).
  bool rdwr_keeps = intent.known && (intent.flags & O_ACCMODE) == O_RDWR && !(intent.flags & O_TRUNC);
  if (options_.elf_at_open && !p.precontent_fs && !intent.exec && (ro || (rdwr_keeps && measurer_->Appraising()))) {
    p.steps |= kElfStep;
    p.elf_ticket = measurer_->NoteOpen(key, false, false).ticket;
  }
  a.counts = counts;
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
      OnOverflow();
    } else if (!j.open_failed.empty()) {
      // The kernel could not open the file for limd and denied the access: a visible gap.
      Status s = list_->AppendBuffer("lim-open-failed", j.open_failed, true);
      if (!s.ok()) Log("open-failed gap entry failed: " + s.message());
    } else if (j.perm) {
      DoPerm(*j.perm);
    } else {
      auto facts = env_->Facts(j.close_fd);
      FileFacts f = facts.ok() ? *facts : FileFacts{};
      measurer_->ApplyClose(j.key, j.note, f, j.close_fd);
      ::close(j.close_fd);
    }
  }
}

void FanotifyDaemon::OnOverflow() {
  // The kernel allowed events limd never saw: a visible gap, and no stale verdicts.
  measurer_->Flush();
  if (ignores_) ignores_->Flush();  // no verdict is left: neither is any ignore mark
  Status s = list_->AppendBuffer("lim-event-overflow", "reason=fanotify_queue_overflow;", true);
  Log("fanotify queue overflow: caches flushed" + (s.ok() ? std::string() : ", gap entry failed: " + s.message()));
}

Access FanotifyDaemon::ExecStep(const Pending& p, const Access& base) {
  Access a = base;
  a.mask = ima::may::kExec;
  a.open_for_write = false;
  // The first exec open of an execve is BPRM_CHECK, as is a #! interpreter; the ELF
  // interpreter that follows an ELF binary is the kernel's MMAP_CHECK.
  a.func = p.origin == Origin::kInterpOfUnmarked || (p.exec.prev && p.exec.prev->kind.load() == FileKindCache::kElf)
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
  // Measured as MMAP_CHECK at a read-open, and appraised there: without pre-content events
  // the mapping itself is never seen, so a failure under enforce denies the open — a
  // bad library cannot be mapped, and a bad ELF file cannot be read either (the kernel
  // would refuse only the mapping; docs/appraisal.md "Not as the kernel").
  a.counts = OpenCounts{0, 0, p.elf_ticket};
  return a;
}

bool FanotifyDaemon::TryFastPath(Pending& p, const FileFacts& facts) {
  if (p.origin != Origin::kNone) return false;  // /proc reads and maybe a hash: a worker's
  Access base = p.access;
  bool have_creds = false;
  // One step, built from base by make(). Credentials are read only when a rule for the
  // step looks at them and the cached outcome depends on them (/proc/<tid>/status is the
  // costliest read of the event).
  auto run = [&](auto make) {
    if (p.backing) return measurer_->TrySkip(base.key, make().counts.ticket);  // the overlay file is measured
    Verdict v;
    auto r = measurer_->TryProcessCached(make(), facts, have_creds, &v);
    if (r == Measurer::Fast::kNeedsCreds) {
      auto creds = ReadCreds(base.pid);
      if (!creds.ok()) return false;
      SetCreds(base, *creds);
      have_creds = true;
      r = measurer_->TryProcessCached(make(), facts, true, &v);
    }
    if (r == Measurer::Fast::kDone && !v.allow) p.denied = true;  // a cached failed appraisal (enforce)
    return r == Measurer::Fast::kDone;
  };
  if (p.steps & kExecStep) {
    auto kind = kinds_.Get(base.key, facts);
    if (!kind) return false;
    p.exec.self->kind.store(*kind);
    if (!run([&] { return ExecStep(p, base); })) return false;
    p.done |= kExecStep;
  }
  if (p.steps & kOpenStep) {
    if (!run([&] { return OpenStep(base); })) return false;
    p.done |= kOpenStep;
  }
  if (p.steps & kElfStep) {
    auto kind = p.access.counts.writers == 0 ? kinds_.Get(base.key, facts) : std::nullopt;
    if (!kind) return false;
    bool done = *kind == FileKindCache::kElf ? run([&] { return ElfStep(p, base); })
                                             : measurer_->TrySkip(base.key, p.elf_ticket);
    if (!done) return false;
    p.done |= kElfStep;
  }
  Answer(p, !p.denied);
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
  p.origin = Origin::kInterpOfUnmarked;
  options_.unmarked_exec(p.access.pid, *target, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

void FanotifyDaemon::DoPerm(Pending& p) {
  if (p.origin == Origin::kCheck) CheckOrigin(p);
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
    if (!v.status.ok()) {
      stats_.measure_errors++;
      Log("measure " + a.path + ": " + v.status.message());
    }
    if (!v.allow) p.denied = true;  // enforce: a failed appraisal, or a write-open of a signed file
    // Measured into its PCR and unchanged: a PROT_EXEC mmap would only hit the cache, so
    // pre-content events for this inode need no round trip until a removal (epoch).
    // Not when an appraise rule may match a PROT_EXEC mmap: it may need an appraisal
    // (another rule, another requirement) that this step's verdict does not stand for (a
    // policy that starts to is published before it flushes the marks, which bumps every
    // epoch: a mark decided under the old one is not added). Never for a denied access.
    if (p.precontent_fs && v.status.ok() && v.allow && (v.measured || v.cached || v.duplicate) && !a.direct_io &&
        a.counts.writers == 0 && !measurer_->AppraisesMmap()) {
      ignores_->Add(p.fd, a.key, p.ignore_epoch);
    }
  };
  if (p.steps & kPreExecStep) {
    run(base);
    Answer(p, !p.denied);
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
  if (p.Needs(kExecStep)) {
    p.exec.self->kind.store(kind_of());
    run(ExecStep(p, base));
  }
  if (p.Needs(kOpenStep)) run(OpenStep(base));
  if (p.Needs(kElfStep)) {
    if (kind_of() == FileKindCache::kElf) {
      run(ElfStep(p, base));
    } else {
      measurer_->Skip(base.key, p.elf_ticket);
    }
  }
  Answer(p, !p.denied);
}

void FanotifyDaemon::Answer(Pending& p, bool allow) {
  if (p.answered.exchange(true)) return;  // the watchdog answered already
  // Plain FAN_DENY (the opener sees EPERM): never FAN_DENY_ERRNO(EACCES), which the kernel
  // refuses for this group, leaving the opener blocked.
  uint32_t response = allow ? FAN_ALLOW : FAN_DENY;
  if (!allow) {
    stats_.denied++;
    // A denied open never reaches the kernel's counts and has no close.
    if (p.steps & kOpenStep) measurer_->UndoOpen(p.access.key, p.noted_write, p.noted_ro);
    if (p.noted_write && p.precontent_fs) ignores_->Remove(p.fd, p.access.key);
  }
  if (!p.group->Respond(p.fd, response)) {
    stats_.reply_errors++;
    Log(std::string("fanotify response rejected: ") + strerror(errno) + "; retrying plain");
    (void)p.group->Respond(p.fd, response);
  }
  stats_.answered++;
  stats_.latency.Add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.start).count()));
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
      // Enforce with appraise rules: an access not yet appraised is not allowed.
      Answer(*p, !measurer_->AppraisalEnforced());
    }
  }
}

}  // namespace lim::daemon
