// ByteReader and ByteWriter: bounds-checked cursor over a byte buffer with explicit byte
// order. Every parser in lim reads through a ByteReader so that no length field can send a
// read past the end. Not thread-safe (a cursor); the buffer must outlive the reader.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "base/hex.h"

namespace lim {

enum class ByteOrder { kLittle, kBig };

// ByteSwap is C++23; GCC 12 lacks it.
template <typename T>
constexpr T ByteSwap(T v) {
  if constexpr (sizeof(T) == 1) return v;
  else if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(static_cast<uint16_t>(v)));
  else if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(v)));
  else return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(v)));
}

constexpr ByteOrder kNativeOrder =
    std::endian::native == std::endian::little ? ByteOrder::kLittle : ByteOrder::kBig;

class ByteReader {
 public:
  explicit ByteReader(ByteView data, size_t base_offset = 0) : data_(data), base_(base_offset) {}

  size_t offset() const { return pos_; }
  // Offset of the cursor in the enclosing file (base_offset + offset()).
  size_t file_offset() const { return base_ + pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ >= data_.size(); }

  bool ReadU8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = data_[pos_++];
    return true;
  }
  bool ReadU16(uint16_t* v, ByteOrder order) { return ReadInt(v, order); }
  bool ReadU32(uint32_t* v, ByteOrder order) { return ReadInt(v, order); }
  bool ReadU64(uint64_t* v, ByteOrder order) { return ReadInt(v, order); }

  // A view of the next n bytes (no copy); false if fewer remain.
  bool ReadView(size_t n, ByteView* out) {
    if (remaining() < n) return false;
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }
  ByteView Rest() const { return data_.subspan(pos_); }

 private:
  template <typename T>
  bool ReadInt(T* v, ByteOrder order) {
    if (remaining() < sizeof(T)) return false;
    T x;
    std::memcpy(&x, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    if (order != kNativeOrder) x = ByteSwap(x);
    *v = x;
    return true;
  }

  ByteView data_;
  size_t base_;
  size_t pos_ = 0;
};

class ByteWriter {
 public:
  explicit ByteWriter(Bytes* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v, ByteOrder order) { Int(v, order); }
  void U32(uint32_t v, ByteOrder order) { Int(v, order); }
  void U64(uint64_t v, ByteOrder order) { Int(v, order); }
  void Append(ByteView b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void Append(std::string_view s) { Append(AsBytes(s)); }
  size_t size() const { return out_->size(); }

 private:
  template <typename T>
  void Int(T v, ByteOrder order) {
    if (order != kNativeOrder) v = ByteSwap(v);
    uint8_t buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out_->insert(out_->end(), buf, buf + sizeof(T));
  }
  Bytes* out_;
};

inline uint32_t LoadU32(const uint8_t* p, ByteOrder order) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  return order == kNativeOrder ? x : ByteSwap(x);
}

}  // namespace lim
