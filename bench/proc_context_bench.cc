// Context acquisition cost per fanotify event in limd (docs/performance.md, limd section):
// reading /proc/<tid>/syscall (every permission event: func and open flags) and
// /proc/<tid>/status (credentials: only when a rule for the step has uid/gid conditions)
// of a thread blocked in a syscall, as limd does for the opener blocked in its open.
//   ninja -C build proc_context_bench && build/bench/proc_context_bench
#include <benchmark/benchmark.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "base/file.h"
#include "daemon/proc_context.h"

namespace {

// A thread blocked in read(2) on a pipe for the benchmark's lifetime.
class BlockedThread {
 public:
  BlockedThread() {
    if (::pipe(fds_) != 0) std::abort();
    thread_ = std::thread([this] {
      tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)));
      char c;
      (void)!::read(fds_[0], &c, 1);
    });
    while (tid_.load() == 0) std::this_thread::yield();
    // Wait until /proc reports it blocked (not "running").
    for (int i = 0; i < 10000; ++i) {
      auto s = lim::daemon::ReadSyscall(tid_.load());
      if (s.ok() && s->blocked) break;
      std::this_thread::yield();
    }
  }
  ~BlockedThread() {
    (void)!::write(fds_[1], "x", 1);
    thread_.join();
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  pid_t tid() const { return tid_.load(); }

 private:
  int fds_[2];
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

BlockedThread& Blocked() {
  static BlockedThread t;
  return t;
}

void BM_ReadSyscall(benchmark::State& state) {
  pid_t tid = Blocked().tid();
  for (auto _ : state) {
    auto s = lim::daemon::ReadSyscall(tid);
    if (!s.ok() || !s->blocked) state.SkipWithError("thread not blocked");
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ReadSyscall);

void BM_ReadCreds(benchmark::State& state) {
  pid_t tid = Blocked().tid();
  for (auto _ : state) {
    auto c = lim::daemon::ReadCreds(tid);
    if (!c.ok()) state.SkipWithError("status unreadable");
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ReadCreds);

// What the reader thread pays per permission event when the policy has id conditions.
void BM_SyscallAndCreds(benchmark::State& state) {
  pid_t tid = Blocked().tid();
  for (auto _ : state) {
    auto s = lim::daemon::ReadSyscall(tid);
    auto in = lim::daemon::IntentOf(s.ok() ? *s : lim::daemon::SyscallState{}, tid);
    auto c = lim::daemon::ReadCreds(tid);
    benchmark::DoNotOptimize(in);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_SyscallAndCreds);

// The same through base/file.h ReadFileText (the readers before the per-event work was cut:
// a 64 KiB zero-filled buffer and a copy per read), for comparison.
void BM_ReadCredsViaReadFileText(benchmark::State& state) {
  std::string path = "/proc/" + std::to_string(Blocked().tid()) + "/status";
  for (auto _ : state) {
    auto t = lim::ReadFileText(path);
    if (!t.ok()) state.SkipWithError("status unreadable");
    benchmark::DoNotOptimize(lim::daemon::ParseStatus(*t));
  }
}
BENCHMARK(BM_ReadCredsViaReadFileText);

void BM_ParseStatus(benchmark::State& state) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(Blocked().tid()));
  FILE* f = std::fopen(path, "r");
  if (!f) {
    state.SkipWithError("no status");
    return;
  }
  char buf[8192];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  for (auto _ : state) benchmark::DoNotOptimize(lim::daemon::ParseStatus(std::string_view(buf, n)));
}
BENCHMARK(BM_ParseStatus);

}  // namespace

BENCHMARK_MAIN();
