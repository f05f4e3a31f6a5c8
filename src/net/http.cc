#include "net/http.h"

#include <nlohmann/json.hpp>

#include "net/http_internal.h"

namespace lim::net {

HttpResponse JsonError(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  // error_handler replace: a message quoting hostile bytes still serialises.
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return Status::InvalidArgument("truncated %-escape");
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("bad %-escape");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query, size_t max_params) {
  std::map<std::string, std::string> out;
  size_t n = 0;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    if (++n > max_params) return Status::InvalidArgument("query: more than " + std::to_string(max_params) + " parameters");
    size_t eq = part.find('=');
    auto key = PercentDecode(part.substr(0, eq));
    if (!key.ok()) return key.status().WithPrefix("query parameter " + std::to_string(n));
    if (key->empty()) return Status::InvalidArgument("query parameter " + std::to_string(n) + ": empty name");
    auto value = PercentDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!value.ok()) return value.status().WithPrefix("query parameter " + *key);
    if (!out.emplace(*key, *value).second) return Status::InvalidArgument("query parameter " + *key + ": repeated");
  }
  return out;
}

Result<HttpRequest> FromBeast(const BeastRequest& r, const HttpLimits& limits) {
  HttpRequest out;
  out.method = std::string(r.method_string());
  out.target = std::string(r.target());
  size_t q = out.target.find('?');
  out.path = out.target.substr(0, q);
  if (q != std::string::npos) {
    LIM_ASSIGN_OR_RETURN(out.query, ParseQuery(std::string_view(out.target).substr(q + 1), limits.max_query_params));
  }
  auto ct = r.find(bhttp::field::content_type);
  if (ct != r.end()) out.content_type = std::string(ct->value());
  if (auto ck = r.find(bhttp::field::cookie); ck != r.end()) out.cookie = std::string(ck->value());
  out.body = r.body();
  out.keep_alive = r.keep_alive();
  return out;
}

HttpResponse ParseErrorResponse(const boost::system::error_code& ec) {
  if (ec == bhttp::error::header_limit) return JsonError(431, "request header too large");
  if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) return JsonError(413, "request body too large");
  return JsonError(400, "malformed request: " + ec.message());
}

Result<HttpRequest> ParseHttpRequest(ByteView bytes, const HttpLimits& limits, size_t* consumed) {
  bhttp::request_parser<bhttp::string_body> p;
  ApplyLimits(p, limits);
  p.eager(true);
  boost::system::error_code ec;
  size_t used = p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (!ec && !p.is_done()) {
    // put() stops at the end of the header; a second call consumes the body.
    used += p.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
  }
  if (ec == bhttp::error::need_more || (!ec && !p.is_done())) {
    p.put_eof(ec);
    if (!ec) ec = bhttp::error::partial_message;
  }
  if (ec) return Status::InvalidArgument(ParseErrorResponse(ec).body);
  if (consumed) *consumed = used;
  return FromBeast(p.get(), limits);
}

}  // namespace lim::net
