#include "daemon/late_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "base/mountinfo.h"
#include "daemon/mount_watch.h"
#include "daemon/proc_context.h"
#include "daemon/process_exe.h"
#include "daemon/startup_scan.h"

namespace lim::daemon {

uint64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void MarkedDevs::Add(uint64_t dev, uint64_t at_ns) {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t& at = at_[dev];  // a later mark is a new superblock under a reused number
  if (at == kNotYet) not_yet_--;  // a new entry starts at 0, never kNotYet
  if (at_ns == kNotYet) not_yet_++;
  at = at_ns;
  generation_++;
  if (observer_) observer_(dev, at_ns != kNotYet);
}

void MarkedDevs::Forget(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = at_.find(dev); it != at_.end()) {
    if (it->second == kNotYet) not_yet_--;
    at_.erase(it);
  }
  generation_++;
  if (observer_) observer_(dev, false);
}

void MarkedDevs::BeginMark() {
  std::lock_guard<std::mutex> lk(mu_);
  marking_++;
  generation_++;
}

void MarkedDevs::EndMark() {
  std::lock_guard<std::mutex> lk(mu_);
  if (marking_ > 0) marking_--;
  generation_++;
}

std::optional<uint64_t> MarkedDevs::Quiet() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (marking_ > 0 || not_yet_ > 0) return std::nullopt;
  return generation_;
}

void MarkedDevs::Observe(std::function<void(uint64_t dev, bool marked)> observer) {
  std::lock_guard<std::mutex> lk(mu_);
  observer_ = std::move(observer);
  if (!observer_) return;
  for (const auto& [dev, at] : at_) observer_(dev, at != kNotYet);
}

std::optional<uint64_t> MarkedDevs::MarkedAt(uint64_t dev) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = at_.find(dev);
  if (it == at_.end()) return std::nullopt;
  return it->second;
}

// ';' and '\n' would end a field of the buffer: escaped as the kernel's d_path does spaces.
std::string LateExecField(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ';' || c == '\n' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

// The BPRM_CHECK step of pid's exec of the file open at fd (its path as the process
// named it), with pid's credentials.
Access ExecAccess(int fd, pid_t pid, const std::string& path, const std::string& fstype, InodeKey key) {
  Access a = ProcessAccess(fd, pid, ima::ImaHook::kBprmCheck, ima::may::kExec, path);
  a.fsname = fstype;
  a.key = key;
  return a;
}

}  // namespace

std::string LateExecBuffer(const std::string& digest, const std::string& path, pid_t pid, uint64_t dev, uint64_t ino,
                           uint64_t delay_us, const std::string& error, const std::string& extra) {
  std::string b;
  if (!digest.empty()) b += "digest=" + digest + ";";
  b += "path=" + LateExecField(path) + ";pid=" + std::to_string(pid) + ";";
  if (dev || ino) {
    b += "dev=" + std::to_string(major(static_cast<dev_t>(dev))) + ":" + std::to_string(minor(static_cast<dev_t>(dev))) +
         ";ino=" + std::to_string(ino) + ";";
  }
  b += extra;
  b += "delay_us=" + std::to_string(delay_us) + ";";
  if (!error.empty()) b += "error=" + LateExecField(error) + ";";
  return b;
}

LateExecs::~LateExecs() {
  for (const auto& u : undecided_) ::close(u.pfd);
}

bool LateExecs::MayResolve(pid_t tid, const ExecTarget& target) const {
  if (!hooks_.may_read) return true;
  auto mountinfo = ReadFileText("/proc/" + std::to_string(tid) + "/mountinfo");
  if (!mountinfo.ok() || target.path.empty() || target.path[0] != '/') return false;
  return hooks_.may_read(FsTypeAt(*mountinfo, target.path));
}

