#include "base/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

namespace lim {

namespace {
Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(path + ": " + what + ": " + std::strerror(errno));
}

// Reads to the end, or until more than max bytes were read (then out holds max + 1 bytes).
// reserve: the expected size, allocated at once (growing by doubling would copy, and hold
// up to three times max at the peak).
Result<Bytes> ReadFd(int fd, const std::string& path, size_t max = SIZE_MAX - 1, size_t reserve = 0) {
  Bytes out;
  out.reserve(reserve);
  size_t cap = 1 << 16;
  for (;;) {
    if (out.capacity() > out.size()) cap = std::min(cap, out.capacity() - out.size());  // no reallocation
    cap = std::min(cap, max + 1 - out.size());
    out.resize(out.size() + cap);
    ssize_t n;
    do {
      n = ::read(fd, out.data() + out.size() - cap, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Errno("read", path);
    out.resize(out.size() - cap + static_cast<size_t>(n));
    if (n == 0 || out.size() > max) break;
    if (cap < (1u << 24)) cap *= 2;
  }
  return out;
}
}  // namespace

Result<Bytes> ReadFileBytes(const std::string& path) {
  int fd = (path == "-") ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  auto r = ReadFd(fd, path);
  ::close(fd);
  return r;
}

Result<std::string> ReadFileText(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(Bytes b, ReadFileBytes(path));
  return std::string(b.begin(), b.end());
}

std::string SizeText(uint64_t bytes) {
  if (bytes >= (1u << 30) && bytes % (1u << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (1u << 10) && bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

namespace {
Status TooLarge(const std::string& path, size_t max_bytes, std::string_view what) {
  std::string m = path + ": larger than " + std::to_string(max_bytes) + " bytes";
  if (what.empty()) return Status::InvalidArgument(m + " (the limit)");
  std::string readable = SizeText(max_bytes);
  if (readable.find("bytes") == std::string::npos) m += " (" + readable + ")";
  return Status::InvalidArgument(m + ", the limit for " + std::string(what));
}

// Opens path ("-": standard input); a regular file larger than max_bytes is refused by its
// size. *reserve: what a bounded read should allocate at once.
Result<int> OpenBounded(const std::string& path, size_t max_bytes, std::string_view what, size_t* reserve) {
  int fd = (path == "-") ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return TooLarge(path, max_bytes, what);
  }
  // A regular file's size is known (plus one byte to see the end); anything else may run to the limit.
  *reserve = regular ? static_cast<size_t>(st.st_size) + 1 : max_bytes + 1;
  return fd;
}
}  // namespace

Result<Bytes> ReadFileBounded(const std::string& path, size_t max_bytes, std::string_view what) {
  size_t reserve = 0;
  LIM_ASSIGN_OR_RETURN(int fd, OpenBounded(path, max_bytes, what, &reserve));
  auto r = ReadFd(fd, path, max_bytes, reserve);
  ::close(fd);
  if (r.ok() && r->size() > max_bytes) return TooLarge(path, max_bytes, what);
  return r;
}

Result<std::string> ReadFileTextBounded(const std::string& path, size_t max_bytes, std::string_view what) {
  LIM_ASSIGN_OR_RETURN(Bytes b, ReadFileBounded(path, max_bytes, what));
  return std::string(b.begin(), b.end());
}

std::string ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

namespace {

Status WriteFileAtomically(const std::string& path, std::span<const ByteView> pieces, mode_t mode,
                           const std::function<void(int fd)>& written) {
  // A device, fifo or socket at path is never renamed over: `-o /dev/null` run as root
  // would otherwise put a regular file in /dev/null's place for the whole machine.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(path + ": not a regular file: not replaced");
  }
  std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return Errno("unlink", tmp);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("open", tmp);
  if (Status s = WriteAllPieces(fd, pieces, tmp); !s.ok()) {
    ::close(fd);
    return s;
  }
  if (written) written(fd);
  if (::close(fd) != 0) return Errno("close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", path);
  return Status::Ok();
}

}  // namespace

Status WriteAllPieces(int fd, std::span<const ByteView> pieces, const std::string& name) {
  for (ByteView data : pieces) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("write", name);
      off += static_cast<size_t>(n);
    }
  }
  return Status::Ok();
}

Status WriteFileBytes(const std::string& path, ByteView data, mode_t mode,
                      const std::function<void(int fd)>& written) {
  return WriteFileAtomically(path, std::span<const ByteView>(&data, 1), mode, written);
}

Status WriteFilePieces(const std::string& path, std::span<const ByteView> pieces, mode_t mode) {
  return WriteFileAtomically(path, pieces, mode, {});
}

Result<MappedFile> MappedFile::Open(const std::string& path) { return Open(path, SIZE_MAX - 1, {}); }

Result<MappedFile> MappedFile::Open(const std::string& path, size_t max_bytes, std::string_view what) {
  MappedFile m;
  m.path_ = path;
  const bool bounded = max_bytes != SIZE_MAX - 1;
  size_t reserve = 0;
  LIM_ASSIGN_OR_RETURN(int fd, OpenBounded(path, max_bytes, what, &reserve));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = Errno("stat", path);
    ::close(fd);
    return s;
  }
  // Regular files with a size are mapped; anything else (pipes, securityfs files whose size
  // reads as 0) is read to the end.
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    void* a = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (a != MAP_FAILED) {
      ::madvise(a, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
      m.addr_ = a;
      m.size_ = static_cast<size_t>(st.st_size);
      m.mapped_ = true;
      ::close(fd);
      return m;
    }
  }
  auto r = ReadFd(fd, path, max_bytes, bounded ? reserve : 0);
  ::close(fd);
  if (!r.ok()) return r.status();
  if (r->size() > max_bytes) return TooLarge(path, max_bytes, what);
  m.fallback_ = std::move(r).value();
  m.addr_ = m.fallback_.data();
  m.size_ = m.fallback_.size();
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this == &o) return *this;
  if (mapped_) ::munmap(addr_, size_);
  mapped_ = o.mapped_;
  size_ = o.size_;
  path_ = std::move(o.path_);
  fallback_ = std::move(o.fallback_);
  addr_ = mapped_ ? o.addr_ : fallback_.data();
  o.mapped_ = false;
  o.addr_ = nullptr;
  o.size_ = 0;
  return *this;
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(addr_, size_);
}

}  // namespace lim
