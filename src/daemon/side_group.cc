#include "daemon/side_group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <string.h>
#include <linux/securebits.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <unordered_set>
#include <vector>

#include "base/file.h"
#include "base/mountinfo.h"
#include "base/own_threads.h"


namespace lim::daemon {

namespace {

// listmount(2) (6.8+; mnt_ns_id 6.11+) and NS_GET_MNTNS_ID (6.11+): not in Debian 12's
// headers. Values of the kernel's uapi (x86_64).
constexpr long kSysListmount = 458;
constexpr uint64_t kListAllMounts = ~0ull;  // LSMT_ROOT
struct MntIdReq {
  uint32_t size = 32;  // MNT_ID_REQ_SIZE_VER1
  uint32_t spare = 0;
  uint64_t mnt_id = kListAllMounts;
  uint64_t param = 0;  // the last id of the previous batch
  uint64_t mnt_ns_id = 0;
};
constexpr unsigned long kNsGetMntnsId = _IOR(0xb7, 0x5, uint64_t);
constexpr unsigned long kNsGetUserns = _IO(0xb7, 0x1);

// The unique ids of every mount of every mount namespace that has a live process (and of
// each such process's root mount, which listmount leaves out). False when the kernel
// cannot list them.
bool PublicMountIds(std::unordered_set<uint64_t>* ids) {
  DIR* d = ::opendir("/proc");
  if (!d) return false;
  std::set<ino_t> seen;
  bool ok = true;
  std::vector<uint64_t> buf(512);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string proc = std::string("/proc/") + e->d_name;
    uint64_t root_id;
    // AT_STATX_DONT_SYNC: a root on FUSE (a rootless container) must not ask its server.
    if (UniqueMountId(AT_FDCWD, (proc + "/root").c_str(), AT_STATX_DONT_SYNC, &root_id)) ids->insert(root_id);
    struct stat st;
    if (::stat((proc + "/ns/mnt").c_str(), &st) != 0 || !seen.insert(st.st_ino).second) continue;
    int nsfd = ::open((proc + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) continue;
    MntIdReq req;
    bool have_ns = ::ioctl(nsfd, kNsGetMntnsId, &req.mnt_ns_id) == 0;
    ::close(nsfd);
    if (!have_ns) {
      ok = false;
      break;
    }
    for (;;) {
      long n = ::syscall(kSysListmount, &req, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == ENOSYS || errno == EINVAL) ok = false;
        break;  // the namespace went away meanwhile
      }
      ids->insert(buf.begin(), buf.begin() + n);
      if (static_cast<size_t>(n) < buf.size()) break;
      req.param = buf[static_cast<size_t>(n) - 1];
    }
    if (!ok) break;
  }
  ::closedir(d);
  return ok;
}

ino_t NsInode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// "/proc/<pid>" of a /proc/<pid>/root/… path, else "/proc/self".
std::string ProcOf(const std::string& path) {
  if (path.rfind("/proc/", 0) == 0) {
    size_t end = path.find('/', 6);
    std::string pid = path.substr(6, end == std::string::npos ? std::string::npos : end - 6);
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) return "/proc/" + pid;
  }
  return "/proc/self";
}

// The value of option `key` in a comma-separated option list; nullopt when absent.
std::optional<std::string> Option(const std::string& opts, const std::string& key) {
  std::istringstream in(opts);
  std::string o;
  while (std::getline(in, o, ',')) {
    if (o == key) return std::string();
    if (o.rfind(key + "=", 0) == 0) return o.substr(key.size() + 1);
  }
  return std::nullopt;
}

std::string DevName(uint64_t dev) {
  return std::to_string(major(static_cast<dev_t>(dev))) + ":" + std::to_string(minor(static_cast<dev_t>(dev)));
}

}  // namespace

std::optional<uint32_t> MapId(const std::string& map, uint32_t id) {
  std::istringstream in(map);
  uint64_t inside, outside, count;
  while (in >> inside >> outside >> count) {
    if (id >= inside && id - inside < count) return static_cast<uint32_t>(outside + (id - inside));
  }
  return std::nullopt;
}

