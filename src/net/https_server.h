// HttpsServer: an HTTPS/1.1 server with mutual TLS 1.3 (tls.h) on Boost.Beast/Asio. Async:
// a few threads, each running an io_context of its own, hold every connection — no thread per
// connection, so thousands of persistent (keep-alive) connections cost memory, not threads.
// A connection is given to one thread's context at accept (in turn) and stays there: no
// thread hands work to another, so a request costs no scheduler lock or wake-up across
// threads. Accepting has a thread of its own. Routes map (method, exact path) to handlers that return a response.
//
// Hostile peers: the TLS handshake, each request (header and body together) and each response
// write have their own timeout; header and body sizes are bounded (HttpLimits: 431 and 413
// answers, then close); a malformed request gets 400 and a close; connections over
// max_connections are closed at accept. A handler that throws gets a 500, never a crash.
//
// Threading: Route() before Start(). Handlers run on the server's threads and may run
// concurrently (threads > 1): they must be thread-safe. While a handler runs, the other
// connections of its thread wait, so a handler that may wait on another host (the
// verifier's enrollment asks the agent) is routed with RouteBlocking(): it runs on a pool of
// its own (blocking_threads), so that while it waits every other connection is still
// served; its response is written from the connection's thread. Stop() from any thread
// but a handler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/http.h"
#include "net/tls.h"

namespace lim::net {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks one (port() tells)
  HttpLimits limits;
  std::chrono::milliseconds handshake_timeout{5000};
  // The longest a connection may take to send one whole request, and the longest it may
  // stay idle between requests (keep-alive).
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds write_timeout{10000};
  size_t max_connections = 20000;
  int threads = 1;
  // RouteBlocking() handlers: threads (1-64) and requests waiting for one (1-100000; more
  // are answered 503).
  int blocking_threads = 4;
  size_t max_blocking_queue = 256;
};

struct ServerStats {
  uint64_t connections = 0;        // accepted
  uint64_t refused_over_limit = 0;  // closed at accept (max_connections)
  uint64_t handshakes_failed = 0;   // includes peers without an acceptable certificate
  uint64_t resumed = 0;             // handshakes that resumed a session (ticket)
  uint64_t requests = 0;
  uint64_t bad_requests = 0;  // 4xx from parsing (431, 413, 400)
  uint64_t blocking_refused = 0;  // RouteBlocking requests answered 503 (the pool's queue full)
};

class HttpsServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  static Result<std::unique_ptr<HttpsServer>> Create(std::shared_ptr<TlsContext> tls, ServerOptions options);
  ~HttpsServer();  // Stop()

  void Route(const std::string& method, const std::string& path, Handler handler);
  // A handler that may block for long (it talks to another host): run on the blocking pool.
  // Before Start(), as Route() (the pool starts there when a blocking route exists).
  void RouteBlocking(const std::string& method, const std::string& path, Handler handler);
  // Binds, listens and starts the threads. The error names the address; after one, Start()
  // may be called again.
  Status Start();
  uint16_t port() const;
  // Stops accepting (the port is free when it returns), stops serving every connection
  // (their sockets close when the server is destroyed) and joins the threads. Idempotent.
  void Stop();
  ServerStats stats() const;

  struct Impl;

 private:
  HttpsServer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lim::net
