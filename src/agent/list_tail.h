// ListTail reading for lim-agent: the measurement list from entry N — limd's store
// (STATE/binary_runtime_measurements) or the kernel's securityfs list — as whole binary
// records, at most max_bytes per call. Entry N → byte offset is kept incrementally: the end
// of the last read (where the verifier asks next round) and a checkpoint every 1024 entries,
// so a round costs the new entries, not the list's length. A list replaced by a new file
// (limd archived the chain) or shorter than what was seen drops the cache. A record cut by a
// concurrent append ends the tail (it is sent next round). Thread-safe (one mutex).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attest/evidence.h"
#include "base/status.h"

namespace lim::agent {

inline constexpr const char* kKernelListPath = "/sys/kernel/security/ima/binary_runtime_measurements";

class ListTailReader {
 public:
  // source: "limd" or "kernel" (reported in the tail; the path decides what is read).
  ListTailReader(std::string path, std::string source) : path_(std::move(path)), source_(std::move(source)) {}

  // Records from entry `from` on, at most max_bytes of them. A list with fewer than `from`
  // entries gives an empty tail whose total_entries says how many there are (the verifier
  // calls that rewound). A malformed record is an error naming its index and offset.
  Result<attest::ListTail> Read(uint64_t from, uint64_t max_bytes);

  // Entries scanned so far and the checkpoints kept (tests, status).
  uint64_t known_entries() const;
  size_t checkpoints() const;

  static constexpr uint64_t kStride = 1024;

 private:
  void Reset();

  const std::string path_;
  const std::string source_;
  mutable std::mutex mu_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::vector<uint64_t> checkpoints_;  // byte offset of entry k * kStride
  uint64_t known_entries_ = 0;         // entries before known_end_
  uint64_t known_end_ = 0;             // byte offset just past entry known_entries_ - 1
  uint64_t scanned_ = 0;               // records decoded in all (tests: incremental cost)
 public:
  uint64_t records_decoded() const {
    std::lock_guard<std::mutex> lk(mu_);
    return scanned_;
  }
};

}  // namespace lim::agent