void LateExecs::MeasureBeforeRun(pid_t tid, const ExecTarget& target, uint64_t dev, uint64_t ino) {
  if (hooks_.never_marked && hooks_.never_marked(dev)) return;
  std::string proc = "/proc/" + std::to_string(tid);
  auto mountinfo = ReadFileText(proc + "/mountinfo");
  std::string fstype;
  if (!mountinfo.ok() || !hooks_.qualifies || !hooks_.qualifies(*mountinfo, tid, dev, &fstype)) return;
  if (hooks_.poke) hooks_.poke(tid);
  if (hooks_.may_read && !hooks_.may_read(fstype)) return;  // OnExec() records the gap
  int fd = ::open(target.open_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // OnExec() measures it late
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_dev) != dev || static_cast<uint64_t>(st.st_ino) != ino) {
    ::close(fd);  // replaced since: OnExec() measures what runs
    return;
  }
  Access a = ExecAccess(fd, tid, target.path, fstype, {dev, ino});
  Verdict v = measurer_->Process(a);
  ::close(fd);
  if (!v.status.ok()) {
    if (hooks_.log) hooks_.log("measure " + target.path + " before it runs: " + v.status.message());
    return;  // OnExec() tries again, late
  }
  {
    std::lock_guard<std::mutex> lk(pre_mu_);
    if (pre_.size() > 4096) pre_.clear();
    pre_[tid] = {dev, ino, MonotonicNs()};
  }
  before_run_++;
  if (hooks_.log) {
    hooks_.log("exec of " + target.path + " (tid " + std::to_string(tid) + ", " + fstype +
               " not marked yet) measured before it ran, at its interpreter's exec-open");
  }
}

void LateExecs::OnExecEnter(pid_t tid, uint64_t time_ns) {
  if (enter_.size() > 65536) enter_.clear();  // tids whose exec failed never complete
  auto& v = enter_[tid];
  if (v.size() >= 8) v.erase(v.begin());
  v.push_back(time_ns);
}

std::optional<uint64_t> LateExecs::ExecBegan(pid_t old_pid, pid_t pid, uint64_t time_ns) {
  // Several execs of one tid can be in one pass (setpriv → unshare → sh → the program),
  // decided out of order, and a failed execve leaves a start of its own (execvp tries each
  // PATH entry). This exec began after the process's previous exec completed: the latest
  // start in between is its own; starts before that completion are failed ones (at most 8
  // are kept per tid).
  uint64_t after = 0;
  if (auto d = done_.find(pid); d != done_.end()) {
    for (uint64_t c : d->second) {
      if (c < time_ns && c > after) after = c;
    }
  }
  auto it = enter_.find(old_pid);
  if (it == enter_.end()) return std::nullopt;
  auto& v = it->second;
  std::optional<uint64_t> began;
  for (uint64_t t : v) {
    if (t > after && t <= time_ns && (!began || t > *began)) began = t;
  }
  // Only this start is taken: an earlier exec of the process may still be decided later.
  if (began) v.erase(std::find(v.begin(), v.end(), *began));
  if (v.empty()) enter_.erase(it);
  return began;
}

void LateExecs::NoteDone(pid_t pid, uint64_t time_ns) {
  if (done_.size() > 65536) done_.clear();
  auto& v = done_[pid];
  if (v.size() >= 8) v.erase(v.begin());
  v.push_back(time_ns);
}

bool MemfdPathTakes(std::string_view filename) {
  return filename.rfind("/dev/fd/", 0) == 0 || filename.rfind("/proc/", 0) == 0;
}

bool LateExecs::RecordedElsewhere(uint64_t dev, pid_t pid, const std::string& filename) {
  if (dev == MemfdDevice()) {
    if (!MemfdPathTakes(filename) && hooks_.memfd_exec) hooks_.memfd_exec(pid, filename);
    return true;
  }
  return hooks_.never_marked && hooks_.never_marked(dev);
}

bool LateExecs::SettledByRecord(pid_t pid, uint64_t time_ns, const ExecFile& file, uint64_t began) {
  // The mark time and the group's word on the mark must belong to one mark: no mark may be
  // placed between the two reads (a new superblock under a recycled number, marked after
  // the exec began, would otherwise lend its mark to the gone one's time).
  auto before = marked_->Quiet();
  if (!hooks_.record_dev_marked || !before) return false;
  auto marked_at = marked_->MarkedAt(file.dev);
  if (!marked_at || *marked_at > began || !hooks_.record_dev_marked(file.dev)) return false;
  if (marked_->Quiet() != before) return false;
  ForgetMaps(pid, time_ns);
  seen_by_record_++;
  return true;
}

std::optional<uint64_t> LateExecs::MarkedAtNow(uint64_t dev, const std::string& path) const {
  auto marked_at = marked_->MarkedAt(dev);
  if (marked_at && hooks_.still_marked && !hooks_.still_marked(dev, path)) marked_at.reset();
  return marked_at;
}

