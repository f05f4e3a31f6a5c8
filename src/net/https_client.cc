#include "net/https_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "net/http_internal.h"
#include "net/tls_internal.h"

namespace lim::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct HttpsClient::Impl {
  ClientOptions options;
  std::shared_ptr<TlsContext> tls;
  std::string where;  // "host:port" for messages
  asio::io_context ioc;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  SSL_SESSION* session = nullptr;  // owned: the last resumable session
  ClientStats stats;
  PeerIdentity peer;

  ~Impl() {
    stream.reset();
    if (session) SSL_SESSION_free(session);
  }

  // Runs one async operation to completion on the private io_context: Beast's timeouts
  // (tcp_stream::expires_after) apply, which blocking calls would not have.
  template <typename Start>
  beast::error_code RunOp(Start&& start) {
    beast::error_code result = asio::error::operation_aborted;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void Drop() {
    if (!stream) return;
    // Closed without a close_notify exchange (HTTP messages are framed, nothing is lost),
    // marked as shut down so that OpenSSL does not flag the session as bad: SSL_free
    // otherwise makes it non-resumable and the next connection would do a full handshake.
    SSL_set_shutdown(stream->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    beast::error_code ignored;
    beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(*stream).close();
    stream.reset();
    buffer.clear();
  }

  void SaveSession() {
    if (!stream || !options.resume_sessions) return;
    SSL_SESSION* s = SSL_get1_session(stream->native_handle());
    if (s && SSL_SESSION_is_resumable(s)) {
      if (session) SSL_SESSION_free(session);
      session = s;
    } else if (s) {
      SSL_SESSION_free(s);
    }
  }

  Status Connect() {
    Drop();
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec) return Status::Unavailable(where + ": cannot resolve: " + ec.message());
    stream.emplace(ioc, tls->ctx);
    SSL* ssl = stream->native_handle();
    const std::string& name = options.server_name.empty() ? options.host : options.server_name;
    beast::error_code not_ip;
    asio::ip::make_address(name, not_ip);
    if (not_ip) {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set1_host(ssl, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    }
    if (options.resume_sessions && session) SSL_set_session(ssl, session);
    beast::get_lowest_layer(*stream).expires_after(options.connect_timeout);
    ec = RunOp([&](auto h) { beast::get_lowest_layer(*stream).async_connect(endpoints, std::move(h)); });
    if (ec) {
      Drop();
      return Status::Unavailable(where + ": connect: " + ec.message());
    }
    beast::get_lowest_layer(*stream).socket().set_option(tcp::no_delay(true), ec);
    ec = RunOp([&](auto h) { stream->async_handshake(asio::ssl::stream_base::client, std::move(h)); });
    if (ec) {
      Drop();
      return Status::Unavailable(where + ": TLS handshake: " + ec.message());
    }
    ++stats.handshakes;
    if (SSL_session_reused(ssl)) ++stats.resumed;
    peer = PeerOf(ssl);
    return Status::Ok();
  }

  // One exchange on the current connection; *reply_started says whether any byte of the
  // response arrived (a stale keep-alive connection fails before that).
  Result<HttpResponse> Exchange(const BeastRequest& req, bool* reply_started) {
    *reply_started = false;
    beast::get_lowest_layer(*stream).expires_after(options.request_timeout);
    auto ec = RunOp([&](auto h) { bhttp::async_write(*stream, req, std::move(h)); });
    if (ec) return Status::Unavailable(where + ": sending request: " + ec.message());
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(64 << 10);
    parser.body_limit(options.max_response_body);
    ec = RunOp([&](auto h) { bhttp::async_read(*stream, buffer, parser, std::move(h)); });
    *reply_started = parser.got_some();
    if (ec) return Status::Unavailable(where + ": reading response: " + ec.message());
    const auto& r = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(r.result_int());
    auto ct = r.find(bhttp::field::content_type);
    if (ct != r.end()) out.content_type = std::string(ct->value());
    out.body = r.body();
    SaveSession();
    if (!r.keep_alive() || !options.keep_alive) Drop();
    return out;
  }
};

Result<std::unique_ptr<HttpsClient>> HttpsClient::Create(std::shared_ptr<TlsContext> tls, ClientOptions options) {
  if (!tls) return Status::InvalidArgument("HTTPS client: no TLS context");
  if (options.host.empty() || options.port == 0) return Status::InvalidArgument("HTTPS client: host and port required");
  std::unique_ptr<HttpsClient> c(new HttpsClient);
  c->impl_ = std::make_unique<Impl>();
  c->impl_->where = options.host + ":" + std::to_string(options.port);
  c->impl_->options = std::move(options);
  c->impl_->tls = std::move(tls);
  return c;
}

HttpsClient::~HttpsClient() = default;

Result<HttpResponse> HttpsClient::Request(const std::string& method, const std::string& target, const std::string& body,
                                          const std::string& content_type) {
  Impl& c = *impl_;
  BeastRequest req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, c.options.host);
  req.set(bhttp::field::user_agent, "lim");
  if (!body.empty()) req.set(bhttp::field::content_type, content_type);
  req.keep_alive(c.options.keep_alive);
  req.body() = body;
  req.prepare_payload();
  for (int attempt = 0;; ++attempt) {
    bool reused = c.stream.has_value();
    if (!reused) LIM_RETURN_IF_ERROR(c.Connect());
    bool reply_started = false;
    auto res = c.Exchange(req, &reply_started);
    if (res.ok()) {
      ++c.stats.requests;
      return res;
    }
    c.Drop();
    // The server may close an idle keep-alive connection at any time: a request that found
    // it closed before any reply byte is sent once more on a new connection.
    if (!reused || reply_started || attempt > 0) return res.status();
  }
}

void HttpsClient::Close() { impl_->Drop(); }

void HttpsClient::ForgetSession() {
  if (impl_->session) SSL_SESSION_free(impl_->session);
  impl_->session = nullptr;
}

PeerIdentity HttpsClient::server() const { return impl_->peer; }
ClientStats HttpsClient::stats() const { return impl_->stats; }

}  // namespace lim::net
