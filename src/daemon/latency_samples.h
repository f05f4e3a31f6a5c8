// LatencySamples: the last kKeep latencies (µs) of something rare (a late exec, a mark after
// a mount), with exact percentiles over them — for status.json where a power-of-two bucket
// would hide the difference between 2 and 4 ms. Thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace lim::daemon {

class LatencySamples {
 public:
  static constexpr size_t kKeep = 4096;
  void Add(uint64_t us) {
    std::lock_guard<std::mutex> lk(mu_);
    if (samples_.size() < kKeep) {
      samples_.push_back(us);
    } else {
      samples_[next_++ % kKeep] = us;  // the oldest
    }
  }
  // 0 when there is none.
  uint64_t Percentile(double p) const {
    std::vector<uint64_t> d;
    {
      std::lock_guard<std::mutex> lk(mu_);
      d = samples_;
    }
    if (d.empty()) return 0;
    size_t at = std::min(d.size() - 1, static_cast<size_t>(p * static_cast<double>(d.size())));
    std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(at), d.end());
    return d[at];
  }

 private:
  mutable std::mutex mu_;
  std::vector<uint64_t> samples_;
  size_t next_ = 0;
};

}  // namespace lim::daemon