bool LateExecs::PreMeasured(pid_t tid, uint64_t dev, uint64_t ino, uint64_t time_ns) {
  std::lock_guard<std::mutex> lk(pre_mu_);
  auto it = pre_.find(tid);
  return it != pre_.end() && it->second.Same(dev, ino, time_ns);
}

std::optional<MountPins::Place> LateExecs::PinnedPlace(uint64_t dev) {
  auto place = pins_.Find(dev, MonotonicNs());
  if (!place) {
    // Not pinned at a mount syscall (its caller was gone before the tracepoint's record was
    // read): a namespace that still has a process — the exec's parent shell, say — may.
    if (auto pid = LiveProcessSeeing(dev); pid && pins_.PinNamespace(*pid, MonotonicNs())) {
      place = pins_.Find(dev, MonotonicNs());
    }
  }
  return place;
}

void LateExecs::OnExec(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t time_ns,
                       std::optional<ExecFile> file) {
  execs_++;
  if (pid == self_) return;
  // The exec's start is its sys_enter record, which may sit in another CPU's ring not read
  // yet in this pass (execve moves the task to another CPU: sched_exec()). Unknown, the
  // exec is decided after the pass (AfterDrain).
  NoteDone(pid, time_ns);
  std::optional<uint64_t> began = ExecBegan(old_pid, pid, time_ns);
  if (file && file->dev == 0) file.reset();  // the program could not read it (device 0:0 is no superblock's)
  // Marked before the exec began: fanotify saw it, as DecideRunning and ResolveGone would
  // conclude from /proc/<pid>/exe or the mapping — here from the record's own file, which
  // is this exec's even when the process has exec'd again or exited since. The record's
  // device is the kernel's s_dev: only a mark placed by the content group under that same
  // st_dev vouches for it (hooks_.record_dev_marked); otherwise (btrfs subvolumes, overlay
  // and FUSE side groups) the exec goes the way below.
  if (file && began && SettledByRecord(pid, time_ns, *file, *began)) return;
  std::string proc = "/proc/" + std::to_string(pid);
  // O_PATH, not a read open: it raises no fanotify event (a read open of a binary on a
  // marked filesystem would be one more event for every exec on the host), and it pins the
  // executable for a process that exits before it is hashed (`true` lives well under a
  // millisecond). Marked before the exec began: fanotify saw it.
  int pfd = ::open((proc + "/exe").c_str(), O_PATH | O_CLOEXEC);
  struct stat st;
  if (pfd < 0 || ::fstat(pfd, &st) != 0) {
    if (pfd >= 0) ::close(pfd);
    // Gone before limd looked: which binary ran is told by the exec's mappings, which may
    // sit in another CPU's ring not read yet — decided after this pass (AfterDrain()).
    // Looked up at once too: the program's libraries, mapped right after, could push the
    // binary's mapping out before the pass ends.
    if (gone_.size() < 65536) {
      gone_.push_back(GoneExec{pid, old_pid, filename, began.value_or(time_ns), time_ns,
                               began ? BinaryMapping(pid, *began, time_ns, file) : std::nullopt, 0, began.has_value(),
                               file});
    } else {
      missed_++;
    }
    return;
  }
  if (!began) {
    if (undecided_.size() < 4096) {
      undecided_.push_back(UndecidedExec{pid, old_pid, filename, time_ns, pfd, 0, file});
    } else {
      DecideRunning(pid, old_pid, filename, 0, time_ns, pfd, st, file);
    }
    return;
  }
  DecideRunning(pid, old_pid, filename, *began, time_ns, pfd, st, file);
}

