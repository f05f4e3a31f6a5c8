#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "net/http.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/test_certs_test_util.h"

namespace lim::net {
namespace {

class HttpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new testing::TestPki(testing::MakeTestPki()); }
  static void TearDownTestSuite() {
    lim::testing::Run("rm -rf " + lim::testing::ShellQuote(pki_->dir));
    delete pki_;
  }

  void SetUp() override {
    ASSERT_EQ(pki_->error, "");
    auto tls = MakeServerTls({pki_->server_cert, pki_->server_key, pki_->ca});
    ASSERT_TRUE(tls.ok()) << tls.status().message();
    ServerOptions o;
    o.limits.max_body_bytes = 4096;
    o.request_timeout = std::chrono::milliseconds(1500);
    o.handshake_timeout = std::chrono::milliseconds(500);
    o.max_connections = 8;
    auto s = HttpsServer::Create(*tls, o);
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    server_->Route("GET", "/hello", [](const HttpRequest& r) {
      HttpResponse res;
      res.body = "hello " + r.peer.common_name + " " + (r.query.count("x") ? r.query.at("x") : "-");
      return res;
    });
    server_->Route("POST", "/echo", [](const HttpRequest& r) {
      HttpResponse res;
      res.body = r.body;
      return res;
    });
    server_->Route("GET", "/throw", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    ASSERT_TRUE(server_->Start().ok());
  }

  std::unique_ptr<HttpsClient> ClientWith(const Result<std::shared_ptr<TlsContext>>& tls, ClientOptions o = {}) {
    EXPECT_TRUE(tls.ok()) << tls.status().message();
    o.port = server_->port();
    auto c = HttpsClient::Create(*tls, o);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }
  std::unique_ptr<HttpsClient> Client(const std::string& cert, const std::string& key, ClientOptions o = {}) {
    return ClientWith(MakeClientTls({cert, key, pki_->ca}), o);
  }
  std::unique_ptr<HttpsClient> GoodClient(ClientOptions o = {}) {
    return Client(pki_->client_cert, pki_->client_key, o);
  }

  static testing::TestPki* pki_;
  std::unique_ptr<HttpsServer> server_;
};
testing::TestPki* HttpsTest::pki_ = nullptr;

TEST_F(HttpsTest, MutualTlsRequestSeesClientIdentityAndKeepsOneConnection) {
  auto c = GoodClient();
  for (int i = 0; i < 5; ++i) {
    auto r = c->Request("GET", "/hello?x=a%20b");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello agent-1 a b");
  }
  EXPECT_EQ(c->stats().handshakes, 1u);
  EXPECT_EQ(c->server().common_name, "lim-server");
  EXPECT_EQ(server_->stats().connections, 1u);
  EXPECT_EQ(server_->stats().requests, 5u);
}

// A Start() that fails (the port is taken) leaves nothing behind, and Stop() frees the port:
// once the first server stops, the second one's Start() again serves on that port.
TEST_F(HttpsTest, AFailedStartCanBeRetriedOnceStopHasFreedThePort) {
  auto tls = MakeServerTls({pki_->server_cert, pki_->server_key, pki_->ca});
  ASSERT_TRUE(tls.ok());
  const uint16_t port = server_->port();
  ServerOptions o;
  o.port = port;
  auto created = HttpsServer::Create(*tls, o);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<HttpsServer> second = std::move(*created);
  second->Route("GET", "/hello", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "second"}; });
  Status taken = second->Start();
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.message().find("listen on"), std::string::npos) << taken.message();
  server_->Stop();
  Status again = second->Start();
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(second->port(), port);
  ClientOptions co;
  co.port = port;
  auto c = HttpsClient::Create(*MakeClientTls({pki_->client_cert, pki_->client_key, pki_->ca}), co);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Request("GET", "/hello");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "second");
  second->Stop();
}

