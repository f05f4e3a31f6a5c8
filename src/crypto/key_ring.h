// KeyRing: the trusted public keys for IMA/EVM appraisal, read from a directory of X.509
// certificates (PEM, possibly several per file, or DER) — lim's counterpart of the
// kernel's .ima/.evm keyrings, default /etc/lim/keys. Each key is known by its 4-byte key
// id (kernel-ima.md §10.4). A file that holds no certificate is reported, not fatal: one
// stray file must not disable appraisal, and `lim keys list` shows it. Immutable after
// loading; safe to share between threads.
#pragma once

#include <string>
#include <vector>

#include "crypto/public_key.h"

namespace lim {

inline constexpr const char kDefaultKeyDir[] = "/etc/lim/keys";

class KeyRing {
 public:
  KeyRing() = default;
  explicit KeyRing(std::vector<PublicKey> keys) : keys_(std::move(keys)) {}

  // Every regular file in dir (not recursive, sorted by name; hidden files skipped). A
  // missing or unreadable directory is an error; a file without a certificate lands in
  // problems() as "FILE: why".
  static Result<KeyRing> LoadDir(const std::string& dir);
  // A directory or a single certificate file.
  static Result<KeyRing> Load(const std::string& path);

  const std::vector<PublicKey>& keys() const { return keys_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<PublicKey> keys_;
  std::vector<std::string> problems_;
};

}  // namespace lim