void LateExecs::DecideRunning(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t began, uint64_t time_ns,
                              int pfd, const struct stat& st, const std::optional<ExecFile>& file) {
  std::string proc = "/proc/" + std::to_string(pid);
  auto dev = static_cast<uint64_t>(st.st_dev);
  ForgetMaps(pid, time_ns);
  // A memfd (fexecve, /proc/self/fd/N): a second, racing "late exec" entry here would be
  // the same exec twice and, winning the race, hide the memfd entry.
  if (RecordedElsewhere(dev, pid, filename)) {
    ::close(pfd);
    return;
  }
  // Measured before it ran (MeasureBeforeRun), and it is what runs: the step below finds
  // it cached and no late entry is due. Kept, not consumed: the same pid's earlier exec
  // records (setpriv, unshare) are read with this exe too.
  bool pre_measured = PreMeasured(old_pid, dev, static_cast<uint64_t>(st.st_ino), time_ns);
  // Records are handled after the fact: when the process exec'd again since (setpriv →
  // unshare → the program, one pid), /proc/<pid>/exe is already the later binary for every
  // earlier record. One late entry per binary a process runs.
  auto seen = late_seen_.find(pid);
  if (seen != late_seen_.end() && seen->second.Same(dev, static_cast<uint64_t>(st.st_ino), time_ns)) {
    ::close(pfd);
    return;
  }
  // The superblock by its own device when the record names this very file: a btrfs
  // subvolume's st_dev may be a number a gone mark once held (and the record's s_dev is the
  // one the btrfs's mark time is kept under).
  bool same_file = file && file->ino == static_cast<uint64_t>(st.st_ino);
  auto marked_at = same_file ? MarkedAtNow(file->dev) : MarkedAtNow(dev, "/proc/self/fd/" + std::to_string(pfd));
  if ((marked_at && *marked_at <= began) || !S_ISREG(st.st_mode) || !hooks_.qualifies) {
    ::close(pfd);
    return;
  }
  auto place = PlaceRunning(pid, proc, filename, began, time_ns, dev, pfd);
  if (!place) {
    ::close(pfd);
    return;
  }
  if (!marked_at && !place->detached && hooks_.poke) hooks_.poke(pid);
  MeasureRunning(pid, time_ns, pfd, dev, static_cast<uint64_t>(st.st_ino), *place, pre_measured);
}

std::optional<LateExecs::RunningPlace> LateExecs::PlaceRunning(pid_t pid, const std::string& proc,
                                                               const std::string& filename, uint64_t began,
                                                               uint64_t time_ns, uint64_t dev, int pfd) {
  // A process with limd's view of the mounts (most execs on a host): limd's own mountinfo,
  // read again only after the mount table changed, and what it says about dev, taken once
  // per text. dev in it without qualifying — the common case, an exec from a filesystem
  // outside --watch — is not limd's (as below: a listed superblock is never "detached").
  std::optional<std::string> own_text;
  if (const std::string* own = own_mountinfo_.For(pid)) {
    own_view_places_++;
    own_mountinfo_reads_ = own_mountinfo_.reads();
    if (own_verdicts_generation_ != own_mountinfo_.generation() || own_verdicts_.size() > 4096) {
      own_verdicts_.clear();
      own_verdicts_generation_ = own_mountinfo_.generation();
    }
    auto [it, added] = own_verdicts_.try_emplace(dev);
    if (added) {
      std::string ignored;
      it->second.qualifies = hooks_.qualifies(*own, pid, dev, &ignored);
      it->second.listed = it->second.qualifies || FindMountOfDev(*own, dev);
    }
    if (it->second.listed && !it->second.qualifies) return std::nullopt;
    own_text = *own;
  }
  // Read while the process is likely still there (an open mountinfo would outlive it too).
  auto read = own_text ? Result<std::string>(std::move(*own_text)) : ReadFileText(proc + "/mountinfo");
  // The name of the file that runs, from the pinned fd: /proc/<pid>/exe is gone with the
  // process, and the record's filename may be an earlier exec's (setpriv → … → the program,
  // one pid) or a /dev/fd path.
  std::string path = ReadLink("/proc/self/fd/" + std::to_string(pfd));
  if (path.empty()) path = ReadLink(proc + "/exe");
  std::optional<std::string> mountinfo;
  if (read.ok()) mountinfo = std::move(*read);
  bool unplaced = false;
  if (!mountinfo) {
    // It exited between the exe's open (the fd holds the file) and these reads: its
    // namespace as pinned, or as a live process in it sees it; none left — placed by type
    // and by the path its exec mapping had.
    auto place = PinnedPlace(dev);
    if (place && !place->detached) mountinfo = place->mountinfo;
    else mountinfo.emplace(), unplaced = !place;
    if (path.empty()) {
      if (auto b = BinaryMapping(pid, began, time_ns, std::nullopt)) path = b->name;
    }
  }
  if (path.empty()) path = filename;
  if (unplaced && hooks_.may_be_watched && filename.rfind("/dev/fd/", 0) != 0 && !hooks_.may_be_watched(path)) {
    return std::nullopt;  // outside --watch, as ResolveGone decides
  }
  std::string fstype;
  bool detached = false;
  if (!hooks_.qualifies(*mountinfo, pid, dev, &fstype)) {
    // In no line of the process's mountinfo: a detached mount (fsmount or
    // open_tree(OPEN_TREE_CLONE), never attached; run with execveat on its fd). No mount
    // point places it inside or outside the watched roots: its type decides.
    // Not an overlay's backing file: /proc/<pid>/exe of an overlay exec leads to the real
    // file on overlay's private clone mount (in no mountinfo either), while its name is the
    // overlay path — the overlay group measures those.
    bool overlay = !path.empty() && path[0] == '/' && FsTypeAt(*mountinfo, path) == "overlay";
    fstype = !overlay && !FindMountOfDev(*mountinfo, dev) ? FsTypeOfFd(pfd) : "";
    if (!DefaultFsType(fstype)) return std::nullopt;
    detached = true;
  }
  return RunningPlace{std::move(path), std::move(fstype), detached};
}

