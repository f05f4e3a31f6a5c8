#include "daemon/late_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "daemon/mount_watch.h"
#include "daemon/proc_context.h"
#include "daemon/startup_scan.h"

namespace lim::daemon {

uint64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void MarkedDevs::Add(uint64_t dev, uint64_t at_ns) {
  std::lock_guard<std::mutex> lk(mu_);
  at_[dev] = at_ns;  // a later mark is a new superblock under a reused number
}

std::optional<uint64_t> MarkedDevs::MarkedAt(uint64_t dev) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = at_.find(dev);
  if (it == at_.end()) return std::nullopt;
  return it->second;
}

namespace {

// ';' and '\n' would end a field of the buffer: escaped as the kernel's d_path does spaces.
std::string Field(const std::string& s) {
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
                           uint64_t delay_us, const std::string& error) {
  std::string b;
  if (!digest.empty()) b += "digest=" + digest + ";";
  b += "path=" + Field(path) + ";pid=" + std::to_string(pid) + ";";
  if (dev || ino) {
    b += "dev=" + std::to_string(major(static_cast<dev_t>(dev))) + ":" + std::to_string(minor(static_cast<dev_t>(dev))) +
         ";ino=" + std::to_string(ino) + ";";
  }
  b += "delay_us=" + std::to_string(delay_us) + ";";
  if (!error.empty()) b += "error=" + Field(error) + ";";
  return b;
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
    pre_[tid] = {dev, ino};
  }
  before_run_++;
  if (hooks_.log) {
    hooks_.log("exec of " + target.path + " (tid " + std::to_string(tid) + ", " + fstype +
               " not marked yet) measured before it ran, at its interpreter's exec-open");
  }
}

void LateExecs::OnExecEnter(pid_t tid, uint64_t time_ns) {
  if (enter_.size() > 65536) enter_.clear();  // tids whose exec failed never complete
  enter_[tid] = time_ns;
}

void LateExecs::OnExec(pid_t pid, pid_t old_pid, const std::string& filename, uint64_t time_ns) {
  execs_++;
  if (pid == self_) return;
  uint64_t began = time_ns;
  if (auto it = enter_.find(old_pid); it != enter_.end()) {
    began = it->second;
    enter_.erase(it);
  }
  std::string proc = "/proc/" + std::to_string(pid);
  // O_PATH, not a read open: it raises no fanotify event (a read open of a binary on a
  // marked filesystem would be one more event for every exec on the host), and it pins the
  // executable for a process that exits before it is hashed (`true` lives well under a
  // millisecond). Marked before the exec began: fanotify saw it.
  int pfd = ::open((proc + "/exe").c_str(), O_PATH | O_CLOEXEC);
  struct stat st;
  if (pfd < 0 || ::fstat(pfd, &st) != 0) {
    if (pfd >= 0) ::close(pfd);
    missed_++;  // gone before limd looked: its superblock is unknown
    return;
  }
  auto dev = static_cast<uint64_t>(st.st_dev);
  // Measured before it ran (MeasureBeforeRun), and it is what runs: the step below finds
  // it cached and no late entry is due. Kept, not consumed: the same pid's earlier exec
  // records (setpriv, unshare) are read with this exe too.
  bool pre_measured = false;
  {
    std::lock_guard<std::mutex> lk(pre_mu_);
    auto it = pre_.find(old_pid);
    pre_measured = it != pre_.end() && it->second == std::make_pair(dev, static_cast<uint64_t>(st.st_ino));
  }
  // Records are handled after the fact: when the process exec'd again since (setpriv →
  // unshare → the program, one pid), /proc/<pid>/exe is already the later binary for every
  // earlier record. One late entry per binary a process runs.
  auto seen = late_seen_.find(pid);
  if (seen != late_seen_.end() && seen->second == std::make_pair(dev, static_cast<uint64_t>(st.st_ino))) {
    ::close(pfd);
    return;
  }
  auto marked_at = marked_->MarkedAt(dev);
  if (marked_at && hooks_.still_marked && !hooks_.still_marked(dev)) marked_at.reset();
  if ((marked_at && *marked_at <= began) || !S_ISREG(st.st_mode) || !hooks_.qualifies ||
      (hooks_.never_marked && hooks_.never_marked(dev))) {
    ::close(pfd);
    return;
  }
  // Read while the process is likely still there (an open mountinfo would outlive it too).
  auto mountinfo = ReadFileText(proc + "/mountinfo");
  std::string path = ReadLink(proc + "/exe");
  std::string fstype;
  if (!mountinfo.ok() || !hooks_.qualifies(*mountinfo, pid, dev, &fstype)) {
    ::close(pfd);
    return;
  }
  if (!marked_at && hooks_.poke) hooks_.poke(pid);
  if (path.empty()) path = filename;
  auto gap = [&](const std::string& why) {
    uint64_t delay_us = (MonotonicNs() - time_ns) / 1000;
    Status s = list_->AppendBuffer("lim-late-exec",
                                   LateExecBuffer("", path, pid, dev, static_cast<uint64_t>(st.st_ino), delay_us, why),
                                   true);
    unmeasured_++;
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
  Status s = list_->AppendBuffer("lim-late-exec", LateExecBuffer(digest, path, pid, a.key.dev, a.key.ino, delay_us, ""));
  if (!s.ok()) {
    if (hooks_.log) hooks_.log("late exec entry for " + path + " failed: " + s.message());
    return;
  }
  late_++;
  delays_.Add(delay_us);
  if (late_seen_.size() > 4096) late_seen_.clear();
  late_seen_[pid] = {a.key.dev, a.key.ino};
  if (hooks_.log) {
    hooks_.log("late exec " + path + " (pid " + std::to_string(pid) + ", " + fstype + " not marked when it began): " +
               "measured " + std::to_string(delay_us) + " us after it ran");
  }
}

}  // namespace lim::daemon
