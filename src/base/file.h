// Small file helpers over POSIX: whole-file reads (optionally bounded), atomic writes, and a
// read-only mapping for large inputs (a 1 GB measurement list is mapped, not copied). Errors
// name the path and errno (raw bytes: the CLI escapes whole messages when it prints them,
// base/escape.h). Inputs that someone else chooses (every file limd and the lim CLI are
// given) are read with a size limit, so /dev/zero or a 4 GiB sparse file is refused after at
// most limit + 1 bytes. MappedFile is movable, not copyable; concurrent readers of one
// mapping are fine.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "base/hex.h"
#include "base/status.h"

namespace lim {

Result<Bytes> ReadFileBytes(const std::string& path);
Result<std::string> ReadFileText(const std::string& path);
// The whole file, refused (kInvalidArgument, "PATH: larger than N bytes") once it holds more
// than max_bytes: a regular file by its size, before reading; anything else (/dev/zero, a
// pipe) after reading max_bytes + 1, so memory stays bounded by max_bytes. With `what`, the
// message also says what the file was meant to be: "/dev/zero: larger than 1048576 bytes
// (1 MiB), the limit for a PCR file".
Result<Bytes> ReadFileBounded(const std::string& path, size_t max_bytes, std::string_view what = {});
Result<std::string> ReadFileTextBounded(const std::string& path, size_t max_bytes, std::string_view what = {});
// "1 MiB", "64 KiB", "300 bytes": sizes in limit messages.
std::string SizeText(uint64_t bytes);
// The target of the symbolic link at path (a /proc magic link: exe, fd/N, cwd), "" when it
// cannot be read. Targets longer than PATH_MAX - 1 bytes come back cut.
std::string ReadLink(const std::string& path);
// Writes PATH.tmp (never through a link: an old PATH.tmp is removed, the new one created
// with O_EXCL | O_NOFOLLOW and mode) and renames it over path, which replaces a link at path
// rather than writing through it. A device, fifo or socket at path is refused, not replaced. written(fd), when given, runs on the written temporary
// file before the rename.
Status WriteFileBytes(const std::string& path, ByteView data, mode_t mode = 0644,
                      const std::function<void(int fd)>& written = {});
// The same with the data in pieces, written one after the other (a large document made in
// parts need not be joined in memory first).
Status WriteFilePieces(const std::string& path, std::span<const ByteView> pieces, mode_t mode = 0644);
// Writes every piece to fd in turn (short writes continued, EINTR retried); an error names
// `name` ("NAME: write: …"). fd stays open.
Status WriteAllPieces(int fd, std::span<const ByteView> pieces, const std::string& name);

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);
  // As Open, but refuses inputs larger than max_bytes (as ReadFileBounded).
  static Result<MappedFile> Open(const std::string& path, size_t max_bytes, std::string_view what);
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
