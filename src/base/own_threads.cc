#include "base/own_threads.h"

#include <unistd.h>

#include <array>
#include <atomic>

namespace lim {

namespace {

// A fixed table: limd runs a few dozen threads; slots are reused as threads come and go.
constexpr size_t kSlots = 256;
std::array<std::atomic<pid_t>, kSlots> g_slots{};
std::atomic<size_t> g_high{0};  // slots [0, g_high) may be in use
std::atomic<bool> g_complete{true};

}  // namespace

bool OwnThreads::Register() {
  pid_t tid = ::gettid();
  for (size_t i = 0; i < kSlots; ++i) {
    pid_t expected = 0;
    if (g_slots[i].compare_exchange_strong(expected, tid)) {
      size_t high = g_high.load();
      while (high < i + 1 && !g_high.compare_exchange_weak(high, i + 1)) {
      }
      return true;
    }
  }
  g_complete.store(false);
  return false;
}

void OwnThreads::Unregister() {
  pid_t tid = ::gettid();
  size_t high = g_high.load();
  for (size_t i = 0; i < high; ++i) {
    pid_t expected = tid;
    if (g_slots[i].compare_exchange_strong(expected, 0)) return;
  }
}

bool OwnThreads::Contains(pid_t tid) {
  if (tid <= 0) return false;
  size_t high = g_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; ++i) {
    if (g_slots[i].load(std::memory_order_relaxed) == tid) return true;
  }
  return false;
}

bool OwnThreads::Complete() { return g_complete.load(); }

}  // namespace lim
