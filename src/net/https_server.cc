#include "net/https_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "net/http_internal.h"
#include "net/tls_internal.h"

namespace lim::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// Member order matters: sessions still queued in ioc are destroyed with it and touch the
// counters and the TLS context, so those are declared (and outlive) before it.
struct HttpsServer::Impl {
  ServerOptions options;
  std::shared_ptr<TlsContext> tls;
  std::map<std::pair<std::string, std::string>, Handler> routes;
  std::set<std::pair<std::string, std::string>> blocking_routes;
  std::atomic<size_t> active{0};
  std::atomic<uint64_t> connections{0}, refused{0}, handshakes_failed{0}, resumed{0}, requests{0}, bad_requests{0},
      blocking_refused{0};
  // The RouteBlocking pool: jobs (a handler call and its response's post) under pool_mu.
  std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::deque<std::function<void()>> pool_jobs;
  bool pool_stop = false;
  std::vector<std::thread> pool_threads;
  std::atomic<bool> stopping{false};
  // One io_context per server thread, made by Start(), each run by that thread alone
  // (concurrency hint 1: the scheduler never wakes another thread). A shared context run by
  // several threads cost ~5 futex calls per push round on the scheduler's lock and condition
  // variable (perf trace of lim-verifier under bench/fleet_load, 2 cores).
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::atomic<size_t> next_ioc{0};
  // The acceptor has a context and a thread of its own, so that a handler running long on
  // a server thread delays no new connection. Declared after iocs: a pending accept holds a
  // socket of one of them, and goes first.
  std::unique_ptr<asio::io_context> accept_ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;  // the server threads, then the acceptor's
  uint16_t port = 0;
  std::once_flag stop_once;

  void Accept();
  HttpResponse Dispatch(const HttpRequest& req) const;
  bool Blocking(const HttpRequest& req) const { return blocking_routes.count({req.method, req.path}) > 0; }
  // Queues job on the blocking pool; false when its queue is full or it is stopping.
  bool PostBlocking(std::function<void()> job);
  void PoolThread();
};

