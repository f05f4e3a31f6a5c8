// WebView: the verifier's read-only web pages for operators (docs/verifier.md "Web view"),
// on a socket of their own (--web ADDR:PORT) beside the REST API: the fleet (failures
// first, search, pages), one host's integrated table (failing rows first, explained), the
// history of a host's verdicts, the policies. Server-rendered HTML and one style sheet; no
// script, and a Content-Security-Policy that allows none.
//
// Who gets in: a browser that presents an operator certificate (the REST API's rule: it
// chains to --ca and its CN is in --operator-cn, when given), or an operator who logged in
// with a password from the users file (web_auth.h). Nobody else: every other request is sent
// to the login page. The TLS is the REST API's (TLS 1.3, the verifier's certificate); a
// client certificate is asked for but not required, since browsers seldom hold one.
//
// Threading: handlers run on the web server's threads, concurrently; the fleet list is
// cached for options.fleet_cache (one scan of the store serves every page load meanwhile),
// under its own mutex.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/https_server.h"
#include "verifier/verifier.h"
#include "verifier/web_auth.h"
#include "verifier/web_pages.h"

namespace lim::verifier {

struct WebOptions {
  net::TlsConfig tls;                     // the verifier's certificate; ca_file checks client certificates
  net::ServerOptions server;              // address, port (0: any), threads
  std::vector<std::string> operator_cn;  // certificate CNs let in; empty: any the CA signed
  std::string users_file;                 // operators with passwords; empty: certificates only
  std::chrono::seconds session_ttl{std::chrono::hours(12)};
  std::chrono::milliseconds fleet_cache{1000};
};

class WebView {
 public:
  static Result<std::unique_ptr<WebView>> Create(Verifier& verifier, WebOptions options);
  ~WebView();  // Stop()

  Status Start();
  void Stop();
  uint16_t port() const;
  const std::string& server_address() const { return options_.server.address; }

  // One request as the server would answer it (tests, benchmarks: no socket).
  net::HttpResponse Handle(const net::HttpRequest& request);

 private:
  struct Viewer {
    std::string name;
    bool session = false;
  };
  WebView(Verifier& verifier, WebOptions options) : verifier_(verifier), options_(std::move(options)) {}
  std::optional<Viewer> Authenticate(const net::HttpRequest& r);
  net::HttpResponse Login(const net::HttpRequest& r);
  net::HttpResponse Page(const net::HttpRequest& r, const Viewer& v);
  Result<std::shared_ptr<const std::vector<web::FleetRow>>> Fleet();

  Verifier& verifier_;
  WebOptions options_;
  web::WebUsers users_;
  std::unique_ptr<web::WebSessions> sessions_;
  std::unique_ptr<net::HttpsServer> server_;
  std::mutex fleet_mu_;
  std::shared_ptr<const std::vector<web::FleetRow>> fleet_;  // sorted, failures first
  std::chrono::steady_clock::time_point fleet_time_{};
  std::mutex login_mu_;  // one password check at a time: PBKDF2 is made to be slow
};

}  // namespace lim::verifier
