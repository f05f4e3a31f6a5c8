#include "agent/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "agent/list_tail.h"
#include "attest/evidence_json.h"
#include "base/file.h"
#include "control/control_client.h"
#include "control/status_report.h"
#include "tpm/key.h"

namespace lim::agent {

namespace {

// The directory must be ours alone: the AK blob is wrapped by the TPM, but its public
// part, name and description decide what the verifier is shown.
Status CheckPrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError(dir + ": cannot create: " + std::strerror(errno));
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Status::InvalidArgument(dir + ": not a directory (or a symbolic link): " + std::strerror(errno));
  }
  struct stat st {};
  int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0) return Status::IoError(dir + ": " + std::strerror(errno));
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument(dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by this user");
  }
  if (st.st_mode & 077) return Status::InvalidArgument(dir + ": open to others (mode must be 0700)");
  return Status::Ok();
}

Result<std::string> ReadBootId(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, 4096, "a boot_id"));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > 64) return Status::Corrupt(path + ": not a boot_id");
  return text;
}

attest::LimdStatus LimdLiveness(const std::string& socket) {
  attest::LimdStatus s;
  if (socket.empty()) {
    s.detail = "not checked (no control socket configured)";
    return s;
  }
  auto reply = control::QueryControlSocket(socket, 1000);
  if (!reply.ok()) {
    s.detail = reply.status().message();
    return s;
  }
  auto report = control::StatusReport::Parse(*reply, socket);
  if (!report.ok()) {
    s.detail = report.status().message();
    return s;
  }
  s.running = report->running;
  s.detail = "limd pid " + std::to_string(report->pid) + ", " + std::to_string(report->entries) + " entries" +
             (report->tpm ? ", tpm " + *report->tpm : std::string());
  return s;
}

net::HttpResponse JsonOk(std::string body) {
  net::HttpResponse r;
  r.body = std::move(body);
  return r;
}

net::HttpResponse ErrorResponse(const Status& s) { return net::JsonError(HttpStatusFor(s), s.message()); }

}  // namespace

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported:
      return 400;
    case StatusCode::kUnavailable:
    case StatusCode::kNotFound:
      return 503;
    default:
      return 500;
  }
}

Result<tpm::AkKey> LoadOrCreateAk(tpm::Tpm& tpm, tpm::EkType ek, const std::string& dir) {
  LIM_RETURN_IF_ERROR(CheckPrivateDir(dir));
  struct stat st {};
  if (::lstat((dir + "/ak.json").c_str(), &st) == 0) {
    auto ak = tpm::LoadAk(dir);
    if (!ak.ok()) return ak.status().WithPrefix("AK in " + dir);
    if (ak->ek != ek) {
      return Status::InvalidArgument("AK in " + dir + " lives under the " + tpm::EkTypeName(ak->ek) +
                                     " EK, not the " + tpm::EkTypeName(ek) + " one asked for (remove it to make a new one)");
    }
    return ak;
  }
  LIM_ASSIGN_OR_RETURN(tpm::AkKey ak, tpm.CreateAk(ek, tpm::AkAlg::kEccP256));
  LIM_RETURN_IF_ERROR(tpm::SaveAk(ak, dir));
  return ak;
}

Result<std::unique_ptr<Agent>> Agent::Create(AgentOptions options, std::unique_ptr<tpm::Tpm> tpm) {
  if (options.agent_id.empty()) return Status::InvalidArgument("agent id: empty");
  if (options.list_source != "limd" && options.list_source != "kernel") {
    return Status::InvalidArgument("list source must be limd or kernel, not " + options.list_source);
  }
  std::unique_ptr<Agent> a(new Agent);
  LIM_ASSIGN_OR_RETURN(a->ak_, LoadOrCreateAk(*tpm, options.ek, options.ak_dir));
  LIM_RETURN_IF_ERROR(tpm::CheckAkAttributes(a->ak_.pub));
  a->list_ = std::make_unique<ListTailReader>(options.list_path, options.list_source);
  a->tpm_ = std::move(tpm);
  a->options_ = std::move(options);
  return a;
}

Agent::~Agent() = default;

Result<attest::Identity> Agent::Identity() {
  attest::Identity id;
  id.agent_id = options_.agent_id;
  LIM_ASSIGN_OR_RETURN(TPMT_PUBLIC ek, tpm_->ReadEkPublic(options_.ek));
  id.ek_public = tpm::MarshalPublic2B(ek);
  LIM_ASSIGN_OR_RETURN(std::optional<Bytes> cert, tpm_->ReadEkCertificate(options_.ek));
  id.ek_certificate = std::move(cert);
  id.ak_public = tpm::MarshalPublic2B(ak_.pub);
  return id;
}

