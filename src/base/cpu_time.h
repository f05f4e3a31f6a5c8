// CPU time of the calling thread, for cost accounting where wall time misleads (a loaded
// machine preempts a thread in the middle of what is being measured; its CPU clock stops
// meanwhile). One clock_gettime(CLOCK_THREAD_CPUTIME_ID) call: a system call of a few
// hundred nanoseconds (no vDSO for CPU clocks), so use it per round, not per entry.
// Thread-safe.
#pragma once

#include <time.h>

#include <cstdint>

namespace lim {

inline uint64_t ThreadCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace lim
