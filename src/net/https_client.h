// HttpsClient: one persistent mutual-TLS 1.3 connection to one server (tls.h), used
// synchronously: Request() sends one request and waits for its response under a timeout.
// The connection is kept open between requests (keep-alive); when the server closed it, the
// next request reconnects — with the TLS session ticket of the last connection, so the
// reconnect is an abbreviated handshake (no certificate signatures) — and a request that
// failed on a reused connection before any response byte arrived is sent once more.
// The server's certificate must chain to the CA file and name the host (IP SAN or DNS SAN).
//
// Threading: one HttpsClient is used by one thread at a time. Beast runs on a private
// io_context inside Request().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/http.h"
#include "net/tls.h"

namespace lim::net {

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // The name the server's certificate must carry; empty: host.
  std::string server_name;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};  // write + whole response
  uint64_t max_response_body = 64 << 20;
  bool keep_alive = true;       // false: a new connection (and handshake) per request
  bool resume_sessions = true;  // offer the last session's ticket when reconnecting
};

struct ClientStats {
  uint64_t handshakes = 0;  // full and resumed
  uint64_t resumed = 0;
  uint64_t requests = 0;
};

class HttpsClient {
 public:
  static Result<std::unique_ptr<HttpsClient>> Create(std::shared_ptr<TlsContext> tls, ClientOptions options);
  ~HttpsClient();

  // Sends method target (with body and content type when not empty) and returns the
  // response, whatever its status. Errors: connection, TLS (refused certificate) or timeout,
  // naming host:port and the stage.
  Result<HttpResponse> Request(const std::string& method, const std::string& target, const std::string& body = {},
                               const std::string& content_type = "application/json");
  // Closes the connection (the session ticket is kept for the next one).
  void Close();
  // Forgets the saved session too: the next connection does a full handshake.
  void ForgetSession();
  // The server's verified certificate on the current connection.
  PeerIdentity server() const;
  ClientStats stats() const;

  struct Impl;

 private:
  HttpsClient() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lim::net
