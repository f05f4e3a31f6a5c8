#include "daemon/attrib_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "base/file.h"
#include "base/own_threads.h"
#include "daemon/fanotify_group.h"
#include "daemon/reader_close_group.h"

namespace lim::daemon {

namespace {

// fanotify_init flags of every attribute group. A bounded queue (no FAN_UNLIMITED_QUEUE):
// the thread keeps it short, and an overflow costs only re-blessing (EvmState forgets),
// never a missed verification.
constexpr unsigned kGroupFlags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_MARKS | FAN_REPORT_FID;

}  // namespace

Result<std::unique_ptr<AttribWatch>> AttribWatch::Create(OnChange on_change, OnOverflow on_overflow) {
  int fd = fanotify_init(kGroupFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return Status::Unsupported(std::string("fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID): ") + strerror(errno));
  int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) {
    int e = errno;
    ::close(fd);
    return Status::IoError(std::string("eventfd: ") + strerror(e));
  }
  return std::unique_ptr<AttribWatch>(new AttribWatch(fd, stop, std::move(on_change), std::move(on_overflow)));
}

AttribWatch::AttribWatch(int fd, int stop_fd, OnChange on_change, OnOverflow on_overflow)
    : fd_(fd), stop_fd_(stop_fd), on_change_(std::move(on_change)), on_overflow_(std::move(on_overflow)) {}

AttribWatch::~AttribWatch() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  for (auto& [dev, p] : per_inode_) {
    if (p.fd != fd_) ::close(p.fd);
  }
  ::close(stop_fd_);
  ::close(fd_);
}

Status AttribWatch::Mark(const std::string& root, uint64_t dev) {
  bool replaced = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (devs_.count(dev)) {
      // A filesystem mark dies with its superblock; a new superblock that took the device
      // number (an anonymous one is reused at once: tmpfs unmounted and mounted again, a
      // loop device attached again) would otherwise be taken for the one watched, and its
      // changes never seen.
      if (per_inode_.count(dev) || SuperblockStillMarked(dev)) return Status::Ok();
      ForgetLocked(dev);
      replaced = true;
    }
  }
  // Its files may have been changed while it was away (offline, as EVM fears): what was
  // verified on it must not be re-HMACed. Outside the lock: the callback may ask for keys.
  if (replaced && on_overflow_) {
    on_overflow_(root + " is a new filesystem on a device number watched before (changes while it was away were not seen)");
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (devs_.count(dev)) return Status::Ok();
  uint64_t fsid = FsidOfPath(root);
  // One fsid, one filesystem: a copied image keeps its UUID, so two filesystems' events
  // could not be told apart. A zero fsid (FUSE) gets a group of its own instead.
  if (fsid != 0 && fsid_to_dev_.count(fsid)) {
    return Status::Unsupported(root + ": its filesystem id is another marked filesystem's");
  }
  int dfd = ::open(root.c_str(), O_PATH | O_CLOEXEC);
  if (dfd < 0) return Status::IoError(root + ": open: " + strerror(errno));
  bool handles = ReaderCloseGroup::EncodeHandle(dfd, "", AT_EMPTY_PATH).has_value();
  ::close(dfd);
  if (!handles) return Status::Unsupported(root + ": no file handles");
  if (fsid != 0) {
    if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_ATTRIB, AT_FDCWD, root.c_str()) == 0) {
      fsid_to_dev_[fsid] = dev;
      devs_[dev] = root;
      return Status::Ok();
    }
    // overlayfs: EOPNOTSUPP; others the kernel may refuse alike.
    if (errno != EOPNOTSUPP && errno != ENODEV && errno != EXDEV) {
      return Status::IoError(root + ": fanotify_mark(FAN_ATTRIB): " + strerror(errno));
    }
    fsid_to_dev_[fsid] = dev;
    per_inode_[dev].fd = fd_;
  } else {
    int own = fanotify_init(kGroupFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (own < 0) return Status::IoError(root + ": fanotify_init for a zero-fsid filesystem: " + strerror(errno));
    per_inode_[dev].fd = own;
  }
  devs_[dev] = root;
  return Status::Ok();
}

bool AttribWatch::PerInode(uint64_t dev) const {
  std::lock_guard<std::mutex> lk(mu_);
  return per_inode_.count(dev) != 0;
}

