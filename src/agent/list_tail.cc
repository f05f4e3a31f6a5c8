#include "agent/list_tail.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "ima/list_reader.h"

namespace lim::agent {

void ListTailReader::Reset() {
  checkpoints_.clear();
  known_entries_ = known_end_ = 0;
}

uint64_t ListTailReader::known_entries() const {
  std::lock_guard<std::mutex> lk(mu_);
  return known_entries_;
}

size_t ListTailReader::checkpoints() const {
  std::lock_guard<std::mutex> lk(mu_);
  return checkpoints_.size();
}

Result<attest::ListTail> ListTailReader::Read(uint64_t from, uint64_t max_bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  attest::ListTail tail;
  tail.first_index = from;
  tail.source = source_;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return Status::NotFound(path_ + ": " + std::strerror(errno));
  // A new file (limd started a new chain) or a shorter one: what was learnt is void. The
  // securityfs list reports size 0 whatever it holds (and only grows within a boot), so
  // only a non-zero size is compared.
  bool shrank = S_ISREG(st.st_mode) && st.st_size > 0 && static_cast<uint64_t>(st.st_size) < known_end_;
  if (st.st_dev != dev_ || st.st_ino != ino_ || shrank) {
    Reset();
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  ima::ListOptions lo;
  lo.allow_mmap = false;  // reads start mid-file; a 4 MiB buffer bounds memory
  lo.buffer_size = 1 << 20;
  auto opened = ima::ListReader::Open(path_, lo);
  if (!opened.ok()) return opened.status();
  auto& reader = *opened;
  // An empty list has no record to tell its bank: the classic file's sha1.
  tail.list_bank = reader->bank().kernel_name ? reader->bank().kernel_name : "sha1";
  tail.byte_order = reader->byte_order() == ByteOrder::kLittle ? "little" : "big";
  // Start from the end of the last read when the verifier asks there or later (every
  // round), else from the nearest checkpoint at or before `from`.
  uint64_t index = 0, offset = 0;
  if (from >= known_entries_ && known_entries_ > 0) {
    index = known_entries_;
    offset = known_end_;
  } else if (!checkpoints_.empty()) {
    size_t k = std::min<size_t>(from / kStride, checkpoints_.size() - 1);
    index = k * kStride;
    offset = checkpoints_[k];
  }
  if (index > 0) LIM_RETURN_IF_ERROR(reader->SeekTo(offset, index));
  ima::Entry e;
  uint64_t seen = 0;  // entries known to exist
  for (;;) {
    uint64_t at = reader->next_offset();
    uint64_t i = reader->entries_read();
    if (i % kStride == 0 && i / kStride == checkpoints_.size()) checkpoints_.push_back(at);
    seen = std::max(seen, i);
    if (i >= from && tail.records.size() >= max_bytes) {
      break;
    }
    auto more = reader->Next(&e);
    if (!more.ok()) {
      if (reader->last_error_was_truncation()) break;  // a record being appended: next round
      return more.status();
    }
    if (!*more) break;
    ++scanned_;
    seen = i + 1;
    ByteView rec = reader->last_record();
    if (i >= from) {
      if (tail.records.size() + rec.size() > max_bytes) {
        // This record goes next round; the cache stays before it.
        break;
      }
      tail.records.insert(tail.records.end(), rec.begin(), rec.end());
    }
    if (reader->entries_read() > known_entries_) {
      known_entries_ = reader->entries_read();
      known_end_ = reader->next_offset();
    }
  }
  tail.total_entries = std::max(known_entries_, seen);
  return tail;
}

}  // namespace lim::agent
