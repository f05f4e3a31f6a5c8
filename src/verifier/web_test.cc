// The web view without a browser: escaping of hostile strings, pagination of long lists
// (10,000 hosts, 1,000,000 rows), failing rows first, the password file and sessions, and
// WebView::Handle's access rule (certificate or session, else the login page). The browser
// test is web_browser_test.py (CTest WebViewInChromium).
#include <gtest/gtest.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>

#include "attest/store.h"
#include "net/https_client.h"
#include "net/test_certs_test_util.h"
#include "tests/testing.h"
#include "verifier/verifier.h"
#include "verifier/web_auth.h"
#include "verifier/web_html.h"
#include "verifier/web_pages.h"
#include "verifier/web_view.h"

namespace lim::verifier::web {
namespace {

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

const std::string kHostile = "evil<script>alert('x')</script>&\"host\"\n\x01\xff";

TEST(WebHtml, EscapesEveryCharacterHtmlGivesAMeaningAndControlBytes) {
  EXPECT_EQ(Html("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  EXPECT_EQ(Html("a&b\"c"), "a&amp;b&quot;c");
  EXPECT_EQ(Html("line\nnext\x01"), "line\\x0anext\\x01");
  EXPECT_EQ(Html("\xff\xfe"), "\\xff\\xfe");           // not UTF-8: shown, not passed through
  EXPECT_EQ(Html("caf\xc3\xa9"), "caf\xc3\xa9");       // well-formed UTF-8 stays
  std::string h = Html(kHostile);
  for (char c : std::string("<>\"'\n\x01")) EXPECT_EQ(h.find(c), std::string::npos) << int(c);
}

TEST(WebHtml, UrlComponentKeepsAValueOneParameter) {
  EXPECT_EQ(UrlComponent("a b&c=d#e?f/\"<"), "a%20b%26c%3Dd%23e%3Ff%2F%22%3C");
  EXPECT_EQ(UrlComponent("Az09-_.~"), "Az09-_.~");
  EXPECT_EQ(Url("/host", {{"id", "x&y"}, {"page", ""}, {"per", "5"}}), "/host?id=x%26y&per=5");
  // The query parser the server uses gets the value back.
  auto q = net::ParseQuery(Url("", {{"id", kHostile}}).substr(1), 4);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->at("id"), kHostile);
}

TEST(WebHtml, PaginateClampsEveryNumberAnOperatorMayType) {
  Page p = Paginate({}, 1000000, 200, 2000);
  EXPECT_EQ(p.page, 1u);
  EXPECT_EQ(p.pages, 5000u);
  EXPECT_EQ(p.first, 0u);
  EXPECT_EQ(p.last, 200u);
  p = Paginate({{"page", "5000"}, {"per", "200"}}, 1000000, 200, 2000);
  EXPECT_EQ(p.first, 999800u);
  EXPECT_EQ(p.last, 1000000u);
  p = Paginate({{"page", "99999999999"}}, 1001, 100, 1000);  // past the end: the last page
  EXPECT_EQ(p.page, 11u);
  EXPECT_EQ(p.first, 1000u);
  EXPECT_EQ(p.last, 1001u);
  p = Paginate({{"per", "10000000"}}, 1000000, 100, 1000);  // never more than max per page
  EXPECT_EQ(p.last - p.first, 1000u);
  for (const char* bad : {"", "-1", "0x10", "1e3", "abc", "18446744073709551616"}) {
    p = Paginate({{"page", bad}, {"per", bad}}, 500, 100, 1000);
    EXPECT_EQ(p.page, 1u) << bad;
    EXPECT_GE(p.per_page, 1u) << bad;
  }
  p = Paginate({{"per", "0"}}, 5, 100, 1000);
  EXPECT_EQ(p.per_page, 1u);
  p = Paginate({}, 0, 100, 1000);
  EXPECT_EQ(p.pages, 1u);
  EXPECT_EQ(p.last, 0u);
  EXPECT_EQ(Thousands(1234567), "1,234,567");
  EXPECT_EQ(Thousands(999), "999");
}

std::vector<FleetRow> Fleet(size_t n) {
  std::vector<FleetRow> rows;
  for (size_t i = 0; i < n; ++i) {
    FleetRow r;
    char id[32];
    std::snprintf(id, sizeof id, "host%05zu", i);
    r.id = id;
    r.status = attest::AgentStatus::kAttested;
    r.policy = "base";
    r.address = "10.0.0.1:8891";
    r.updated = 1796547600;
    rows.push_back(r);
  }
  return rows;
}

TEST(WebPages, FleetOf10000ShowsFailedHostsFirstOnePageAtATime) {
  auto rows = Fleet(10000);
  rows[7777].status = attest::AgentStatus::kFailed;
  rows[9999].status = attest::AgentStatus::kUnreachable;
  rows[42].id = kHostile;
  rows[42].status = attest::AgentStatus::kFailed;
  SortFleet(&rows);
  ASSERT_EQ(rows[0].id, kHostile);  // '"' < 'h': failed ones by id
  EXPECT_EQ(rows[1].id, "host07777");
  EXPECT_EQ(rows[2].id, "host09999");
  int calls = 0;
  std::string html = FleetBody(rows, {}, [&](const std::string& id) {
    ++calls;
    return "reason=unknown-file path=/tmp/<b>" + id;
  });
  EXPECT_EQ(Count(html, "<tr class="), 100u);  // one page, not 10,000 rows
  EXPECT_EQ(calls, 2);                          // the failed hosts shown only
  EXPECT_LT(html.find("host07777"), html.find("host09999"));
  EXPECT_LT(html.find("host09999"), html.find("host00000"));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("evil&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("page 1 of 100"), std::string::npos);
  EXPECT_NE(html.find("2 failed"), std::string::npos);
  // The hostile id's link keeps it one parameter.
  EXPECT_NE(html.find("/host?id=evil%3Cscript%3E"), std::string::npos);

  std::string last = FleetBody(rows, {{"page", "100"}}, [](const std::string&) { return ""; });
  EXPECT_EQ(Count(last, "<tr class="), 100u);
  EXPECT_EQ(last.find("host07777"), std::string::npos);

  std::string found = FleetBody(rows, {{"q", "host0123"}}, [](const std::string&) { return ""; });
  EXPECT_EQ(Count(found, "<tr class="), 10u);  // host01230 … host01239
  std::string failed = FleetBody(rows, {{"state", "failed"}}, [](const std::string&) { return ""; });
  EXPECT_EQ(Count(failed, "<tr class="), 2u);
}

// n rows, IMA rows after `firmware` firmware rows, the ones in `bad` failing.
std::vector<EntryRow> Rows(size_t n, size_t firmware, const std::vector<size_t>& bad) {
  std::vector<EntryRow> rows(n);
  for (size_t i = 0; i < n; ++i) {
    rows[i].index = i;
    rows[i].source = i < firmware ? "firmware" : "ima";
    rows[i].pcr = i < firmware ? 0 : 10;
    rows[i].type = i < firmware ? 0x80000008 : 0;
    rows[i].digest = "ab12";
    rows[i].event = "[IMA:/usr/bin/f" + std::to_string(i) + "]";
    rows[i].verdict = "ok";
  }
  for (size_t b : bad) rows[b].verdict = "unknown-file";
  return rows;
}

// A FindingSearch over findings held in memory (newest first).
FindingSearch Search(std::vector<attest::VerdictRecord> v) {
  return FindingSearch([v](size_t n) -> Result<std::vector<attest::VerdictRecord>> {
    return std::vector<attest::VerdictRecord>(v.begin(), v.begin() + static_cast<long>(std::min(n, v.size())));
  });
}

std::string Host(const attest::AgentRecord& a, const std::vector<EntryRow>& rows,
                 std::vector<attest::VerdictRecord> findings, const Query& q) {
  FindingSearch s = Search(std::move(findings));
  return HostBody(a, rows, s, q);
}

// The row indices of an entries table, in page order.
std::vector<size_t> ShownIndices(const std::string& html) {
  std::vector<size_t> out;
  size_t table = html.find("<tbody>", html.find("<table id=\"entries\">"));
  for (size_t at = html.find("<tr", table + 1); at != std::string::npos; at = html.find("<tr", at + 1)) {
    size_t td = html.find("<td>", at);
    if (td == std::string::npos) break;
    out.push_back(std::stoul(html.substr(td + 4)));
  }
  return out;
}

TEST(WebPages, HostTableOfAMillionRowsShowsFailingRowsFirstThenTheRestInOrder) {
  auto rows = Rows(1000000, 30, {3, 5, 500000, 999999});
  rows[500000].event = "[IMA:/tmp/<script>alert(1)</script>]";
  attest::AgentRecord a;
  a.id = "web1";
  a.status = attest::AgentStatus::kFailed;
  attest::VerdictRecord v;
  v.time = 1796547600;
  v.finding.reason = attest::Reason::kUnknownFile;
  v.finding.entry = 500000 - 30;  // list index: after the 30 firmware rows
  v.finding.path = "/tmp/<script>alert(1)</script>";
  v.finding.digest = "sha256:ab12";
  v.finding.reference = "policy: no such path";
  std::string html = Host(a, rows, {v}, {{"per", "6"}});
  EXPECT_EQ(ShownIndices(html), (std::vector<size_t>{3, 5, 500000, 999999, 0, 1}));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("<b>reference</b> policy: no such path"), std::string::npos);  // row 500000 explained
  EXPECT_NE(html.find("1,000,000 rows"), std::string::npos);
  EXPECT_NE(html.find("4 failing"), std::string::npos);
  // Later pages: the others in order, the failing ones not again.
  EXPECT_EQ(ShownIndices(Host(a, rows, {}, {{"per", "6"}, {"page", "2"}})), (std::vector<size_t>{2, 4, 6, 7, 8, 9}));
  EXPECT_EQ(ShownIndices(Host(a, rows, {}, {{"per", "3"}, {"page", "2"}})), (std::vector<size_t>{999999, 0, 1}));
  auto last = ShownIndices(Host(a, rows, {}, {{"per", "6"}, {"page", "166667"}}));
  EXPECT_EQ(last, (std::vector<size_t>{999995, 999996, 999997, 999998}));
  // The default page is bounded whatever the list holds.
  EXPECT_EQ(ShownIndices(Host(a, rows, {}, {{"per", "100000000"}})).size(), 2000u);
}

// A failed host that then went unreachable: its failure lies behind thousands of
// unreachable findings, and is still the one the fleet and the host page show.
TEST(WebPages, TheFailureBehindARunOfUnreachableRoundsIsFound) {
  std::vector<attest::VerdictRecord> h(2001);
  for (size_t i = 0; i < 2000; ++i) h[i].finding.reason = attest::Reason::kUnreachable;
  h[2000].finding.reason = attest::Reason::kUnknownFile;
  h[2000].finding.entry = 21;
  h[2000].finding.path = "/tmp/x";
  FindingSearch deep = Search(h);
  EXPECT_EQ(LastFailure("web1", deep), "agent=web1 reason=unknown-file entry=21 path=/tmp/x");
  EXPECT_EQ(deep.fetches(), 3u);  // 50, 1,000, then all 2,001
  FindingSearch shallow = Search({h[2000], h[0]});
  EXPECT_NE(LastFailure("web1", shallow), "");
  EXPECT_EQ(shallow.fetches(), 1u);
  FindingSearch none = Search({h[0], h[1]});
  EXPECT_EQ(LastFailure("web1", none), "");
  FindingSearch capped(
      [&h](size_t n) -> Result<std::vector<attest::VerdictRecord>> {
        return std::vector<attest::VerdictRecord>(h.begin(), h.begin() + static_cast<long>(std::min(n, h.size())));
      },
      1000);
  EXPECT_EQ(LastFailure("web1", capped), "");  // never reads past its bound
  attest::AgentRecord a;
  a.id = "web1";
  std::string html = Host(a, Rows(22, 0, {21}), h, {});
  EXPECT_NE(html.find("<b>path</b> /tmp/x"), std::string::npos);
}

TEST(WebPages, HistoryPagesNewestFirstWithAnOlderLinkOnlyWhenThereIsMore) {
  std::vector<attest::VerdictRecord> h(250);
  for (size_t i = 0; i < h.size(); ++i) {
    h[i].time = 1796547600 - static_cast<int64_t>(i);
    h[i].finding.reason = attest::Reason::kUnknownFile;
    h[i].finding.entry = i;
    h[i].finding.path = "<p" + std::to_string(i) + ">";
  }
  Query q{{"per", "100"}, {"page", "3"}};
  EXPECT_EQ(HistoryFetchLimit(q, 10000), 301u);
  EXPECT_EQ(HistoryFetchLimit(q, 50), 50u);
  std::string p3 = HistoryBody("a&b", h, q);
  EXPECT_EQ(Count(p3, "<tr class=\"fail\">"), 50u);
  EXPECT_NE(p3.find("newer"), std::string::npos);
  EXPECT_EQ(p3.find("older"), std::string::npos);
  EXPECT_NE(p3.find("&lt;p200&gt;"), std::string::npos);
  EXPECT_EQ(p3.find("<p2"), std::string::npos);
  std::string p1 = HistoryBody("a&b", std::vector<attest::VerdictRecord>(h.begin(), h.begin() + 101), {{"per", "100"}});
  EXPECT_EQ(Count(p1, "<tr class=\"fail\">"), 100u);
  EXPECT_NE(p1.find("older"), std::string::npos);
  EXPECT_NE(p1.find("/history?id=a%26b&amp;per=100&amp;page=2"), std::string::npos);
}

TEST(WebPages, PolicyPagePagesItsPathsAndEscapesThem) {
  std::string policy = R"({"lim_runtime_policy":1,"release":"r<1>","paths":{)";
  for (int i = 0; i < 500; ++i) policy += (i ? "," : "") + std::string("\"/usr/bin/<x") + std::to_string(i) + "\":[\"sha256:00\"]";
  policy += "}}";
  std::vector<FleetRow> fleet = Fleet(3);
  fleet[1].policy = "other";
  std::string html = PolicyBody("base", policy, fleet, {{"q", "<x1"}});
  EXPECT_EQ(Count(html, "<tr><td class=\"mono\">"), 111u);  // <x1, <x10-19, <x100-199
  EXPECT_EQ(html.find("<x"), std::string::npos);
  EXPECT_NE(html.find("r&lt;1&gt;"), std::string::npos);
  EXPECT_NE(html.find("2 hosts use this policy"), std::string::npos);
  EXPECT_EQ(Count(PolicyBody("base", policy, fleet, {}), "<tr><td class=\"mono\">"), 200u);
  EXPECT_NE(PolicyBody("base", "not json", fleet, {}).find("not a JSON object"), std::string::npos);
}

TEST(WebAuth, PasswordHashesCheckInConstantTimeAndTheFileNamesItsBadLine) {
  auto h = HashPassword("s3cret", 1000);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->rfind("pbkdf2-sha256:1000:", 0), 0u);
  EXPECT_TRUE(*CheckPassword(*h, "s3cret"));
  EXPECT_FALSE(*CheckPassword(*h, "s3cret "));
  EXPECT_NE(*HashPassword("s3cret", 1000), *h);  // a fresh salt each time
  EXPECT_FALSE(HashPassword("x", 10).ok());
  auto users = WebUsers::Parse("# operators\n\nalice " + *h + "\n", "users");
  ASSERT_TRUE(users.ok()) << users.status().message();
  EXPECT_TRUE(users->Check("alice", "s3cret"));
  EXPECT_FALSE(users->Check("alice", "wrong"));
  EXPECT_FALSE(users->Check("bob", "s3cret"));
  for (const auto& [text, err] : std::vector<std::pair<std::string, std::string>>{
           {"alice\n", "users:1: expected NAME"},
           {"# x\nalice md5:1:2:3\n", "users:2: password hash: expected pbkdf2-sha256"},
           {"alice pbkdf2-sha256:10:0011223344556677:" + std::string(64, '0') + "\n", "users:1: password hash: iterations"},
           {"alice pbkdf2-sha256:1000:00:" + std::string(64, '0') + "\n", "users:1: password hash: salt"},
           {"alice pbkdf2-sha256:1000:0011223344556677:00\n", "users:1: password hash: hash"},
           {"alice " + *h + " extra\n", "users:1: expected NAME"},
           {"alice " + *h + "\nalice " + *h + "\n", "users:2: user alice listed twice"}}) {
    auto bad = WebUsers::Parse(text, "users");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.status().message().rfind(err, 0), 0u) << bad.status().message();
  }
}

