#include "daemon/trace_events.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "base/file.h"
#include "base/own_threads.h"

namespace lim::daemon {

namespace {

constexpr size_t kRingPages = 16;  // per CPU, plus the header page: 64 KiB of records
// With executable mappings (a build maps dozens of libraries per compiler run, and every
// one passes through here): 512 KiB. Measured: 64 KiB lost 24,043 records in 4,000 execs
// under six parallel builds.
constexpr size_t kMmapRingPages = 128;


std::optional<uint64_t> Number(std::string_view line, std::string_view key) {
  size_t at = line.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  return std::strtoull(std::string(line.substr(at + key.size())).c_str(), nullptr, 10);
}

}  // namespace

std::vector<int> OnlineCpus() {
  std::vector<int> out;
  auto text = ReadFileText("/sys/devices/system/cpu/online");
  std::string s = text.ok() ? *text : "0";
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t dash = part.find('-');
    int a = std::atoi(part.c_str());
    int b = dash == std::string::npos ? a : std::atoi(part.c_str() + dash + 1);
    for (int c = a; c <= b && c < 4096; ++c) out.push_back(c);
  }
  if (out.empty()) out.push_back(0);
  return out;
}

std::optional<MmapRecord> ParseMmap2(const uint8_t* rec, size_t len) {
  // header, pid, tid, addr, len, pgoff, maj, min, ino, ino_generation, prot, flags,
  // filename (NUL-padded to 8), then sample_id: pid, tid (TID), time (TIME).
  constexpr size_t kName = sizeof(perf_event_header) + 8 + 24 + 24 + 8, kSampleId = 16;
  if (len < kName + kSampleId) return std::nullopt;
  MmapRecord m;
  uint32_t maj, min;
  std::memcpy(&m.pid, rec + 8, 4);
  std::memcpy(&m.tid, rec + 12, 4);
  std::memcpy(&maj, rec + 40, 4);
  std::memcpy(&min, rec + 44, 4);
  std::memcpy(&m.ino, rec + 48, 8);
  std::memcpy(&m.ino_generation, rec + 56, 8);
  std::memcpy(&m.prot, rec + 64, 4);
  std::memcpy(&m.time_ns, rec + len - 8, 8);
  m.dev = makedev(maj, min);
  const char* name = reinterpret_cast<const char*>(rec + kName);
  size_t room = len - kSampleId - kName;
  size_t n = strnlen(name, room);
  if (n == room) return std::nullopt;
  m.filename = std::string_view(name, n);
  return m;
}

Result<TraceFormat> ParseTraceFormat(std::string_view text) {
  TraceFormat f;
  bool have_id = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("ID:", 0) == 0) {
      auto id = Number(line, "ID:");
      if (id && *id > 0 && *id <= UINT32_MAX) f.id = static_cast<uint32_t>(*id), have_id = true;
      continue;
    }
    // "\tfield:unsigned long clone_flags;\toffset:16;\tsize:8;\tsigned:0;"
    size_t fa = line.find("field:");
    if (fa == std::string_view::npos) continue;
    size_t semi = line.find(';', fa);
    auto off = Number(line, "offset:");
    auto size = Number(line, "size:");
    if (semi == std::string_view::npos || !off || !size) continue;
    // The name is the last token, without an array suffix: "char comm[16]", "int * ptr",
    // "__data_loc char[] filename".
    std::string_view decl = line.substr(fa + 6, semi - fa - 6);
    while (!decl.empty() && decl.back() == ' ') decl.remove_suffix(1);
    size_t name_at = decl.find_last_of(" *");
    std::string_view token = name_at == std::string_view::npos ? decl : decl.substr(name_at + 1);
    std::string name(token.substr(0, token.find('[')));
    if (name.empty()) continue;
    TraceField tf;
    tf.offset = *off;
    tf.size = *size;
    tf.data_loc = decl.find("__data_loc") != std::string_view::npos;
    f.fields[name] = tf;
  }
  if (!have_id) return Status::InvalidArgument("tracepoint format: no ID line");
  return f;
}

std::optional<int64_t> TraceRecord::Int(const std::string& field) const {
  if (!format) return std::nullopt;
  auto it = format->fields.find(field);
  if (it == format->fields.end() || it->second.data_loc) return std::nullopt;
  const TraceField& f = it->second;
  if (f.offset > raw.size() || raw.size() - f.offset < f.size) return std::nullopt;
  const char* p = raw.data() + f.offset;
  switch (f.size) {
    case 1: return static_cast<int64_t>(static_cast<uint8_t>(*p));
    case 2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case 8: { int64_t v; std::memcpy(&v, p, 8); return v; }
    default: return std::nullopt;
  }
}