TEST_F(HttpsTest, ReconnectResumesTheSessionWithATicket) {
  auto c = GoodClient();
  ASSERT_TRUE(c->Request("GET", "/hello").ok());
  c->Close();
  auto r = c->Request("GET", "/hello");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "hello agent-1 -");  // the resumed session still knows the client
  EXPECT_EQ(c->stats().handshakes, 2u);
  EXPECT_EQ(c->stats().resumed, 1u);
  EXPECT_EQ(server_->stats().resumed, 1u);
  c->Close();
  c->ForgetSession();
  ASSERT_TRUE(c->Request("GET", "/hello").ok());
  EXPECT_EQ(c->stats().resumed, 1u);  // a full handshake again
}

TEST_F(HttpsTest, NoKeepAliveMeansAHandshakePerRequest) {
  ClientOptions o;
  o.keep_alive = false;
  o.resume_sessions = false;
  auto c = GoodClient(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Request("GET", "/hello").ok());
  EXPECT_EQ(c->stats().handshakes, 3u);
  EXPECT_EQ(c->stats().resumed, 0u);
}

TEST_F(HttpsTest, ClientWithoutCertificateIsRefused) {
  auto c = ClientWith(MakeClientTlsWithoutCertificate(pki_->ca));
  auto r = c->Request("GET", "/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate"), std::string::npos) << r.status().message();
  EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(HttpsTest, ClientCertificateFromAnotherCaIsRefused) {
  // The intruder trusts our server (it has our CA) but its own certificate is from otherca.
  auto c = Client(pki_->other_client_cert, pki_->other_client_key);
  auto r = c->Request("GET", "/hello");
  ASSERT_FALSE(r.ok());
  // With TLS 1.3 the client sees its error when the server's alert arrives, which may be
  // before the server's thread has counted the failed handshake: wait for the count.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server_->stats().handshakes_failed == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->stats().requests, 0u);
  EXPECT_GE(server_->stats().handshakes_failed, 1u);
}

TEST_F(HttpsTest, ServerFromAnotherCaIsRefusedByTheClient) {
  auto c = ClientWith(MakeClientTls({pki_->client_cert, pki_->client_key, pki_->other_ca}));
  auto r = c->Request("GET", "/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TLS handshake"), std::string::npos) << r.status().message();
}

TEST_F(HttpsTest, ServerNameMustMatchTheCertificate) {
  ClientOptions o;
  o.server_name = "verifier.example";
  auto c = GoodClient(o);
  EXPECT_FALSE(c->Request("GET", "/hello").ok());
}