namespace {

// The mount id (/proc/self/fdinfo "mnt_id:") of path's mount, without asking a FUSE server
// (O_PATH: no open, no permission check on the FUSE inode).
Result<uint64_t> MountIdOf(const std::string& path) {
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + path + ": " + strerror(errno));
  auto info = ReadFileText("/proc/self/fdinfo/" + std::to_string(fd));
  ::close(fd);
  if (!info.ok()) return info.status();
  size_t at = info->find("mnt_id:");
  if (at == std::string::npos) return Status::NotFound("no mnt_id for " + path);
  return static_cast<uint64_t>(std::strtoull(info->c_str() + at + 7, nullptr, 10));
}

// The mountinfo line of mount `id` in /proc/<pid>/mountinfo ("" when not there).
std::string MountLineIn(const std::string& proc, uint64_t id) {
  auto text = ReadFileText(proc + "/mountinfo");
  if (!text.ok()) return "";
  std::istringstream in(*text);
  std::string line;
  std::string want = std::to_string(id);
  while (std::getline(in, line)) {
    if (line.compare(0, want.size() + 1, want + " ") == 0) return line;
  }
  return "";
}

}  // namespace

Result<FuseMounter> FuseMounterOf(const std::string& path, uint64_t dev) {
  LIM_ASSIGN_OR_RETURN(uint64_t id, MountIdOf(path));
  // Mount ids are global: the namespace that holds it, through any of its processes
  // (the path may be a pinned root, /proc/self/fd/N/…).
  std::string proc = ProcOf(path);
  std::string line = MountLineIn(proc, id);
  if (line.empty()) {
    std::set<ino_t> seen;
    DIR* d = ::opendir("/proc");
    while (d && line.empty()) {
      dirent* e = ::readdir(d);
      if (!e) break;
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      proc = std::string("/proc/") + e->d_name;
      ino_t ns = NsInode(proc + "/ns/mnt");
      if (ns == 0 || !seen.insert(ns).second) continue;
      line = MountLineIn(proc, id);
    }
    if (d) ::closedir(d);
  }
  if (line.empty()) return Status::NotFound("FUSE at " + path + ": mount " + std::to_string(id) + " in no namespace");
  // id parent maj:min root mount-point options [optional…] - fstype source super-options
  std::istringstream ls(line);
  std::string mid, parent, devno;
  ls >> mid >> parent >> devno;
  size_t sep = line.find(" - ");
  if (devno != DevName(dev) || sep == std::string::npos) {
    return Status::NotFound("FUSE at " + path + ": mount " + std::to_string(id) + " is not " + DevName(dev));
  }
  std::istringstream tail(line.substr(sep + 3));
  std::string fstype, source, super;
  tail >> fstype >> source >> super;
  auto uid = Option(super, "user_id"), gid = Option(super, "group_id");
  if (ClassOfFs(fstype) != FsClass::kFuse || !uid || !gid || uid->empty() || gid->empty()) {
    return Status::InvalidArgument("FUSE at " + path + ": no user_id/group_id in " + super);
  }
  // user_id= is shown in the mount's user namespace: mapped through a process of the
  // namespace that holds the mount (the owner of its mount namespace, as a rule).
  LIM_ASSIGN_OR_RETURN(std::string uid_map, ReadFileText(proc + "/uid_map"));
  LIM_ASSIGN_OR_RETURN(std::string gid_map, ReadFileText(proc + "/gid_map"));
  auto u = MapId(uid_map, static_cast<uint32_t>(std::strtoul(uid->c_str(), nullptr, 10)));
  auto g = MapId(gid_map, static_cast<uint32_t>(std::strtoul(gid->c_str(), nullptr, 10)));
  if (!u || !g) return Status::InvalidArgument("FUSE at " + path + ": its mounter is not mapped in " + proc);
  FuseMounter m;
  m.uid = *u;
  m.gid = *g;
  m.allow_other = Option(super, "allow_other").has_value();
  m.trusted = FuseTrustedMounter(proc + "/root");
  return m;
}

