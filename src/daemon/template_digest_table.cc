#include "daemon/template_digest_table.h"

#include <cstring>

namespace lim::daemon {

TemplateDigestTable::TemplateDigestTable(size_t digest_size)
    : digest_size_(digest_size), record_size_(digest_size + sizeof(uint32_t)), per_block_(kBlockBytes / record_size_),
      slots_(1024, 0) {}

size_t TemplateDigestTable::Home(ByteView d, uint32_t pcr) const {
  // A template digest is a cryptographic hash: any 8 of its bytes are uniform.
  uint64_t h = 0;
  std::memcpy(&h, d.data(), std::min<size_t>(sizeof h, d.size()));
  h ^= static_cast<uint64_t>(pcr) * 0x9e3779b97f4a7c15ull;
  return static_cast<size_t>(h ^ (h >> 29)) & (slots_.size() - 1);
}

size_t TemplateDigestTable::Find(ByteView d, uint32_t pcr) const {
  for (size_t i = Home(d, pcr);; i = (i + 1) & (slots_.size() - 1)) {
    uint32_t s = slots_[i];
    if (s == 0) return i;
    const uint8_t* r = Record(s - 1);
    uint32_t rp;
    std::memcpy(&rp, r + digest_size_, sizeof rp);
    if (rp == pcr && std::memcmp(r, d.data(), digest_size_) == 0) return i;
  }
}

bool TemplateDigestTable::Contains(ByteView d, uint32_t pcr) const {
  if (d.size() != digest_size_) return false;
  return slots_[Find(d, pcr)] != 0;
}

bool TemplateDigestTable::Insert(ByteView d, uint32_t pcr) {
  if (d.size() != digest_size_) return false;
  size_t at = Find(d, pcr);
  if (slots_[at] != 0) return false;
  if (count_ % per_block_ == 0) blocks_.push_back(std::make_unique<uint8_t[]>(per_block_ * record_size_));
  uint8_t* r = blocks_.back().get() + (count_ % per_block_) * record_size_;
  std::memcpy(r, d.data(), digest_size_);
  std::memcpy(r + digest_size_, &pcr, sizeof pcr);
  slots_[at] = static_cast<uint32_t>(++count_);
  if (count_ * 2 > slots_.size()) Grow();
  return true;
}

void TemplateDigestTable::Grow() {
  std::vector<uint32_t> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, 0);
  for (uint32_t s : old) {
    if (s == 0) continue;
    const uint8_t* r = Record(s - 1);
    uint32_t pcr;
    std::memcpy(&pcr, r + digest_size_, sizeof pcr);
    slots_[Find({r, digest_size_}, pcr)] = s;
  }
}

size_t TemplateDigestTable::bytes() const {
  return blocks_.size() * per_block_ * record_size_ + slots_.capacity() * sizeof(uint32_t) +
         blocks_.capacity() * sizeof(blocks_[0]);
}

}  // namespace lim::daemon
