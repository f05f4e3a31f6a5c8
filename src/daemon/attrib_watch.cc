#include "daemon/attrib_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "base/own_threads.h"
#include "daemon/reader_close_group.h"

namespace lim::daemon {

Result<std::unique_ptr<AttribWatch>> AttribWatch::Create(OnChange on_change, OnOverflow on_overflow) {
  // A bounded queue (no FAN_UNLIMITED_QUEUE): the thread keeps it short, and an overflow
  // costs only re-blessing (EvmState forgets), never a missed verification.
  unsigned flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_MARKS | FAN_REPORT_FID;
  int fd = fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
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
  ::close(stop_fd_);
  ::close(fd_);
}

Status AttribWatch::Mark(const std::string& root, uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (devs_.count(dev)) return Status::Ok();
  uint64_t fsid = FsidOfPath(root);
  // A zero fsid, or one another marked filesystem has (a copied image keeps its UUID),
  // cannot tell the filesystems' events apart.
  if (fsid == 0) return Status::Unsupported(root + ": no filesystem id");
  if (fsid_to_dev_.count(fsid)) return Status::Unsupported(root + ": its filesystem id is another marked filesystem's");
  int dfd = ::open(root.c_str(), O_PATH | O_CLOEXEC);
  if (dfd < 0) return Status::IoError(root + ": open: " + strerror(errno));
  bool handles = ReaderCloseGroup::EncodeHandle(dfd, "", AT_EMPTY_PATH).has_value();
  ::close(dfd);
  if (!handles) return Status::Unsupported(root + ": no file handles");
  if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_ATTRIB, AT_FDCWD, root.c_str()) != 0) {
    return Status::IoError(root + ": fanotify_mark(FAN_ATTRIB): " + strerror(errno));
  }
  fsid_to_dev_[fsid] = dev;
  devs_[dev] = root;
  return Status::Ok();
}

void AttribWatch::Forget(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  devs_.erase(dev);
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

std::optional<std::string> AttribWatch::Key(int fd, uint64_t dev) const {
  if (!Watching(dev)) return std::nullopt;
  auto h = ReaderCloseGroup::EncodeHandle(fd, "", AT_EMPTY_PATH);
  if (!h) return std::nullopt;
  return MakeKey(dev, *h);
}

Result<size_t> AttribWatch::Drain() {
  std::lock_guard<std::mutex> drain(drain_mu_);
  size_t events = 0;
  LIM_RETURN_IF_ERROR(ReadUntilEmpty(fd_, "attribute changes", [&](const char* buf, ssize_t n) {
    std::vector<std::string> keys;
    bool overflow = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      ForEachFidEvent(buf, n, [&](const struct fanotify_event_metadata& m, uint64_t fsid, const std::string& handle) {
        events++;
        events_++;
        if (m.mask & FAN_Q_OVERFLOW) overflow = true;
        auto dev = fsid_to_dev_.find(fsid);
        if (!handle.empty() && dev != fsid_to_dev_.end()) keys.push_back(MakeKey(dev->second, handle));
      });
    }
    if (overflow) {
      overflows_++;
      if (on_overflow_) on_overflow_();
    }
    for (const auto& k : keys) {
      if (on_change_) on_change_(k);
    }
  }));
  return events;
}

void AttribWatch::StartThread() {
  thread_ = StartOwnThread([this] {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    for (;;) {
      int r = ::poll(fds, 2, -1);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || (fds[1].revents & POLLIN)) return;
      if (fds[0].revents & POLLIN) (void)Drain();
    }
  });
}

}  // namespace lim::daemon