namespace {

// A handler's response, never an exception.
HttpResponse CallHandler(const HttpsServer::Impl& s, const HttpRequest& req) {
  try {
    return s.Dispatch(req);
  } catch (const std::exception& e) {
    return JsonError(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return JsonError(500, "internal error");
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpsServer::Impl* server)
      : stream_(std::move(socket), server->tls->ctx), server_(server),
        buffer_(static_cast<size_t>(server->options.limits.max_header_bytes + server->options.limits.max_body_bytes + 4096)) {
    ++server_->active;
  }
  ~Session() { --server_->active; }

  void Run() {
    beast::get_lowest_layer(stream_).expires_after(server_->options.handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

 private:
  void OnHandshake(beast::error_code ec) {
    if (ec) {
      ++server_->handshakes_failed;
      return;  // the socket closes with the session
    }
    if (SSL_session_reused(stream_.native_handle())) ++server_->resumed;
    peer_ = PeerOf(stream_.native_handle());
    ReadRequest();
  }

  void ReadRequest() {
    parser_.emplace();
    ApplyLimits(*parser_, server_->options.limits);
    beast::get_lowest_layer(stream_).expires_after(server_->options.request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec) {
      ++server_->bad_requests;
      return Write(ParseErrorResponse(ec), false, 11, /*linger=*/true);
    }
    ++server_->requests;
    BeastRequest& r = parser_->get();
    auto req = FromBeast(r, server_->options.limits);
    if (!req.ok()) {
      ++server_->bad_requests;
      return Write(JsonError(400, req.status().message()), false, r.version());
    }
    req->peer = peer_;
    if (server_->Blocking(*req)) {
      // Off the server's threads; the session (kept alive by the job) writes the response
      // back on its own thread's context. No I/O of this session is pending meanwhile.
      bool keep_alive = req->keep_alive;
      unsigned version = r.version();
      auto job = [self = shared_from_this(), req = std::move(*req), keep_alive, version]() mutable {
        HttpResponse res = CallHandler(*self->server_, req);
        asio::post(self->stream_.get_executor(), [self, res = std::move(res), keep_alive, version]() mutable {
          self->Write(std::move(res), keep_alive, version);
        });
      };
      if (!server_->PostBlocking(std::move(job))) {
        ++server_->blocking_refused;
        Write(JsonError(503, "busy: too many requests waiting on other hosts, try again"), keep_alive, version);
      }
      return;
    }
    Write(CallHandler(*server_, *req), req->keep_alive, r.version());
  }

  void Write(HttpResponse res, bool keep_alive, unsigned version, bool linger = false) {
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(res.status));
    res_.set(bhttp::field::server, "lim");
    res_.set(bhttp::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers) res_.insert(name, value);
    res_.keep_alive(keep_alive);
    res_.body() = std::move(res.body);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(server_->options.write_timeout);
    bhttp::async_write(stream_, res_, [self = shared_from_this(), keep_alive, linger](beast::error_code ec, size_t) {
      if (!ec && linger && !self->server_->stopping) return self->Linger(0);
      if (ec || !keep_alive || self->server_->stopping) return self->Close();
      self->ReadRequest();
    });
  }

  // After refusing a request whose body is still arriving (413, 431, 400): read and drop
  // what the peer is still sending — at most kLingerBytes within kLinger — before closing.
  // Closing with unread data makes the kernel answer with a reset, and the reset would
  // destroy the error response in the peer's receive buffer before it reads it.
  static constexpr size_t kLingerBytes = 16u << 20;
  static constexpr std::chrono::milliseconds kLinger{1000};
  void Linger(size_t drained) {
    if (drained == 0) beast::get_lowest_layer(stream_).expires_after(kLinger);
    if (drained >= kLingerBytes) return Close();
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
      if (ec) return self->Close();
      self->Linger(drained + n);
    });
  }

  void Close() {
    // A bounded TLS close_notify; the socket closes when the last handler lets go.
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  HttpsServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  BeastResponse res_;
  PeerIdentity peer_;
  std::array<char, 16384> scratch_{};
};

}  // namespace

HttpResponse HttpsServer::Impl::Dispatch(const HttpRequest& req) const {
  auto it = routes.find({req.method, req.path});
  if (it != routes.end()) return it->second(req);
  for (const auto& [key, handler] : routes) {
    if (key.second == req.path) return JsonError(405, "method " + req.method + " not allowed on " + req.path);
  }
  return JsonError(404, "no such resource: " + req.path);
}

bool HttpsServer::Impl::PostBlocking(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(pool_mu);
    if (pool_stop || pool_jobs.size() >= options.max_blocking_queue) return false;
    pool_jobs.push_back(std::move(job));
  }
  pool_cv.notify_one();
  return true;
}

void HttpsServer::Impl::PoolThread() {
  std::unique_lock<std::mutex> lk(pool_mu);
  for (;;) {
    pool_cv.wait(lk, [this] { return pool_stop || !pool_jobs.empty(); });
    if (pool_stop) return;  // queued jobs are dropped with their sessions (closed)
    std::function<void()> job = std::move(pool_jobs.front());
    pool_jobs.pop_front();
    lk.unlock();
    try {
      job();  // the handler's own exceptions are a 500 already (CallHandler)
    } catch (...) {
      // bad_alloc posting the response: the session closes when its last reference goes
    }
    job = nullptr;  // the session's last reference may go here, not under pool_mu
    lk.lock();
  }
}

void HttpsServer::Impl::Accept() {
  // The new connection's socket (and so its session) lives on the next context in turn.
  asio::io_context& target = *iocs[next_ioc.fetch_add(1, std::memory_order_relaxed) % iocs.size()];
  acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (stopping) return;
    if (!ec) {
      ++connections;
      if (active.load() >= options.max_connections) {
        ++refused;
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), this)->Run();
      }
    }
    Accept();
  });
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::Create(std::shared_ptr<TlsContext> tls, ServerOptions options) {
  if (!tls) return Status::InvalidArgument("HTTPS server: no TLS context");
  if (options.threads < 1 || options.threads > 64) return Status::InvalidArgument("HTTPS server: threads must be 1..64");
  if (options.blocking_threads < 1 || options.blocking_threads > 64) {
    return Status::InvalidArgument("HTTPS server: blocking threads must be 1..64");
  }
  if (options.max_blocking_queue < 1 || options.max_blocking_queue > 100000) {
    return Status::InvalidArgument("HTTPS server: the blocking queue must hold 1..100000");
  }
  std::unique_ptr<HttpsServer> s(new HttpsServer);
  s->impl_ = std::make_unique<Impl>();
  s->impl_->options = std::move(options);
  s->impl_->tls = std::move(tls);
  return s;
}

