#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

#include "base/hex.h"
#include "net/tls_internal.h"

namespace lim::net {

namespace {

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// lim's certificates are ECDSA P-256: small, and the cheapest signature to make and check
// per handshake on this hardware (an RSA-2048 sign costs ~10x an ECDSA P-256 one).
Status CheckP256(SSL_CTX* ctx, const std::string& cert_file) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  EVP_PKEY* key = cert ? X509_get0_pubkey(cert) : nullptr;
  if (!key) return Status::InvalidArgument(cert_file + ": no certificate public key");
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1 || std::string(group) != "prime256v1") {
    return Status::Unsupported(cert_file + ": the certificate key must be ECDSA P-256 (prime256v1), not " +
                               (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? std::string("EC ") + group
                                                                          : std::string(OBJ_nid2sn(EVP_PKEY_get_base_id(key)))));
  }
  return Status::Ok();
}

Status Common(TlsContext* t, const TlsConfig* own, const std::string& ca_file) {
  SSL_CTX* ctx = t->ctx.native_handle();
  // TLS 1.3 only: one round trip, forward secrecy always, no renegotiation, and the
  // resumption (PSK tickets) this transport counts on.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return Status::Internal("TLS 1.3 not available: " + OpensslError());
  }
  if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 || SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256") != 1) {
    return Status::Internal("TLS parameters: " + OpensslError());
  }
  if (own) {
    if (SSL_CTX_use_certificate_chain_file(ctx, own->cert_file.c_str()) != 1) {
      return Status::InvalidArgument(own->cert_file + ": cannot load certificate: " + OpensslError());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, own->key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Status::InvalidArgument(own->key_file + ": cannot load private key: " + OpensslError());
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return Status::InvalidArgument(own->key_file + ": does not match " + own->cert_file);
    }
    LIM_RETURN_IF_ERROR(CheckP256(ctx, own->cert_file));
  }
  if (ca_file.empty()) return Status::InvalidArgument("no CA file: the peer's certificate must be checked");
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return Status::InvalidArgument(ca_file + ": cannot load CA certificates: " + OpensslError());
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<TlsContext>> MakeServerTls(const TlsConfig& config) {
  auto t = std::make_shared<TlsContext>(boost::asio::ssl::context::tls_server);
  LIM_RETURN_IF_ERROR(Common(t.get(), &config, config.ca_file));
  SSL_CTX* ctx = t->ctx.native_handle();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Resumed sessions keep the client's verified certificate; the id context ties tickets
  // to this service (OpenSSL refuses resumption with client verification without one).
  static const unsigned char kSidCtx[] = "lim-net";
  SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
  // One ticket per handshake: a client keeps one connection and needs one to resume.
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  return t;
}

Result<std::shared_ptr<TlsContext>> MakeServerTlsCertificateOptional(const TlsConfig& config) {
  LIM_ASSIGN_OR_RETURN(auto t, MakeServerTls(config));
  // Tickets still carry the verified certificate of a client that showed one.
  SSL_CTX_set_verify(t->ctx.native_handle(), SSL_VERIFY_PEER, nullptr);
  return t;
}

Result<std::shared_ptr<TlsContext>> MakeClientTls(const TlsConfig& config) {
  auto t = std::make_shared<TlsContext>(boost::asio::ssl::context::tls_client);
  LIM_RETURN_IF_ERROR(Common(t.get(), &config, config.ca_file));
  SSL_CTX_set_verify(t->ctx.native_handle(), SSL_VERIFY_PEER, nullptr);
  // The client keeps the session of its connection itself (HttpsClient): no shared cache.
  SSL_CTX_set_session_cache_mode(t->ctx.native_handle(), SSL_SESS_CACHE_OFF);
  return t;
}

Result<std::shared_ptr<TlsContext>> MakeClientTlsWithoutCertificate(const std::string& ca_file) {
  auto t = std::make_shared<TlsContext>(boost::asio::ssl::context::tls_client);
  LIM_RETURN_IF_ERROR(Common(t.get(), nullptr, ca_file));
  SSL_CTX_set_verify(t->ctx.native_handle(), SSL_VERIFY_PEER, nullptr);
  return t;
}

PeerIdentity PeerOf(SSL* ssl) {
  PeerIdentity id;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return id;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
    id.common_name = cn;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1) id.cert_sha256 = ToHex(ByteView(md, n));
  return id;
}

}  // namespace lim::net
