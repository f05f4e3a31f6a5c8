// Small file helpers over POSIX: whole-file reads, atomic writes, and a read-only mapping
// for large inputs (a 1 GB measurement list is mapped, not copied). Errors name the path and
// errno. MappedFile is movable, not copyable; concurrent readers of one mapping are fine.
#pragma once

#include <string>

#include "base/hex.h"
#include "base/status.h"

namespace lim {

Result<Bytes> ReadFileBytes(const std::string& path);
Result<std::string> ReadFileText(const std::string& path);
Status WriteFileBytes(const std::string& path, ByteView data);

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  ByteView data() const { return {static_cast<const uint8_t*>(addr_), size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  void* addr_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  Bytes fallback_;  // for files that cannot be mapped (pipes, /proc, securityfs)
  std::string path_;
};

}  // namespace lim