HttpsServer::~HttpsServer() { Stop(); }

void HttpsServer::Route(const std::string& method, const std::string& path, Handler handler) {
  impl_->routes[{method, path}] = std::move(handler);
  impl_->blocking_routes.erase({method, path});
}

void HttpsServer::RouteBlocking(const std::string& method, const std::string& path, Handler handler) {
  impl_->routes[{method, path}] = std::move(handler);
  impl_->blocking_routes.insert({method, path});
}

Status HttpsServer::Start() {
  Impl& s = *impl_;
  std::string where = s.options.address + ":" + std::to_string(s.options.port);
  beast::error_code ec;
  auto addr = asio::ip::make_address(s.options.address, ec);
  if (ec) return Status::InvalidArgument("listen address " + s.options.address + ": " + ec.message());
  tcp::endpoint ep(addr, s.options.port);
  if (!s.iocs.empty()) return Status::InvalidArgument("HTTPS server on " + where + ": started twice");
  for (int i = 0; i < s.options.threads; ++i) s.iocs.push_back(std::make_unique<asio::io_context>(1));
  s.accept_ioc = std::make_unique<asio::io_context>(1);
  s.acceptor.emplace(*s.accept_ioc);
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    // Nothing of this attempt stays: a later Start() (the port freed) begins afresh.
    s.acceptor.reset();
    s.accept_ioc.reset();
    s.iocs.clear();
    return Status::IoError("listen on " + where + ": " + ec.message());
  }
  s.port = s.acceptor->local_endpoint().port();
  s.Accept();
  if (!s.blocking_routes.empty()) {
    for (int i = 0; i < s.options.blocking_threads; ++i) s.pool_threads.emplace_back([&s] { s.PoolThread(); });
  }
  std::vector<asio::io_context*> run;
  for (auto& ioc : s.iocs) run.push_back(ioc.get());
  run.push_back(s.accept_ioc.get());
  for (asio::io_context* ctx : run) {
    // Each context has work for good (a server thread's is idle until a connection
    // arrives), so run() returns only at Stop().
    s.threads.emplace_back([ctx] {
      auto work = asio::make_work_guard(*ctx);
      for (;;) {
        try {
          ctx->run();
          return;
        } catch (...) {
          // A handler escaped its try: keep serving the other connections.
        }
      }
    });
  }
  return Status::Ok();
}

uint16_t HttpsServer::port() const { return impl_->port; }

void HttpsServer::Stop() {
  if (!impl_) return;
  std::call_once(impl_->stop_once, [this] {
    Impl& s = *impl_;
    s.stopping = true;
    if (s.accept_ioc) s.accept_ioc->stop();
    for (auto& ioc : s.iocs) ioc->stop();
    for (auto& t : s.threads) t.join();
    s.threads.clear();
    // No thread runs the contexts any more: the listening socket is closed here, so the
    // port is free once Stop() returns (a close posted to the stopped context never ran).
    if (s.acceptor) {
      beast::error_code ignored;
      s.acceptor->close(ignored);
    }
    // A blocking handler still running finishes (its response, posted to the stopped ioc,
    // never runs; the session lives until the ioc is destroyed); the jobs still queued are
    // dropped, and with them their sessions.
    {
      std::lock_guard<std::mutex> lk(s.pool_mu);
      s.pool_stop = true;
    }
    s.pool_cv.notify_all();
    for (auto& t : s.pool_threads) t.join();
    s.pool_threads.clear();
    std::lock_guard<std::mutex> lk(s.pool_mu);
    s.pool_jobs.clear();
  });
}

ServerStats HttpsServer::stats() const {
  const Impl& s = *impl_;
  ServerStats st;
  st.connections = s.connections;
  st.refused_over_limit = s.refused;
  st.handshakes_failed = s.handshakes_failed;
  st.resumed = s.resumed;
  st.requests = s.requests;
  st.bad_requests = s.bad_requests;
  st.blocking_refused = s.blocking_refused;
  return st;
}

}  // namespace lim::net
