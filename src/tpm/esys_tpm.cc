// The tpm2-tss ESAPI backend of Tpm. Every command goes through Call(): the asynchronous
// ESAPI form with our own deadline (the synchronous ESAPI calls retry forever on a receive
// timeout), so no TPM call can hang. One-client TCTIs (swtpm, mssim) are connected per
// burst and released after an idle period by a small reaper thread; the device and tabrmd
// hold one connection. Transient objects and sessions are flushed by RAII guards.
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "base/own_threads.h"
#include "crypto/hash_algo.h"
#include "tpm/key.h"
#include "tpm/seal.h"
#include "tpm/tpm.h"

namespace lim::tpm {

namespace {

using Clock = std::chrono::steady_clock;

TpmKind KindOfTcti(const std::string& tcti) {
  std::string name = tcti.substr(0, tcti.find(':'));
  if (name == "device") return TpmKind::kDevice;
  if (name == "swtpm") return TpmKind::kSwtpm;
  if (name == "mssim") return TpmKind::kSimulator;
  if (name == "tabrmd") return TpmKind::kTabrmd;
  return TpmKind::kOther;
}

std::string Hint(TSS2_RC rc) {
  if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER) return "";
  if (rc & TPM2_RC_FMT1) {
    switch (rc & (TPM2_RC_FMT1 | 0x3f)) {
      case TPM2_RC_AUTH_FAIL:
      case TPM2_RC_BAD_AUTH: return " (wrong authorization value; lim uses empty hierarchy/key auth)";
      case TPM2_RC_POLICY_FAIL: return " (policy check failed: is this the EK the AK was created under?)";
      case TPM2_RC_INTEGRITY: return " (blob integrity check failed: wrong key, or made for another TPM)";
      default: return "";
    }
  }
  switch (rc & 0xfff) {
    case TPM2_RC_LOCKOUT: return " (the TPM is in dictionary-attack lockout; wait or reset with tpm2_dictionarylockout -c)";
    case TPM2_RC_OBJECT_MEMORY: return " (out of transient object memory: another client left objects loaded; tpm2_flushcontext -t)";
    case TPM2_RC_SESSION_MEMORY: return " (out of session memory: tpm2_flushcontext -s)";
    case TPM2_RC_INITIALIZE: return " (TPM2_Startup was not sent)";
    default: return "";
  }
}

Status TpmError(const char* command, TSS2_RC rc) {
  std::string msg = std::string(command) + ": " + Tss2_RC_Decode(rc) + Hint(rc);
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  if (layer == TSS2_TCTI_RC_LAYER || (rc & 0xffff) == TSS2_BASE_RC_IO_ERROR) return Status::Unavailable(msg);
  return Status::Internal(msg);
}

// The swtpm and mssim TCTIs of tpm2-tss 3.2 ignore ESAPI timeouts (their receive always
// blocks), so lim puts a receive/send timeout on their sockets itself. The sockets are
// found among this process's fds by their peer address — the one the TCTI string names.
// The swtpm TCTI opens a new data connection for every command (seen with strace on
// libtss2 3.2.1), so this runs after each command is sent. *hint is the fd found last time:
// the TCTI closes its socket after each response and the next socket() gets the same lowest
// free number, so usually three syscalls suffice; a /proc/self/fd scan otherwise. When the
// scan finds more than one matching socket (another connection to the same TPM in this
// process) there is no hint and every command scans.
bool IsPeer(int fd, const std::string& path, int port) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return false;
  if (peer.ss_family == AF_UNIX && !path.empty()) {
    std::string p = reinterpret_cast<sockaddr_un*>(&peer)->sun_path;
    return p == path || p == path + ".ctrl";
  }
  if (peer.ss_family == AF_INET && path.empty()) {
    int pp = ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port);
    return pp == port || pp == port + 1;
  }
  if (peer.ss_family == AF_INET6 && path.empty()) {
    int pp = ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
    return pp == port || pp == port + 1;
  }
  return false;
}

void SetSocketTimeouts(const std::string& tcti, std::chrono::milliseconds timeout, int* hint) {
  auto sock = ParseSocketTcti(tcti);
  if (!sock) return;
  const std::string& path = sock->path;
  int port = sock->port;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  auto apply = [&](int fd) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  };
  if (*hint >= 0 && IsPeer(*hint, path, port)) {
    apply(*hint);
    return;
  }
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  int found = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = std::atoi(e->d_name);
    if (fd == ::dirfd(d) || !IsPeer(fd, path, port)) continue;
    apply(fd);
    *hint = fd;
    ++found;
  }
  ::closedir(d);
  if (found != 1) *hint = -1;  // ambiguous: another connection to the same TPM; scan every time
}

template <typename T>
struct EsysPtr {
  T* p = nullptr;
  ~EsysPtr() { Esys_Free(p); }
  T** out() { return &p; }
  T* operator->() const { return p; }
};