TEST_F(HttpsTest, RsaOrMismatchedKeysAreRefusedAtSetup) {
  auto r = lim::testing::Run("cd " + lim::testing::ShellQuote(pki_->dir) +
                             " && openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -subj /CN=rsa -days 1 "
                             "-out rsa.pem 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0);
  auto rsa = MakeServerTls({pki_->dir + "/rsa.pem", pki_->dir + "/rsa.key", pki_->ca});
  ASSERT_FALSE(rsa.ok());
  EXPECT_NE(rsa.status().message().find("P-256"), std::string::npos) << rsa.status().message();
  auto mismatched = MakeServerTls({pki_->server_cert, pki_->client_key, pki_->ca});
  EXPECT_FALSE(mismatched.ok());
  auto no_ca = MakeServerTls({pki_->server_cert, pki_->server_key, ""});
  EXPECT_FALSE(no_ca.ok());
}

TEST_F(HttpsTest, HostileRequestsGetErrorsAndTheServerLives) {
  auto c = GoodClient();
  // A body over the limit: 413, connection closed by the server.
  auto big = c->Request("POST", "/echo", std::string(8192, 'x'));
  ASSERT_TRUE(big.ok()) << big.status().message();
  EXPECT_EQ(big->status, 413);
  // Far over it: the server keeps reading (and dropping) what is still in flight before it
  // closes, so the 413 arrives instead of a connection reset.
  for (int i = 0; i < 5; ++i) {
    auto huge_body = c->Request("POST", "/echo", std::string(1 << 20, 'x'));
    ASSERT_TRUE(huge_body.ok()) << huge_body.status().message();
    EXPECT_EQ(huge_body->status, 413);
  }
  // A header over the limit (a 16 KiB target): 431.
  auto huge = c->Request("GET", "/hello?x=" + std::string(16384, 'a'));
  ASSERT_TRUE(huge.ok()) << huge.status().message();
  EXPECT_EQ(huge->status, 431);
  auto badq = c->Request("GET", "/hello?x=%zz");
  ASSERT_TRUE(badq.ok());
  EXPECT_EQ(badq->status, 400);
  auto missing = c->Request("GET", "/nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto method = c->Request("DELETE", "/hello");
  ASSERT_TRUE(method.ok());
  EXPECT_EQ(method->status, 405);
  auto thrown = c->Request("GET", "/throw");
  ASSERT_TRUE(thrown.ok());
  EXPECT_EQ(thrown->status, 500);
  auto fine = c->Request("POST", "/echo", "ok");
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->body, "ok");
}

// Raw TLS peers that misbehave below HTTP: garbage, a slow request, plain TCP.
TEST_F(HttpsTest, SlowAndGarbagePeersAreCutOff) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context ioc;
  // Plain TCP garbage instead of a TLS ClientHello.
  {
    tcp::socket s(ioc);
    s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
    char b[64];
    boost::system::error_code ec;
    s.read_some(asio::buffer(b), ec);
    EXPECT_TRUE(ec);  // closed, no HTTP answer over plain TCP
  }
  // A TLS client that sends half a request and stalls: cut at request_timeout (1.5 s).
  {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.use_certificate_chain_file(pki_->client_cert);
    ctx.use_private_key_file(pki_->client_key, asio::ssl::context::pem);
    asio::ssl::stream<tcp::socket> s(ioc, ctx);
    s.next_layer().connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    s.handshake(asio::ssl::stream_base::client);
    asio::write(s, asio::buffer(std::string("GET /hello HTTP/1.1\r\nHost: x\r\n")));
    auto start = std::chrono::steady_clock::now();
    char b[256];
    boost::system::error_code ec;
    s.read_some(asio::buffer(b), ec);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(ec);
    EXPECT_LT(took, std::chrono::seconds(5));
  }
  // A TCP peer that never starts the handshake: cut at handshake_timeout (0.5 s).
  {
    tcp::socket s(ioc);
    s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    auto start = std::chrono::steady_clock::now();
    char b[64];
    boost::system::error_code ec;
    s.read_some(asio::buffer(b), ec);
    EXPECT_TRUE(ec);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  }
  auto c = GoodClient();
  auto r = c->Request("GET", "/hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

// Connections over max_connections (8) are closed at accept; the ones held still work.
TEST_F(HttpsTest, ConnectionCapClosesTheExtraOnes) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context ioc;
  std::vector<std::unique_ptr<HttpsClient>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(GoodClient());
    ASSERT_TRUE(held.back()->Request("GET", "/hello").ok());
  }
  tcp::socket extra(ioc);
  extra.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  char b[16];
  boost::system::error_code ec;
  extra.read_some(asio::buffer(b), ec);
  EXPECT_TRUE(ec);  // closed at once
  EXPECT_GE(server_->stats().refused_over_limit, 1u);
  auto r = held.front()->Request("GET", "/hello");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(held.front()->stats().handshakes, 1u);
}

