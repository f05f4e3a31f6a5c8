// A strict parser of the Prometheus text exposition format 0.0.4 for the tests (promtool
// is not cheap to install here: Debian's prometheus package is ~96 MB with a web UI). It
// accepts only what a conforming exposition may contain and checks more than the format
// requires of lim-verifier's output: every family has exactly one # HELP and one # TYPE
// before its samples, a family's samples are together, no series appears twice, counters
// end in _total and are not negative, and each histogram series has strictly increasing
// `le` bounds ending in +Inf, cumulative (non-decreasing) buckets, a _sum, and a _count
// equal to its +Inf bucket. Errors read "line N: message".
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lim::verifier::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string type, help;
  bool has_help = false;
  std::vector<PromSample> samples;
};

inline bool PromNameOk(const std::string& n, bool metric) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return metric || n.rfind("__", 0) != 0;
}

inline bool PromValue(const std::string& s, double* v) {
  if (s == "+Inf") return *v = INFINITY, true;
  if (s == "-Inf") return *v = -INFINITY, true;
  if (s == "NaN") return *v = NAN, true;
  if (s.empty() || s.find_first_not_of("0123456789.eE+-") != std::string::npos) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// The family a sample name belongs to, given the families declared so far.
inline std::string PromFamilyOf(const std::string& sample, const std::map<std::string, PromFamily>& fams) {
  if (fams.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      std::string base = sample.substr(0, sample.size() - s.size());
      auto it = fams.find(base);
      if (it != fams.end() && it->second.type == "histogram") return base;
    }
  }
  return "";
}

