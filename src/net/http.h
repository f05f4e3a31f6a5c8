// The HTTP messages lim's HTTPS server and client exchange, as plain values (no Beast in
// this header), the limits every parser applies, query-string parsing, and a JSON error
// body. Stateless functions; thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "net/tls.h"

namespace lim::net {

// Bounds on what a peer may send: a hostile peer gets an error and a closed connection,
// never unbounded memory.
struct HttpLimits {
  uint32_t max_header_bytes = 8 << 10;
  uint64_t max_body_bytes = 1 << 20;
  size_t max_query_params = 32;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // as sent: path and query
  std::string path;    // target before '?'
  std::map<std::string, std::string> query;  // decoded
  std::string content_type;
  std::string body;
  std::string cookie;  // the Cookie header as sent (the web view's session), empty when none
  PeerIdentity peer;  // the client's verified certificate (server side)
  bool keep_alive = true;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // More header fields (Set-Cookie, Location, Content-Security-Policy, …): name, value.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// A JSON error response: {"error": message}. The message is shown to the peer as is.
HttpResponse JsonError(int status, const std::string& message);

// "a=1&b=x%20y" → {a:1, b:"x y"}. Bad percent escapes, an empty or repeated key, or more
// than max_params parameters are errors naming the parameter.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query, size_t max_params);

// Parses one complete HTTP/1.1 request from bytes with the server's limits (the same parser
// setup the server uses on the wire). For tests and fuzzing; *consumed is how many bytes
// the request took.
Result<HttpRequest> ParseHttpRequest(ByteView bytes, const HttpLimits& limits, size_t* consumed = nullptr);

}  // namespace lim::net