Result<std::unique_ptr<ThreadCreds>> ThreadCreds::Become(uint32_t fsuid, uint32_t fsgid) {
  std::unique_ptr<ThreadCreds> t(new ThreadCreds);
  t->securebits_ = ::prctl(PR_GET_SECUREBITS);
  if (t->securebits_ < 0) return Status::IoError(std::string("PR_GET_SECUREBITS: ") + strerror(errno));
  // Keep the file capabilities across the fsuid change (the mounter's uid is not 0).
  if (::prctl(PR_SET_SECUREBITS, static_cast<unsigned long>(t->securebits_) | SECBIT_NO_SETUID_FIXUP) != 0) {
    return Status::IoError(std::string("PR_SET_SECUREBITS: ") + strerror(errno));
  }
  // setfsuid/setfsgid return the previous id and never fail visibly: asked again with -1.
  t->fsgid_ = static_cast<uint32_t>(::syscall(SYS_setfsgid, fsgid));
  t->fsuid_ = static_cast<uint32_t>(::syscall(SYS_setfsuid, fsuid));
  if (static_cast<uint32_t>(::syscall(SYS_setfsgid, -1)) != fsgid ||
      static_cast<uint32_t>(::syscall(SYS_setfsuid, -1)) != fsuid) {
    (void)::syscall(SYS_setfsuid, t->fsuid_);
    (void)::syscall(SYS_setfsgid, t->fsgid_);
    ::prctl(PR_SET_SECUREBITS, static_cast<unsigned long>(t->securebits_));
    return Status::IoError("setfsuid " + std::to_string(fsuid) + "/setfsgid " + std::to_string(fsgid) + " refused");
  }
  return t;
}

ThreadCreds::~ThreadCreds() {
  (void)::syscall(SYS_setfsuid, fsuid_);
  (void)::syscall(SYS_setfsgid, fsgid_);
  // Failing here would leave a thread of limd with another fsuid: abort.
  if (static_cast<uint32_t>(::syscall(SYS_setfsuid, -1)) != fsuid_ ||
      ::prctl(PR_SET_SECUREBITS, static_cast<unsigned long>(securebits_)) != 0) {
    std::abort();
  }
}

bool FuseSysAdminAccess() {
  auto v = ReadFileText("/sys/module/fuse/parameters/allow_sys_admin_access");
  return v.ok() && !v->empty() && ((*v)[0] == 'Y' || (*v)[0] == 'y' || (*v)[0] == '1');
}

FsClass ClassOfFs(const std::string& t) {
  if (t == "overlay") return FsClass::kOverlay;
  if (t == "fuse" || t == "fuseblk" || t.rfind("fuse.", 0) == 0) return FsClass::kFuse;
  return FsClass::kPlain;
}

void OverlayOpens::Note(pid_t tid, const std::string& line) {
  if (line.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (noted_.size() > 4096) noted_.clear();  // stale threads; a live one notes again
  noted_[tid] = Noted{line, std::chrono::steady_clock::now()};
  active_.store(true, std::memory_order_release);
}

bool OverlayOpens::IsBackingOpen(int fd, pid_t tid, const std::string& line) {
  if (!active_.load(std::memory_order_acquire) || line.empty()) return false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = noted_.find(tid);
    // The same syscall: a blocked thread's line holds its syscall number, arguments, stack
    // and instruction pointers. Seconds bound a copy-up of a large file.
    if (it == noted_.end() || it->second.line != line ||
        std::chrono::steady_clock::now() - it->second.at > std::chrono::seconds(30)) {
      return false;
    }
  }
  if (!OnPrivateMount(fd)) return false;
  backing_events_++;
  return true;
}

bool OverlayOpens::OnPrivateMount(int fd) {
  uint64_t id;
  if (!UniqueMountId(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, &id)) return false;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = private_.find(id);
  if (it != private_.end()) return it->second;
  std::unordered_set<uint64_t> ids;
  if (!PublicMountIds(&ids)) return false;  // cannot tell: measured (a second entry, not a gap)
  if (private_.size() > 65536) private_.clear();
  // Unique ids are never reused: both verdicts stay true for the mount's life.
  for (auto known : ids) {
    if (private_.size() < 65536) private_.emplace(known, false);
  }
  bool priv = !ids.count(id);
  private_[id] = priv;
  return priv;
}

bool FuseTrustedMounter(const std::string& path) {
  std::string ns = ProcOf(path) + "/ns/mnt";
  int nsfd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return true;
  int userns = ::ioctl(nsfd, kNsGetUserns);
  ::close(nsfd);
  if (userns < 0) return true;
  struct stat st;
  bool ok = ::fstat(userns, &st) == 0;
  ::close(userns);
  ino_t init = NsInode("/proc/1/ns/user");
  return !ok || init == 0 || st.st_ino == init;
}