class EsysTpm final : public Tpm {
 public:
  EsysTpm(std::string tcti, OpenOptions options) : tcti_(std::move(tcti)), options_(options), kind_(KindOfTcti(tcti_)) {
    per_burst_ = kind_ == TpmKind::kSwtpm || kind_ == TpmKind::kSimulator;
    if (per_burst_ && options_.idle_release.count() > 0) reaper_ = StartOwnThread([this] { Reap(); });
  }
  ~EsysTpm() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (reaper_.joinable()) reaper_.join();
    Disconnect();
  }

  Status Open() {
    std::lock_guard<std::mutex> lk(mu_);
    Status st = Connect();
    EndBurst();
    return st;
  }

  TpmKind kind() const override { return kind_; }
  uint64_t stalls() const override { return stalls_.load(); }
  Result<std::optional<TctiServer>> LocalServer() const override { return FindTctiServer(tcti_); }
  std::string Describe() const override {
    std::string d = std::string(TpmKindName(kind_)) + " (" + tcti_ + ")";
    if (kind_ == TpmKind::kSwtpm || kind_ == TpmKind::kSimulator) d += " — software TPM emulator, not a hardware root of trust";
    return d;
  }

  Result<std::vector<uint16_t>> AllocatedBanks() override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    return BanksLocked();
  }

  Result<PcrValues> ReadPcrs(const PcrSelection& selection) override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    return ReadPcrsLocked(selection);
  }

  Status Extend(int pcr, const std::map<uint16_t, Bytes>& digests) override {
    if (pcr < 0 || pcr >= kMaxPcrs) return Status::InvalidArgument("PCR " + std::to_string(pcr) + " out of range 0-23");
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(std::vector<uint16_t> banks, BanksLocked());
    TPML_DIGEST_VALUES values{};
    for (uint16_t alg : banks) {
      auto it = digests.find(alg);
      if (it == digests.end()) return Status::InvalidArgument("no digest for allocated bank " + TpmBankName(alg));
      auto algo = HashAlgoByTpmAlg(alg);
      if (!algo.ok() || it->second.size() != algo->size || it->second.size() > sizeof(TPMU_HA)) {
        return Status::InvalidArgument("digest for bank " + TpmBankName(alg) + " has " + std::to_string(it->second.size()) + " bytes");
      }
      TPMT_HA& ha = values.digests[values.count++];
      ha.hashAlg = alg;
      std::memcpy(&ha.digest, it->second.data(), it->second.size());
    }
    for (const auto& [alg, d] : digests) {
      if (std::find(banks.begin(), banks.end(), alg) == banks.end()) {
        return Status::InvalidArgument("bank " + TpmBankName(alg) + " is not allocated in this TPM");
      }
    }
    return Call("TPM2_PCR_Extend",
                [&] { return Esys_PCR_Extend_Async(ctx_, ESYS_TR_PCR0 + static_cast<ESYS_TR>(pcr), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values); },
                [&] { return Esys_PCR_Extend_Finish(ctx_); });
  }

  Result<ClockInfo> ReadClock() override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    EsysPtr<TPMS_TIME_INFO> t;
    LIM_RETURN_IF_ERROR(Call("TPM2_ReadClock", [&] { return Esys_ReadClock_Async(ctx_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                             [&] { return Esys_ReadClock_Finish(ctx_, t.out()); }));
    return ClockInfo{t->clockInfo.clock, t->clockInfo.resetCount, t->clockInfo.restartCount, t->clockInfo.safe == TPM2_YES};
  }

  Result<TPMT_PUBLIC> ReadEkPublic(EkType ek) override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    TPMT_PUBLIC pub{};
    LIM_ASSIGN_OR_RETURN(Handle h, CreateEk(ek, &pub));
    return pub;
  }

  Result<std::optional<Bytes>> ReadEkCertificate(EkType ek) override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    TPM2_HANDLE index = ek == EkType::kRsa ? 0x01c00002 : 0x01c0000a;
    ESYS_TR tr = ESYS_TR_NONE;
    Status st = Call("TPM2_NV_ReadPublic (EK certificate)",
                     [&] { return Esys_TR_FromTPMPublic_Async(ctx_, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                     [&] { return Esys_TR_FromTPMPublic_Finish(ctx_, &tr); });
    if (st.code() == StatusCode::kUnavailable) return st;
    if (!st.ok()) return std::optional<Bytes>();  // no such index: no certificate
    Handle h(this, tr, /*persistent=*/true);
    EsysPtr<TPM2B_NV_PUBLIC> pub;
    EsysPtr<TPM2B_NAME> name;
    LIM_RETURN_IF_ERROR(Call("TPM2_NV_ReadPublic (EK certificate)",
                             [&] { return Esys_NV_ReadPublic_Async(ctx_, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                             [&] { return Esys_NV_ReadPublic_Finish(ctx_, pub.out(), name.out()); }));
    uint16_t size = pub->nvPublic.dataSize;
    if (size == 0 || size > 16384) return Status::Corrupt("EK certificate NV index holds " + std::to_string(size) + " bytes");
    // Read with the owner hierarchy when the index allows it (TCG provisioning sets
    // OWNERREAD), else with the index's own (empty) auth.
    ESYS_TR auth = (pub->nvPublic.attributes & TPMA_NV_OWNERREAD) ? ESYS_TR_RH_OWNER : tr;
    Bytes out;
    // 512 bytes per read: every TPM's MAX_NV_BUFFER_SIZE is at least that.
    while (out.size() < size) {
      uint16_t n = static_cast<uint16_t>(std::min<size_t>(512, size - out.size()));
      uint16_t off = static_cast<uint16_t>(out.size());
      EsysPtr<TPM2B_MAX_NV_BUFFER> data;
      LIM_RETURN_IF_ERROR(Call("TPM2_NV_Read (EK certificate)",
                               [&] { return Esys_NV_Read_Async(ctx_, auth, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, off); },
                               [&] { return Esys_NV_Read_Finish(ctx_, data.out()); }));
      if (data->size == 0) return Status::Corrupt("TPM2_NV_Read returned no bytes at offset " + std::to_string(off));
      out.insert(out.end(), data->buffer, data->buffer + data->size);
    }
    // Some provisioners pad the index: keep the DER object only.
    if (out.size() >= 4 && out[0] == 0x30 && out[1] == 0x82) {
      size_t der = 4 + ((size_t{out[2]} << 8) | out[3]);
      if (der < out.size()) out.resize(der);
    }
    return std::optional<Bytes>(std::move(out));
  }

  Result<AkKey> CreateAk(EkType ek, AkAlg alg) override {
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(Handle ek_handle, CreateEk(ek, nullptr));
    LIM_ASSIGN_OR_RETURN(Handle session, EkPolicySession());
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_PUBLIC pub{};
    Bytes priv;
    LIM_RETURN_IF_ERROR(CreateChild("TPM2_Create (AK)", ek_handle.tr, session.tr, ESYS_TR_NONE, sensitive, AkTemplate(alg), &pub, &priv));
    session.Consumed();
    AkKey ak;
    ak.ek = ek;
    ak.pub = pub.publicArea;
    ak.private_blob = std::move(priv);
    return ak;
  }

  Result<Quote> MakeQuote(const AkKey& ak, const PcrSelection& selection, ByteView nonce) override {
    if (ak.software) return Status::InvalidArgument("this AK belongs to the software TPM, not to " + tcti_);
    if (nonce.size() > sizeof(TPMU_HA)) return Status::InvalidArgument("nonce longer than 64 bytes");
    LIM_ASSIGN_OR_RETURN(TPML_PCR_SELECTION tss_sel, ToTssSelection(selection));
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(Handle ek_handle, CreateEk(ak.ek, nullptr));
    LIM_ASSIGN_OR_RETURN(Handle ak_handle, LoadAkLocked(ak, ek_handle));
    TPM2B_DATA qualifying{};
    qualifying.size = static_cast<UINT16>(nonce.size());
    std::copy(nonce.begin(), nonce.end(), qualifying.buffer);
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme
    // PCRs can move between the read and the quote; retry until the values read are the
    // ones quoted (pcrDigest matches).
    for (int attempt = 0; attempt < 5; ++attempt) {
      LIM_ASSIGN_OR_RETURN(PcrValues values, ReadPcrsLocked(selection));
      EsysPtr<TPM2B_ATTEST> quoted;
      EsysPtr<TPMT_SIGNATURE> signature;
      LIM_RETURN_IF_ERROR(Call("TPM2_Quote",
                               [&] { return Esys_Quote_Async(ctx_, ak_handle.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying, &scheme, &tss_sel); },
                               [&] { return Esys_Quote_Finish(ctx_, quoted.out(), signature.out()); }));
      Quote q;
      q.msg.assign(quoted->attestationData, quoted->attestationData + quoted->size);
      q.sig.resize(sizeof(TPMT_SIGNATURE) + 8);
      size_t off = 0;
      Tss2_MU_TPMT_SIGNATURE_Marshal(signature.p, q.sig.data(), q.sig.size(), &off);
      q.sig.resize(off);
      q.selection = selection;
      q.values = std::move(values);
      LIM_ASSIGN_OR_RETURN(QuoteInfo info, ParseAttest(q.msg));
      LIM_ASSIGN_OR_RETURN(SignatureInfo sinfo, ParseSignature(q.sig));
      LIM_ASSIGN_OR_RETURN(Bytes digest, ComputePcrDigest(sinfo.hash_alg, selection, q.values));
      if (digest == info.pcr_digest) return q;
    }
    return Status::Unavailable("PCRs kept changing while quoting (5 attempts)");
  }

  Result<Bytes> ActivateCredential(const AkKey& ak, ByteView id_object, ByteView secret) override {
    if (ak.software) return Status::InvalidArgument("this AK belongs to the software TPM");
    TPM2B_ID_OBJECT blob{};
    TPM2B_ENCRYPTED_SECRET enc{};
    size_t off = 0;
    if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object.data(), id_object.size(), &off, &blob) != TSS2_RC_SUCCESS || off != id_object.size()) {
      return Status::Corrupt("credential blob is not a TPM2B_ID_OBJECT");
    }
    off = 0;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret.data(), secret.size(), &off, &enc) != TSS2_RC_SUCCESS || off != secret.size()) {
      return Status::Corrupt("secret is not a TPM2B_ENCRYPTED_SECRET");
    }
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(Handle ek_handle, CreateEk(ak.ek, nullptr));
    LIM_ASSIGN_OR_RETURN(Handle ak_handle, LoadAkLocked(ak, ek_handle));
    LIM_ASSIGN_OR_RETURN(Handle session, EkPolicySession());
    EsysPtr<TPM2B_DIGEST> cert;
    LIM_RETURN_IF_ERROR(Call("TPM2_ActivateCredential",
                             [&] { return Esys_ActivateCredential_Async(ctx_, ak_handle.tr, ek_handle.tr, ESYS_TR_PASSWORD, session.tr, ESYS_TR_NONE, &blob, &enc); },
                             [&] { return Esys_ActivateCredential_Finish(ctx_, cert.out()); }));
    session.Consumed();
    return Bytes(cert->buffer, cert->buffer + cert->size);
  }

  Result<SealedObject> Seal(ByteView secret, const PcrSelection& pcrs) override {
    if (secret.empty() || secret.size() > kMaxSealedSecret) {
      return Status::InvalidArgument("a sealed secret has 1 to " + std::to_string(kMaxSealedSecret) + " bytes, not " +
                                     std::to_string(secret.size()));
    }
    if (pcrs.empty()) return Status::InvalidArgument("sealing needs at least one policy PCR (e.g. sha256:0,7)");
    LIM_ASSIGN_OR_RETURN(TPML_PCR_SELECTION sel, ToTssSelection(pcrs));
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(Handle primary, CreateStoragePrimary());
    // The policy digest PolicyPCR gives over the PCRs' current values, from a trial session
    // (the TPM computes it: no marshalling of our own to get wrong).
    LIM_ASSIGN_OR_RETURN(Handle trial, StartSession(TPM2_SE_TRIAL, ESYS_TR_NONE));
    TPM2B_DIGEST current{};  // empty: the TPM uses the PCRs' current values
    LIM_RETURN_IF_ERROR(Call("TPM2_PolicyPCR (trial)",
                             [&] { return Esys_PolicyPCR_Async(ctx_, trial.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel); },
                             [&] { return Esys_PolicyPCR_Finish(ctx_); }));
    EsysPtr<TPM2B_DIGEST> policy;
    LIM_RETURN_IF_ERROR(Call("TPM2_PolicyGetDigest", [&] { return Esys_PolicyGetDigest_Async(ctx_, trial.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                             [&] { return Esys_PolicyGetDigest_Finish(ctx_, policy.out()); }));
    SealedObject out;
    out.pcrs = pcrs;
    LIM_ASSIGN_OR_RETURN(out.values_at_seal, ReadPcrsLocked(pcrs));

    TPM2B_PUBLIC tmpl{};
    TPMT_PUBLIC& pa = tmpl.publicArea;
    pa.type = TPM2_ALG_KEYEDHASH;
    pa.nameAlg = TPM2_ALG_SHA256;
    // Policy only: without userWithAuth no password opens it; fixedTPM/fixedParent keep
    // it on this TPM under this primary. No sensitiveDataOrigin: the data is ours.
    pa.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_ADMINWITHPOLICY;
    pa.authPolicy = *policy.p;
    pa.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    struct Wiped {
      TPM2B_SENSITIVE_CREATE s{};
      ~Wiped() { OPENSSL_cleanse(&s, sizeof s); }
    } sensitive;
    sensitive.s.sensitive.data.size = static_cast<UINT16>(secret.size());
    std::memcpy(sensitive.s.sensitive.data.buffer, secret.data(), secret.size());
    // The secret crosses the wire encrypted: a session salted with the primary key, with
    // the decrypt attribute on TPM2_Create's first parameter (inSensitive).
    LIM_ASSIGN_OR_RETURN(Handle enc, StartSession(TPM2_SE_HMAC, primary.tr));
    Esys_TRSess_SetAttributes(ctx_, enc.tr, TPMA_SESSION_DECRYPT, TPMA_SESSION_DECRYPT);
    TPM2B_PUBLIC pub{};
    LIM_RETURN_IF_ERROR(CreateChild("TPM2_Create (sealed data)", primary.tr, ESYS_TR_PASSWORD, enc.tr, sensitive.s, tmpl, &pub,
                                    &out.private_area));
    out.public_area.resize(sizeof(TPM2B_PUBLIC) + 2);
    size_t off = 0;
    Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out.public_area.data(), out.public_area.size(), &off);
    out.public_area.resize(off);
    return out;
  }

  Result<SecretBytes> Unseal(const SealedObject& sealed) override {
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(sealed.public_area.data(), sealed.public_area.size(), &off, &pub) != TSS2_RC_SUCCESS ||
        off != sealed.public_area.size()) {
      return Status::Corrupt("sealed object: public part is not a TPM2B_PUBLIC");
    }
    off = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(sealed.private_area.data(), sealed.private_area.size(), &off, &priv) != TSS2_RC_SUCCESS ||
        off != sealed.private_area.size()) {
      return Status::Corrupt("sealed object: private part is not a TPM2B_PRIVATE");
    }
    LIM_ASSIGN_OR_RETURN(TPML_PCR_SELECTION sel, ToTssSelection(sealed.pcrs));
    Burst b(this);
    LIM_RETURN_IF_ERROR(b.status);
    LIM_ASSIGN_OR_RETURN(Handle primary, CreateStoragePrimary());
    ESYS_TR object = ESYS_TR_NONE;
    Status loaded = Call("TPM2_Load (sealed data)", [&] { return Esys_Load_Async(ctx_, primary.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub); },
                         [&] { return Esys_Load_Finish(ctx_, &object); });
    if (!loaded.ok()) {
      return Status(loaded.code(), loaded.message() + " — was it sealed on this TPM (and not cleared since)?");
    }
    Handle obj(this, object);
    // A policy session salted with the primary key: TPM2_Unseal's answer comes back
    // encrypted (the encrypt attribute), not in clear over the bus or the socket.
    LIM_ASSIGN_OR_RETURN(Handle session, StartSession(TPM2_SE_POLICY, primary.tr));
    TPM2B_DIGEST current{};
    LIM_RETURN_IF_ERROR(Call("TPM2_PolicyPCR", [&] { return Esys_PolicyPCR_Async(ctx_, session.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel); },
                             [&] { return Esys_PolicyPCR_Finish(ctx_); }));
    Esys_TRSess_SetAttributes(ctx_, session.tr, TPMA_SESSION_ENCRYPT, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
    EsysPtr<TPM2B_SENSITIVE_DATA> data;
    Status st = Call("TPM2_Unseal", [&] { return Esys_Unseal_Async(ctx_, obj.tr, session.tr, ESYS_TR_NONE, ESYS_TR_NONE); },
                     [&] { return Esys_Unseal_Finish(ctx_, data.out()); });
    if (!st.ok()) {
      // A format-one code carries the session's number in bits 8-11.
      bool policy_fail = (last_rc_ & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && (last_rc_ & TPM2_RC_FMT1) &&
                         (last_rc_ & (TPM2_RC_FMT1 | 0x3f)) == TPM2_RC_POLICY_FAIL;
      if (!policy_fail) return st;
      auto now = ReadPcrsLocked(sealed.pcrs);
      std::string moved = now.ok() ? DescribePcrChanges(sealed, *now) : "";
      return Status::Mismatch("the TPM refuses to unseal: the policy PCRs (" + SelectionToString(sealed.pcrs) +
                              ") no longer hold the values they had at sealing" + (moved.empty() ? "" : ": " + moved) +
                              " — reseal after a deliberate change (lim evm key seal)");
    }
    session.Consumed();  // without continueSession the TPM dropped it after TPM2_Unseal
    Result<SecretBytes> secret = SecretBytes::CopyOf({data->buffer, data->size});
    OPENSSL_cleanse(data->buffer, sizeof data->buffer);
    return secret;
  }

 private:
  // Holds mu_ for one burst of commands and connects on entry.
  struct Burst {
    explicit Burst(EsysTpm* t) : tpm(t), lk(t->mu_) { status = t->Connect(); }
    ~Burst() { tpm->EndBurst(); }
    EsysTpm* tpm;
    std::unique_lock<std::mutex> lk;
    Status status;
  };

  // A transient object or session, flushed when it goes out of scope (unless the TPM
  // already dropped it: a policy session without continueSession is gone after use).
  struct Handle {
    EsysTpm* tpm = nullptr;
    ESYS_TR tr = ESYS_TR_NONE;
    bool persistent = false;  // a persistent object: only ESAPI's reference is closed
    Handle(EsysTpm* t, ESYS_TR h, bool p = false) : tpm(t), tr(h), persistent(p) {}
    Handle(Handle&& o) noexcept : tpm(o.tpm), tr(o.tr), persistent(o.persistent) { o.tr = ESYS_TR_NONE; }
    Handle(const Handle&) = delete;
    void Consumed() { tr = ESYS_TR_NONE; }
    ~Handle() {
      if (tr != ESYS_TR_NONE && tpm->ctx_ && persistent) {
        Esys_TR_Close(tpm->ctx_, &tr);
      } else if (tr != ESYS_TR_NONE && tpm->ctx_) {
        Status st = tpm->Call("TPM2_FlushContext", [&] { return Esys_FlushContext_Async(tpm->ctx_, tr); },
                              [&] { return Esys_FlushContext_Finish(tpm->ctx_); });
        (void)st;  // a failed flush already dropped the connection, which frees the objects
      }
    }
  };

  Status Connect() {
    if (ctx_) return Status::Ok();
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti_.c_str(), &tcti_ctx_);
    if (rc != TSS2_RC_SUCCESS) {
      tcti_ctx_ = nullptr;
      return Status::Unavailable("cannot open TPM '" + tcti_ + "': " + Tss2_RC_Decode(rc) +
                                 ". No TPM here? Start the embedded swtpm with `lim tpm swtpm start` and pass "
                                 "--tpm swtpm:path=/run/lim/swtpm/sock (or set LIM_TCTI)");
    }
    rc = Esys_Initialize(&ctx_, tcti_ctx_, nullptr);
    if (rc != TSS2_RC_SUCCESS) {
      ctx_ = nullptr;
      Tss2_TctiLdr_Finalize(&tcti_ctx_);
      return TpmError("Esys_Initialize", rc);
    }
    return Status::Ok();
  }

  void Disconnect() {
    if (ctx_) Esys_Finalize(&ctx_);
    if (tcti_ctx_) Tss2_TctiLdr_Finalize(&tcti_ctx_);
    ctx_ = nullptr;
    tcti_ctx_ = nullptr;
  }

  // Called with mu_ held at the end of every burst.
  void EndBurst() {
    last_use_ = Clock::now();
    if (!per_burst_) return;
    if (options_.idle_release.count() <= 0) {
      Disconnect();
    } else if (reaper_parked_ && ctx_) {
      // Wake the reaper only when it sleeps without a deadline (no connection before);
      // otherwise it re-reads last_use_ when its deadline passes. Waking it on every call
      // would cost a context switch per command.
      cv_.notify_all();
    }
  }

  void Reap() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      if (!ctx_) {
        reaper_parked_ = true;
        cv_.wait(lk);
        reaper_parked_ = false;
        continue;
      }
      auto deadline = last_use_ + options_.idle_release;
      if (Clock::now() >= deadline) {
        Disconnect();
        continue;
      }
      cv_.wait_until(lk, deadline);
    }
  }

  // Runs one ESAPI command under the call timeout. On a timeout or transport error the
  // connection is dropped (a command may be in flight); the next burst reconnects.
  Status Call(const char* what, const std::function<TSS2_RC()>& async, const std::function<TSS2_RC()>& finish,
              bool retried_startup = false) {
    if (!ctx_) return Status::Unavailable(std::string(what) + ": not connected to " + tcti_);
    TSS2_RC rc = async();
    if (rc == TSS2_RC_SUCCESS && per_burst_) SetSocketTimeouts(tcti_, options_.call_timeout, &fd_hint_);
    if (rc != TSS2_RC_SUCCESS) {
      Status st = TpmError(what, rc);
      if (st.code() == StatusCode::kUnavailable) Disconnect();
      return st;
    }
    auto deadline = Clock::now() + options_.call_timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        Disconnect();
        ++stalls_;
        return Status::Unavailable(std::string(what) + ": no answer from " + tcti_ + " within " +
                                   std::to_string(options_.call_timeout.count()) + " ms (busy with another client?)");
      }
      Esys_SetTimeout(ctx_, static_cast<int32_t>(std::min<long long>(left, 1000)));
      rc = finish();
      if ((rc & 0xffff) != TSS2_BASE_RC_TRY_AGAIN) break;
    }
    if (rc == TPM2_RC_INITIALIZE && !retried_startup) {
      // A simulator that was never started up (mssim, a fresh swtpm without startup-clear).
      Status st = Call("TPM2_Startup", [&] { return Esys_Startup_Async(ctx_, TPM2_SU_CLEAR); },
                       [&] { return Esys_Startup_Finish(ctx_); }, true);
      if (!st.ok()) return st;
      return Call(what, async, finish, true);
    }
    last_rc_ = rc;
    if (rc != TSS2_RC_SUCCESS) {
      Status st = TpmError(what, rc);
      if (st.code() == StatusCode::kUnavailable) {
        Disconnect();
        if (Clock::now() >= deadline) {
          ++stalls_;
          return Status::Unavailable(std::string(what) + ": no answer from " + tcti_ + " within " +
                                     std::to_string(options_.call_timeout.count()) + " ms (busy with another client?)");
        }
      }
      return st;
    }
    return Status::Ok();
  }

  Result<std::vector<uint16_t>> BanksLocked() {
    if (!banks_.empty()) return banks_;
    EsysPtr<TPMS_CAPABILITY_DATA> cap;
    TPMI_YES_NO more = TPM2_NO;
    LIM_RETURN_IF_ERROR(Call("TPM2_GetCapability(PCRS)",
                             [&] { return Esys_GetCapability_Async(ctx_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1); },
                             [&] { return Esys_GetCapability_Finish(ctx_, &more, cap.out()); }));
    std::vector<uint16_t> banks;
    const TPML_PCR_SELECTION& a = cap->data.assignedPCR;
    for (uint32_t i = 0; i < a.count && i < TPM2_NUM_PCR_BANKS; ++i) {
      bool any = false;
      for (int k = 0; k < a.pcrSelections[i].sizeofSelect && k < TPM2_PCR_SELECT_MAX; ++k) any |= a.pcrSelections[i].pcrSelect[k] != 0;
      if (any) banks.push_back(a.pcrSelections[i].hash);
    }
    if (banks.empty()) return Status::Unsupported("the TPM reports no allocated PCR bank");
    banks_ = banks;
    return banks;
  }

  Result<PcrValues> ReadPcrsLocked(const PcrSelection& selection) {
    PcrSelection want = selection;
    PcrValues out;
    for (int round = 0; round < 64; ++round) {
      bool empty = true;
      for (const auto& b : want) empty &= b.pcrs.empty();
      if (empty) return out;
      LIM_ASSIGN_OR_RETURN(TPML_PCR_SELECTION in, ToTssSelection(want));
      EsysPtr<TPML_PCR_SELECTION> sel_out;
      EsysPtr<TPML_DIGEST> digests;
      UINT32 counter = 0;
      LIM_RETURN_IF_ERROR(Call("TPM2_PCR_Read", [&] { return Esys_PCR_Read_Async(ctx_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in); },
                               [&] { return Esys_PCR_Read_Finish(ctx_, &counter, sel_out.out(), digests.out()); }));
      PcrSelection got = FromTssSelection(*sel_out.p);
      size_t next = 0, returned = 0;
      for (const auto& b : got) {
        for (int i : b.pcrs) {
          if (next >= digests->count) return Status::Corrupt("TPM2_PCR_Read returned fewer digests than it selected");
          const TPM2B_DIGEST& d = digests->digests[next++];
          out[b.alg][i].assign(d.buffer, d.buffer + d.size);
          ++returned;
          for (auto& w : want) {
            if (w.alg == b.alg) w.pcrs.erase(i);
          }
        }
      }
      if (returned == 0) {
        std::string missing = SelectionToString(want);
        return Status::NotFound("the TPM returned no value for " + missing + " (bank not allocated?)");
      }
    }
    return Status::Internal("TPM2_PCR_Read did not converge");
  }

  // The EK at its TCG persistent handle (0x81010001 RSA, 0x81010002 ECC; TCG TPM v2.0
  // Provisioning Guidance) when one is there and was made from the standard template —
  // on hardware this saves a key generation per burst. Otherwise none (and no error).
  Result<std::optional<Handle>> PersistentEk(EkType ek, TPMT_PUBLIC* pub_out) {
    TPM2_HANDLE tpm_handle = ek == EkType::kRsa ? 0x81010001 : 0x81010002;
    ESYS_TR tr = ESYS_TR_NONE;
    Status st = Call("TPM2_ReadPublic (persistent EK)",
                     [&] { return Esys_TR_FromTPMPublic_Async(ctx_, tpm_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                     [&] { return Esys_TR_FromTPMPublic_Finish(ctx_, &tr); });
    if (st.code() == StatusCode::kUnavailable) return st;
    if (!st.ok()) return std::optional<Handle>();
    Handle h(this, tr, /*persistent=*/true);
    EsysPtr<TPM2B_PUBLIC> pub;
    EsysPtr<TPM2B_NAME> name, qname;
    LIM_RETURN_IF_ERROR(Call("TPM2_ReadPublic (persistent EK)",
                             [&] { return Esys_ReadPublic_Async(ctx_, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE); },
                             [&] { return Esys_ReadPublic_Finish(ctx_, pub.out(), name.out(), qname.out()); }));
    TPMT_PUBLIC templ = EkTemplate(ek).publicArea;
    TPMT_PUBLIC have = pub->publicArea;
    have.unique = templ.unique;
    if (MarshalPublicT(have) != MarshalPublicT(templ)) return std::optional<Handle>();
    if (pub_out) *pub_out = pub->publicArea;
    return std::optional<Handle>(std::move(h));
  }

  Result<Handle> CreateEk(EkType ek, TPMT_PUBLIC* pub_out) {
    LIM_ASSIGN_OR_RETURN(std::optional<Handle> persisted, PersistentEk(ek, pub_out));
    if (persisted) return std::move(*persisted);
    return CreatePrimary("TPM2_CreatePrimary (EK)", ESYS_TR_RH_ENDORSEMENT, EkTemplate(ek), pub_out);
  }

  // TPM2_Create of an object from tmpl under parent (authorised by auth; s2: a second
  // session, for parameter encryption, or ESYS_TR_NONE): its public area and its marshalled
  // TPM2B_PRIVATE.
  Status CreateChild(const char* what, ESYS_TR parent, ESYS_TR auth, ESYS_TR s2, const TPM2B_SENSITIVE_CREATE& sensitive,
                     const TPM2B_PUBLIC& tmpl, TPM2B_PUBLIC* pub_out, Bytes* priv_out) {
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcr{};
    EsysPtr<TPM2B_PRIVATE> priv;
    EsysPtr<TPM2B_PUBLIC> pub;
    EsysPtr<TPM2B_CREATION_DATA> cdata;
    EsysPtr<TPM2B_DIGEST> chash;
    EsysPtr<TPMT_TK_CREATION> ticket;
    LIM_RETURN_IF_ERROR(Call(what, [&] { return Esys_Create_Async(ctx_, parent, auth, s2, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcr); },
                             [&] { return Esys_Create_Finish(ctx_, priv.out(), pub.out(), cdata.out(), chash.out(), ticket.out()); }));
    *pub_out = *pub.p;
    priv_out->resize(sizeof(TPM2B_PRIVATE) + 2);
    size_t off = 0;
    Tss2_MU_TPM2B_PRIVATE_Marshal(priv.p, priv_out->data(), priv_out->size(), &off);
    priv_out->resize(off);
    return Status::Ok();
  }

  // A primary key from tmpl in hierarchy (empty hierarchy auth), flushed with its Handle.
  Result<Handle> CreatePrimary(const char* what, ESYS_TR hierarchy, const TPM2B_PUBLIC& tmpl, TPMT_PUBLIC* pub_out) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcr{};
    ESYS_TR handle = ESYS_TR_NONE;
    EsysPtr<TPM2B_PUBLIC> pub;
    EsysPtr<TPM2B_CREATION_DATA> cdata;
    EsysPtr<TPM2B_DIGEST> chash;
    EsysPtr<TPMT_TK_CREATION> ticket;
    LIM_RETURN_IF_ERROR(Call(what,
                             [&] { return Esys_CreatePrimary_Async(ctx_, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcr); },
                             [&] { return Esys_CreatePrimary_Finish(ctx_, &handle, pub.out(), cdata.out(), chash.out(), ticket.out()); }));
    if (pub_out) *pub_out = pub->publicArea;
    return Handle(this, handle);
  }

  // A policy session satisfying the EK's policy: PolicySecret(TPM_RH_ENDORSEMENT).
  Result<Handle> EkPolicySession() {
    LIM_ASSIGN_OR_RETURN(Handle h, StartSession(TPM2_SE_POLICY, ESYS_TR_NONE));
    ESYS_TR session = h.tr;
    // Without continueSession the TPM drops the session after the one command it authorises.
    Esys_TRSess_SetAttributes(ctx_, session, 0, TPMA_SESSION_CONTINUESESSION);
    EsysPtr<TPM2B_TIMEOUT> timeout;
    EsysPtr<TPMT_TK_AUTH> ticket;
    LIM_RETURN_IF_ERROR(Call("TPM2_PolicySecret(endorsement)",
                             [&] { return Esys_PolicySecret_Async(ctx_, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, nullptr, nullptr, nullptr, 0); },
                             [&] { return Esys_PolicySecret_Finish(ctx_, timeout.out(), ticket.out()); }));
    return h;
  }

  // The owner hierarchy's storage primary key, re-created from its template (the same key
  // every time: a primary is a function of the hierarchy seed and the template). The
  // template is tpm2-tools' `tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb`.
  Result<Handle> CreateStoragePrimary() {
    TPM2B_PUBLIC tmpl{};
    TPMT_PUBLIC& pa = tmpl.publicArea;
    pa.type = TPM2_ALG_ECC;
    pa.nameAlg = TPM2_ALG_SHA256;
    pa.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
    pa.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    pa.parameters.eccDetail.symmetric.keyBits.aes = 128;
    pa.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    pa.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    pa.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pa.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return CreatePrimary("TPM2_CreatePrimary (storage key)", ESYS_TR_RH_OWNER, tmpl, nullptr);
  }

  // A session of the given type (TPM2_SE_TRIAL, _HMAC, _POLICY), sha256; salted with
  // salt_key (ESYS_TR_NONE: unsalted) and then with AES-128-CFB for parameter encryption.
  Result<Handle> StartSession(TPM2_SE type, ESYS_TR salt_key) {
    TPMT_SYM_DEF sym{};
    if (salt_key != ESYS_TR_NONE) {
      sym.algorithm = TPM2_ALG_AES;
      sym.keyBits.aes = 128;
      sym.mode.aes = TPM2_ALG_CFB;
    } else {
      sym.algorithm = TPM2_ALG_NULL;
    }
    ESYS_TR session = ESYS_TR_NONE;
    LIM_RETURN_IF_ERROR(Call("TPM2_StartAuthSession",
                             [&] { return Esys_StartAuthSession_Async(ctx_, salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr, type, &sym, TPM2_ALG_SHA256); },
                             [&] { return Esys_StartAuthSession_Finish(ctx_, &session); }));
    return Handle(this, session);
  }

  Result<Handle> LoadAkLocked(const AkKey& ak, const Handle& ek) {
    TPM2B_PRIVATE priv{};
    size_t off = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(ak.private_blob.data(), ak.private_blob.size(), &off, &priv) != TSS2_RC_SUCCESS ||
        off != ak.private_blob.size()) {
      return Status::Corrupt("AK private blob is not a TPM2B_PRIVATE");
    }
    TPM2B_PUBLIC pub{};
    pub.publicArea = ak.pub;
    LIM_ASSIGN_OR_RETURN(Handle session, EkPolicySession());
    ESYS_TR handle = ESYS_TR_NONE;
    LIM_RETURN_IF_ERROR(Call("TPM2_Load (AK)",
                             [&] { return Esys_Load_Async(ctx_, ek.tr, session.tr, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub); },
                             [&] { return Esys_Load_Finish(ctx_, &handle); }));
    session.Consumed();
    return Handle(this, handle);
  }

  const std::string tcti_;
  const OpenOptions options_;
  const TpmKind kind_;
  bool per_burst_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool reaper_parked_ = false;
  Clock::time_point last_use_ = Clock::now();
  std::thread reaper_;

  TSS2_TCTI_CONTEXT* tcti_ctx_ = nullptr;
  ESYS_CONTEXT* ctx_ = nullptr;
  std::vector<uint16_t> banks_;
  std::atomic<uint64_t> stalls_{0};
  int fd_hint_ = -1;
  TSS2_RC last_rc_ = TSS2_RC_SUCCESS;  // the last command's response code (mu_)
};

}  // namespace

Result<std::unique_ptr<Tpm>> OpenTpm(const std::string& tcti, const OpenOptions& options) {
  if (tcti.empty()) return Status::InvalidArgument("empty TCTI string");
  if (tcti == "software" || tcti.starts_with("software:")) {
    return Status::InvalidArgument("'software' is not a TCTI: the software TPM is only chosen explicitly (limd --no-tpm)");
  }
  // tpm2-tss logs its own errors to stderr; lim reports them once, as a clear message.
  ::setenv("TSS2_LOG", "all+none", /*overwrite=*/0);
  auto tpm = std::make_unique<EsysTpm>(tcti, options);
  LIM_RETURN_IF_ERROR(tpm->Open());
  return std::unique_ptr<Tpm>(std::move(tpm));
}

}  // namespace lim::tpm
