// ListReader: streams a binary measurement list (binary_runtime_measurements or a per-bank
// `_<algo>` file) record by record through a bounded buffer, so a 1 GB list costs a few MB.
// Every length is checked; a bad record yields an error naming the entry index and the byte
// offset. Detects the bank (template-digest size) and byte order (native or the other one,
// e.g. ima_canonical_fmt lists from big-endian machines) unless told. One reader per
// thread; the Entry views it returns stay valid until the next call to Next().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "ima/entry.h"

namespace lim::ima {

struct ListOptions {
  std::optional<HashAlgo> bank;         // --list-bank; detected when absent
  std::optional<ByteOrder> byte_order;  // detected when absent
  size_t buffer_size = 4 << 20;
  bool allow_mmap = true;
};

// Upper bounds that make a length field "absurd" rather than merely large.
constexpr uint32_t kMaxTemplateNameLen = 255;
constexpr uint32_t kMaxTemplateDataLen = 64u << 20;
constexpr uint32_t kMaxPcrIndex = 63;

class ListReader {
 public:
  // path "-" reads standard input.
  static Result<std::unique_ptr<ListReader>> Open(const std::string& path, const ListOptions& options = {});
  // Reads from an in-memory list (tests, fuzzing). The bytes must outlive the reader.
  static Result<std::unique_ptr<ListReader>> FromBytes(ByteView data, const ListOptions& options = {},
                                                       std::string origin = "<memory>");
  ~ListReader();

  // Decodes the next record into *e. Returns false at the clean end of the list.
  Result<bool> Next(Entry* e);

  const HashAlgo& bank() const { return bank_; }
  ByteOrder byte_order() const { return order_; }
  const std::string& origin() const { return origin_; }
  uint64_t entries_read() const { return index_; }
  // The bytes of the record Next() returned last; valid until the next call.
  ByteView last_record() const { return last_record_; }
  // File offset just past the last record returned (where the next one starts).
  uint64_t next_offset() const { return base_ + pos_; }
  // True when the last error was a record cut short by the end of the input (a list that
  // is still being appended to, or a torn tail), rather than a malformed one.
  bool last_error_was_truncation() const { return truncated_; }
  // Starts reading at this file offset (for --follow), with entry numbering from index.
  // File input only.
  Status SeekTo(uint64_t offset, uint64_t index);

 private:
  ListReader() = default;
  Status Init(const ListOptions& options);
  // Makes at least n bytes available from pos_; false at EOF with fewer.
  Result<bool> Ensure(size_t n);
  Status Error(uint64_t at, const std::string& what) const;
  mutable uint64_t last_error_at_ = 0;  // byte offset of the last Error()
  // Why no digest size fits the head (DetectListBank failed): the damage found by the size
  // that decodes furthest.
  Status ExplainUndetectedBank(ByteView head, const Status& detect) const;
  Result<const Template*> ResolveTemplate(std::string_view name);

  Status Truncated(uint64_t at, const std::string& what);
  bool truncated_ = false;
  // Whether field i's payload is a valid digest field; remembers the last valid prefix per
  // field slot so that a list of one algorithm parses each prefix once.
  Status CheckDigestField(size_t i, FieldId id, ByteView payload);
  std::array<Bytes, kMaxTemplateFields> valid_prefix_;
  std::array<size_t, kMaxTemplateFields> valid_size_{};

  // Regular files are mapped; consumed pages are dropped as the cursor moves on, so the
  // resident size stays small however long the list is.
  void ReleaseConsumed();
  void Unmap();
  void* map_ = nullptr;
  size_t map_size_ = 0;
  size_t released_ = 0;
  int fd_ = -1;
  bool eof_ = false;
  std::string origin_;
  Bytes buf_;          // owned buffer (file input)
  ByteView data_;      // current window: buf_[0, filled) or the caller's bytes
  size_t filled_ = 0;  // valid bytes in buf_
  size_t pos_ = 0;     // cursor within data_
  uint64_t base_ = 0;  // file offset of data_[0]
  uint64_t index_ = 0;
  ByteView last_record_;
  HashAlgo bank_{};
  ByteOrder order_ = kNativeOrder;
  std::vector<std::unique_ptr<Template>> templates_;
  // Resolved templates keyed by (name length, first 8 bytes): most names ("ima-ng",
  // "ima-sig") fit in the key, so a record's template is found without a string compare.
  struct TemplateKey {
    size_t len;
    uint64_t head;
    const Template* tmpl;
  };
  std::vector<TemplateKey> template_keys_;
};

// Tries digest sizes 20, 32, 48, 64 (then others) on the first records and returns the
// bank whose layout parses consistently (cli.md: 20 bytes → sha1; 32 → sha256, …).
Result<HashAlgo> DetectListBank(ByteView head, ByteOrder order);
ByteOrder DetectByteOrder(ByteView head);

}  // namespace lim::ima
