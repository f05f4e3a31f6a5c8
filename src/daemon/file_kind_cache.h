// FileKindCache: what limd learned from a file's first bytes — a #! script, an ELF with an
// executable PT_LOAD, or neither — per inode and change tuple (FileFacts::SameContentAs),
// so the fanotify reader thread can answer a cached exec or ELF-at-open check without
// reading the file (disk I/O stays off the reader, design.md invariant 4). Workers fill
// it after reading a header; a changed tuple is a miss. Bounded: cleared when full (a miss
// costs a worker hop and a header read); an entry keeps only the change tuple (~90 bytes).
//
// Threading: thread-safe (one mutex, held for a hash-map lookup).
#pragma once

#include <mutex>
#include <optional>
#include <unordered_map>

#include "daemon/env.h"
#include "daemon/measurer.h"

namespace lim::daemon {

class FileKindCache {
 public:
  enum Kind : int { kOther = 0, kScript = 1, kElf = 2 };

  std::optional<int> Get(const InodeKey& key, const FileFacts& now) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.facts.SameContentAs(now)) return std::nullopt;
    return it->second.kind;
  }
  // facts: taken before the header was read, so a later change is a miss.
  void Put(const InodeKey& key, const FileFacts& facts, int kind) {
    std::lock_guard<std::mutex> lk(mu_);
    if (map_.size() >= kMaxEntries) map_.clear();
    map_[key] = Entry{ContentTuple(facts), kind};
  }

  size_t size() {
    std::lock_guard<std::mutex> lk(mu_);
    return map_.size();
  }
  static constexpr size_t kMaxEntries = 1 << 14;

 private:
  struct Entry {
    ContentTuple facts;
    int kind = kOther;
  };
  std::mutex mu_;
  std::unordered_map<InodeKey, Entry, InodeKeyHash> map_;
};

}  // namespace lim::daemon