// A RouteBlocking handler waits on its own pool: with one server thread, a request to a
// plain route is answered at once while a blocking one waits; one more waits in the queue,
// and the one after it is refused with 503 rather than queued without bound.
TEST_F(HttpsTest, BlockingRoutesWaitOffTheServerThreads) {
  auto tls = MakeServerTls({pki_->server_cert, pki_->server_key, pki_->ca});
  ASSERT_TRUE(tls.ok());
  ServerOptions o;
  o.threads = 1;
  o.blocking_threads = 1;
  o.max_blocking_queue = 1;
  auto created = HttpsServer::Create(*tls, o);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<HttpsServer> server = std::move(*created);
  for (auto [threads, queue] : {std::pair<int, size_t>{0, 1}, {65, 1}, {-1, 1}, {1, 0}, {1, 100001}}) {
    ServerOptions bad = o;
    bad.blocking_threads = threads;
    bad.max_blocking_queue = queue;
    auto refused = HttpsServer::Create(*tls, bad);
    ASSERT_FALSE(refused.ok()) << threads << " " << queue;
    EXPECT_NE(refused.status().message().find("blocking"), std::string::npos) << refused.status().message();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> entered{0};
  server->RouteBlocking("GET", "/slow", [&](const HttpRequest&) {
    entered++;
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return open; });
    HttpResponse res;
    res.body = "waited";
    return res;
  });
  server->Route("GET", "/hello", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "hello"}; });
  ASSERT_TRUE(server->Start().ok());
  auto client = [&] {
    ClientOptions co;
    co.port = server->port();
    auto c = HttpsClient::Create(*MakeClientTls({pki_->client_cert, pki_->client_key, pki_->ca}), co);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  };
  auto a = client(), b = client(), d = client();
  ClientOptions short_wait;
  short_wait.port = server->port();
  short_wait.request_timeout = std::chrono::milliseconds(3000);  // if it were queued, not refused
  auto c = HttpsClient::Create(*MakeClientTls({pki_->client_cert, pki_->client_key, pki_->ca}), short_wait);
  ASSERT_TRUE(c.ok());
  Result<HttpResponse> ra = Status::Unavailable("not run"), rb = ra;
  std::thread ta, tb;
  // Whatever fails below, the handlers are let go and the threads joined (a joinable thread
  // at return would terminate the binary, a held handler would hang Stop()).
  struct Release {
    std::function<void()> f;
    ~Release() { f(); }
  } release{[&] {
    {
      std::lock_guard<std::mutex> lk(mu);
      open = true;
    }
    cv.notify_all();
    if (ta.joinable()) ta.join();
    if (tb.joinable()) tb.join();
  }};
  ta = std::thread([&] { ra = a->Request("GET", "/slow"); });
  for (int i = 0; i < 1000 && entered.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(entered.load(), 1);
  tb = std::thread([&] { rb = b->Request("GET", "/slow"); });
  // b's request is queued once the server has read it; c's then finds the queue full.
  for (int i = 0; i < 500 && server->stats().requests < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(server->stats().requests, 2u);
  auto rc = (*c)->Request("GET", "/slow");
  ASSERT_TRUE(rc.ok()) << rc.status().message();
  EXPECT_EQ(rc->status, 503) << rc->body;
  EXPECT_EQ(server->stats().blocking_refused, 1u);
  auto t0 = std::chrono::steady_clock::now();
  auto rd = d->Request("GET", "/hello");
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(rd.ok()) << rd.status().message();
  EXPECT_EQ(rd->body, "hello");
  EXPECT_LT(took, 1000) << "a plain route waited for the blocked handler";
  EXPECT_EQ(entered.load(), 1);  // b waits in the queue, not in a handler
  release.f();
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->body, "waited");
  EXPECT_EQ(rb->body, "waited");
  EXPECT_EQ(entered.load(), 2);
  server->Stop();
}

