// TemplateDigestTable: the kernel's duplicate table (ima_htable) — every (template digest in
// the ima_hash bank, PCR) already in the measurement list, so an access that would add an
// identical entry adds none (ima_lookup_digest_entry). Exact: it stores each full digest
// and compares all of its bytes and the PCR, as the kernel does; a lookup never says
// "present" for a pair that was not inserted, so no entry is ever dropped by mistake.
//
// Compact: the list only grows, so the table does too (one slot per entry, as the
// kernel's). Records (digest, then the PCR) are packed in fixed 64 KiB blocks that never
// move; an open-addressing index of 32-bit record numbers (load ≤ 1/2) finds them. About
// digest size + 4 + 8–16 bytes per entry (sha256: 44–52), against about 56 for a node-based
// set of a 16-byte prefix; growing copies only the index.
//
// Threading: not thread-safe (MeasurementList holds its mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/bytes.h"

namespace lim::daemon {

class TemplateDigestTable {
 public:
  // digest_size: the ima_hash digest size (every digest inserted or looked up has it).
  explicit TemplateDigestTable(size_t digest_size);

  bool Contains(ByteView digest, uint32_t pcr) const;
  // False (and nothing changes) when the pair is already present.
  bool Insert(ByteView digest, uint32_t pcr);
  size_t size() const { return count_; }
  // Heap bytes held (records and index).
  size_t bytes() const;

 private:
  static constexpr size_t kBlockBytes = 64 * 1024;
  const uint8_t* Record(uint32_t index) const {
    return blocks_[index / per_block_].get() + (index % per_block_) * record_size_;
  }
  size_t Home(ByteView digest, uint32_t pcr) const;
  // The slot holding the pair, or the empty slot where it would go.
  size_t Find(ByteView digest, uint32_t pcr) const;
  void Grow();

  size_t digest_size_, record_size_, per_block_;
  size_t count_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::vector<uint32_t> slots_;  // 0: empty, else record number + 1
};

}  // namespace lim::daemon
