// Metrics: lim-verifier's counters and histograms, and their rendering in the Prometheus
// text exposition format 0.0.4 (docs/verifier.md "Metrics"), served at GET /metrics on the
// REST socket. Every family is written with its # HELP and # TYPE lines, its samples
// together; a histogram's buckets are cumulative with le="+Inf" equal to _count, then _sum
// and _count. Label values are escaped (\\, \", \n).
//
// Why hand-written rather than a client library: Debian has no C++ Prometheus client, and
// the format is small; metrics_test.cc checks the output with a strict parser.
//
// Threading: Counter, CounterFamily and Histogram are safe from any thread (atomics, one
// mutex per family's label map); ExpositionWriter is used by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lim::verifier {

// A monotonically increasing count.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Counters by the value of one label (reason="unknown-file", verdict="attested", …).
class CounterFamily {
 public:
  void Add(const std::string& label_value, uint64_t n = 1);
  std::map<std::string, uint64_t> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> values_;
};

// Observations in seconds into fixed upper bounds (ascending), their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double seconds);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Take() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (the last: > every bound)
  mutable std::mutex sum_mu_;                        // sum and count together: a scrape sees them agree
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Latency buckets for rounds (an agent's answer, replay, store write): 1 ms to 30 s.
std::vector<double> RoundLatencyBounds();
// Store writes: 100 µs to 5 s.
std::vector<double> StoreLatencyBounds();

// Builds the exposition text.
class ExpositionWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  // type: counter, gauge or histogram. Starts a family; its samples follow.
  void Family(const std::string& name, const std::string& type, const std::string& help);
  void Sample(const std::string& name, const Labels& labels, double value);
  void Sample(const std::string& name, const Labels& labels, uint64_t value);
  // The whole histogram family (HELP, TYPE, buckets, _sum, _count), extra labels on every sample.
  void HistogramFamily(const std::string& name, const std::string& help, const Histogram::Snapshot& h,
                       const Labels& labels = {});
  // One more series of a histogram family already started (other labels).
  void HistogramSeries(const std::string& name, const Histogram::Snapshot& h, const Labels& labels);
  const std::string& text() const { return out_; }

 private:
  void Line(const std::string& name, const Labels& labels, const std::string& value);
  std::string out_;
};

// Prometheus' float syntax: +Inf, -Inf, NaN, else the shortest text that reads back exactly.
std::string FormatPromValue(double v);
// A label value escaped for the text format.
std::string EscapeLabelValue(const std::string& v);

}  // namespace lim::verifier
