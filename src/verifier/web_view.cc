#include "verifier/web_view.h"

#include <algorithm>

#include "net/http.h"

namespace lim::verifier {

namespace {

void SecureHeaders(net::HttpResponse* r) {
  // No script at all, styles and the icon from this origin only, no framing, forms post
  // here only: a string that escaped the escaping still could not run.
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                          "frame-ancestors 'none'; base-uri 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("Cache-Control", "no-store");
}

net::HttpResponse HtmlPage(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  SecureHeaders(&r);
  return r;
}

net::HttpResponse Redirect(const std::string& location) {
  net::HttpResponse r = HtmlPage(303, "<!doctype html><title>moved</title><a href=\"" + web::Html(location) + "\">continue</a>\n");
  r.headers.emplace_back("Location", location);
  return r;
}

std::string LoginForm(bool have_users, const std::string& error) {
  std::string body;
  if (!error.empty()) body += "<p class=\"error\" id=\"login-error\">" + web::Html(error) + "</p>\n";
  if (!have_users) {
    return body + "<p>This verifier lets in browsers that present an operator certificate only (no users file: "
                  "<code>--web-users</code>).</p>\n";
  }
  return body +
         "<form class=\"login\" method=\"post\" action=\"/login\"><label>user <input name=\"user\" id=\"user\" "
         "autocomplete=\"username\" required></label><label>password <input type=\"password\" name=\"password\" "
         "id=\"password\" autocomplete=\"current-password\" required></label><button type=\"submit\" id=\"login\">log "
         "in</button></form>\n";
}

const std::string& FaviconSvg() {
  static const std::string kSvg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" "
      "fill=\"#23324a\"/><path d=\"M4 8l3 3 5-6\" stroke=\"#fff\" stroke-width=\"2\" fill=\"none\"/></svg>";
  return kSvg;
}

}  // namespace

Result<std::unique_ptr<WebView>> WebView::Create(Verifier& verifier, WebOptions options) {
  std::unique_ptr<WebView> w(new WebView(verifier, std::move(options)));
  if (!w->options_.users_file.empty()) {
    LIM_ASSIGN_OR_RETURN(w->users_, web::WebUsers::Load(w->options_.users_file));
  }
  w->sessions_ = std::make_unique<web::WebSessions>(w->options_.session_ttl);
  LIM_ASSIGN_OR_RETURN(auto tls, net::MakeServerTlsCertificateOptional(w->options_.tls));
  LIM_ASSIGN_OR_RETURN(w->server_, net::HttpsServer::Create(tls, w->options_.server));
  WebView* self = w.get();
  auto handle = [self](const net::HttpRequest& r) { return self->Handle(r); };
  for (const char* path : {"/", "/host", "/history", "/policy", "/policies", "/login", "/style.css", "/favicon.svg",
                           "/favicon.ico"}) {
    w->server_->Route("GET", path, handle);
  }
  w->server_->Route("POST", "/login", handle);
  w->server_->Route("POST", "/logout", handle);
  return w;
}

WebView::~WebView() { Stop(); }
Status WebView::Start() { return server_->Start(); }
void WebView::Stop() {
  if (server_) server_->Stop();
}
uint16_t WebView::port() const { return server_->port(); }

std::optional<WebView::Viewer> WebView::Authenticate(const net::HttpRequest& r) {
  if (!r.peer.common_name.empty() &&
      (options_.operator_cn.empty() ||
       std::find(options_.operator_cn.begin(), options_.operator_cn.end(), r.peer.common_name) != options_.operator_cn.end())) {
    return Viewer{"certificate " + r.peer.common_name, false};
  }
  if (!r.cookie.empty()) {
    if (auto user = sessions_->Find(r.cookie)) return Viewer{*user, true};
  }
  return std::nullopt;
}

net::HttpResponse WebView::Handle(const net::HttpRequest& r) {
  if (r.path == "/style.css") {
    net::HttpResponse res{200, "text/css; charset=utf-8", web::StyleSheet()};
    res.headers.emplace_back("Cache-Control", "max-age=3600");
    return res;
  }
  if (r.path == "/favicon.svg" || r.path == "/favicon.ico") {
    net::HttpResponse res{200, "image/svg+xml", FaviconSvg()};
    res.headers.emplace_back("Cache-Control", "max-age=86400");
    return res;
  }
  if (r.path == "/login") return Login(r);
  if (r.path == "/logout") {
    sessions_->Close(r.cookie);
    net::HttpResponse res = Redirect("/login");
    res.headers.emplace_back("Set-Cookie", std::string(web::kSessionCookie) +
                                               "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
    return res;
  }
  auto viewer = Authenticate(r);
  if (!viewer) return Redirect("/login");
  try {
    return Page(r, *viewer);
  } catch (const std::exception& e) {
    return HtmlPage(500, web::Frame("Error", viewer->name, viewer->session,
                                    "<p class=\"error\">" + web::Html(e.what()) + "</p>\n"));
  }
}

net::HttpResponse WebView::Login(const net::HttpRequest& r) {
  if (r.method == "GET") {
    if (auto v = Authenticate(r)) return Redirect("/");
    return HtmlPage(200, web::Frame("Log in", "", false, LoginForm(!users_.empty(), "")));
  }
  if (users_.empty()) return HtmlPage(403, web::Frame("Log in", "", false, LoginForm(false, "no users file")));
  auto form = net::ParseQuery(r.body, 8);
  std::string user, password;
  if (form.ok()) {
    if (auto it = form->find("user"); it != form->end()) user = it->second;
    if (auto it = form->find("password"); it != form->end()) password = it->second;
  }
  bool ok;
  {
    std::lock_guard<std::mutex> lk(login_mu_);
    ok = !user.empty() && users_.Check(user, password);
  }
  if (!ok) return HtmlPage(401, web::Frame("Log in", "", false, LoginForm(true, "Wrong user or password.")));
  auto token = sessions_->Open(user);
  if (!token.ok()) return HtmlPage(500, web::Frame("Log in", "", false, LoginForm(true, token.status().message())));
  net::HttpResponse res = Redirect("/");
  res.headers.emplace_back("Set-Cookie", std::string(web::kSessionCookie) + "=" + *token + "; Path=/; Max-Age=" +
                                             std::to_string(sessions_->ttl().count()) +
                                             "; Secure; HttpOnly; SameSite=Strict");
  return res;
}

Result<std::shared_ptr<const std::vector<web::FleetRow>>> WebView::Fleet() {
  std::lock_guard<std::mutex> lk(fleet_mu_);
  auto now = std::chrono::steady_clock::now();
  if (fleet_ && now - fleet_time_ < options_.fleet_cache) return fleet_;
  attest::Store& store = verifier_.store();
  LIM_ASSIGN_OR_RETURN(auto ids, store.ListAgents());
  auto rows = std::make_shared<std::vector<web::FleetRow>>();
  rows->reserve(ids.size());
  for (const auto& id : ids) {
    LIM_ASSIGN_OR_RETURN(auto a, store.GetAgent(id));
    if (!a) continue;  // removed meanwhile
    rows->push_back({a->id, a->status, a->policy, a->address, a->updated, a->state.rounds, a->state.next_index});
  }
  web::SortFleet(rows.get());
  fleet_ = rows;
  fleet_time_ = now;
  return fleet_;
}

net::HttpResponse WebView::Page(const net::HttpRequest& r, const Viewer& v) {
  attest::Store& store = verifier_.store();
  auto error = [&](int status, const std::string& title, const std::string& message) {
    return HtmlPage(status, web::Frame(title, v.name, v.session, "<p class=\"error\">" + web::Html(message) + "</p>\n"));
  };
  auto param = [&](const char* key) {
    auto it = r.query.find(key);
    return it == r.query.end() ? std::string() : it->second;
  };
  if (r.path == "/") {
    auto fleet = Fleet();
    if (!fleet.ok()) return error(500, "Fleet", fleet.status().message());
    auto last_failure = [&store](const std::string& id) {
      web::FindingSearch findings([&store, &id](size_t n) { return store.History(id, n); });
      return web::LastFailure(id, findings);
    };
    return HtmlPage(200, web::Frame("Fleet", v.name, v.session, web::FleetBody(**fleet, r.query, last_failure)));
  }
  if (r.path == "/host" || r.path == "/history") {
    std::string id = param("id");
    if (id.empty()) return error(400, "Host", "?id= missing");
    auto a = store.GetAgent(id);
    if (!a.ok()) return error(500, "Host", a.status().message());
    if (!*a) return error(404, "Host", "no host " + id);
    if (r.path == "/history") {
      auto h = store.History(id, web::HistoryFetchLimit(r.query, attest::kMaxHistoryPerAgent));
      if (!h.ok()) return error(500, "History", h.status().message());
      return HtmlPage(200, web::Frame("History of " + id, v.name, v.session, web::HistoryBody(id, *h, r.query)));
    }
    web::FindingSearch findings([&store, &id](size_t n) { return store.History(id, n); });
    return HtmlPage(200, web::Frame("Host " + id, v.name, v.session,
                                    web::HostBody(**a, verifier_.Entries(id), findings, r.query)));
  }
  if (r.path == "/policy") {
    std::string name = param("name");
    if (name.empty()) return error(400, "Policy", "?name= missing");
    auto p = store.GetPolicy(name);
    if (!p.ok()) return error(500, "Policy", p.status().message());
    if (!*p) return error(404, "Policy", "no policy " + name);
    auto fleet = Fleet();
    if (!fleet.ok()) return error(500, "Policy", fleet.status().message());
    return HtmlPage(200, web::Frame("Policy " + name, v.name, v.session, web::PolicyBody(name, **p, **fleet, r.query)));
  }
  if (r.path == "/policies") {
    auto names = store.ListPolicies();
    if (!names.ok()) return error(500, "Policies", names.status().message());
    auto fleet = Fleet();
    if (!fleet.ok()) return error(500, "Policies", fleet.status().message());
    return HtmlPage(200, web::Frame("Policies", v.name, v.session, web::PoliciesBody(*names, **fleet)));
  }
  return error(404, "Not found", "no page " + r.path);
}

}  // namespace lim::verifier
