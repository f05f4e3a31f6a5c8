#include "daemon/mount_watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

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
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

std::map<dev_t, FoundMount> MountWatch::Discover() {
  struct stat r;
  if (::stat("/", &r) == 0) root_dev_ = r.st_dev;
  marked_.insert(options_.already_marked.begin(), options_.already_marked.end());
  std::map<dev_t, FoundMount> found;
  for (const auto& [ino, pid] : LiveNamespaces()) ScanMounts(pid, &found);
  return found;
}

Status MountWatch::Start() {
  struct stat r;
  if (::stat("/", &r) != 0) return Status::IoError(std::string("stat /: ") + strerror(errno));
  root_dev_ = r.st_dev;
  marked_.insert(options_.already_marked.begin(), options_.already_marked.end());
  fd_ = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
  if (fd_ < 0 && log_) {
    log_(std::string("mount namespaces not watched (fanotify_init FAN_REPORT_MNT: ") + strerror(errno) +
         "): filesystems mounted later are not marked");
  }
  ScanNamespaces(true);
  if (fd_ >= 0) thread_ = StartOwnThread([this] { Loop(); });
  return Status::Ok();
}

void MountWatch::Loop() {
  alignas(struct fanotify_event_metadata) char buf[4096];
  auto last_ns_scan = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    bool attached = false;
    if (r > 0) {
      while (::read(fd_, buf, sizeof buf) > 0) attached = true;  // only a trigger: drain
    }
    auto now = std::chrono::steady_clock::now();
    if (attached || now - last_ns_scan > std::chrono::milliseconds(500)) {
      last_ns_scan = now;
      ScanNamespaces(attached);
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
  std::ifstream in(proc + "/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mnt;
    ls >> id >> parent >> devno >> root >> mnt;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::string fstype = line.substr(sep + 3, line.find(' ', sep + 3) - sep - 3);
    std::string mount_point = UnescapeMountinfo(mnt);
    if (!MountQualifies(fstype, mount_point, options_.watch)) continue;
    std::string path = proc + "/root" + (mount_point == "/" ? "" : mount_point);
    // Without asking the filesystem (a stopped FUSE server must not stall discovery).
    auto dev_r = DeviceOf(path);
    if (!dev_r.ok()) {
      // A FUSE mount limd may not use (another user's without allow_other, or one from a
      // user namespace: the fuse module refuses limd). Not marked: said once per mount
      // (docs/limd.md "FUSE").
      if (log_ && ClassOfFs(fstype) == FsClass::kFuse && unreachable_.insert(id).second) {
        log_("cannot mark " + fstype + " at " + mount_point + " (namespace of pid " + std::to_string(pid) +
             "): " + dev_r.status().message() + " — its files are not measured");
      }
      continue;
    }
    auto dev = static_cast<dev_t>(*dev_r);
    if (marked_.count(dev)) continue;
    if (dev == root_dev_ && !options_.allow_root_fs) {
      if (!root_logged_ && log_) log_("the root filesystem (" + fstype + ") is not marked: it needs --allow-root-fs");
      root_logged_ = true;
      continue;
    }
    if (collect) {
      collect->emplace(dev, FoundMount{path, mount_point, fstype});
      continue;
    }
    marked_.insert(dev);
    Status s = mark_(path, fstype);
    if (log_) {
      log_((s.ok() ? "marked " : "cannot mark ") + fstype + " at " + mount_point + " (namespace of pid " +
           std::to_string(pid) + ")" + (s.ok() ? "" : ": " + s.message()));
    }
  }
}

}  // namespace lim::daemon