std::optional<std::string> TraceRecord::Str(const std::string& field) const {
  if (!format) return std::nullopt;
  auto it = format->fields.find(field);
  if (it == format->fields.end() || !it->second.data_loc || it->second.size != 4) return std::nullopt;
  size_t at = it->second.offset;
  if (at > raw.size() || raw.size() - at < 4) return std::nullopt;
  uint32_t loc;
  std::memcpy(&loc, raw.data() + at, 4);
  size_t off = loc & 0xffff, len = loc >> 16;
  if (off > raw.size() || raw.size() - off < len) return std::nullopt;
  std::string s(raw.data() + off, len);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

Result<std::string> TracefsDir() {
  for (const char* d : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (::access((std::string(d) + "/events").c_str(), F_OK) == 0) return std::string(d);
  }
  if (::mount("nodev", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return Status::Unavailable(std::string("tracefs not mounted and mount -t tracefs /sys/kernel/tracing: ") +
                               strerror(errno));
  }
  return std::string("/sys/kernel/tracing");
}

TraceEvents::TraceEvents(std::string tracefs, Callback cb, std::function<void(uint64_t)> lost)
    : tracefs_(std::move(tracefs)), cb_(std::move(cb)), lost_cb_(std::move(lost)), cpus_(OnlineCpus()) {
  rings_.resize(cpus_.size());
}

TraceEvents::~TraceEvents() {
  Stop();
  for (auto& r : rings_) {
    if (r.base) ::munmap(r.base, r.size);
  }
  for (int fd : fds_) ::close(fd);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Result<TraceFormat> TraceEvents::ReadFormat(const std::string& event) const {
  auto text = ReadFileText(tracefs_ + "/events/" + event + "/format");
  if (!text.ok()) return Status::Unavailable("tracepoint " + event + ": " + text.status().message());
  auto fmt = ParseTraceFormat(*text);
  if (!fmt.ok()) return Status::InvalidArgument(event + ": " + fmt.status().message());
  fmt->event = event;
  return fmt;
}

Result<int> TraceEvents::Add(const std::string& event, const std::string& filter, bool exec_mmaps, Wake wake) {
  auto fmt = ReadFormat(event);
  if (!fmt.ok()) return fmt.status();
  perf_event_attr attr{};
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.config = fmt->id;
  auto fds = OpenPerCpu(event, attr, filter, exec_mmaps, wake);
  if (!fds.ok()) return fds.status();
  return Register(std::move(*fmt));
}

Result<int> TraceEvents::AddBpfOutput(TraceFormat format, bool exec_mmaps, Wake wake,
                                      std::vector<std::pair<int, int>>* cpu_fds) {
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  auto fds = OpenPerCpu((format.event.empty() ? "tracepoint " + std::to_string(format.id) : format.event) + " (BPF output)",
                        attr, "", exec_mmaps, wake);
  if (!fds.ok()) return fds.status();
  cpu_fds->clear();
  for (size_t i = 0; i < cpus_.size(); ++i) cpu_fds->emplace_back(cpus_[i], (*fds)[i]);
  return Register(std::move(format));
}

int TraceEvents::Register(TraceFormat fmt) {
  // Records decode one way per id: the same format again shares its index; another one
  // (perf's after a BPF output's extended format) replaces it for what follows.
  if (auto it = by_id_.find(fmt.id); it != by_id_.end() && formats_[static_cast<size_t>(it->second)].fields == fmt.fields) {
    return it->second;
  }
  int index = static_cast<int>(formats_.size());
  by_id_[fmt.id] = index;
  formats_.push_back(std::move(fmt));
  return index;
}

Result<std::vector<int>> TraceEvents::OpenPerCpu(const std::string& what, perf_event_attr attr, const std::string& filter,
                                                 bool exec_mmaps, Wake wake) {
  long page = ::sysconf(_SC_PAGESIZE);
  std::vector<int> opened;
  std::vector<size_t> new_rings;  // rings this call set up: undone with its fds
  auto undo = [&] {
    for (size_t i : new_rings) {
      ::munmap(rings_[i].base, rings_[i].size);
      rings_[i] = Ring{};
    }
    for (int fd : opened) ::close(fd);
  };
  attr.size = sizeof attr;
  attr.sample_period = 1;
  attr.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
  // wakeup_events counts this event's samples into the ring's wake-up; with 0 they are
  // read at the next pass another event's record, the poll timeout (PassEvery) or the ring's
  // half-full watermark (shared by its events) starts.
  attr.wakeup_events = wake == Wake::kEach ? 1 : 0;
  // One clock for every event of a ring (PERF_EVENT_IOC_SET_OUTPUT requires it).
  attr.use_clockid = 1;
  attr.clockid = CLOCK_MONOTONIC;
  if (exec_mmaps) attr.mmap = attr.mmap2 = attr.sample_id_all = 1;  // not mmap_data: executable maps only
  for (size_t i = 0; i < cpus_.size(); ++i) {
    int fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, cpus_[i], -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      Status s = Status::Unavailable("perf_event_open " + what + " cpu " + std::to_string(cpus_[i]) + ": " +
                                     strerror(errno));
      undo();
      return s;
    }
    opened.push_back(fd);
    if (!filter.empty() && ::ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter.c_str()) != 0) {
      Status s = Status::InvalidArgument("filter \"" + filter + "\" on " + what + ": " + strerror(errno));
      undo();
      return s;
    }
    Ring& r = rings_[i];
    if (r.fd < 0) {
      size_t len = ((exec_mmaps ? kMmapRingPages : kRingPages) + 1) * static_cast<size_t>(page);
      void* base = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (base == MAP_FAILED) {
        Status s = Status::Unavailable("mmap perf ring: " + std::string(strerror(errno)));
        undo();
        return s;
      }
      r.fd = fd, r.base = base, r.size = len;
      new_rings.push_back(i);
    } else if (::ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, r.fd) != 0) {
      Status s = Status::Unavailable("PERF_EVENT_IOC_SET_OUTPUT " + what + ": " + strerror(errno));
      undo();
      return s;
    }
  }
  fds_.insert(fds_.end(), opened.begin(), opened.end());
  return opened;
}

