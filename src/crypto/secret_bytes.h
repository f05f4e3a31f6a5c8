// SecretBytes: a small secret (the EVM HMAC key) held in memory that is locked (mlock: never
// swapped out), left out of core dumps (MADV_DONTDUMP), not inherited by a fork's child
// (MADV_WIPEONFORK) and wiped with OPENSSL_cleanse before it is unmapped. The buffer is its
// own anonymous mapping, so the advice covers exactly the secret and nothing else, and no
// std::vector reallocation can leave a copy behind. Whole-process protections (no core dump,
// no ptrace by other users: prctl(PR_SET_DUMPABLE, 0)) are the owner's to set — limd does
// when it holds a key.
//
// ReadSecretFile reads a key file the way a daemon must: O_NOFOLLOW, a regular file, owned
// by root (or by the caller's euid), not readable or writable by group or others, at most
// max bytes — straight into locked memory.
//
// Move-only. Not thread-safe to mutate; concurrent readers of a const SecretBytes are fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/hex.h"
#include "base/status.h"

namespace lim {

class SecretBytes {
 public:
  SecretBytes() = default;
  // A locked buffer for up to capacity bytes (size 0). Fails when memory cannot be locked
  // (RLIMIT_MEMLOCK): a key must never land in swap, so there is no unlocked fallback.
  static Result<SecretBytes> Allocate(size_t capacity);
  // A locked copy of data.
  static Result<SecretBytes> CopyOf(ByteView data);

  SecretBytes(SecretBytes&& o) noexcept;
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return data_; }
  ByteView view() const { return {data_, size_}; }
  // Sets the used length (≤ capacity) after writing through mutable_data().
  void Resize(size_t n);
  // Wipes and releases the buffer now.
  void Clear();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t mapped_ = 0;  // length of the mapping (whole pages)
};

// Constant-time comparison of two byte strings of equal length (false if lengths differ).
bool SecretEquals(ByteView a, ByteView b);

// "sha256:0123456789abcdef": the first 8 bytes of SHA-256 of the secret, so an admin can
// tell which key limd holds without ever seeing it.
std::string SecretFingerprint(ByteView secret);

// Reads a secret key file into locked memory. Refused, naming path and the reason: a
// symbolic link (O_NOFOLLOW), not a regular file, an owner other than root or the effective
// uid, any group/other permission bit (the kernel's evm-key is root's alone), empty, or
// larger than max bytes. what names the key in messages ("the EVM HMAC key").
Result<SecretBytes> ReadSecretFile(const std::string& path, size_t max, const std::string& what);

}  // namespace lim