TEST(WebAuth, SessionsExpireCloseAndStayBounded) {
  EXPECT_EQ(CookieValue("a=1; lim_session=xyz; b=2", "lim_session"), "xyz");
  EXPECT_EQ(CookieValue("lim_sessionx=1", "lim_session"), "");
  WebSessions s(std::chrono::seconds(3600), 2);
  auto t1 = s.Open("alice");
  ASSERT_TRUE(t1.ok());
  EXPECT_EQ(t1->size(), 64u);
  EXPECT_EQ(s.Find("lim_session=" + *t1).value_or(""), "alice");
  EXPECT_FALSE(s.Find("lim_session=" + std::string(64, '0')));
  auto t2 = s.Open("bob");
  auto t3 = s.Open("carol");  // over the bound: alice's, the oldest, goes
  EXPECT_FALSE(s.Find("lim_session=" + *t1));
  EXPECT_EQ(s.Find("x=1; lim_session=" + *t3).value_or(""), "carol");
  s.Close("lim_session=" + *t3);
  EXPECT_FALSE(s.Find("lim_session=" + *t3));
  EXPECT_TRUE(s.Find("lim_session=" + *t2));
  WebSessions expired(std::chrono::seconds(0));
  auto t4 = expired.Open("dave");
  EXPECT_FALSE(expired.Find("lim_session=" + *t4));
}

class WebViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = net::testing::MakeTestPki();
    ASSERT_EQ(pki_.error, "");
    auto store = attest::OpenSqliteStore(":memory:");
    ASSERT_TRUE(store.ok());
    VerifierOptions o;
    o.tls = {pki_.server_cert, pki_.server_key, pki_.ca};
    o.log = [](const std::string&) {};
    auto v = Verifier::Create(std::move(*store), o);
    ASSERT_TRUE(v.ok()) << v.status().message();
    verifier_ = std::move(*v);
    attest::AgentRecord a;
    a.id = kHostile;
    a.address = "10.0.0.9:8891";
    ASSERT_TRUE(verifier_->store().PutAgent(a).ok());
    attest::Finding f;
    f.reason = attest::Reason::kUnknownFile;
    f.entry = 7;
    f.path = "/tmp/<script>x</script>";
    ASSERT_TRUE(verifier_->store().RecordRound(a.id, a.state, attest::AgentStatus::kFailed, 1796547600, {f}).ok());
    users_ = lim::testing::MakeTempDir() + "/users";
    std::ofstream(users_) << "alice " << *HashPassword("pw", 1000) << "\n";
    WebOptions wo;
    wo.tls = o.tls;
    wo.users_file = users_;
    wo.operator_cn = {"lim-client"};
    auto w = WebView::Create(*verifier_, wo);
    ASSERT_TRUE(w.ok()) << w.status().message();
    web_ = std::move(*w);
  }
  void TearDown() override {
    web_.reset();
    verifier_.reset();
    std::filesystem::remove_all(pki_.dir);
    std::filesystem::remove_all(std::filesystem::path(users_).parent_path());
  }
  static net::HttpRequest Get(const std::string& target, const std::string& cn = "", const std::string& cookie = "") {
    net::HttpRequest r;
    r.method = "GET";
    r.target = target;
    r.path = target.substr(0, target.find('?'));
    if (target.find('?') != std::string::npos) r.query = *net::ParseQuery(target.substr(target.find('?') + 1), 32);
    r.peer.common_name = cn;
    r.cookie = cookie;
    return r;
  }
  static std::string Header(const net::HttpResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return {};
  }
  net::testing::TestPki pki_;
  std::string users_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<WebView> web_;
};

