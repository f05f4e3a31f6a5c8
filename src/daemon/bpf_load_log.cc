#include "daemon/bpf_load_log.h"

#include <cstdarg>
#include <cstdio>

namespace lim::daemon {
namespace {

std::mutex g_load_mu;
std::string* g_load_log = nullptr;  // under g_load_mu
constexpr size_t kKeptLog = 4096;

int CollectLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || !g_load_log) return 0;
  try {
    va_list sizing;
    va_copy(sizing, args);
    int n = std::vsnprintf(nullptr, 0, format, sizing);
    va_end(sizing);
    if (n <= 0) return 0;
    std::string line(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, args);
    line.pop_back();
    g_load_log->append(line);
    if (g_load_log->size() > kKeptLog) g_load_log->erase(0, g_load_log->size() - kKeptLog);
  } catch (...) {  // never out of a C callback
  }
  return 0;
}

}  // namespace

BpfLoadLog::BpfLoadLog(std::string* log) : lk_(g_load_mu) {
  g_load_log = log;
  previous_ = libbpf_set_print(CollectLibbpfPrint);
}

BpfLoadLog::~BpfLoadLog() {
  libbpf_set_print(previous_);
  g_load_log = nullptr;
}

std::string LastLines(const std::string& log) {
  std::string s = log;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > 600) s = "..." + s.substr(s.size() - 600);
  for (char& c : s)
    if (c == '\n') c = ';';
  return s;
}

}  // namespace lim::daemon