SideGroups::SideGroups(const DaemonOptions& base, Measurer* measurer, MeasurementList* list, Env* env,
                       std::function<void(const std::string&)> log, uint64_t view_dev)
    : base_(base), measurer_(measurer), list_(list), env_(env), log_(std::move(log)), view_dev_(view_dev) {
  base_.watch.clear();  // marked through Mark()
  base_.precontent = false;  // overlay and FUSE refuse FAN_PRE_ACCESS: ELF-at-open
  base_.reader_close_group = false;
}

SideGroups::~SideGroups() { Stop(); }

Result<std::unique_ptr<SideGroups::Group>> SideGroups::NewGroup(FsClass c, uint64_t dev, const std::string& path) {
  DaemonOptions o = base_;
  o.workers = 1;  // per superblock: one hash at a time (a FUSE server serves one file at a time anyway)
  o.overlay_opens = &opens_;  // overlay on FUSE, overlay on overlay: their backing files too
  o.overlay_group = c == FsClass::kOverlay;
  // A FUSE server may refuse limd's FUSE_OPEN (an access policy of its own): the kernel
  // would deny the opener; with the error reported limd allows it and records the gap.
  o.report_fd_error = true;
  LIM_ASSIGN_OR_RETURN(auto d, FanotifyDaemon::Create(o, measurer_, list_, env_, log_));
  auto g = std::make_unique<Group>();
  g->daemon = std::move(d);
  g->fs_class = c;
  g->path = path;
  g->dev = dev;
  Group* gp = g.get();
  gp->reader = StartOwnThread([gp] {
    gp->run_status = gp->daemon->Run();
    gp->reader_done.store(true);
  });
  return g;
}

Status SideGroups::Mark(const std::string& path, const std::string& fstype) {
  FsClass c = ClassOfFs(fstype);
  if (c == FsClass::kPlain) return Status::InvalidArgument(fstype + " at " + path + " is no overlay or FUSE");
  LIM_ASSIGN_OR_RETURN(uint64_t dev, DeviceOf(path));  // never asks a FUSE server
  if (view_dev_ != 0 && dev == view_dev_) return Status::InvalidArgument(path + " is limd's own securityfs view");
  bool init_ns = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_) return Status::Unavailable("limd is stopping: " + path + " not marked");
    if (auto it = groups_.find(dev); it != groups_.end()) {
      // The superblock marked under dev is gone and a new one took its number: the old
      // group would answer "marked already" for a superblock nobody watches. A group that
      // unmarked itself cannot tell; the mount watcher asks again only when the mount under
      // dev shows another filesystem type (MountWatch).
      if (!CannotBeLive(*it->second)) return Status::Ok();  // another mount of it
      RetireLocked(it);
    }
  }
  // FUSE of another mounter: the fuse module serves it only to its mounter, or to
  // CAP_SYS_ADMIN with the module's allow_sys_admin_access; and only to a caller whose
  // fsuid is mapped in the mount's user namespace. limd never takes the mounter's uid
  // (that user could then signal limd's threads: tgkill checks uid and suid, never fsuid):
  // with allow_sys_admin_access its group's threads take only the mounter's fsuid/fsgid
  // (they inherit the creating thread's), else the filesystem is a named gap.
  std::unique_ptr<ThreadCreds> as_mounter;
  std::string as;
  if (c == FsClass::kFuse) {
    LIM_ASSIGN_OR_RETURN(FuseMounter m, FuseMounterOf(path, dev));
    init_ns = m.trusted;
    bool served = m.uid == ::geteuid() || (m.allow_other && init_ns);
    if (!served && !FuseSysAdminAccess()) {
      Status gap = list_->AppendBuffer("lim-fuse-unmeasured", "mount=" + path + ";dev=" + DevName(dev) +
                                                                  ";mounter=" + std::to_string(m.uid) +
                                                                  ";reason=served_to_mounter_only;",
                                       true);
      return Status::Unsupported(
          "FUSE served to its mounter (uid " + std::to_string(m.uid) +
          ") only; limd reads it only with the fuse module's allow_sys_admin_access=Y — its files are not measured "
          "(lim-fuse-unmeasured entry" + (gap.ok() ? ")" : " failed: " + gap.message() + ")"));
    }
    if (!served || !init_ns) {
      LIM_ASSIGN_OR_RETURN(as_mounter, ThreadCreds::Become(m.uid, m.gid));
      as = " with its mounter's fsuid " + std::to_string(m.uid) + " and fsgid " + std::to_string(m.gid);
    }
  }
  // Outside mu_: marking looks the root up, which may ask the server (default_permissions);
  // status.json's counters must not wait on that.
  LIM_ASSIGN_OR_RETURN(std::unique_ptr<Group> g, NewGroup(c, dev, path));
  Status s = g->daemon->MarkFilesystem(path, fstype, /*remeasure=*/init_ns);
  as_mounter.reset();
  std::unique_lock<std::mutex> lk(mu_);
  if (!s.ok() || stopped_ || groups_.count(dev)) {
    lk.unlock();
    g->daemon->Stop();
    if (g->reader.joinable()) g->reader.join();
    if (!s.ok()) return s;
    return Status::Ok();
  }
  Group* gp = g.get();
  groups_[dev] = std::move(g);
  gone_.erase(dev);
  StartMonitorLocked();
  lk.unlock();
  if (log_) {
    std::string limit;
    if (c == FsClass::kFuse) {
      auto max = ReadFileText("/proc/sys/fs/fuse/max_request_timeout");
      auto def = ReadFileText("/proc/sys/fs/fuse/default_request_timeout");
      if (max.ok() && def.ok() && std::atoi(max->c_str()) == 0 && std::atoi(def->c_str()) == 0) {
        limit = "; its requests have no kernel time limit (fs.fuse.max_request_timeout=0)";
      }
    }
    log_(std::string(c == FsClass::kOverlay ? "overlay" : "FUSE") + " group started for " + gp->path + as + limit);
  }
  return Status::Ok();
}

