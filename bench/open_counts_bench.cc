// The count probe's question "does anyone but me hold this file?" (open_count_probe.h),
// asked the two ways limd can: the kernel's counters through InodeOpenCounts (one bpf()
// call) against a write lease taken and released (two fcntl()s, the peer it replaces).
// Root: loading the program needs CAP_BPF and CAP_PERFMON. Interleave with
// --benchmark_repetitions=N --benchmark_enable_random_interleaving=true.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "daemon/inode_open_counts.h"

namespace {

struct File {
  File() {
    char tmpl[] = "/tmp/lim_open_counts_bench.XXXXXX";
    int w = ::mkstemp(tmpl);
    path = tmpl;
    if (w >= 0) {
      (void)!::write(w, "x", 1);
      ::close(w);
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~File() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
  std::string path;
  int fd = -1;
};

void BM_KernelCounts(benchmark::State& state) {
  auto loaded = lim::daemon::InodeOpenCounts::Load();
  if (!loaded.ok()) {
    state.SkipWithError(loaded.status().message().c_str());
    return;
  }
  File f;
  for (auto _ : state) {
    auto c = (*loaded)->Read(f.fd);
    if (!c.ok() || c->readers != 1 || c->writers != 0) {
      state.SkipWithError("unexpected counts");
      return;
    }
  }
}
BENCHMARK(BM_KernelCounts);

void BM_WriteLeaseProbe(benchmark::State& state) {
  File f;
  for (auto _ : state) {
    if (::fcntl(f.fd, F_SETSIG, SIGURG) != 0 || ::fcntl(f.fd, F_SETLEASE, F_WRLCK) != 0) {
      state.SkipWithError("lease refused");
      return;
    }
    (void)::fcntl(f.fd, F_SETLEASE, F_UNLCK);
  }
}
BENCHMARK(BM_WriteLeaseProbe);

// Once per limd start: libbpf parses the kernel's BTF, relocates and loads the program.
void BM_LoadProgram(benchmark::State& state) {
  for (auto _ : state) {
    auto loaded = lim::daemon::InodeOpenCounts::Load();
    if (!loaded.ok()) {
      state.SkipWithError(loaded.status().message().c_str());
      return;
    }
  }
}
BENCHMARK(BM_LoadProgram)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
