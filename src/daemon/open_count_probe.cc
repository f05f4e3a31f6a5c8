#include "daemon/open_count_probe.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/own_threads.h"

namespace lim::daemon {

OpenCountProbe::OpenCountProbe(Measurer* measurer, ReaderCloses* closes, Env* env, InodeOpenCounts* counts,
                               BeforeClose before_close)
    : measurer_(measurer), closes_(closes), env_(env), counts_(counts), before_close_(std::move(before_close)) {}

OpenCountProbe::~OpenCountProbe() {
  measurer_->SetOpenSuspect(nullptr);
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OpenCountProbe::Start() {
  thread_ = StartOwnThread([this] {
    tid_.store(::gettid());
    Run();
  });
  measurer_->SetOpenSuspect([this](const InodeKey& key) { Suspect(key); });
}

void OpenCountProbe::Suspect(const InodeKey& key) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || queue_.size() >= kMaxQueued || !queued_.insert(key).second) return;
    queue_.push_back(key);
  }
  cv_.notify_one();
}

void OpenCountProbe::OwnClose(const InodeKey& key, pid_t tid) {
  if (tid != tid_.load()) return;
  std::optional<Pending> p;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    p = std::move(it->second);
    pending_.erase(it);
    queued_.erase(key);
  }
  cv_.notify_one();  // room for the next probe
  if (!p->snap.pin) return;  // not granted: only the probe's own close, now read
  std::optional<CloseNote> last_writer;
  if (!measurer_->ResetCounts(key, p->snap, &last_writer)) return;
  resets_++;
  if (last_writer) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      applies_.push_back(Apply{key, *last_writer, p->facts});
    }
    cv_.notify_one();
  }
}

void OpenCountProbe::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait_for(lk, std::chrono::seconds(1), [&] {
      return stop_ || !applies_.empty() || (!queue_.empty() && pending_.size() < kMaxPending);
    });
    if (stop_) return;
    // A reset writer count: the last writer's close, in the inode's turn (may wait for it).
    if (!applies_.empty()) {
      Apply a = applies_.front();
      applies_.pop_front();
      lk.unlock();
      measurer_->ApplyClose(a.key, a.note, a.facts);
      lk.lock();
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {  // a close never read (handle pruned)
      if (now - it->second.at > kPendingTimeout) {
        queued_.erase(it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (queue_.empty() || pending_.size() >= kMaxPending) continue;
    InodeKey key = queue_.front();
    queue_.pop_front();
    lk.unlock();
    ProbeOne(key);
    lk.lock();
  }
}

int OpenCountProbe::OpenByHandle(const InodeKey& key) {
  auto known = closes_->HandleOf(key);
  if (!known || known->handle.size() < sizeof(int)) return -1;
  // open_by_handle_at takes no O_PATH mount fd. A directory raises no event (no FAN_ONDIR).
  int mfd = ::open(known->root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mfd < 0) return -1;
  struct stat st;
  int pfd = -1;
  // The root may be unmounted or covered by another mount since: only the same superblock.
  if (::fstat(mfd, &st) == 0 && static_cast<uint64_t>(st.st_dev) == key.dev) {
    union {
      struct file_handle fh;
      char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
    } u;
    size_t bytes = known->handle.size() - sizeof(int);
    if (bytes <= MAX_HANDLE_SZ) {
      std::memcpy(&u.fh.handle_type, known->handle.data(), sizeof(int));
      u.fh.handle_bytes = static_cast<unsigned>(bytes);
      std::memcpy(u.fh.f_handle, known->handle.data() + sizeof(int), bytes);
      // O_PATH first: no open of a device, no event, until it is known to be the file.
      pfd = ::open_by_handle_at(mfd, &u.fh, O_PATH | O_CLOEXEC);
    }
  }
  ::close(mfd);
  if (pfd < 0) return -1;
  int fd = -1;
  if (::fstat(pfd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_dev) == key.dev &&
      static_cast<uint64_t>(st.st_ino) == key.ino) {
    // An ordinary open of that file (limd's own: answered at once, never counted).
    std::string self = "/proc/self/fd/" + std::to_string(pfd);
    fd = ::open(self.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  }
  ::close(pfd);
  return fd;
}

void OpenCountProbe::ProbeOne(const InodeKey& key) {
  // Before the open: every open noted on the inode after this is seen by ResetCounts.
  auto snap = measurer_->SnapshotCounts(key);
  if (!snap) {
    std::lock_guard<std::mutex> lk(mu_);
    queued_.erase(key);
    return;
  }
  int fd = OpenByHandle(key);
  if (fd < 0) {
    std::lock_guard<std::mutex> lk(mu_);
    queued_.erase(key);
    return;
  }
  probes_++;
  Pending p;
  p.at = std::chrono::steady_clock::now();
  // Is fd the only open of the inode? "granted": yes, at one instant (see the header).
  bool granted = false;
  std::optional<InodeOpenCounts::Counts> counts;
  if (counts_) {
    if (auto c = counts_->Read(fd); c.ok()) counts = *c;
  }
  if (counts) {
    granted = counts->readers == 1 && counts->writers == 0;
    by_counts_++;
  } else {
    granted = ::fcntl(fd, F_SETSIG, SIGURG) == 0 && ::fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
    if (granted) (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
  }
  if (granted) {
    auto facts = env_->Facts(fd);
    if (facts.ok()) {
      p.facts = *facts;
      p.snap = std::move(*snap);
      if (before_close_) before_close_(fd, key, p.snap);
    }
  }
  {
    // Kept until the close below is read, granted or not: a second close of the same
    // inode by this thread while the first is queued would merge with it.
    std::lock_guard<std::mutex> lk(mu_);
    pending_[key] = std::move(p);
  }
  ::close(fd);
}

}  // namespace lim::daemon
