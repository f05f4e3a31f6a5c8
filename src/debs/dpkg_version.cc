#include "debs/dpkg_version.h"

#include <cstdint>

namespace lim::debs {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// dpkg's order(): '~' lowest, then the end of the part, then letters, then everything else.
int Order(char c) {
  if (IsDigit(c)) return 0;
  if (IsAlpha(c)) return c;
  if (c == '~') return -1;
  if (c) return c + 256;
  return 0;
}

int CompareParts(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    int first_diff = 0;
    while ((i < a.size() && !IsDigit(a[i])) || (j < b.size() && !IsDigit(b[j]))) {
      int ac = Order(i < a.size() ? a[i] : '\0');
      int bc = Order(j < b.size() ? b[j] : '\0');
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    while (i < a.size() && IsDigit(a[i]) && j < b.size() && IsDigit(b[j])) {
      if (!first_diff) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && IsDigit(a[i])) return 1;
    if (j < b.size() && IsDigit(b[j])) return -1;
    if (first_diff) return first_diff;
  }
  return 0;
}

struct Parsed {
  uint64_t epoch = 0;
  std::string_view upstream, revision;
};

Parsed Parse(std::string_view v) {
  Parsed p;
  size_t colon = v.find(':');
  if (colon != std::string_view::npos) {
    for (char c : v.substr(0, colon)) {
      if (!IsDigit(c) || p.epoch > 1000000000) break;
      p.epoch = p.epoch * 10 + static_cast<uint64_t>(c - '0');
    }
    v.remove_prefix(colon + 1);
  }
  size_t dash = v.rfind('-');
  if (dash != std::string_view::npos) {
    p.upstream = v.substr(0, dash);
    p.revision = v.substr(dash + 1);
  } else {
    p.upstream = v;
  }
  return p;
}

}  // namespace

int CompareVersions(std::string_view a, std::string_view b) {
  Parsed pa = Parse(a), pb = Parse(b);
  if (pa.epoch != pb.epoch) return pa.epoch < pb.epoch ? -1 : 1;
  if (int c = CompareParts(pa.upstream, pb.upstream)) return c < 0 ? -1 : 1;
  int c = CompareParts(pa.revision, pb.revision);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace lim::debs
