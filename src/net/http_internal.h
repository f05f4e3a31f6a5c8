// Internal to src/net: Beast parser setup and conversions shared by the server, the client
// and ParseHttpRequest. Includes Beast; never include from a public header.
#pragma once

#include <boost/beast/http.hpp>

#include "net/http.h"

namespace lim::net {

namespace bhttp = boost::beast::http;
using BeastRequest = bhttp::request<bhttp::string_body>;
using BeastResponse = bhttp::response<bhttp::string_body>;

inline void ApplyLimits(bhttp::request_parser<bhttp::string_body>& p, const HttpLimits& l) {
  p.header_limit(l.max_header_bytes);
  p.body_limit(l.max_body_bytes);
}

// Fills the plain request from a parsed Beast one (path split, query decoded).
Result<HttpRequest> FromBeast(const BeastRequest& r, const HttpLimits& limits);

// The status and message for a parse error: 431 for a header over the limit, 413 for a
// body over it, 400 for anything malformed.
HttpResponse ParseErrorResponse(const boost::system::error_code& ec);

}  // namespace lim::net
