#include "crypto/secret_bytes.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "crypto/digest.h"
#include "crypto/hash_algo.h"

namespace lim {

namespace {

// Advice that may be missing on old kernels (MADV_WIPEONFORK: 4.14) is best effort; locking
// and leaving the pages out of core dumps are not.
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

// The largest secret lim keeps: a few pages (the EVM key is at most 128 bytes; sealed data
// at most MAX_SYM_DATA = 128). A bound keeps a bad length from locking gigabytes.
constexpr size_t kMaxSecret = 64 << 10;

}  // namespace

Result<SecretBytes> SecretBytes::Allocate(size_t capacity) {
  if (capacity == 0 || capacity > kMaxSecret) {
    return Status::InvalidArgument("secret of " + std::to_string(capacity) + " bytes (1 to " + std::to_string(kMaxSecret) + ")");
  }
  long page = sysconf(_SC_PAGESIZE);
  size_t pg = page > 0 ? static_cast<size_t>(page) : 4096;
  size_t len = (capacity + pg - 1) / pg * pg;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::IoError(std::string("mmap for a secret: ") + std::strerror(errno));
  // Advice before any byte of the secret is written, so no copy ever sits in dumpable or
  // swappable memory.
  if (madvise(p, len, MADV_DONTDUMP) != 0) {
    int e = errno;
    munmap(p, len);
    return Status::IoError(std::string("madvise(MADV_DONTDUMP) for a secret: ") + std::strerror(e));
  }
  (void)madvise(p, len, MADV_WIPEONFORK);
  if (mlock(p, len) != 0) {
    int e = errno;
    munmap(p, len);
    return Status::IoError(std::string("cannot lock ") + std::to_string(len) + " bytes of memory for a secret: " +
                           std::strerror(e) + " (RLIMIT_MEMLOCK; `ulimit -l`)");
  }
  SecretBytes s;
  s.data_ = static_cast<uint8_t*>(p);
  s.capacity_ = capacity;
  s.mapped_ = len;
  return s;
}

Result<SecretBytes> SecretBytes::CopyOf(ByteView data) {
  LIM_ASSIGN_OR_RETURN(SecretBytes s, Allocate(data.empty() ? 1 : data.size()));
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  s.size_ = data.size();
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      capacity_(std::exchange(o.capacity_, 0)),
      mapped_(std::exchange(o.mapped_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    Clear();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Clear(); }

void SecretBytes::Resize(size_t n) { size_ = n <= capacity_ ? n : capacity_; }

void SecretBytes::Clear() {
  if (!data_) return;
  OPENSSL_cleanse(data_, mapped_);
  munlock(data_, mapped_);
  munmap(data_, mapped_);
  data_ = nullptr;
  size_ = capacity_ = mapped_ = 0;
}

bool SecretEquals(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string SecretFingerprint(ByteView secret) {
  auto algo = HashAlgoByName("sha256");
  auto d = algo.ok() ? Digest(*algo, secret) : Result<Bytes>(algo.status());
  return d.ok() ? "sha256:" + ToHex(ByteView(*d).first(8)) : "?";
}

Result<SecretBytes> ReadSecretFile(const std::string& path, size_t max, const std::string& what) {
  auto bad = [&](const std::string& why) { return Status::InvalidArgument(path + ": " + why + " (" + what + ")"); };
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) return bad("is a symbolic link; give the key file itself");
    return Status::IoError(path + ": open: " + std::strerror(errno) + " (" + what + ")");
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::IoError(path + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return bad("not a regular file");
  if (st.st_uid != 0 && st.st_uid != geteuid()) return bad("owned by uid " + std::to_string(st.st_uid) + ", not by root");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return bad(std::string("mode ") + mode + " lets group or others at it; chmod 600");
  }
  if (st.st_size <= 0) return bad("empty");
  if (static_cast<uint64_t>(st.st_size) > max) {
    return bad(std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max) + " a key may have");
  }
  // One byte more than allowed, so a file that grew after fstat is refused, not cut.
  LIM_ASSIGN_OR_RETURN(SecretBytes s, SecretBytes::Allocate(max + 1));
  size_t got = 0;
  while (got < max + 1) {
    ssize_t r = read(fd, s.mutable_data() + got, max + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IoError(path + ": read: " + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  if (got == 0) return bad("empty");
  if (got > max) return bad("more than the " + std::to_string(max) + " bytes a key may have");
  s.Resize(got);
  return s;
}

}  // namespace lim
