// Building blocks of the verifier's web view (web_view.h): HTML and URL escaping of every
// string that comes from agents or operators (host names, paths, event data are hostile
// input), pagination of long lists (10,000 hosts, 1,000,000-row measurement lists: a page
// renders at most max_per_page rows whatever the list holds), and the page frame with its
// style sheet. Plain server-rendered HTML, no script. Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lim::verifier::web {

// Text for an HTML element or a quoted attribute value: & < > " ' become entities; bytes
// that are not printable ASCII or well-formed UTF-8 (control characters, NUL, stray high
// bytes) are shown as \xNN (base/escape.h), so a hostile name can neither open a tag nor
// break the page's encoding.
void AppendHtml(std::string_view s, std::string* out);
std::string Html(std::string_view s);

// One query-string component: everything but unreserved characters (A-Z a-z 0-9 - _ . ~)
// percent-encoded, so a value with & = # ? or a quote stays one parameter.
std::string UrlComponent(std::string_view s);

// "/host?id=x&page=2": path plus the parameters (empty values left out) URL-encoded.
std::string Url(std::string_view path, const std::vector<std::pair<std::string, std::string>>& params);

// Which slice of a list one page shows. page is 1-based; items [first, last) are shown.
struct Page {
  size_t page = 1;
  size_t per_page = 100;
  size_t total = 0;
  size_t pages = 1;  // ≥ 1 (an empty list has one empty page)
  size_t first = 0;
  size_t last = 0;
};

// The page asked for in ?page=N&per=M (defaults: 1 and default_per; per clamped to
// 1-max_per, a page past the end shows the last page; a malformed number counts as
// absent, never an error: these are links an operator edits by hand).
Page Paginate(const std::map<std::string, std::string>& query, size_t total, size_t default_per, size_t max_per);

// "Page 2 of 7 (1,234 rows)" with first/previous/next/last links keeping `params`.
std::string PageNav(const Page& p, std::string_view path, const std::vector<std::pair<std::string, std::string>>& params,
                    std::string_view noun);

// 1234567 → "1,234,567".
std::string Thousands(uint64_t n);

// Unix seconds → "2026-12-06 09:15:02 UTC" ("never" for 0).
std::string UtcTime(int64_t unix_seconds);

// A whole page: <!doctype html>, title, the style sheet link, the navigation bar (user
// shown when not empty, with a logout button for a session), then body_html as given.
std::string Frame(std::string_view title, std::string_view user, bool session, std::string_view body_html);

// The style sheet served at /style.css.
const std::string& StyleSheet();

}  // namespace lim::verifier::web
