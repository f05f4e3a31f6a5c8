#include "daemon/reader_close_group.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace lim::daemon {

namespace {

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200  // 6.5+: a handle that identifies, not one to open by (fanotify's)
#endif

// statfs's __fsid_t and fanotify's __kernel_fsid_t: both two ints, as one word.
uint64_t FsidWord(int lo, int hi) {
  return static_cast<uint64_t>(static_cast<uint32_t>(lo)) | static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32;
}

// A handle as limd keys it: handle_type, then the handle's bytes (name_to_handle_at and a
// fanotify FID record give the same struct file_handle).
std::string HandleString(const struct file_handle& fh) {
  std::string h(sizeof(int) + fh.handle_bytes, '\0');
  std::memcpy(h.data(), &fh.handle_type, sizeof(int));
  std::memcpy(h.data() + sizeof(int), fh.f_handle, fh.handle_bytes);
  return h;
}

}  // namespace

void ForEachFidEvent(const char* buf, ssize_t n,
                     const std::function<void(const fanotify_event_metadata& m, uint64_t fsid, const std::string& handle)>& f) {
  auto* m = reinterpret_cast<const struct fanotify_event_metadata*>(buf);
  while (FAN_EVENT_OK(m, n)) {
    bool any = false;
    const char* p = reinterpret_cast<const char*>(m) + m->metadata_len;
    const char* end = reinterpret_cast<const char*>(m) + m->event_len;
    while (p + sizeof(struct fanotify_event_info_header) <= end) {
      const auto* hdr = reinterpret_cast<const struct fanotify_event_info_header*>(p);
      if (hdr->len < sizeof *hdr || p + hdr->len > end) break;  // malformed: skip the rest
      if (hdr->info_type == FAN_EVENT_INFO_TYPE_FID &&
          hdr->len >= sizeof(struct fanotify_event_info_fid) + sizeof(struct file_handle)) {
        const auto* fid = reinterpret_cast<const struct fanotify_event_info_fid*>(p);
        const auto* fh = reinterpret_cast<const struct file_handle*>(fid->handle);
        size_t room = hdr->len - sizeof(struct fanotify_event_info_fid) - sizeof(struct file_handle);
        if (fh->handle_bytes <= room) {
          f(*m, FsidWord(fid->fsid.val[0], fid->fsid.val[1]), HandleString(*fh));
          any = true;
        }
      }
      p += hdr->len;
    }
    if (!any) f(*m, 0, std::string());
    m = FAN_EVENT_NEXT(m, n);
  }
}

Status ReadUntilEmpty(int fd, const char* what, const std::function<void(const char* buf, ssize_t n)>& batch) {
  alignas(struct fanotify_event_metadata) static thread_local char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Status::Ok();
      return Status::IoError(std::string("read fanotify (") + what + "): " + strerror(errno));
    }
    batch(buf, n);
    // fanotify_read stops at an empty queue or at an event that does not fit: with room
    // left for the largest event (metadata, one fid record, a MAX_HANDLE_SZ handle: under
    // 200 bytes) the queue was empty when this read returned, so everything queued before
    // the call has been read — the read that would say EAGAIN is one syscall saved (one per
    // drain: several per spawn).
    if (sizeof buf - static_cast<size_t>(n) >= kRoomForAnyEvent) return Status::Ok();
  }
}

uint64_t FsidOfPath(const std::string& path) {
  struct statfs sfs;
  if (::statfs(path.c_str(), &sfs) != 0) return 0;
  return FsidWord(sfs.f_fsid.__val[0], sfs.f_fsid.__val[1]);
}

std::unique_ptr<ReaderCloseGroup> ReaderCloseGroup::Create(bool report_tid) {
  unsigned flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS |
                   FAN_REPORT_FID | (report_tid ? FAN_REPORT_TID : 0);
  int fd = fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::unique_ptr<ReaderCloseGroup>(new ReaderCloseGroup(fd));
}

ReaderCloseGroup::~ReaderCloseGroup() {
  if (fd_ >= 0) ::close(fd_);
}

bool ReaderCloseGroup::Mark(const std::string& root, uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (devs_.count(dev)) return true;
  uint64_t fsid = FsidOfPath(root);
  // A zero fsid, or one a marked filesystem already has (a copied image keeps its UUID),
  // cannot tell the filesystems' events apart.
  if (fsid == 0 || fsid_to_dev_.count(fsid)) return false;
  // The filesystem must give handles limd can learn.
  int dfd = ::open(root.c_str(), O_PATH | O_CLOEXEC);
  if (dfd < 0) return false;
  bool handles = EncodeHandle(dfd, "", AT_EMPTY_PATH).has_value();
  ::close(dfd);
  if (!handles) return false;
  if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_NOWRITE, AT_FDCWD, root.c_str()) != 0) {
    return false;  // e.g. no export operations (EOPNOTSUPP), a btrfs subvolume (EXDEV)
  }
  fsid_to_dev_[fsid] = dev;
  devs_[dev] = root;
  return true;
}