TEST_F(WebViewTest, NoPageWithoutAnOperatorCertificateOrASession) {
  for (const char* page : {"/", "/host?id=x", "/history?id=x", "/policy?name=p", "/policies"}) {
    auto r = web_->Handle(Get(page));
    EXPECT_EQ(r.status, 303) << page;
    EXPECT_EQ(Header(r, "Location"), "/login") << page;
    EXPECT_EQ(web_->Handle(Get(page, "not-an-operator")).status, 303) << page;
    EXPECT_EQ(web_->Handle(Get(page, "", "lim_session=" + std::string(64, 'a'))).status, 303) << page;
  }
  EXPECT_EQ(web_->Handle(Get("/style.css")).status, 200);  // no secret in the style sheet
  auto ok = web_->Handle(Get("/", "lim-client"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(Header(ok, "Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(ok.body.find("<script>"), std::string::npos);
  EXPECT_NE(ok.body.find("evil&lt;script&gt;"), std::string::npos);
  EXPECT_NE(ok.body.find("reason=unknown-file"), std::string::npos);  // the latest failure
}

TEST_F(WebViewTest, LoginOpensASessionLogoutClosesIt) {
  net::HttpRequest post = Get("/login");
  post.method = "POST";
  post.body = "user=alice&password=wrong";
  auto bad = web_->Handle(post);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(Header(bad, "Set-Cookie"), "");
  post.body = "user=alice&password=pw";
  auto good = web_->Handle(post);
  ASSERT_EQ(good.status, 303);
  std::string cookie = Header(good, "Set-Cookie");
  EXPECT_NE(cookie.find("Secure; HttpOnly; SameSite=Strict"), std::string::npos) << cookie;
  std::string session = cookie.substr(0, cookie.find(';'));
  auto host = web_->Handle(Get("/host?id=" + UrlComponent(kHostile), "", session));
  ASSERT_EQ(host.status, 200) << host.body;
  EXPECT_EQ(host.body.find("<script>"), std::string::npos);
  EXPECT_NE(host.body.find("/tmp/&lt;script&gt;x&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(host.body.find(">alice <form"), std::string::npos);  // who is logged in, with a logout button
  EXPECT_EQ(web_->Handle(Get("/history?id=" + UrlComponent(kHostile), "", session)).status, 200);
  EXPECT_EQ(web_->Handle(Get("/host?id=nosuch", "", session)).status, 404);
  EXPECT_EQ(web_->Handle(Get("/host", "", session)).status, 400);
  net::HttpRequest out = Get("/logout", "", session);
  out.method = "POST";
  EXPECT_EQ(web_->Handle(out).status, 303);
  EXPECT_EQ(web_->Handle(Get("/", "", session)).status, 303);
}

// Over the wire: the web socket asks for a client certificate but lets a browser without
// one reach the login page; an operator certificate opens the pages at once; a certificate
// from another CA is refused at the handshake.
TEST_F(WebViewTest, OverTlsAnOperatorCertificateOrTheLoginPage) {
  ASSERT_TRUE(web_->Start().ok());
  auto request = [this](Result<std::shared_ptr<net::TlsContext>> tls, const std::string& target) {
    EXPECT_TRUE(tls.ok());
    net::ClientOptions co;
    co.port = web_->port();
    auto c = net::HttpsClient::Create(*tls, co);
    EXPECT_TRUE(c.ok());
    return (*c)->Request("GET", target);
  };
  auto anonymous = request(net::MakeClientTlsWithoutCertificate(pki_.ca), "/");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status().message();
  EXPECT_EQ(anonymous->status, 303);
  EXPECT_EQ(anonymous->body.find("evil"), std::string::npos);
  auto login = request(net::MakeClientTlsWithoutCertificate(pki_.ca), "/login");
  ASSERT_TRUE(login.ok());
  EXPECT_EQ(login->status, 200);
  EXPECT_NE(login->body.find("<form class=\"login\""), std::string::npos);
  // The test PKI's client certificate (CN agent-1) is not in --operator-cn: login page.
  auto agent = request(net::MakeClientTls({pki_.client_cert, pki_.client_key, pki_.ca}), "/");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  EXPECT_EQ(agent->status, 303);
  auto foreign = request(net::MakeClientTls({pki_.other_client_cert, pki_.other_client_key, pki_.ca}), "/");
  EXPECT_FALSE(foreign.ok() && foreign->status == 200);
  web_->Stop();
  WebOptions wo;
  wo.tls = {pki_.server_cert, pki_.server_key, pki_.ca};
  wo.operator_cn = {"agent-1"};
  auto w = WebView::Create(*verifier_, wo);
  ASSERT_TRUE(w.ok());
  web_ = std::move(*w);
  ASSERT_TRUE(web_->Start().ok());
  auto op = request(net::MakeClientTls({pki_.client_cert, pki_.client_key, pki_.ca}), "/");
  ASSERT_TRUE(op.ok()) << op.status().message();
  EXPECT_EQ(op->status, 200);
  EXPECT_NE(op->body.find("evil&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(request(net::MakeClientTlsWithoutCertificate(pki_.ca), "/")->status, 303);
}

// The binary's web flags: --hash-password prints a line the users file takes; a bad users
// file names its line; --web-users needs --web.
TEST(WebFlags, HashPasswordAndBadUsersFile) {
  std::string bin = std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/lim-verifier";
  auto hashed = lim::testing::Run("printf 'pass word\\n' | " + lim::testing::ShellQuote(bin) + " --hash-password");
  ASSERT_EQ(hashed.exit_code, 0) << hashed.err;
  std::string line = hashed.out.substr(0, hashed.out.find('\n'));
  EXPECT_EQ(line.rfind("pbkdf2-sha256:600000:", 0), 0u) << line;
  EXPECT_TRUE(*CheckPassword(line, "pass word"));
  std::string dir = lim::testing::MakeTempDir();
  std::ofstream(dir + "/users") << "# ops\nalice " << line << "\nbob\n";
  auto bad = lim::testing::Run(lim::testing::ShellQuote(bin) + " --cert a --key b --ca c --store sqlite::memory: --web "
                               "127.0.0.1:0 --web-users " + dir + "/users");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(dir + "/users:3: expected NAME"), std::string::npos) << bad.err;
  auto alone = lim::testing::Run(lim::testing::ShellQuote(bin) + " --cert a --key b --ca c --store sqlite::memory: "
                                 "--web-users " + dir + "/users");
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_NE(alone.err.find("--web-users without --web"), std::string::npos) << alone.err;
  std::filesystem::remove_all(dir);
}

// The render time of one host page over a 100,000-row table (docs/performance.md): the
// server's side, CPU time of HostBody. LIM_WEB_BENCH_DIR=DIR also writes the pages for the
// browser's side (bench/web_render.py).
TEST(WebBench, HostPageOf100000RowsRendersOnePage) {
  auto rows = Rows(100000, 60, {70, 5000, 99999});
  attest::AgentRecord a;
  a.id = "bench-host";
  a.status = attest::AgentStatus::kFailed;
  std::vector<double> ms;
  std::string html;
  for (int i = 0; i < 21; ++i) {
    timespec t0{}, t1{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    html = Host(a, rows, {}, {{"page", std::to_string(1 + i * 20)}});
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    ms.push_back(static_cast<double>(t1.tv_sec - t0.tv_sec) * 1e3 + static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e6);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("host page, 100,000 rows, 200 shown: CPU ms min %.3f median %.3f max %.3f, %zu bytes\n", ms.front(),
              ms[ms.size() / 2], ms.back(), html.size());
  EXPECT_EQ(ShownIndices(html).size(), 200u);
  if (const char* dir = std::getenv("LIM_WEB_BENCH_DIR")) {
    for (const char* page : {"1", "250", "500"}) {
      std::ofstream(std::string(dir) + "/host-" + page + ".html")
          << Frame("Host bench-host", "", false, Host(a, rows, {}, {{"page", page}}));
    }
    std::ofstream(std::string(dir) + "/style.css") << StyleSheet();
  }
}

double CpuMs(const std::function<void()>& f) {
  timespec t0{}, t1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
  f();
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
  return static_cast<double>(t1.tv_sec - t0.tv_sec) * 1e3 + static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

// The fleet page of 10,000 hosts through WebView::Handle (docs/performance.md): the store
// scan (SQLite in memory: its CPU, not a disk's latency) on a cache miss, and a page served
// from the cache.
TEST(WebBench, FleetOf10000Hosts) {
  auto pki = net::testing::MakeTestPki();
  ASSERT_EQ(pki.error, "");
  auto store = attest::OpenSqliteStore(":memory:");
  ASSERT_TRUE(store.ok());
  VerifierOptions o;
  o.tls = {pki.server_cert, pki.server_key, pki.ca};
  o.log = [](const std::string&) {};
  auto v = Verifier::Create(std::move(*store), o);
  ASSERT_TRUE(v.ok());
  for (int i = 0; i < 10000; ++i) {
    attest::AgentRecord a;
    a.id = "host" + std::to_string(i);
    a.address = "10.0.0.1:8891";
    a.status = i % 1000 == 7 ? attest::AgentStatus::kFailed : attest::AgentStatus::kAttested;
    a.state.next_index = 5000;
    ASSERT_TRUE((*v)->store().PutAgent(a).ok());
  }
  for (auto cache : {std::chrono::milliseconds(0), std::chrono::milliseconds(60000)}) {
    WebOptions wo;
    wo.tls = o.tls;
    wo.fleet_cache = cache;
    auto w = WebView::Create(**v, wo);
    ASSERT_TRUE(w.ok());
    net::HttpRequest r;
    r.method = "GET";
    r.path = "/";
    r.peer.common_name = "lim-client";
    (*w)->Handle(r);  // warm
    std::vector<double> ms;
    net::HttpResponse res;
    for (int i = 0; i < 7; ++i) ms.push_back(CpuMs([&] { res = (*w)->Handle(r); }));
    std::sort(ms.begin(), ms.end());
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(Count(res.body, "<tr class="), 100u);
    EXPECT_EQ(res.body.find("host1007") < res.body.find("host0\""), true);
    std::printf("fleet page, 10,000 hosts, %s: CPU ms min %.2f median %.2f max %.2f, %zu bytes\n",
                cache.count() ? "cached list" : "store scanned", ms.front(), ms[ms.size() / 2], ms.back(),
                res.body.size());
  }
  std::filesystem::remove_all(pki.dir);
}

}  // namespace
}  // namespace lim::verifier::web
