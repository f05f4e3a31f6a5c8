#include "verifier/web_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <charconv>
#include <sstream>
#include <vector>

#include "base/file.h"
#include "base/hex.h"

namespace lim::verifier::web {

namespace {

constexpr uint32_t kMinIterations = 1000;
constexpr uint32_t kMaxIterations = 100000000;

struct ParsedHash {
  uint32_t iterations = 0;
  Bytes salt;
  Bytes hash;
};

Result<ParsedHash> ParseHash(std::string_view text) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 4 || parts[0] != "pbkdf2-sha256") {
    return Status::InvalidArgument("password hash: expected pbkdf2-sha256:ITER:SALT:HASH");
  }
  ParsedHash p;
  auto [ptr, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), p.iterations);
  if (ec != std::errc() || ptr != parts[1].data() + parts[1].size() || p.iterations < kMinIterations ||
      p.iterations > kMaxIterations) {
    return Status::InvalidArgument("password hash: iterations must be a number " + std::to_string(kMinIterations) + "-" +
                                   std::to_string(kMaxIterations));
  }
  auto salt = FromHex(parts[2]);
  auto hash = FromHex(parts[3]);
  if (!salt.ok() || salt->size() < 8) return Status::InvalidArgument("password hash: salt must be at least 8 bytes of hex");
  if (!hash.ok() || hash->size() != 32) return Status::InvalidArgument("password hash: hash must be 32 bytes of hex");
  p.salt = std::move(*salt);
  p.hash = std::move(*hash);
  return p;
}

Result<Bytes> Pbkdf2(std::string_view password, const Bytes& salt, uint32_t iterations) {
  Bytes out(32);
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                        static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()), out.data()) != 1) {
    return Status::Internal("PBKDF2 failed");
  }
  return out;
}

std::string Sha256Hex(std::string_view s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return ToHex(ByteView(md, sizeof md));
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, uint32_t iterations) {
  if (iterations < kMinIterations || iterations > kMaxIterations) {
    return Status::InvalidArgument("iterations must be " + std::to_string(kMinIterations) + "-" +
                                   std::to_string(kMaxIterations));
  }
  Bytes salt(16);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return Status::Internal("RAND_bytes failed");
  LIM_ASSIGN_OR_RETURN(Bytes hash, Pbkdf2(password, salt, iterations));
  return "pbkdf2-sha256:" + std::to_string(iterations) + ":" + ToHex(salt) + ":" + ToHex(hash);
}

Result<bool> CheckPassword(std::string_view hash, std::string_view password) {
  LIM_ASSIGN_OR_RETURN(ParsedHash p, ParseHash(hash));
  LIM_ASSIGN_OR_RETURN(Bytes got, Pbkdf2(password, p.salt, p.iterations));
  return CRYPTO_memcmp(got.data(), p.hash.data(), got.size()) == 0;
}

Result<WebUsers> WebUsers::Load(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, 1 << 20, "users file"));
  return Parse(text, path);
}

Result<WebUsers> WebUsers::Parse(std::string_view text, const std::string& where) {
  WebUsers u;
  std::istringstream in{std::string(text)};
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::string at = where + ":" + std::to_string(n) + ": ";
    std::istringstream f(line);
    std::string name, hash, extra;
    f >> name;
    if (name.empty() || name[0] == '#') continue;
    f >> hash >> extra;
    if (hash.empty() || !extra.empty()) return Status::InvalidArgument(at + "expected NAME pbkdf2-sha256:ITER:SALT:HASH");
    if (auto p = ParseHash(hash); !p.ok()) return Status::InvalidArgument(at + p.status().message());
    if (!u.hashes_.emplace(name, hash).second) return Status::InvalidArgument(at + "user " + name + " listed twice");
  }
  return u;
}

bool WebUsers::Check(const std::string& user, std::string_view password) const {
  auto it = hashes_.find(user);
  if (it == hashes_.end()) {
    // The same work for an unknown name: the first user's parameters, then a refusal.
    if (!hashes_.empty()) (void)CheckPassword(hashes_.begin()->second, password);
    return false;
  }
  auto ok = CheckPassword(it->second, password);
  return ok.ok() && *ok;
}

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
  }
  return {};
}

Result<std::string> WebSessions::Open(const std::string& user) {
  Bytes raw(32);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return Status::Internal("RAND_bytes failed");
  std::string token = ToHex(raw);
  auto now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires <= now ? sessions_.erase(it) : std::next(it);
  }
  while (sessions_.size() >= max_) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_[Sha256Hex(token)] = {user, now + ttl_};
  return token;
}

std::optional<std::string> WebSessions::Find(std::string_view cookie_header) {
  std::string token = CookieValue(cookie_header, kSessionCookie);
  if (token.size() != 64) return std::nullopt;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = sessions_.find(Sha256Hex(token));
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= Clock::now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second.user;
}

void WebSessions::Close(std::string_view cookie_header) {
  std::string token = CookieValue(cookie_header, kSessionCookie);
  std::lock_guard<std::mutex> lk(mu_);
  sessions_.erase(Sha256Hex(token));
}

}  // namespace lim::verifier::web
