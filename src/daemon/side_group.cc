#include "daemon/side_group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <unordered_set>
#include <vector>

#include "base/own_threads.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U  // 6.8+: the mount's id, never reused
#endif

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

bool UniqueMountId(int dirfd, const char* path, int flags, uint64_t* id) {
  struct statx sx {};
  if (::statx(dirfd, path, flags, STATX_MNT_ID_UNIQUE, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID_UNIQUE)) return false;
  *id = sx.stx_mnt_id;
  return true;
}

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

}  // namespace

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
  std::string ns = "/proc/self/ns/mnt";
  if (path.rfind("/proc/", 0) == 0) {
    size_t end = path.find('/', 6);
    std::string pid = path.substr(6, end == std::string::npos ? std::string::npos : end - 6);
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) ns = "/proc/" + pid + "/ns/mnt";
  }
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

Result<SideGroups::Group*> SideGroups::NewGroup(FsClass c, uint64_t dev, const std::string& path) {
  auto& slot = groups_[dev];
  DaemonOptions o = base_;
  o.workers = 1;  // per superblock: one hash at a time (a FUSE server serves one file at a time anyway)
  o.overlay_opens = &opens_;  // overlay on FUSE, overlay on overlay: their backing files too
  o.overlay_group = c == FsClass::kOverlay;
  // A FUSE server may refuse limd's FUSE_OPEN (an access policy of its own): the kernel
  // would deny the opener; with the error reported limd allows it and records the gap.
  o.report_fd_error = true;
  auto d = FanotifyDaemon::Create(o, measurer_, list_, env_, log_);
  if (!d.ok()) {
    groups_.erase(dev);
    return d.status();
  }
  slot = std::make_unique<Group>();
  slot->daemon = std::move(*d);
  Group* gp = slot.get();
  gp->reader = StartOwnThread([gp] { gp->run_status = gp->daemon->Run(); });
  if (log_) log_(std::string(c == FsClass::kOverlay ? "overlay" : "FUSE") + " group started for " + path);
  return gp;
}

Status SideGroups::Mark(const std::string& path, const std::string& fstype) {
  FsClass c = ClassOfFs(fstype);
  if (c == FsClass::kPlain) return Status::InvalidArgument(fstype + " at " + path + " is no overlay or FUSE");
  LIM_ASSIGN_OR_RETURN(uint64_t dev, DeviceOf(path));  // never asks a FUSE server
  if (view_dev_ != 0 && dev == view_dev_) return Status::InvalidArgument(path + " is limd's own securityfs view");
  bool remeasure = c == FsClass::kFuse && FuseTrustedMounter(path);
  std::lock_guard<std::mutex> lk(mu_);
  if (stopped_) return Status::Unavailable("limd is stopping: " + path + " not marked");
  if (groups_.count(dev)) return Status::Ok();  // marked already (another mount of it)
  LIM_ASSIGN_OR_RETURN(Group * g, NewGroup(c, dev, path));
  return g->daemon->MarkFilesystem(path, fstype, remeasure);
}

void SideGroups::Stop() {
  std::map<uint64_t, std::unique_ptr<Group>> groups;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopped_ = true;
    groups.swap(groups_);
  }
  for (auto& [dev, g] : groups) g->daemon->Stop();  // all at once: each reader ends within 100 ms
  for (auto& [dev, g] : groups) {
    if (g->reader.joinable()) g->reader.join();
    if (!g->run_status.ok() && log_) log_("side group: " + g->run_status.message());
    g->daemon.reset();  // answers everything still queued
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
