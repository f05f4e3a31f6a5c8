#include "daemon/mount_watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "base/file.h"
#include "base/mountinfo.h"
#include "base/own_threads.h"
#include "daemon/fanotify_daemon.h"
#include "daemon/fanotify_uapi.h"
#include "daemon/side_group.h"

namespace lim::daemon {

bool DefaultFsType(const std::string& t) {
  static const std::set<std::string> kTypes = {"ext2",  "ext3",    "ext4",  "xfs",   "btrfs", "f2fs",
                                               "vfat",  "exfat",   "ntfs3", "tmpfs", "squashfs", "erofs",
                                               "iso9660", "bcachefs"};
  // overlay and FUSE: marked in groups of their own (side_group.h).
  return kTypes.count(t) > 0 || ClassOfFs(t) != FsClass::kPlain;
}

bool MountQualifies(const std::string& fstype, const std::string& mount_point, const std::vector<std::string>& watch) {
  if (watch.empty()) return DefaultFsType(fstype);
  if (RefusedFsType(fstype)) return false;
  for (const auto& w : watch) {
    if (mount_point == w) return true;
    std::string prefix = w == "/" ? w : w + "/";
    if (mount_point.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

MountWatch::MountWatch(MountWatchOptions options, MarkFn mark, std::function<void(const std::string&)> log)
    : options_(std::move(options)), mark_(std::move(mark)), log_(std::move(log)) {}

MountWatch::~MountWatch() {
  stop_ = true;
  Poke(0);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  for (auto& [ino, p] : poked_) Unpin(p);
}

void MountWatch::Poke(pid_t pid) {
  if (wake_fd_ < 0) return;
  std::string proc = "/proc/" + std::to_string(pid);
  struct stat ns;
  ino_t ino = 0;  // unknown (gone already): every namespace
  if (pid > 0 && ::stat((proc + "/ns/mnt").c_str(), &ns) == 0) ino = ns.st_ino;
  {
    std::lock_guard<std::mutex> lk(poke_mu_);
    poke_at_.emplace(ino, std::chrono::steady_clock::now());
    if (poked_.size() >= 256) ino = 0;
    if (!poked_.count(ino)) {
      Poked p;
      p.pid = pid;
      if (ino != 0) {
        p.root_fd = ::open((proc + "/root").c_str(), O_PATH | O_CLOEXEC);
        p.mountinfo_fd = ::open((proc + "/mountinfo").c_str(), O_RDONLY | O_CLOEXEC);
      }
      poked_.emplace(ino, p);
    }
  }
  pokes_++;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void MountWatch::Unpin(Poked& p) {
  if (p.root_fd >= 0) ::close(p.root_fd);
  if (p.mountinfo_fd >= 0) ::close(p.mountinfo_fd);
  p.root_fd = p.mountinfo_fd = -1;
}


std::string FsTypeAt(const std::string& mountinfo, const std::string& path) {
  std::string_view text = mountinfo, line;
  std::string best_type;
  size_t best_len = 0;
  bool found = false;
  while (NextMountinfoLine(&text, &line)) {
    auto m = ParseMountinfoLine(line);
    if (!m) continue;
    const std::string& mp = m->mount_point;
    bool covers = mp == "/" || path == mp || path.compare(0, mp.size() + 1, mp + "/") == 0;
    if (covers && (!found || mp.size() >= best_len)) best_len = mp.size(), best_type = m->fstype, found = true;
  }
  return best_type;
}

std::optional<FoundMount> MountWatch::QualifyingMount(const std::string& mountinfo, pid_t pid, dev_t dev) const {
  if (dev == root_dev_ && !options_.allow_root_fs) return std::nullopt;
  std::string proc = "/proc/" + std::to_string(pid);
  std::string_view text = mountinfo, line;
  while (NextMountinfoLine(&text, &line)) {
    auto m = ParseMountinfoLine(line);
    if (!m || m->dev != dev || !MountQualifies(m->fstype, m->mount_point, options_.watch)) continue;
    return FoundMount{proc + "/root" + (m->mount_point == "/" ? "" : m->mount_point), m->mount_point, m->fstype};
  }
  return std::nullopt;
}

std::map<dev_t, FoundMount> MountWatch::Discover() {
  struct stat r;
  if (::stat("/", &r) == 0) root_dev_ = r.st_dev;
  for (dev_t d : options_.already_marked) marked_.emplace(d, "");
  std::map<dev_t, FoundMount> found;
  for (const auto& [ino, pid] : LiveNamespaces()) ScanMounts(pid, &found);
  return found;
}

Status MountWatch::Start() {
  struct stat r;
  if (::stat("/", &r) != 0) return Status::IoError(std::string("stat /: ") + strerror(errno));
  root_dev_ = r.st_dev;
  for (dev_t d : options_.already_marked) marked_.emplace(d, "");
  fd_ = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
  if (fd_ < 0 && log_) {
    log_(std::string("mount namespaces not watched (fanotify_init FAN_REPORT_MNT: ") + strerror(errno) +
         "): filesystems mounted later are not marked");
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ScanNamespaces(true);
  started_ = true;
  // Without FAN_REPORT_MNT the thread still follows pokes and the timer.
  if (fd_ >= 0 || wake_fd_ >= 0) thread_ = StartOwnThread([this] { Loop(); });
  return Status::Ok();
}

void MountWatch::Loop() {
  if (options_.nice != 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.nice);
  alignas(struct fanotify_event_metadata) char buf[4096];
  auto last_ns_scan = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};  // poll skips a -1
    int r = ::poll(p, 2, 100);
    bool attached = false;
    std::map<ino_t, Poked> poked;
    if (r > 0) {
      if (fd_ >= 0) {
        while (::read(fd_, buf, sizeof buf) > 0) attached = true;  // only a trigger: drain
      }
      uint64_t n;
      if (wake_fd_ >= 0 && ::read(wake_fd_, &n, sizeof n) > 0) {
        std::lock_guard<std::mutex> lk(poke_mu_);
        poked.swap(poked_);
        scan_poke_at_ = {};
        for (const auto& [ino, at] : poke_at_) {
          if (scan_poke_at_ == std::chrono::steady_clock::time_point{} || at < scan_poke_at_) scan_poke_at_ = at;
        }
        poke_at_.clear();
      }
    }
    if (stop_.load()) break;
    bool everywhere = attached || poked.count(0);
    // A poked namespace first, through what the poke pinned: the walk of /proc below takes
    // milliseconds, an exec right after a mount does not wait.
    std::set<ino_t> done;
    for (auto& [ino, pin] : poked) {
      if (ino != 0 && pin.root_fd >= 0 && pin.mountinfo_fd >= 0) {
        std::string text;
        char chunk[4096];
        ssize_t n;
        while ((n = ::read(pin.mountinfo_fd, chunk, sizeof chunk)) > 0) text.append(chunk, static_cast<size_t>(n));
        ScanMountsIn(text, "/proc/self/fd/" + std::to_string(pin.root_fd), pin.pid, nullptr);
        done.insert(ino);
      }
      Unpin(pin);
    }
    auto now = std::chrono::steady_clock::now();
    if (everywhere || !poked.empty() || now - last_ns_scan > std::chrono::milliseconds(500)) {
      last_ns_scan = now;
      ScanNamespaces(everywhere);
      // The other poked namespaces, also when already known (a mount in a known namespace),
      // through any process still in them.
      if (!everywhere) {
        for (const auto& [ino, pin] : poked) {
          auto it = ns_.find(ino);
          if (!done.count(ino) && it != ns_.end()) ScanMounts(it->second, nullptr);
        }
      }
    }
  }
}

// Every mount namespace with a live process: new ones get the FAN_MARK_MNTNS mark and a
// mount scan; with rescan_all (an attach happened somewhere) every namespace is scanned.
std::map<ino_t, pid_t> MountWatch::LiveNamespaces() {
  std::map<ino_t, pid_t> seen;
  DIR* d = ::opendir("/proc");
  if (!d) return seen;
  pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t pid = std::atoi(e->d_name);
    if (pid == self) continue;  // limd's own namespace is found through any other process too
    struct stat st;
    if (::stat(("/proc/" + std::string(e->d_name) + "/ns/mnt").c_str(), &st) != 0) continue;
    seen.emplace(st.st_ino, pid);
  }
  ::closedir(d);
  struct stat own;
  if (::stat("/proc/self/ns/mnt", &own) == 0 && !seen.count(own.st_ino)) seen.emplace(own.st_ino, self);
  return seen;
}

void MountWatch::ScanNamespaces(bool rescan_all) {
  std::map<ino_t, pid_t> seen = LiveNamespaces();
  for (const auto& [ino, pid] : seen) {
    bool is_new = !ns_.count(ino);
    if (is_new && fd_ >= 0) {
      int nsfd = ::open(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd >= 0) {
        if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_MNTNS, FAN_MNT_ATTACH, nsfd, nullptr) != 0 && log_) {
          log_("mount namespace of pid " + std::to_string(pid) + ": FAN_MARK_MNTNS: " + strerror(errno));
        }
        ::close(nsfd);
      }
    }
    // Mark first, scan second: a mount attached in between is an event, not lost.
    if (is_new || rescan_all) ScanMounts(pid, nullptr);
  }
  ns_ = std::move(seen);
  namespaces_ = ns_.size();
}

void MountWatch::ScanMounts(pid_t pid, std::map<dev_t, FoundMount>* collect) {
  std::string proc = "/proc/" + std::to_string(pid);
  auto text = ReadFileText(proc + "/mountinfo");
  if (text.ok()) ScanMountsIn(*text, proc + "/root", pid, collect);
}

std::optional<uint64_t> MountWatch::MountIdOf(const std::string& path) {
  struct statx sx {};
  // No sync and no automount: never waits on a FUSE server or mounts anything.
  if (::statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_MNT_ID, &sx) != 0) return std::nullopt;
  if (!(sx.stx_mask & STATX_MNT_ID)) return std::nullopt;
  return sx.stx_mnt_id;
}