bool AttribWatch::SuperblockStillMarked(uint64_t dev) const {
  // Bounded: a line a mark, at most kMaxInodeMarks inode marks beside the filesystem marks.
  auto text = ReadFileTextBounded("/proc/self/fdinfo/" + std::to_string(fd_), 64u << 20, "fanotify fdinfo");
  if (!text.ok()) return true;  // cannot tell: keep what is believed
  return text->find(SuperblockMarkLine(dev)) != std::string::npos;
}

void AttribWatch::ForgetLocked(uint64_t dev) {
  devs_.erase(dev);
  if (auto it = per_inode_.find(dev); it != per_inode_.end()) {
    // The drain lock is not held here: a drain of this fd at this moment reads a closed
    // (or reused) fd number. Keep own groups open; their marks die with the filesystem.
    it->second.marked.clear();
  }
  for (auto it = fsid_to_dev_.begin(); it != fsid_to_dev_.end();) {
    it = it->second == dev ? fsid_to_dev_.erase(it) : std::next(it);
  }
}

bool AttribWatch::Watching(uint64_t dev) const {
  std::lock_guard<std::mutex> lk(mu_);
  return devs_.count(dev) != 0;
}

std::string AttribWatch::MakeKey(uint64_t dev, const std::string& handle) {
  std::string k(sizeof dev, '\0');
  std::memcpy(k.data(), &dev, sizeof dev);
  return k + handle;
}

std::optional<std::string> AttribWatch::Key(int fd, uint64_t dev) {
  if (!Watching(dev)) return std::nullopt;
  auto h = ReaderCloseGroup::EncodeHandle(fd, "", AT_EMPTY_PATH);
  if (!h) return std::nullopt;
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = per_inode_.find(dev); it != per_inode_.end()) {
    PerInodeFs& p = it->second;
    if (!p.marked.count(*h)) {
      if (p.marked.size() >= kMaxInodeMarks) return std::nullopt;
      // The inode the fd refers to (no path: dirfd alone names it).
      if (fanotify_mark(p.fd, FAN_MARK_ADD | FAN_MARK_INODE, FAN_ATTRIB, fd, nullptr) != 0) return std::nullopt;
      p.marked.insert(*h);
    }
  }
  return MakeKey(dev, *h);
}

Status AttribWatch::DrainFd(int fd, uint64_t only_dev, size_t* events) {
  return ReadUntilEmpty(fd, "attribute changes", [&](const char* buf, ssize_t n) {
    std::vector<std::string> keys;
    bool overflow = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      ForEachFidEvent(buf, n, [&](const struct fanotify_event_metadata& m, uint64_t fsid, const std::string& handle) {
        ++*events;
        events_++;
        if (m.mask & FAN_Q_OVERFLOW) overflow = true;
        if (handle.empty()) return;
        if (only_dev) {
          keys.push_back(MakeKey(only_dev, handle));
        } else if (auto dev = fsid_to_dev_.find(fsid); dev != fsid_to_dev_.end()) {
          keys.push_back(MakeKey(dev->second, handle));
        }
      });
    }
    if (overflow) {
      overflows_++;
      if (on_overflow_) on_overflow_("attribute changes were lost (queue overflow)");
    }
    for (const auto& k : keys) {
      if (on_change_) on_change_(k);
    }
  });
}

Result<size_t> AttribWatch::Drain() {
  std::lock_guard<std::mutex> drain(drain_mu_);
  size_t events = 0;
  LIM_RETURN_IF_ERROR(DrainFd(fd_, 0, &events));
  std::vector<std::pair<int, uint64_t>> own;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [dev, p] : per_inode_) {
      if (p.fd != fd_) own.emplace_back(p.fd, dev);
    }
  }
  for (const auto& [fd, dev] : own) LIM_RETURN_IF_ERROR(DrainFd(fd, dev, &events));
  return events;
}

void AttribWatch::StartThread() {
  thread_ = StartOwnThread([this] {
    for (;;) {
      // Groups of zero-fsid filesystems come with their marks: the set is read again at
      // least every second.
      std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};
      {
        std::lock_guard<std::mutex> lk(mu_);
        for (const auto& [dev, p] : per_inode_) {
          if (p.fd != fd_) fds.push_back({p.fd, POLLIN, 0});
        }
      }
      int r = ::poll(fds.data(), fds.size(), 1000);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || (fds[0].revents & POLLIN)) return;
      if (r > 0) (void)Drain();
    }
  });
}

}  // namespace lim::daemon