// Each server thread runs a context of its own and connections are dealt to them in turn:
// with threads = 3, three connections are served by three different threads, each keeps its
// thread for every later request, and their handlers run at the same time (each waits until
// all three have entered; on one thread this would time out). The connections are opened
// first, one after another, so no accept waits behind a gathering handler.
TEST_F(HttpsTest, ConnectionsAreDealtToTheThreadsInTurnAndStayThere) {
  auto tls = MakeServerTls({pki_->server_cert, pki_->server_key, pki_->ca});
  ASSERT_TRUE(tls.ok());
  ServerOptions o;
  o.threads = 3;
  auto created = HttpsServer::Create(*tls, o);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<HttpsServer> server = std::move(*created);
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  bool gather = false;
  server->Route("GET", "/who", [&](const HttpRequest&) {
    std::unique_lock<std::mutex> lk(mu);
    if (gather) {
      ++inside;
      cv.notify_all();
      // All three at once, or give up after 5 s (the test then fails on the count below).
      cv.wait_for(lk, std::chrono::seconds(5), [&] { return inside >= 3; });
    }
    std::ostringstream id;
    id << std::this_thread::get_id();
    return HttpResponse{200, "text/plain", id.str() + " " + std::to_string(inside)};
  });
  ASSERT_TRUE(server->Start().ok());
  auto thread_of_body = [](const std::string& body) { return body.substr(0, body.find(' ')); };
  std::vector<std::unique_ptr<HttpsClient>> clients;
  std::vector<std::string> thread_of;
  for (int i = 0; i < 3; ++i) {
    ClientOptions co;
    co.port = server->port();
    auto c = HttpsClient::Create(*MakeClientTls({pki_->client_cert, pki_->client_key, pki_->ca}), co);
    ASSERT_TRUE(c.ok());
    clients.push_back(std::move(*c));
    auto r = clients.back()->Request("GET", "/who");
    ASSERT_TRUE(r.ok()) << r.status().message();
    thread_of.push_back(thread_of_body(r->body));
  }
  EXPECT_EQ(std::set<std::string>(thread_of.begin(), thread_of.end()).size(), 3u) << "three connections, three threads";
  {
    std::lock_guard<std::mutex> lk(mu);
    gather = true;
  }
  std::vector<Result<HttpResponse>> together(3, Status::Unavailable("not run"));
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i) callers.emplace_back([&, i] { together[i] = clients[i]->Request("GET", "/who"); });
  for (auto& t : callers) t.join();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(together[i].ok()) << together[i].status().message();
    const std::string& body = together[i]->body;
    EXPECT_EQ(body.substr(body.find(' ') + 1), "3") << "handlers did not run at once: " << body;
    EXPECT_EQ(thread_of_body(body), thread_of[i]) << "connection " << i << " moved";
  }
  EXPECT_EQ(server->stats().connections, 3u);
  server->Stop();
}

TEST(HttpParse, ParsesARequestWithQueryAndBody) {
  std::string raw = "POST /v1/x?a=1&b=%41 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  auto r = ParseHttpRequest(ByteView(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/v1/x");
  EXPECT_EQ(r->query.at("b"), "A");
  EXPECT_EQ(r->body, "{}");
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->cookie, "");
}

TEST(HttpParse, KeepsTheCookieHeader) {  // the web view's session (verifier/web_view.h)
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; lim_session=abc\r\n\r\n";
  auto r = ParseHttpRequest(ByteView(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->cookie, "a=1; lim_session=abc");
}

TEST(HttpParse, RefusesOversizeAndMalformed) {
  HttpLimits l;
  l.max_header_bytes = 64;
  std::string raw = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
  auto r = ParseHttpRequest(ByteView(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()), l);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("header too large"), std::string::npos) << r.status().message();
  std::string bad = "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
  EXPECT_FALSE(ParseHttpRequest(ByteView(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()), {}).ok());
  std::string partial = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab";
  EXPECT_FALSE(ParseHttpRequest(ByteView(reinterpret_cast<const uint8_t*>(partial.data()), partial.size()), {}).ok());
}

TEST(HttpParse, QueryStrings) {
  auto q = ParseQuery("a=1&&b=&c", 8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->size(), 3u);
  EXPECT_EQ(q->at("c"), "");
  EXPECT_FALSE(ParseQuery("a=1&a=2", 8).ok());
  EXPECT_FALSE(ParseQuery("=1", 8).ok());
  EXPECT_FALSE(ParseQuery("a=%4", 8).ok());
  EXPECT_FALSE(ParseQuery("a&b&c", 2).ok());
}

}  // namespace
}  // namespace lim::net