void LateExecs::MeasureRunning(pid_t pid, uint64_t time_ns, int pfd, uint64_t dev, uint64_t ino,
                               const RunningPlace& place, bool pre_measured) {
  const std::string& path = place.path;
  const std::string& fstype = place.fstype;
  auto gap = [&](const std::string& why) {
    uint64_t delay_us = (MonotonicNs() - time_ns) / 1000;
    Status s = list_->AppendBuffer("lim-late-exec", LateExecBuffer("", path, pid, dev, ino, delay_us, why), true);
    unmeasured_++;
    late_seen_[pid] = {dev, ino, time_ns};
    if (hooks_.log) hooks_.log("late exec " + path + " (pid " + std::to_string(pid) + "): " + why);
    if (!s.ok() && hooks_.log) hooks_.log("late exec gap entry failed: " + s.message());
  };
  if (hooks_.may_read && !hooks_.may_read(fstype)) {
    ::close(pfd);
    gap(fstype + ": not read outside its own group");
    return;
  }
  // Read through the pinned file (a reopen of the O_PATH fd: works after the process exits).
  int fd = ::open(("/proc/self/fd/" + std::to_string(pfd)).c_str(), O_RDONLY | O_CLOEXEC);
  ::close(pfd);
  if (fd < 0) {
    gap(std::string("cannot open its executable: ") + strerror(errno));
    return;
  }
  struct stat fst;
  InodeKey key;
  if (::fstat(fd, &fst) == 0) key = {static_cast<uint64_t>(fst.st_dev), static_cast<uint64_t>(fst.st_ino)};
  Access a = ExecAccess(fd, pid, path, fstype, key);
  Verdict v = measurer_->Process(a);
  ::close(fd);
  if (!v.status.ok()) {
    gap("measure: " + v.status.message());
    return;
  }
  // No rule for it: the kernel would record nothing. A cached verdict still gets the late
  // entry: this exec ran unseen, and the content it ran is the one measured (unchanged
  // since, by the change tuple) — by the discovery scan or an exec after the mark.
  if (!v.measure_rule || (pre_measured && v.cached)) return;
  uint64_t delay_us = (MonotonicNs() - time_ns) / 1000;
  std::string digest = v.digest.empty() ? "" : std::string(v.algo.kernel_name) + ":" + ToHex(v.digest);
  Status s = list_->AppendBuffer("lim-late-exec", LateExecBuffer(digest, path, pid, a.key.dev, a.key.ino, delay_us, "",
                                                                  place.detached ? "mount=detached;" : ""));
  if (!s.ok()) {
    if (hooks_.log) hooks_.log("late exec entry for " + path + " failed: " + s.message());
    return;
  }
  late_++;
  delays_.Add(delay_us);
  if (late_seen_.size() > 4096) late_seen_.clear();
  late_seen_[pid] = {a.key.dev, a.key.ino, time_ns};
  if (hooks_.log) {
    hooks_.log("late exec " + path + " (pid " + std::to_string(pid) + ", " + fstype + " not marked when it began): " +
               "measured " + std::to_string(delay_us) + " us after it ran");
  }
}

