#include "verifier/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace lim::verifier {

void CounterFamily::Add(const std::string& label_value, uint64_t n) {
  std::lock_guard<std::mutex> lk(mu_);
  values_[label_value] += n;
}

std::map<std::string, uint64_t> CounterFamily::Snapshot() const {
  std::lock_guard<std::mutex> lk(mu_);
  return values_;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double seconds) {
  if (std::isnan(seconds)) return;
  // The first bound not below the value: le is "less than or equal".
  size_t b = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  std::lock_guard<std::mutex> lk(sum_mu_);
  counts_[b].fetch_add(1, std::memory_order_relaxed);
  sum_ += seconds;
  ++count_;
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds = bounds_;
  std::lock_guard<std::mutex> lk(sum_mu_);  // the buckets, sum and count of the same observations
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> RoundLatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::vector<double> StoreLatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
}

std::string FormatPromValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);  // 0.0005, not 5e-04
  return std::string(buf, r.ptr);
}

namespace {
// Backslash and newline escaped; the double quote too inside a label value (HELP text leaves it).
std::string Escape(const std::string& v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || (quote && c == '"')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}
std::string EscapeHelp(const std::string& v) { return Escape(v, false); }
}  // namespace

std::string EscapeLabelValue(const std::string& v) { return Escape(v, true); }

void ExpositionWriter::Family(const std::string& name, const std::string& type, const std::string& help) {
  out_ += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void ExpositionWriter::Line(const std::string& name, const Labels& labels, const std::string& value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ' + value + '\n';
}

void ExpositionWriter::Sample(const std::string& name, const Labels& labels, double value) {
  Line(name, labels, FormatPromValue(value));
}

void ExpositionWriter::Sample(const std::string& name, const Labels& labels, uint64_t value) {
  Line(name, labels, std::to_string(value));
}

void ExpositionWriter::HistogramFamily(const std::string& name, const std::string& help,
                                       const Histogram::Snapshot& h, const Labels& labels) {
  Family(name, "histogram", help);
  HistogramSeries(name, h, labels);
}

void ExpositionWriter::HistogramSeries(const std::string& name, const Histogram::Snapshot& h, const Labels& labels) {
  for (size_t i = 0; i < h.cumulative.size(); ++i) {
    Labels l = labels;
    l.emplace_back("le", i < h.bounds.size() ? FormatPromValue(h.bounds[i]) : "+Inf");
    Sample(name + "_bucket", l, h.cumulative[i]);
  }
  Sample(name + "_sum", labels, h.sum);
  Sample(name + "_count", labels, h.count);
}

}  // namespace lim::verifier
