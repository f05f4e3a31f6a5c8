#include "verifier/web_html.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "base/escape.h"

namespace lim::verifier::web {

void AppendHtml(std::string_view s, std::string* out) {
  // Escaped() first: only printable ASCII, backslash escapes and well-formed UTF-8 remain;
  // then the five characters HTML gives a meaning.
  std::string clean = Escaped(s);
  out->reserve(out->size() + clean.size());
  for (char c : clean) {
    switch (c) {
      case '&': out->append("&amp;"); break;
      case '<': out->append("&lt;"); break;
      case '>': out->append("&gt;"); break;
      case '"': out->append("&quot;"); break;
      case '\'': out->append("&#39;"); break;
      default: out->push_back(c);
    }
  }
}

std::string Html(std::string_view s) {
  std::string out;
  AppendHtml(s, &out);
  return out;
}

std::string UrlComponent(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Url(std::string_view path, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out(path);
  char sep = '?';
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out.push_back(sep);
    sep = '&';
    out += UrlComponent(k) + "=" + UrlComponent(v);
  }
  return out;
}

namespace {

size_t NumberOr(const std::map<std::string, std::string>& query, const char* key, size_t fallback) {
  auto it = query.find(key);
  if (it == query.end()) return fallback;
  size_t v = 0;
  const char* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, v);
  if (ec != std::errc() || ptr != end || it->second.empty()) return fallback;
  return v;
}

}  // namespace

Page Paginate(const std::map<std::string, std::string>& query, size_t total, size_t default_per, size_t max_per) {
  Page p;
  p.total = total;
  p.per_page = std::clamp<size_t>(NumberOr(query, "per", default_per), 1, std::max<size_t>(max_per, 1));
  p.pages = std::max<size_t>(1, (total + p.per_page - 1) / p.per_page);
  p.page = std::clamp<size_t>(NumberOr(query, "page", 1), 1, p.pages);
  p.first = std::min(total, (p.page - 1) * p.per_page);
  p.last = std::min(total, p.first + p.per_page);
  return p;
}

std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string PageNav(const Page& p, std::string_view path, const std::vector<std::pair<std::string, std::string>>& params,
                    std::string_view noun) {
  auto link = [&](size_t page, const char* label, bool enabled) {
    if (!enabled) return std::string("<span class=\"off\">") + label + "</span>";
    auto ps = params;
    ps.emplace_back("page", std::to_string(page));
    ps.emplace_back("per", std::to_string(p.per_page));
    return "<a href=\"" + Html(Url(path, ps)) + "\">" + label + "</a>";
  };
  std::string out = "<nav class=\"pages\">";
  out += link(1, "&laquo; first", p.page > 1) + " " + link(p.page - 1, "&lsaquo; previous", p.page > 1) + " ";
  out += "<span>page " + Thousands(p.page) + " of " + Thousands(p.pages) + " (";
  if (p.total) out += Thousands(p.first + 1) + "&ndash;" + Thousands(p.last) + " of ";
  out += Thousands(p.total) + " ";
  AppendHtml(noun, &out);
  out += ")</span> ";
  out += link(p.page + 1, "next &rsaquo;", p.page < p.pages) + " " + link(p.pages, "last &raquo;", p.page < p.pages);
  out += "</nav>\n";
  return out;
}

std::string UtcTime(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "never";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Frame(std::string_view title, std::string_view user, bool session, std::string_view body_html) {
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">"
      "<link rel=\"stylesheet\" href=\"/style.css\"><title>";
  AppendHtml(title, &out);
  out += " &ndash; lim-verifier</title></head>\n<body><header><a class=\"brand\" href=\"/\">lim-verifier</a> "
         "<a href=\"/\">fleet</a> <a href=\"/policies\">policies</a>";
  if (!user.empty()) {
    out += "<span class=\"user\">";
    AppendHtml(user, &out);
    if (session) out += " <form method=\"post\" action=\"/logout\"><button type=\"submit\">log out</button></form>";
    out += "</span>";
  }
  out += "</header>\n<main>\n<h1>";
  AppendHtml(title, &out);
  out += "</h1>\n";
  out.append(body_html);
  out += "</main></body></html>\n";
  return out;
}

const std::string& StyleSheet() {
  static const std::string kCss = R"css(body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23324a;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}
header a{color:#fff;text-decoration:none}header .brand{font-weight:bold}
header .user{margin-left:auto}header form{display:inline}
main{padding:0 1em 2em}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #ddd;padding:.2em .4em;text-align:left;vertical-align:top}
th{background:#eef1f5}td.mono,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
tr.failed td,tr.fail td{background:#fde8e8}tr.unreachable td{background:#fff4dc}
.state{font-weight:bold}.state-failed,.v-fail{color:#b00020}.state-attested,.v-ok{color:#17692b}
.state-unreachable{color:#9a5b00}.state-enrolling{color:#555}
nav.pages{margin:.5em 0}nav.pages a,nav.pages span{margin-right:.5em}.off{color:#999}
form.search input[type=search]{width:20em}dl.kv{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.kv dt{font-weight:bold}dl.kv dd{margin:0}.error{color:#b00020}.note{color:#555}
form.login{background:#fff;border:1px solid #ddd;padding:1em;max-width:22em}form.login label{display:block;margin:.5em 0}
)css";
  return kCss;
}

}  // namespace lim::verifier::web
