#include "daemon/peer_threads.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/trace_events.h"

namespace lim::daemon {

namespace {

// 32 KiB of records per CPU: a FORK or EXIT record is 32 bytes, so 1,000 clones anywhere on
// the host between two of limd's events. More only costs a rescan of /proc/<peer>/task.
constexpr size_t kRingPages = 8;
// The largest record this event writes (FORK/EXIT: header, pid, ppid, tid, ptid, time):
// a ring with less free space than this may have dropped one.
constexpr uint64_t kMaxRecord = 64;

struct TaskRecord {  // PERF_RECORD_FORK and PERF_RECORD_EXIT after the header
  uint32_t pid, ppid, tid, ptid;
  uint64_t time;
};

}  // namespace

std::unique_ptr<PeerThreads> PeerThreads::Open(pid_t peer, std::string* mode) {
  int dir = ::open(("/proc/" + std::to_string(peer) + "/task").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    if (mode) *mode = "gone (/proc/" + std::to_string(peer) + "/task: " + strerror(errno) + ")";
    return nullptr;
  }
  std::unique_ptr<PeerThreads> p(new PeerThreads(peer, dir));
  std::string why;
  // Rings first, then the set: a thread made in between is in the rings (and maybe also
  // in the set, which is harmless).
  bool perf = p->OpenRings(&why);
  {
    std::lock_guard<std::mutex> lk(p->mu_);
    p->RescanLocked();
    p->rescans_ = 0;
  }
  if (mode) {
    *mode = perf ? "threads known from perf fork records on " + std::to_string(p->rings_.size()) + " CPUs"
                 : "one faccessat per event (" + why + ")";
  }
  return p;
}

PeerThreads::~PeerThreads() {
  for (auto& r : rings_) {
    if (r->base) ::munmap(r->base, r->size);
    if (r->fd >= 0) ::close(r->fd);
  }
  ::close(task_dir_);
}

bool PeerThreads::OpenRings(std::string* why) {
  long page = ::sysconf(_SC_PAGESIZE);
  for (int cpu : OnlineCpus()) {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_DUMMY;  // counts nothing: only the side-band records
    attr.task = 1;                      // PERF_RECORD_FORK / PERF_RECORD_EXIT
    attr.watermark = 1;
    attr.wakeup_watermark = 1u << 30;  // never wakes anyone: read at each event
    auto ring = std::make_unique<Ring>();
    ring->fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (ring->fd < 0) {
      *why = "perf_event_open cpu " + std::to_string(cpu) + ": " + strerror(errno);
      break;
    }
    ring->size = (kRingPages + 1) * static_cast<size_t>(page);
    ring->base = ::mmap(nullptr, ring->size, PROT_READ | PROT_WRITE, MAP_SHARED, ring->fd, 0);
    if (ring->base == MAP_FAILED) {
      ring->base = nullptr;
      *why = std::string("mmap perf ring: ") + strerror(errno);
      ::close(ring->fd);
      break;
    }
    rings_.push_back(std::move(ring));
  }
  if (!why->empty()) {
    for (auto& r : rings_) {
      ::munmap(r->base, r->size);
      ::close(r->fd);
    }
    rings_.clear();
    return false;
  }
  for (auto& r : rings_) {
    auto* meta = static_cast<perf_event_mmap_page*>(r->base);
    r->seen.store(__atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE));
    __atomic_store_n(&meta->data_tail, r->seen.load(), __ATOMIC_RELEASE);
  }
  return true;
}

bool PeerThreads::Quiet() const {
  for (const auto& r : rings_) {
    const auto* meta = static_cast<const perf_event_mmap_page*>(r->base);
    if (__atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE) != r->seen.load(std::memory_order_acquire)) return false;
  }
  return true;
}

void PeerThreads::CatchUpLocked() {
  long page = ::sysconf(_SC_PAGESIZE);
  bool rescan = false;
  std::vector<uint64_t> heads;
  for (auto& r : rings_) {
    auto* meta = static_cast<perf_event_mmap_page*>(r->base);
    auto* data = static_cast<const uint8_t*>(r->base) + page;
    uint64_t size = r->size - static_cast<size_t>(page);
    uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = r->seen.load();
    heads.push_back(head);
    if (head == tail) continue;
    // Records dropped while the ring was full leave no trace in the head: a ring that
    // could have filled is not trusted.
    if (head - tail > size - kMaxRecord) rescan = true;
    while (!rescan && tail < head) {
      perf_event_header h;
      for (size_t i = 0; i < sizeof h; ++i) reinterpret_cast<uint8_t*>(&h)[i] = data[(tail + i) % size];
      if (h.size < sizeof h || h.size > head - tail) {
        rescan = true;  // torn: never written by the kernel
        break;
      }
      if (h.type == PERF_RECORD_LOST) {
        rescan = true;
      } else if ((h.type == PERF_RECORD_FORK || h.type == PERF_RECORD_EXIT) && h.size >= sizeof h + sizeof(TaskRecord)) {
        TaskRecord t;
        for (size_t i = 0; i < sizeof t; ++i) reinterpret_cast<uint8_t*>(&t)[i] = data[(tail + sizeof h + i) % size];
        pid_t tid = static_cast<pid_t>(t.tid);
        if (static_cast<pid_t>(t.pid) == peer_ && tid != peer_) {
          if (h.type == PERF_RECORD_FORK) {
            threads_.insert(tid);
          } else {
            threads_.erase(tid);
          }
        }
      }
      tail += h.size;
    }
    __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
  }
  if (rescan) RescanLocked();
  // The count before the heads: a reader that sees a consumed head sees its threads.
  extra_threads_.store(threads_.size(), std::memory_order_release);
  for (size_t i = 0; i < rings_.size(); ++i) rings_[i]->seen.store(heads[i], std::memory_order_release);
}

void PeerThreads::RescanLocked() {
  rescans_++;
  int fd = ::openat(task_dir_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
  if (!d) {
    if (fd >= 0) ::close(fd);
    return;  // the peer is gone: Alive() refuses every tid anyway
  }
  threads_.clear();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long tid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && tid > 0 && tid != peer_) threads_.insert(static_cast<pid_t>(tid));
  }
  ::closedir(d);
  extra_threads_.store(threads_.size(), std::memory_order_release);
}

bool PeerThreads::Alive(pid_t tid) {
  lookups_++;
  char name[16];
  std::snprintf(name, sizeof name, "%d", static_cast<int>(tid));
  return ::faccessat(task_dir_, name, F_OK, 0) == 0;
}

bool PeerThreads::Contains(pid_t tid) {
  if (tid == peer_ || rings_.empty()) return Alive(tid);
  // The lock-free "no": the heads are loaded (acquire) before the thread count, which a
  // catch-up stores before it publishes the heads it consumed.
  if (Quiet() && extra_threads_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard<std::mutex> lk(mu_);
  CatchUpLocked();
  return threads_.count(tid) > 0 && Alive(tid);
}

}  // namespace lim::daemon
