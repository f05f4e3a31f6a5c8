// LatencyHistogram: the decision latency of every permission event in power-of-two buckets
// (bucket i counts latencies < 2^i µs, the last one the rest) and the maximum — constant
// memory and one atomic add per event, for status.json's latency_us. Where exact
// percentiles over rare events matter, LatencySamples is the one. Thread-safe (lock-free).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lim::daemon {

class LatencyHistogram {
 public:
  void Add(uint64_t us) {
    size_t b = 0;
    while (b + 1 < buckets_.size() && (1ull << b) <= us) ++b;
    buckets_[b]++;
    uint64_t prev = max_us_.load();
    while (us > prev && !max_us_.compare_exchange_weak(prev, us)) {
    }
  }
  // The upper bound of the bucket holding the p-th fraction, µs (0 when empty).
  uint64_t Percentile(double p) const {
    uint64_t total = 0;
    for (const auto& b : buckets_) total += b.load();
    if (total == 0) return 0;
    uint64_t want = static_cast<uint64_t>(p * static_cast<double>(total));
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i].load();
      if (seen > want || seen == total) return 1ull << i;
    }
    return 1ull << (buckets_.size() - 1);
  }
  uint64_t max_us() const { return max_us_.load(); }

 private:
  std::array<std::atomic<uint64_t>, 24> buckets_{};
  std::atomic<uint64_t> max_us_{0};
};

}  // namespace lim::daemon
