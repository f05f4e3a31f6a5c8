// Internal to src/net: the Asio SSL context behind a TlsContext and the peer identity of an
// OpenSSL connection. Includes Boost.Asio; never include from a public header.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "net/tls.h"

namespace lim::net {

class TlsContext {
 public:
  explicit TlsContext(boost::asio::ssl::context::method m) : ctx(m) {}
  boost::asio::ssl::context ctx;
};

PeerIdentity PeerOf(SSL* ssl);

}  // namespace lim::net