inline std::string ParsePromText(const std::string& text, std::map<std::string, PromFamily>* out) {
  std::map<std::string, PromFamily> fams;
  std::set<std::string> closed;  // families whose samples ended (another family began)
  std::set<std::string> series;
  std::string current;
  if (text.empty() || text.back() != '\n') return "line 0: the text must end with a newline";
  size_t pos = 0;
  int n = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++n;
    std::string at = "line " + std::to_string(n) + ": ";
    if (line.empty()) return at + "empty line";
    if (line[0] == '#') {
      bool help = line.rfind("# HELP ", 0) == 0, type = line.rfind("# TYPE ", 0) == 0;
      if (!help && !type) return at + "a comment that is neither # HELP nor # TYPE";
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string::npos) return at + "no text after the metric name";
      std::string name = rest.substr(0, sp), arg = rest.substr(sp + 1);
      if (!PromNameOk(name, true)) return at + "bad metric name '" + name + "'";
      if (name != current && closed.count(name)) return at + name + " declared again after its samples";
      if (name != current && !current.empty()) closed.insert(current);
      current = name;
      PromFamily& f = fams[name];
      if (!f.samples.empty()) return at + "# HELP/# TYPE of " + name + " after its samples";
      if (help) {
        if (f.has_help) return at + "second # HELP for " + name;
        for (size_t i = 0; i < arg.size(); ++i) {
          if (arg[i] == '\\' && (i + 1 == arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n'))) {
            return at + "bad escape in # HELP";
          }
          if (arg[i] == '\\') ++i;
        }
        f.has_help = true;
        f.help = arg;
      } else {
        if (!f.type.empty()) return at + "second # TYPE for " + name;
        if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" && arg != "untyped") {
          return at + "unknown type '" + arg + "'";
        }
        f.type = arg;
      }
      continue;
    }
    PromSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!PromNameOk(s.name, true)) return at + "bad metric name '" + s.name + "'";
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) return at + "label without '='";
        std::string lname = line.substr(i, eq - i);
        if (!PromNameOk(lname, false)) return at + "bad label name '" + lname + "'";
        if (eq + 1 >= line.size() || line[eq + 1] != '"') return at + "label value not quoted";
        std::string value;
        size_t j = eq + 2;
        for (;; ++j) {
          if (j >= line.size()) return at + "unterminated label value";
          if (line[j] == '"') break;
          if (line[j] == '\\') {
            ++j;
            if (j >= line.size()) return at + "unterminated escape";
            if (line[j] == 'n') value += '\n';
            else if (line[j] == '\\' || line[j] == '"') value += line[j];
            else return at + "bad escape \\" + std::string(1, line[j]);
          } else {
            value += line[j];
          }
        }
        if (!s.labels.emplace(lname, value).second) return at + "label " + lname + " twice";
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
        else if (i < line.size() && line[i] != '}') return at + "expected ',' or '}' after a label";
      }
      if (i >= line.size()) return at + "unterminated label set";
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') return at + "expected one space before the value";
    std::string value = line.substr(i + 1);
    if (value.find(' ') != std::string::npos) return at + "extra text after the value (timestamps are not expected)";
    if (!PromValue(value, &s.value)) return at + "bad value '" + value + "'";
    std::string fam = PromFamilyOf(s.name, fams);
    if (fam.empty()) return at + "sample " + s.name + " has no # TYPE before it";
    if (fam != current) return at + "sample of " + fam + " outside its family's block";
    PromFamily& f = fams[fam];
    if (f.type.empty()) return at + "sample " + s.name + " before # TYPE";
    if (!f.has_help) return at + "family " + fam + " has no # HELP";
    if (f.type == "counter") {
      if (s.name.size() < 6 || s.name.compare(s.name.size() - 6, 6, "_total") != 0) return at + "counter without _total";
      if (!(s.value >= 0)) return at + "negative or NaN counter";
    }
    if (f.type == "histogram" && s.name == fam) return at + "histogram sample without _bucket/_sum/_count";
    if (f.type == "histogram" && s.name == fam + "_bucket" && !s.labels.count("le")) return at + "bucket without le";
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "\x01" + k + "\x02" + v;
    if (!series.insert(key).second) return at + "series " + s.name + " appears twice";
    f.samples.push_back(std::move(s));
  }
  // Histograms: per series (labels without le).
  for (const auto& [name, f] : fams) {
    if (f.type.empty()) return name + ": # HELP without # TYPE";
    if (f.type != "histogram") continue;
    struct Series {
      std::vector<std::pair<double, double>> buckets;
      bool sum = false, count = false;
      double count_value = 0;
    };
    std::map<std::map<std::string, std::string>, Series> by;
    for (const auto& s : f.samples) {
      auto labels = s.labels;
      labels.erase("le");
      Series& se = by[labels];
      if (s.name == name + "_bucket") {
        double le = 0;
        if (!PromValue(s.labels.at("le"), &le)) return name + ": bad le '" + s.labels.at("le") + "'";
        se.buckets.emplace_back(le, s.value);
      } else if (s.name == name + "_sum") {
        se.sum = true;
      } else {
        se.count = true;
        se.count_value = s.value;
      }
    }
    for (const auto& [labels, se] : by) {
      if (se.buckets.empty() || !se.sum || !se.count) return name + ": a series lacks buckets, _sum or _count";
      for (size_t i = 1; i < se.buckets.size(); ++i) {
        if (!(se.buckets[i].first > se.buckets[i - 1].first)) return name + ": le bounds not increasing";
        if (se.buckets[i].second < se.buckets[i - 1].second) return name + ": buckets not cumulative";
      }
      if (!std::isinf(se.buckets.back().first)) return name + ": no le=\"+Inf\" bucket";
      if (se.buckets.back().second != se.count_value) return name + ": _count differs from the +Inf bucket";
    }
  }
  if (out) *out = std::move(fams);
  return "";
}

// The value of the sample with this name and exactly these labels; NaN when absent.
inline double PromGet(const std::map<std::string, PromFamily>& fams, const std::string& name,
                      const std::map<std::string, std::string>& labels = {}) {
  std::string fam = PromFamilyOf(name, fams);
  if (fam.empty()) return NAN;
  for (const auto& s : fams.at(fam).samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return NAN;
}

}  // namespace lim::verifier::testing
