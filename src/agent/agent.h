// Agent: lim-agent's core — what it tells a verifier, apart from the network. Identity (EK
// public and certificate, AK public), credential activation for enrollment, and evidence for
// a nonce: a quote over the requested PCRs made *before* the list tail is read (so the quote
// covers a prefix of the records sent and the verifier keeps the rest for the next round),
// the list from entry N, the firmware event log, boot_id and limd's liveness.
//
// The TPM is opened like every lim tool opens it (tpm/tpm.h): with a one-client swtpm the
// connection is held per burst of commands and released after 50 ms idle, so limd and the
// agent take turns at the socket (each waits in the listen backlog, within the call
// timeout); /dev/tpmrm0 is the kernel's resource manager. Nothing is left loaded in the TPM
// between bursts (the AK is loaded from its blob per quote). docs/agent.md.
//
// The AK is created once — a restricted ECC P-256 signing key under the EK — and kept in
// ak_dir, which must be a real directory (not a link), owned by this user, mode 0700.
//
// Threading: every method is thread-safe (the TPM serialises itself; the list reader has
// its own mutex). Routes run on the server's threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "attest/evidence.h"
#include "base/status.h"
#include "net/https_server.h"
#include "tpm/tpm.h"

namespace lim::agent {

class ListTailReader;

struct AgentOptions {
  std::string agent_id;
  // ECC: CreatePrimary of an ECC EK (done per TPM burst unless the EK is persisted) takes
  // milliseconds; an RSA-2048 one can take a second on swtpm. RSA when the EK certificate
  // the verifier needs is only the RSA one (swtpm_setup makes RSA-2048 and ECC P-384).
  tpm::EkType ek = tpm::EkType::kEcc;
  std::string ak_dir = "/var/lib/lim/agent";
  std::string list_path = "/var/lib/lim/binary_runtime_measurements";
  std::string list_source = "limd";  // "limd" or "kernel"
  std::string event_log_path = "/sys/kernel/security/tpm0/binary_bios_measurements";  // "" none
  std::string control_socket = "/run/lim/limd.sock";                                   // "" none
  std::string boot_id_path = "/proc/sys/kernel/random/boot_id";
  // Pull mode: certificate CNs allowed to ask (empty: any certificate from the CA). Agents'
  // and verifiers' certificates often come from one CA; this keeps other hosts out.
  std::vector<std::string> allowed_peers;
};

// The largest firmware event log sent (real ones are tens of KiB).
inline constexpr size_t kMaxEventLogBytes = 16u << 20;

class Agent {
 public:
  // Loads the AK from ak_dir or creates and saves it there.
  static Result<std::unique_ptr<Agent>> Create(AgentOptions options, std::unique_ptr<tpm::Tpm> tpm);
  ~Agent();

  Result<attest::Identity> Identity();
  Result<attest::CredentialResponse> Activate(const attest::CredentialChallenge& challenge);
  Result<attest::Evidence> Gather(const attest::EvidenceRequest& request);

  // GET /v1/identity, POST /v1/activate, POST /v1/evidence, GET /v1/health (JSON, see
  // docs/agent.md). Errors: 400 for a bad request, 403 for a peer not in allowed_peers,
  // 503 when the TPM or the list is unavailable, 500 otherwise; the body names what failed.
  void RegisterRoutes(net::HttpsServer& server);

  const tpm::AkKey& ak() const { return ak_; }
  const AgentOptions& options() const { return options_; }

 private:
  Agent() = default;
  bool PeerAllowed(const net::HttpRequest& r) const;
  AgentOptions options_;
  std::unique_ptr<tpm::Tpm> tpm_;
  tpm::AkKey ak_;
  std::unique_ptr<ListTailReader> list_;
};

// Loads the AK kept in dir, or creates one under the EK and saves it. dir is created 0700
// when missing; an existing dir that is a link, not owned by this user or open to others is
// refused.
Result<tpm::AkKey> LoadOrCreateAk(tpm::Tpm& tpm, tpm::EkType ek, const std::string& dir);

// The HTTP status for an error Status.
int HttpStatusFor(const Status& s);

}  // namespace lim::agent