void SideGroups::StartMonitorLocked() {
  if (monitor_.joinable()) return;
  monitor_ = StartOwnThread([this] { Monitor(); });
}

std::optional<bool> SideGroups::MarkedHere(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = groups_.find(dev); it != groups_.end()) {
    // No mark left to ask: no word either way (a definite answer of the content group for
    // a superblock it marked under the number since must stand).
    if (it->second->daemon->unmarked_after_denial()) return std::nullopt;
    return it->second->daemon->MarkedHere(dev);
  }
  if (gone_.count(dev)) return false;
  return std::nullopt;
}

void SideGroups::Forget(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = groups_.find(dev);
  if (it == groups_.end()) return;
  // Only a group that cannot be live. (A live group's superblock shares its number with no
  // plain one; a plain mark placed on its superblock by a race — bind-mounted over the path
  // between scan and mark — must not take its group away.)
  if (CannotBeLive(*it->second)) RetireLocked(it);
}

bool SideGroups::CannotBeLive(const Group& g) {
  return g.daemon->unmarked_after_denial() || !g.daemon->MarkedHere(g.dev).value_or(true);
}

bool SideGroups::Refused(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = groups_.find(dev);
  return it != groups_.end() && it->second->daemon->unmarked_after_denial();
}

void SideGroups::RetireLocked(std::map<uint64_t, std::unique_ptr<Group>>::iterator it) {
  it->second->daemon->Stop();  // its reader ends within 100 ms; ReapRetired joins it
  if (log_) log_(std::string(it->second->fs_class == FsClass::kOverlay ? "overlay" : "FUSE") + " group of " +
                 it->second->path + " (device " + DevName(it->first) + ") retired: its superblock is gone");
  gone_.insert(it->first);
  retiring_.push_back(std::move(it->second));
  groups_.erase(it);
  retired_count_++;
}

