// Who may read the verifier's web view (web_view.h) when the browser shows no operator
// certificate: operators listed in a users file with a password hash, and the sessions
// they open by logging in.
//
// The users file (--web-users): one operator per line, "NAME pbkdf2-sha256:ITER:SALT:HASH"
// (salt and hash in hex; `lim-verifier --hash-password` prints such a line), blank lines
// and "#" comments allowed; errors name FILE:LINE. PBKDF2-HMAC-SHA256 from OpenSSL, compared
// in constant time. A session is 32 random bytes in a cookie (Secure, HttpOnly,
// SameSite=Strict); the server keeps only their SHA-256, with an expiry, at most
// max_sessions of them (the oldest go first).
//
// Threading: WebUsers is immutable after loading; WebSessions is thread-safe (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace lim::verifier::web {

inline constexpr uint32_t kDefaultPbkdf2Iterations = 600000;  // OWASP 2023 for PBKDF2-HMAC-SHA256
inline constexpr char kSessionCookie[] = "lim_session";

// "pbkdf2-sha256:ITER:SALT:HASH" for password with a fresh 16-byte salt.
Result<std::string> HashPassword(std::string_view password, uint32_t iterations = kDefaultPbkdf2Iterations);
// True when password matches the hash line's hash; a malformed hash is an error naming it.
Result<bool> CheckPassword(std::string_view hash, std::string_view password);

class WebUsers {
 public:
  static Result<WebUsers> Load(const std::string& path);
  // Lines as in the file (tests); `where` names the source in errors.
  static Result<WebUsers> Parse(std::string_view text, const std::string& where);

  bool empty() const { return hashes_.empty(); }
  size_t size() const { return hashes_.size(); }
  // False for an unknown user or a wrong password (the same time either way: an unknown
  // user is checked against a dummy hash, so timing does not tell which names exist).
  bool Check(const std::string& user, std::string_view password) const;

 private:
  std::map<std::string, std::string> hashes_;
};

class WebSessions {
 public:
  explicit WebSessions(std::chrono::seconds ttl = std::chrono::hours(12), size_t max_sessions = 10000)
      : ttl_(ttl), max_(max_sessions) {}

  // A new session for user: the cookie value (hex of 32 random bytes).
  Result<std::string> Open(const std::string& user);
  // The user of the session named in a Cookie header, when it is live.
  std::optional<std::string> Find(std::string_view cookie_header);
  void Close(std::string_view cookie_header);
  std::chrono::seconds ttl() const { return ttl_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Session {
    std::string user;
    Clock::time_point expires;
  };
  std::chrono::seconds ttl_;
  size_t max_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // SHA-256 (hex) of the cookie value → session
};

// The value of cookie `name` in a Cookie header ("a=1; lim_session=…"), empty when absent.
std::string CookieValue(std::string_view header, std::string_view name);

}  // namespace lim::verifier::web
