// BpfLoadLog: what libbpf says while limd loads one of its BPF objects (the verifier's
// log, a missing BTF), collected into the error the loader returns instead of reaching
// limd's stderr.
//
// libbpf reports through one process-wide print callback: a BpfLoadLog installs a collector
// for its lifetime and restores the previous callback when it ends; loads are serialized
// (a process-wide mutex is held meanwhile) so the collected text is theirs. The verifier's
// log comes as one long message whose end says what failed: the last 4 KiB are kept.
//
// Threading: any thread; one BpfLoadLog at a time in the process (others wait).
#pragma once

#include <bpf/libbpf.h>

#include <mutex>
#include <string>

namespace lim::daemon {

class BpfLoadLog {
 public:
  explicit BpfLoadLog(std::string* log);
  ~BpfLoadLog();
  BpfLoadLog(const BpfLoadLog&) = delete;
  BpfLoadLog& operator=(const BpfLoadLog&) = delete;

 private:
  std::lock_guard<std::mutex> lk_;
  libbpf_print_fn_t previous_ = nullptr;
};

// The end of a collected log on one line (the lines joined by ';', at most 600 bytes).
std::string LastLines(const std::string& log);

}  // namespace lim::daemon