void SideGroups::ReapRetired() {
  std::vector<std::unique_ptr<Group>> done;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      if ((*it)->reader_done.load()) {
        done.push_back(std::move(*it));
        it = retiring_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Outside mu_: the destructor joins the worker. Its superblock is gone, so no file of it
  // is open and no read can wait on a FUSE server.
  for (auto& g : done) {
    if (g->reader.joinable()) g->reader.join();
    if (!g->run_status.ok() && log_) log_("side group: " + g->run_status.message());
    g->daemon.reset();
  }
}

void SideGroups::Monitor() {
  std::unique_lock<std::mutex> lk(mu_);
  int round = 0;
  while (!stopped_) {
    monitor_cv_.wait_for(lk, std::chrono::milliseconds(500));
    if (stopped_) break;
    if (++round % kSweepRounds == 0 || !retiring_.empty()) {
      for (auto it = groups_.begin(); it != groups_.end();) {
        auto next = std::next(it);
        FanotifyDaemon& d = *it->second->daemon;
        // The flag again after the fdinfo: a denial may have removed the mark in between.
        if (!d.unmarked_after_denial() && !d.MarkedHere(it->first).value_or(true) && !d.unmarked_after_denial()) {
          RetireLocked(it);
        }
        it = next;
      }
      lk.unlock();
      ReapRetired();
      lk.lock();
      if (stopped_) break;
    }
    for (auto& [dev, g] : groups_) {
      if (g->fs_class != FsClass::kFuse) continue;
      uint64_t t = g->daemon->stats().timeouts.load();
      if (t > g->seen_timeouts) {
        g->quiet_rounds = 0;
        if (!g->stalled) {
          g->stalled = true;
          fuse_stalls_++;
          std::string ms = std::to_string(base_.decision_timeout.count());
          // The list's own lock only: never waits on the server.
          Status s = list_->AppendBuffer("lim-fuse-unresponsive",
                                         "mount=" + g->path + ";dev=" + DevName(dev) + ";waited_ms=" + ms + ";", true);
          if (log_) {
            log_("the FUSE server of " + g->path + " did not answer limd's read within " + ms +
                 " ms: accesses answered unmeasured (lim-decision-timeout), lim-fuse-unresponsive entry" +
                 (s.ok() ? "" : " failed: " + s.message()));
          }
        }
      } else if (g->stalled && ++g->quiet_rounds >= 4) {
        g->stalled = false;  // no timeout for 2 s: a later one is a new stall
        if (log_) log_("the FUSE server of " + g->path + " answers limd again");
      }
      g->seen_timeouts = t;
    }
  }
}

void SideGroups::Stop() {
  std::map<uint64_t, std::unique_ptr<Group>> groups;
  std::vector<std::unique_ptr<Group>> retiring;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopped_ = true;
    groups.swap(groups_);
    retiring.swap(retiring_);
  }
  monitor_cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& g : retiring_) retiring.push_back(std::move(g));  // retired by the monitor's last round
    retiring_.clear();
  }
  // Retired groups close with the others (already told to stop); keyed apart from them.
  uint64_t key = ~0ull;
  for (auto& g : retiring) groups.emplace(key--, std::move(g));
  for (auto& [dev, g] : groups) g->daemon->Stop();  // all at once: each reader ends within 100 ms
  // Join and destroy each group on a closer thread (the destructor joins the worker, which
  // may be in a read the server never answers); wait for them at most kStopWait.
  struct Closing {
    std::mutex mu;
    std::condition_variable cv;
    size_t open = 0;
  };
  auto closing = std::make_shared<Closing>();
  closing->open = groups.size();
  auto log = log_;
  for (auto& [dev, g] : groups) {
    std::shared_ptr<Group> gs(std::move(g));
    StartOwnThread([gs, closing, log] {
      if (gs->reader.joinable()) gs->reader.join();
      if (!gs->run_status.ok() && log) log("side group: " + gs->run_status.message());
      gs->daemon.reset();  // answers everything still queued
      std::lock_guard<std::mutex> lk(closing->mu);
      closing->open--;
      closing->cv.notify_all();
    }).detach();
  }
  std::unique_lock<std::mutex> lk(closing->mu);
  if (!closing->cv.wait_for(lk, kStopWait, [&] { return closing->open == 0; })) {
    leaked_.store(closing->open);
    if (log_) {
      log_(std::to_string(closing->open) + " overlay/FUSE group(s) did not stop within " +
           std::to_string(kStopWait.count()) + " s (a thread waits on a FUSE server): left to end with the server");
    }
  }
}

size_t SideGroups::marks() const {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (const auto& [dev, g] : groups_) n += g->daemon->marks();
  return n;
}

uint64_t SideGroups::events() const {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t n = 0;
  for (const auto& [dev, g] : groups_) n += g->daemon->stats().events.load();
  return n;
}

uint64_t SideGroups::perm_events() const {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t n = 0;
  for (const auto& [dev, g] : groups_) n += g->daemon->stats().perm_events.load();
  return n;
}

}  // namespace lim::daemon