Status TraceEvents::Start(int nice) {
  if (formats_.empty()) return Status::Unavailable("no tracepoint opened");
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return Status::IoError(std::string("eventfd: ") + strerror(errno));
  thread_ = StartOwnThread([this, nice] { Loop(nice); });
  return Status::Ok();
}

void TraceEvents::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  thread_.join();
}

void TraceEvents::Loop(int nice) {
  // Named, so its CPU can be told from the fanotify path's in /proc/<pid>/task/*/comm: it
  // serves every exec on the host, limd's own or not (bench/appraise.sh splits on it).
  (void)::pthread_setname_np(::pthread_self(), "limd-trace");
  if (nice != 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
  std::vector<pollfd> pfds;
  for (auto& r : rings_) {
    if (r.fd >= 0) pfds.push_back({r.fd, POLLIN, 0});
  }
  pfds.push_back({stop_fd_, POLLIN, 0});
  for (;;) {
    int n = ::poll(pfds.data(), pfds.size(), pass_ms_);
    if (n < 0 && errno != EINTR) return;
    // Stopping: one last pass, so that records that woke nobody (ExecTraceBpf's quiet
    // completions) are read too.
    bool stopping = pfds.back().revents & POLLIN;
    passes_++;
    // Every ring, not only the ones that polled ready: records of one CPU may wait behind
    // a wake-up that has not come (wakeup_events counts per event, not per ring).
    for (auto& r : rings_) {
      if (r.base) Drain(r);
    }
    if (after_drain_) after_drain_();
    if (stopping) return;
  }
}

void TraceEvents::Drain(Ring& r) {
  auto* meta = static_cast<perf_event_mmap_page*>(r.base);
  long page = ::sysconf(_SC_PAGESIZE);
  auto* data = static_cast<uint8_t*>(r.base) + page;
  uint64_t size = r.size - static_cast<size_t>(page);
  uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  std::vector<uint8_t> copy;
  while (tail < head) {
    perf_event_header h;
    for (size_t i = 0; i < sizeof h; ++i) reinterpret_cast<uint8_t*>(&h)[i] = data[(tail + i) % size];
    if (h.size < sizeof h || h.size > head - tail) break;  // torn: the kernel never writes such
    copy.resize(h.size);
    for (size_t i = 0; i < h.size; ++i) copy[i] = data[(tail + i) % size];
    Dispatch(copy.data(), copy.size());
    tail += h.size;
  }
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

void TraceEvents::Dispatch(const uint8_t* rec, size_t len) {
  perf_event_header h;
  std::memcpy(&h, rec, sizeof h);
  if (h.type == PERF_RECORD_LOST) {
    uint64_t lost[2] = {0, 0};  // id, count
    if (len >= sizeof h + sizeof lost) std::memcpy(lost, rec + sizeof h, sizeof lost);
    lost_count_ += lost[1];
    if (lost_cb_) lost_cb_(lost[1]);
    return;
  }
  if (h.type == PERF_RECORD_MMAP2) {
    auto m = ParseMmap2(rec, len);
    if (!m) short_++;
    else if (mmap_cb_) mmap_cb_(*m);
    return;
  }
  if (h.type != PERF_RECORD_SAMPLE) return;
  // pid, tid (u32 each), time (u64), raw size (u32), raw bytes.
  constexpr size_t kFixed = sizeof h + 4 + 4 + 8 + 4;
  if (len < kFixed) {
    short_++;
    return;
  }
  TraceRecord tr;
  std::memcpy(&tr.pid, rec + sizeof h, 4);
  std::memcpy(&tr.tid, rec + sizeof h + 4, 4);
  std::memcpy(&tr.time_ns, rec + sizeof h + 8, 8);
  uint32_t raw_size;
  std::memcpy(&raw_size, rec + sizeof h + 16, 4);
  if (raw_size > len - kFixed || raw_size < 2) {
    short_++;
    return;
  }
  tr.raw = std::string_view(reinterpret_cast<const char*>(rec + kFixed), raw_size);
  uint16_t type;
  std::memcpy(&type, tr.raw.data(), 2);  // common_type: the event's id
  auto it = by_id_.find(type);
  if (it == by_id_.end()) return;
  tr.event = it->second;
  tr.format = &formats_[static_cast<size_t>(it->second)];
  records_++;
  if (cb_) cb_(tr);
}

}  // namespace lim::daemon