void LateExecs::OnMountExit(pid_t pid, int64_t ret, bool returns_fd, bool attaches, uint64_t time_ns) {
  if (ret < 0 || pid == self_) return;
  if (attaches) pins_.Attached(pid);
  pins_.PinNamespace(pid, time_ns);
  if (returns_fd && ret <= INT_MAX) pins_.PinDetached(pid, static_cast<int>(ret), time_ns);
}

void LateExecs::OnExecMmap(pid_t pid, uint64_t time_ns, uint64_t dev, uint64_t ino, std::string_view name) {
  // Only files (not [vdso] or anonymous memory); the binary and its interpreter are the
  // first two of an exec.
  if (name.empty() || name[0] != '/' || ino == 0 || pid == self_) return;
  auto& v = maps_[pid];
  if (v.size() >= 32) v.erase(v.begin());
  v.push_back(ExecMap{time_ns, dev, ino, std::string(name)});
}

void LateExecs::ForgetMaps(pid_t pid, uint64_t time_ns) {
  auto it = maps_.find(pid);
  if (it == maps_.end()) return;
  // An earlier exec of pid still waiting for its start (decided out of order) needs its
  // mapping: only what came after it goes.
  uint64_t upto = time_ns;
  for (const auto& g : gone_) {
    if (g.pid == pid && g.binary == std::nullopt && g.time_ns < time_ns) upto = std::min(upto, g.began_known ? g.began : 0);
  }
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [&](const ExecMap& m) { return m.time_ns <= upto; }), v.end());
  if (v.empty()) maps_.erase(it);
}

std::optional<pid_t> LateExecs::LiveProcessSeeing(uint64_t dev) {
  if (!live_devs_) {
    live_devs_.emplace();
    for (const auto& [ino, pid] : MountWatch::LiveNamespaces()) {
      auto lines = ReadMountinfo("/proc/" + std::to_string(pid) + "/mountinfo");
      if (!lines.ok()) continue;
      for (const auto& m : *lines) live_devs_->emplace(static_cast<uint64_t>(m.dev), pid);
    }
  }
  auto it = live_devs_->find(dev);
  if (it == live_devs_->end()) return std::nullopt;
  return it->second;
}