Result<attest::CredentialResponse> Agent::Activate(const attest::CredentialChallenge& c) {
  auto cred = tpm_->ActivateCredential(ak_, c.id_object, c.secret);
  // A blob made for another TPM or another AK name fails in the TPM (integrity check):
  // the verifier's challenge was bad, which is the verifier's 400.
  if (!cred.ok()) {
    return Status(cred.status().code() == StatusCode::kUnavailable ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
                  "ActivateCredential: " + cred.status().message());
  }
  return attest::CredentialResponse{std::move(*cred)};
}

Result<attest::Evidence> Agent::Gather(const attest::EvidenceRequest& req) {
  if (req.nonce.size() < attest::kMinNonceBytes || req.nonce.size() > attest::kMaxNonceBytes) {
    return Status::InvalidArgument("nonce: " + std::to_string(req.nonce.size()) + " bytes, must be 8..64");
  }
  if (req.max_list_bytes > attest::kMaxListBytesPerRound) return Status::InvalidArgument("max_list_bytes too large");
  tpm::PcrSelection sel;
  for (const auto& b : req.pcrs) {
    tpm::PcrBankSelection s;
    s.alg = b.alg;
    for (int i : b.pcrs) {
      if (i < 0 || i >= tpm::kMaxPcrs) return Status::InvalidArgument("PCR index " + std::to_string(i) + " is not 0..23");
      s.pcrs.insert(i);
    }
    sel.push_back(std::move(s));
  }
  if (sel.empty()) return Status::InvalidArgument("no PCRs requested");
  attest::Evidence e;
  e.nonce = req.nonce;
  // The quote first, then the list: every entry the quote's PCR 10 covers is then in the
  // tail read after it (the tail may hold more, which the verifier keeps for next round).
  LIM_ASSIGN_OR_RETURN(tpm::Quote q, tpm_->MakeQuote(ak_, sel, req.nonce));
  e.quote = std::move(q.msg);
  e.signature = std::move(q.sig);
  e.pcrs = std::move(q.values);
  auto tail = list_->Read(req.list_from, req.max_list_bytes);
  if (!tail.ok()) return tail.status().WithPrefix("measurement list");
  e.list = std::move(*tail);
  // A host without a firmware event log (no TPM log exported, --event-log none) sends
  // none: the verifier decides what that means. One that exists but cannot be read is an
  // error.
  struct stat st {};
  if (req.want_event_log && !options_.event_log_path.empty() && ::stat(options_.event_log_path.c_str(), &st) == 0) {
    auto log = ReadFileBounded(options_.event_log_path, kMaxEventLogBytes, "a firmware event log");
    if (!log.ok()) return log.status();
    e.event_log = std::move(*log);
  }
  LIM_ASSIGN_OR_RETURN(e.boot_id, ReadBootId(options_.boot_id_path));
  e.limd = LimdLiveness(options_.control_socket);
  return e;
}

bool Agent::PeerAllowed(const net::HttpRequest& r) const {
  if (options_.allowed_peers.empty()) return true;
  for (const auto& cn : options_.allowed_peers) {
    if (cn == r.peer.common_name) return true;
  }
  return false;
}

void Agent::RegisterRoutes(net::HttpsServer& server) {
  // Every route but health checks the peer first.
  auto guarded = [this](std::function<net::HttpResponse(const net::HttpRequest&)> h) {
    return [this, h = std::move(h)](const net::HttpRequest& r) {
      if (!PeerAllowed(r)) return net::JsonError(403, "certificate CN \"" + r.peer.common_name + "\" may not ask this agent");
      return h(r);
    };
  };
  server.Route("GET", "/v1/health", [](const net::HttpRequest&) { return JsonOk(R"({"ok":true})"); });
  server.Route("GET", "/v1/identity", guarded([this](const net::HttpRequest&) {
    auto id = Identity();
    return id.ok() ? JsonOk(attest::IdentityToJson(*id)) : ErrorResponse(id.status());
  }));
  server.Route("POST", "/v1/activate", guarded([this](const net::HttpRequest& r) {
    auto c = attest::CredentialChallengeFromJson(r.body);
    if (!c.ok()) return ErrorResponse(c.status());
    auto res = Activate(*c);
    return res.ok() ? JsonOk(attest::CredentialResponseToJson(*res)) : ErrorResponse(res.status());
  }));
  server.Route("POST", "/v1/evidence", guarded([this](const net::HttpRequest& r) {
    auto req = attest::EvidenceRequestFromJson(r.body);
    if (!req.ok()) return ErrorResponse(req.status());
    auto e = Gather(*req);
    return e.ok() ? JsonOk(attest::EvidenceToJson(*e)) : ErrorResponse(e.status());
  }));
}

}  // namespace lim::agent
