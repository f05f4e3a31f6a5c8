#include "base/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

Result<Bytes> ReadFileBounded(const std::string& path, size_t max_bytes) {
  auto too_large = [&] {
    return Status::InvalidArgument(path + ": larger than " + std::to_string(max_bytes) + " bytes (the limit)");
  };
  int fd = (path == "-") ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return too_large();
  }
  // A regular file's size is known (plus one byte to see the end); anything else may run to the limit.
  auto r = ReadFd(fd, path, max_bytes, regular ? static_cast<size_t>(st.st_size) + 1 : max_bytes + 1);
  ::close(fd);
  if (r.ok() && r->size() > max_bytes) return too_large();
  return r;
}

Status WriteFileBytes(const std::string& path, ByteView data, mode_t mode,
                      const std::function<void(int fd)>& written) {
  std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return Errno("unlink", tmp);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("open", tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Errno("write", tmp);
      ::close(fd);
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (written) written(fd);
  if (::close(fd) != 0) return Errno("close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", path);
  return Status::Ok();
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  MappedFile m;
  m.path_ = path;
  int fd = (path == "-") ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
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
  auto r = ReadFd(fd, path);
  ::close(fd);
  if (!r.ok()) return r.status();
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