void LateExecs::AfterDrain() {
  live_devs_.reset();  // namespaces change between passes
  if (lost_pending_ > 0 && MonotonicNs() - lost_entry_at_ > 1'000'000'000ull) {
    // The verifier must see that execs may have run unseen: a gap, as for fanotify's
    // queue overflow.
    Status s = list_->AppendBuffer("lim-trace-lost",
                                   "records=" + std::to_string(lost_pending_) + ";reason=perf_ring_full;", true);
    if (!s.ok() && hooks_.log) hooks_.log("lim-trace-lost entry failed: " + s.message());
    lost_pending_ = 0;
    lost_entry_at_ = MonotonicNs();
  }
  // Running execs whose start was not known when their record was read: by now the whole
  // pass is in; still unknown after a second pass (its record lost), the start is taken as
  // unknown — any mark since limd started may have come after it, so a late entry is due.
  for (size_t i = 0; i < undecided_.size();) {
    UndecidedExec& u = undecided_[i];
    std::optional<uint64_t> began = ExecBegan(u.old_pid, u.pid, u.time_ns);
    if (!began && ++u.passes < 2) {
      ++i;
      continue;
    }
    if (began && u.file && SettledByRecord(u.pid, u.time_ns, *u.file, *began)) {
      ::close(u.pfd);
      undecided_.erase(undecided_.begin() + static_cast<ptrdiff_t>(i));
      continue;
    }
    struct stat st;
    if (::fstat(u.pfd, &st) == 0) {
      DecideRunning(u.pid, u.old_pid, u.filename, began.value_or(0), u.time_ns, u.pfd, st, u.file);
    } else {
      ::close(u.pfd);
    }
    undecided_.erase(undecided_.begin() + static_cast<ptrdiff_t>(i));
  }
  for (size_t i = 0; i < gone_.size();) {
    if (ResolveGone(gone_[i])) {
      gone_.erase(gone_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  // Mappings of processes that never exec'd again (libraries they load): 5 s is plenty
  // for an exec's completion record to follow its mappings.
  uint64_t now = MonotonicNs();
  if (now - pruned_at_ > 1'000'000'000ull) {
    pruned_at_ = now;
    for (auto it = maps_.begin(); it != maps_.end();) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const ExecMap& m) { return now - m.time_ns > 5'000'000'000ull; }),
              v.end());
      it = v.empty() ? maps_.erase(it) : std::next(it);
    }
    // Exec starts and completions older than that are no exec's in flight: every pid that
    // ever exec'd would otherwise keep its entry (an exec slower than 5 s counts as one
    // whose start is unknown: a late entry, never none).
    auto prune = [&](std::map<pid_t, std::vector<uint64_t>>& times) {
      for (auto it = times.begin(); it != times.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](uint64_t t) { return t < now && now - t > 5'000'000'000ull; }), v.end());
        it = v.empty() ? times.erase(it) : std::next(it);
      }
    };
    prune(enter_);
    prune(done_);
  }
}

void LateExecs::AppendGap(const std::string& path, pid_t pid, uint64_t dev, uint64_t ino, uint64_t time_ns,
                          const std::string& why, const std::string& extra) {
  uint64_t delay_us = (MonotonicNs() - time_ns) / 1000;
  Status s = list_->AppendBuffer("lim-late-exec", LateExecBuffer("", path, pid, dev, ino, delay_us, why, extra), true);
  unmeasured_++;
  if (hooks_.log) hooks_.log("late exec " + path + " (pid " + std::to_string(pid) + "): " + why);
  if (!s.ok() && hooks_.log) hooks_.log("late exec gap entry failed: " + s.message());
}

std::optional<LateExecs::ExecMap> LateExecs::BinaryMapping(pid_t pid, uint64_t began, uint64_t time_ns,
                                                           const std::optional<ExecFile>& file) const {
  auto it = maps_.find(pid);
  if (file && it != maps_.end()) {
    // The inode the exec ran: its mapping is this exec's whenever the start is known or not.
    const ExecMap* same = nullptr;
    for (const auto& m : it->second) {
      if (m.dev == file->dev && m.ino == file->ino && m.time_ns <= time_ns && (!same || m.time_ns > same->time_ns)) {
        same = &m;
      }
    }
    if (same) return *same;
  }
  // Without the exec's start (its sys_enter record lost): the 20 ms before its completion.
  uint64_t from = began < time_ns ? began : time_ns - std::min<uint64_t>(time_ns, 20'000'000ull);
  const ExecMap* bin = nullptr;
  if (it != maps_.end()) {
    for (const auto& m : it->second) {
      if (m.time_ns >= from && m.time_ns <= time_ns && (!bin || m.time_ns < bin->time_ns)) bin = &m;
    }
  }
  if (!bin) return std::nullopt;
  return *bin;
}

bool LateExecs::ResolveGone(GoneExec& g) {
  if (!g.began_known) {
    // Its sys_enter record read after its completion: the window for its mapping is known
    // only now. Without it after three passes (lost), the 20 ms before the completion.
    if (auto b = ExecBegan(g.old_pid, g.pid, g.time_ns)) {
      g.began = *b;
      g.began_known = true;
    } else if (g.passes + 1 < 3) {
      g.passes++;
      return false;
    }
  }
  if (g.file && g.began_known && SettledByRecord(g.pid, g.time_ns, *g.file, g.began)) return true;
  if (!g.binary) g.binary = BinaryMapping(g.pid, g.began_known ? g.began : g.time_ns, g.time_ns, g.file);
  const ExecMap* bin = g.binary ? &*g.binary : nullptr;
  if (!bin) {
    if (++g.passes < 3) return false;  // its mapping may still be in a ring read next
    missed_++;
    if (hooks_.log) {
      hooks_.log("exec of " + g.filename + " (pid " + std::to_string(g.pid) +
                 "): gone before limd looked, and no executable mapping of it arrived");
    }
    return true;
  }
  ExecMap m = *bin;
  ForgetMaps(g.pid, g.time_ns);
  // An earlier record of the same pid (setpriv → unshare → the program) found it running
  // this binary and measured it late already.
  if (auto seen = late_seen_.find(g.pid); seen != late_seen_.end() && seen->second.Same(m.dev, m.ino, g.time_ns)) {
    return true;
  }
  uint64_t dev = m.dev;
  if (RecordedElsewhere(dev, g.pid, g.filename)) return true;
  auto marked_at = MarkedAtNow(dev);
  if (marked_at && *marked_at <= (g.began_known ? g.began : 0)) return true;  // fanotify saw it
  if (PreMeasured(g.old_pid, dev, m.ino, g.time_ns)) return true;  // measured before it ran
  std::string extra = g.filename.empty() || g.filename == m.name ? "" : "filename=" + LateExecField(g.filename) + ";";
  GoneRoot root;
  if (!PlaceGone(g, m, extra, &root)) return true;
  MeasureGone(g, m, root, extra);
  return true;
}

bool LateExecs::PlaceGone(const GoneExec& g, const ExecMap& m, const std::string& extra, GoneRoot* root) {
  uint64_t dev = m.dev;
  auto place = PinnedPlace(dev);
  if (place && !place->detached) {
    if (!hooks_.qualifies || !hooks_.qualifies(place->mountinfo, 0, dev, &root->fstype)) return false;
    if (FsTypeAt(place->mountinfo, m.name) == "overlay") return false;  // a backing file: the overlay group's
    root->dirfd = place->root_fd;
  } else if (place) {
    root->fstype = place->fstype;
    if (!DefaultFsType(root->fstype)) return false;
    root->dirfd = place->root_fd;
    root->detached = "mount=detached;";
  } else {
    // Outside --watch by its path, unless it was run through an fd (execveat: "/dev/fd/N…"),
    // whose path says nothing about where its file lies (a detached mount, say).
    bool through_fd = g.filename.rfind("/dev/fd/", 0) == 0;
    if (hooks_.may_be_watched && !through_fd && !hooks_.may_be_watched(m.name)) return false;
    AppendGap(m.name, g.pid, dev, m.ino, g.time_ns,
              "exited before limd looked, and no mount namespace or detached mount left has its superblock", extra);
    return false;
  }
  return true;
}

void LateExecs::MeasureGone(const GoneExec& g, const ExecMap& m, const GoneRoot& root, const std::string& extra) {
  uint64_t dev = m.dev;
  const std::string& fstype = root.fstype;
  const std::string& detached = root.detached;
  if (hooks_.may_read && !hooks_.may_read(fstype)) {
    AppendGap(m.name, g.pid, dev, m.ino, g.time_ns, fstype + ": not read outside its own group", extra + detached);
    return;
  }
  // The name the mapping had, inside the pinned root: symlinks (none in a d_path) and magic
  // links refused, so a name the user changed since cannot lead out of that root;
  // O_NONBLOCK: a FIFO put in its place does not hang limd. The dev:ino decide.
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root.dirfd, m.name.c_str(), &how, sizeof how));
  if (fd < 0) {
    AppendGap(m.name, g.pid, dev, m.ino, g.time_ns,
              std::string("exited before limd looked; its name no longer opens: ") + strerror(errno), extra + detached);
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_dev) != dev || static_cast<uint64_t>(st.st_ino) != m.ino ||
      !S_ISREG(st.st_mode)) {
    ::close(fd);
    AppendGap(m.name, g.pid, dev, m.ino, g.time_ns,
              "exited before limd looked; its name leads to another file now (renamed or replaced)", extra + detached);
    return;
  }
  Access a = ExecAccess(fd, g.pid, m.name, fstype, {dev, m.ino});
  Verdict v = measurer_->Process(a);
  ::close(fd);
  if (!v.status.ok()) {
    AppendGap(m.name, g.pid, dev, m.ino, g.time_ns, "measure: " + v.status.message(), extra + detached);
    return;
  }
  if (!v.measure_rule) return;
  uint64_t delay_us = (MonotonicNs() - g.time_ns) / 1000;
  std::string digest = v.digest.empty() ? "" : std::string(v.algo.kernel_name) + ":" + ToHex(v.digest);
  Status s = list_->AppendBuffer(
      "lim-late-exec",
      LateExecBuffer(digest, m.name, g.pid, dev, m.ino, delay_us, "", extra + detached + "source=name-after-exit;"));
  if (!s.ok()) {
    if (hooks_.log) hooks_.log("late exec entry for " + m.name + " failed: " + s.message());
    return;
  }
  late_++;
  after_exit_++;
  delays_.Add(delay_us);
  if (hooks_.log) {
    hooks_.log("late exec " + m.name + " (pid " + std::to_string(g.pid) + ", exited before limd looked): measured by name " +
               std::to_string(delay_us) + " us after it ran, same dev:ino as its exec mapping");
  }
}

}  // namespace lim::daemon
