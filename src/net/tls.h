// TLS contexts for lim's HTTPS transport: mutual TLS 1.3 only, ECDSA P-256 certificates, the
// peer's certificate required and checked against a CA file (both directions), session
// tickets for resumption. A TlsContext is built once and shared by every connection of a
// server or a client (OpenSSL's SSL_CTX is thread-safe once configured); it is immutable
// after Make*.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace lim::net {

struct TlsConfig {
  std::string cert_file;  // PEM certificate (chain) with an EC P-256 key
  std::string key_file;   // PEM private key of cert_file
  std::string ca_file;    // PEM CA certificates; the peer's certificate must chain to one
};

class TlsContext;  // opaque (tls_internal.h)

// A server context: the client must present a certificate that chains to ca_file.
Result<std::shared_ptr<TlsContext>> MakeServerTls(const TlsConfig& config);
// A server context for browsers (the verifier's web view): a client certificate is asked
// for and, when one is presented, must chain to ca_file — but a client without one is let
// in too, so the caller must authenticate such a request itself (HttpRequest::peer empty).
Result<std::shared_ptr<TlsContext>> MakeServerTlsCertificateOptional(const TlsConfig& config);
// A client context: presents cert_file and requires the server's to chain to ca_file.
Result<std::shared_ptr<TlsContext>> MakeClientTls(const TlsConfig& config);
// The same for a client with no certificate (tests of refusal only: every lim server
// requires one). ca_file still checks the server.
Result<std::shared_ptr<TlsContext>> MakeClientTlsWithoutCertificate(const std::string& ca_file);

// Who the peer of a connection is: its certificate's subject CN and the SHA-256 of the
// certificate (DER, lowercase hex). Both empty when there is no certificate.
struct PeerIdentity {
  std::string common_name;
  std::string cert_sha256;
};

}  // namespace lim::net