void MountWatch::ScanMountsIn(const std::string& mountinfo, const std::string& root, pid_t pid,
                              std::map<dev_t, FoundMount>* collect) {
  std::string_view text = mountinfo, line;
  while (NextMountinfoLine(&text, &line)) {
    auto m = ParseMountinfoLine(line);
    if (!m) continue;
    const std::string& fstype = m->fstype;
    const std::string& mount_point = m->mount_point;
    if (!MountQualifies(fstype, mount_point, options_.watch)) continue;
    std::string path = root + (mount_point == "/" ? "" : mount_point);
    // Without asking the filesystem (a stopped FUSE server must not stall discovery).
    auto dev_r = DeviceOf(path);
    if (!dev_r.ok()) {
      // A FUSE mount limd may not use (another user's without allow_other, or one from a
      // user namespace: the fuse module refuses limd). Not marked: said once per mount
      // (docs/limd.md "FUSE").
      if (log_ && ClassOfFs(fstype) == FsClass::kFuse && unreachable_.insert(m->id).second) {
        log_("cannot mark " + fstype + " at " + mount_point + " (namespace of pid " + std::to_string(pid) +
             "): " + dev_r.status().message() + " — its files are not measured");
      }
      continue;
    }
    auto dev = static_cast<dev_t>(*dev_r);
    // A mount covered by a later one on the same point: the path leads to the top one, whose
    // own line says what it is.
    if (auto id = MountIdOf(path); id && std::to_string(*id) != m->id) continue;
    std::string identity = fstype + '\0' + m->source;
    if (auto known = marked_.find(dev); known != marked_.end()) {
      if (collect) continue;
      // Marked before Start() (a --watch root): the first mount seen under the number is
      // that superblock's (the scan follows the marks at once).
      if (known->second.empty()) {
        known->second = identity;
        continue;
      }
      const std::string& was = known->second;
      // A superblock keeps its type: another type under the number is another superblock.
      bool retyped = was.substr(0, was.find('\0')) != fstype;
      if (!retyped) {
        if (failed_.count(dev) || (options_.refused && options_.refused(dev))) {
          // No mark to ask: the same type and source is taken for the same superblock.
          if (was == identity) continue;
        } else if (!options_.still_marked || options_.still_marked(dev, path)) {
          continue;
        }
      }
      failed_.erase(dev);
      marked_.erase(known);  // that superblock is gone: a new one has its number
    }
    if (dev == root_dev_ && !options_.allow_root_fs) {
      if (!root_logged_ && log_) log_("the root filesystem (" + fstype + ") is not marked: it needs --allow-root-fs");
      root_logged_ = true;
      continue;
    }
    if (collect) {
      collect->emplace(dev, FoundMount{path, mount_point, fstype});
      continue;
    }
    marked_[dev] = identity;
    Status s = mark_(path, fstype);
    if (!s.ok()) failed_.insert(dev);
    if (s.ok() && scan_poke_at_ != std::chrono::steady_clock::time_point{}) {
      auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now() - scan_poke_at_)
                                          .count());
      poke_to_mark_.Add(us);
    }
    // Never a FUSE superblock: reading its files asks its server, which may never answer
    // (FUSE is not start-scanned either).
    if (s.ok() && started_ && options_.after_mark && ClassOfFs(fstype) != FsClass::kFuse) options_.after_mark(path, dev);
    if (log_) {
      log_((s.ok() ? "marked " : "cannot mark ") + fstype + " at " + mount_point + " (namespace of pid " +
           std::to_string(pid) + ")" + (s.ok() ? "" : ": " + s.message()));
    }
  }
}

}  // namespace lim::daemon
