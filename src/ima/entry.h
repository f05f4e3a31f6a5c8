// Entry: one decoded record of a binary measurement list, as views into the reader's
// buffer (valid until the reader moves on; Entry::Copy makes an owning one). Also the
// template-digest input rules of kernel-ima.md §4.1. Plain data; no thread rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/hex.h"
#include "ima/template.h"

namespace lim::ima {

struct Entry {
  uint64_t index = 0;             // 0-based position in the list
  uint64_t offset = 0;            // byte offset of the record in the list file
  uint32_t pcr = 0;
  ByteView digest;                // template digest of the list's bank
  std::string_view template_name;
  const Template* tmpl = nullptr;
  // Non-"ima" templates: the template-data area (u32 len ‖ bytes, per field) that the
  // template digest covers. Empty for "ima".
  ByteView template_data;
  std::array<ByteView, kMaxTemplateFields> fields{};
  size_t num_fields = 0;
  ByteOrder order = kNativeOrder;  // of the u32 lengths in template_data
  bool violation = false;          // all-zero template digest

  ByteView field(size_t i) const { return fields[i]; }
  // The first field with this id, or an empty view.
  ByteView FieldById(FieldId id) const;
  bool HasField(FieldId id) const;
  // The event name (n-ng or n), without its NUL.
  std::string_view name() const;
};

// Bytes that the template digest hashes: template_data, or for "ima" the 20-byte digest
// and the name NUL-padded to 256 bytes (276 bytes). Uses *scratch for the latter.
ByteView TemplateDigestInput(const Entry& e, Bytes* scratch);

// An Entry that owns its bytes (for tests, writers, and keeping entries past the reader).
struct OwnedEntry {
  uint32_t pcr = 0;
  Bytes digest;
  std::string template_name;
  std::vector<Bytes> fields;
};

}  // namespace lim::ima