void ReaderCloseGroup::Forget(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  devs_.erase(dev);
  for (auto it = fsid_to_dev_.begin(); it != fsid_to_dev_.end();) {
    it = it->second == dev ? fsid_to_dev_.erase(it) : std::next(it);
  }
}

std::optional<std::string> ReaderCloseGroup::EncodeHandle(int dirfd, const char* path, int flags) {
  union {
    struct file_handle fh;
    char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  } u;
  for (int extra : {AT_HANDLE_FID, 0}) {  // kernels before 6.5 know no AT_HANDLE_FID
    u.fh.handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    if (::name_to_handle_at(dirfd, path, &u.fh, &mount_id, flags | extra) == 0) return HandleString(u.fh);
    if (errno != EINVAL) break;
  }
  return std::nullopt;
}

std::string ReaderCloseGroup::MapKey(uint64_t dev, const std::string& handle) {
  std::string k(sizeof dev, '\0');
  std::memcpy(k.data(), &dev, sizeof dev);
  return k + handle;
}

void ReaderCloseGroup::Learn(int fd, const InodeKey& key, int64_t ctime_ns) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!devs_.count(key.dev)) return;
    auto it = learned_.find(key);
    if (it != learned_.end() && it->second.ctime_ns == ctime_ns) return;
  }
  auto h = EncodeHandle(fd, "", AT_EMPTY_PATH);
  std::lock_guard<std::mutex> lk(mu_);
  if (h) LearnLocked(key, *h, ctime_ns);
}

void ReaderCloseGroup::Learn(const InodeKey& key, const std::string& handle, int64_t ctime_ns) {
  std::lock_guard<std::mutex> lk(mu_);
  LearnLocked(key, handle, ctime_ns);
}

void ReaderCloseGroup::LearnLocked(const InodeKey& key, const std::string& handle, int64_t ctime_ns) {
  // An older handle of the same inode number stays: a close of the old file still queued
  // belongs to the same count (the number is reused only after that file's last close).
  auto [it, inserted] = by_handle_.try_emplace(MapKey(key.dev, handle), key);
  if (!inserted && !(it->second == key)) {
    // The handle named another inode key (a device number reused): that key's latest handle
    // is no longer known. Every other pointer into by_handle_ is its own key's.
    auto old = learned_.find(it->second);
    if (old != learned_.end() && old->second.map_key == &it->first) old->second.map_key = nullptr;
    it->second = key;
  }
  learned_[key] = Learned{ctime_ns, &it->first};
}

std::optional<ReaderCloseGroup::Known> ReaderCloseGroup::HandleOf(const InodeKey& key) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = learned_.find(key);
  auto dev = devs_.find(key.dev);
  if (it == learned_.end() || !it->second.map_key || dev == devs_.end()) return std::nullopt;
  return Known{it->second.map_key->substr(sizeof key.dev), dev->second};
}

void ReaderCloseGroup::Prune(size_t max, const std::function<bool(const InodeKey&)>& keep) {
  std::lock_guard<std::mutex> lk(mu_);
  if (by_handle_.size() <= max) return;
  for (auto it = by_handle_.begin(); it != by_handle_.end();) {
    if (keep(it->second)) {
      ++it;
    } else {
      learned_.erase(it->second);
      it = by_handle_.erase(it);
    }
  }
}

Result<size_t> ReaderCloseGroup::Drain(const std::function<void(const InodeKey&, pid_t)>& on_close) {
  size_t events = 0;
  LIM_RETURN_IF_ERROR(ReadUntilEmpty(fd_, "reader closes", [&](const char* buf, ssize_t n) {
    std::vector<std::pair<InodeKey, pid_t>> closes;
    std::unique_lock<std::mutex> lk(mu_);
    ForEachFidEvent(buf, n, [&](const struct fanotify_event_metadata& m, uint64_t fsid, const std::string& handle) {
      events++;
      auto dev = fsid_to_dev_.find(fsid);
      if (handle.empty() || dev == fsid_to_dev_.end()) return;
      auto it = by_handle_.find(MapKey(dev->second, handle));
      if (it != by_handle_.end()) closes.emplace_back(it->second, m.pid);
    });
    lk.unlock();
    for (const auto& [key, tid] : closes) on_close(key, tid);
  }));
  return events;
}

void ReaderCloseGroup::FlushMarks() { (void)fanotify_mark(fd_, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, nullptr); }

}  // namespace lim::daemon
