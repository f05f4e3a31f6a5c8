#include "attest/enroll.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <filesystem>
#include <memory>

#include "base/file.h"
#include "tpm/credential.h"
#include "tpm/key.h"

namespace lim::attest {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};

std::string NameOf(const X509_NAME* n) {
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

// Every certificate in every regular file of dir (PEM, several per file, or DER).
Result<std::unique_ptr<X509_STORE, StoreFree>> LoadCaDir(const std::string& dir, size_t* count) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return Status::NotFound("EK CA directory " + dir + ": " + ec.message());
  *count = 0;
  for (const auto& entry : it) {
    if (!entry.is_regular_file(ec)) continue;
    auto data = ReadFileBounded(entry.path().string(), 4 << 20, "a CA certificate");
    if (!data.ok()) continue;
    BIO* bio = BIO_new_mem_buf(data->data(), static_cast<int>(data->size()));
    bool any = false;
    while (X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store.get(), c);
      X509_free(c);
      any = true;
      ++*count;
    }
    BIO_free(bio);
    if (!any) {
      const unsigned char* p = data->data();
      X509Ptr c(d2i_X509(nullptr, &p, static_cast<long>(data->size())));
      if (c) {
        X509_STORE_add_cert(store.get(), c.get());
        ++*count;
      }
    }
  }
  if (*count == 0) return Status::NotFound("EK CA directory " + dir + " holds no certificate");
  return store;
}

}  // namespace

Status CheckAkPublic(const TPMT_PUBLIC& ak) {
  Status st = tpm::CheckAkAttributes(ak);
  std::string wrong = st.ok() ? "" : st.message();
  if (!(ak.objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN)) {
    wrong += std::string(wrong.empty() ? "AK not enrolable: " : ", ") + "not sensitiveDataOrigin";
  }
  if (!wrong.empty()) return Status::Mismatch(wrong);
  return Status::Ok();
}

Result<CheckedIdentity> CheckIdentity(const Identity& id, const EnrollOptions& options) {
  CheckedIdentity out;
  auto ek = tpm::ParsePublic(id.ek_public);
  if (!ek.ok()) return ek.status().WithPrefix("EK public");
  out.ek = *ek;
  auto ak = tpm::ParsePublic(id.ak_public);
  if (!ak.ok()) return ak.status().WithPrefix("AK public");
  out.ak = *ak;
  LIM_RETURN_IF_ERROR(CheckAkPublic(out.ak));
  LIM_ASSIGN_OR_RETURN(out.ak_name, tpm::PublicName(out.ak));
  LIM_ASSIGN_OR_RETURN(tpm::PublicKey ek_key, tpm::PublicKey::FromTpmPublic(out.ek));

  if (!id.ek_certificate || id.ek_certificate->empty()) {
    if (!options.allow_tofu) {
      return Status::Mismatch("no EK certificate, and trust on first use is not allowed for agent " + id.agent_id);
    }
    out.tofu = true;
    return out;
  }
  const Bytes& der = *id.ek_certificate;
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return Status::InvalidArgument("EK certificate: not DER X.509");
  out.ek_subject = NameOf(X509_get_subject_name(cert.get()));
  out.ek_issuer = NameOf(X509_get_issuer_name(cert.get()));
  EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (!cert_key || EVP_PKEY_eq(cert_key, ek_key.pkey()) != 1) {
    return Status::Mismatch("EK certificate: its key is not the EK public area sent");
  }
  if (options.ca_dir.empty()) return Status::InvalidArgument("EK certificate: no CA directory configured");
  size_t cas = 0;
  LIM_ASSIGN_OR_RETURN(auto store, LoadCaDir(options.ca_dir, &cas));
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  // EK certificates carry TPM-specific critical extensions (a subjectAltName with the TPM
  // manufacturer as directoryName is handled; a critical Subject Directory Attributes is
  // not): the chain and signatures are what is checked here.
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_IGNORE_CRITICAL);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return Status::Mismatch("EK certificate (issuer " + out.ek_issuer + ") does not chain to a CA in " +
                            options.ca_dir + ": " + X509_verify_cert_error_string(err));
  }
  return out;
}

Result<CredentialChallenge> MakeChallenge(const CheckedIdentity& id, Bytes* secret) {
  secret->assign(32, 0);
  if (RAND_bytes(secret->data(), static_cast<int>(secret->size())) != 1) {
    return Status::Internal("RAND_bytes failed");
  }
  LIM_ASSIGN_OR_RETURN(tpm::MadeCredential made, tpm::MakeCredential(id.ek, id.ak_name, *secret));
  return CredentialChallenge{std::move(made.id_object), std::move(made.secret)};
}

Status CheckChallengeResponse(ByteView secret, const CredentialResponse& response) {
  if (secret.empty() || response.credential.size() != secret.size() ||
      CRYPTO_memcmp(secret.data(), response.credential.data(), secret.size()) != 0) {
    return Status::Mismatch("credential activation failed: the AK is not in the TPM that holds the EK");
  }
  return Status::Ok();
}

}  // namespace lim::attest
