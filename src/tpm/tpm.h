// Tpm: the one interface lim uses to talk to a TPM 2.0 — allocated PCR banks, PCR read,
// extend of one PCR in every allocated bank, clock info (resetCount/restartCount), EK public
// areas, AK creation, quotes and credential activation. Backends: tpm2-tss ESAPI selected by
// a TCTI string (esys_tpm.cc) and an in-memory software TPM (software_tpm.cc) that is
// labelled "software" wherever it shows and never chosen silently.
//
// Threading: a Tpm is safe to call from several threads; calls are serialised internally
// (a TPM executes one command at a time anyway).
#pragma once

#include <tss2/tss2_tpm2_types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/secret_bytes.h"
#include "tpm/pcr.h"
#include "tpm/quote.h"
#include "tpm/tcti_server.h"

namespace lim::tpm {

enum class TpmKind {
  kDevice,     // /dev/tpm* : hardware or a hypervisor vTPM
  kSwtpm,      // swtpm (socket): no hardware root of trust
  kSimulator,  // mssim (IBM / MS simulator)
  kTabrmd,     // through the tpm2-abrmd resource manager (whatever TPM it fronts)
  kOther,      // another TCTI module
  kSoftware,   // lim's in-memory software TPM: no TPM at all
};
// "hardware", "swtpm", "simulator", "tabrmd", "tcti", "software".
const char* TpmKindName(TpmKind kind);

enum class EkType { kRsa, kEcc };
const char* EkTypeName(EkType t);
Result<EkType> ParseEkType(std::string_view s);

enum class AkAlg { kEccP256, kRsa2048 };

// An AK as stored between runs: its public area, the private blob the TPM wrapped under
// the EK (TPM2B_PRIVATE marshalled; for the software TPM a PEM private key) and which EK it
// lives under.
struct AkKey {
  EkType ek = EkType::kEcc;
  TPMT_PUBLIC pub{};
  Bytes private_blob;
  bool software = false;
};

struct SealedObject;  // seal.h

struct Quote {
  Bytes msg;  // TPMS_ATTEST
  Bytes sig;  // TPMT_SIGNATURE
  PcrSelection selection;
  PcrValues values;  // the quoted PCRs, read in the same burst and matching pcrDigest
};

class Tpm {
 public:
  virtual ~Tpm() = default;
  virtual TpmKind kind() const = 0;
  // e.g. "swtpm (swtpm:path=/run/lim/swtpm/sock) — not a hardware root of trust".
  virtual std::string Describe() const = 0;
  // TPM calls that hit the call timeout since this object was opened (limd reports it).
  virtual uint64_t stalls() const { return 0; }
  // The local process that serves this TPM (swtpm or a simulator on a unix socket or a
  // loopback port, tcti_server.h); nullopt for a device (the kernel resource manager is no
  // process), tabrmd, a remote simulator and the software TPM. limd treats it like itself.
  virtual Result<std::optional<TctiServer>> LocalServer() const { return std::optional<TctiServer>(); }

  virtual Result<std::vector<uint16_t>> AllocatedBanks() = 0;
  virtual Result<PcrValues> ReadPcrs(const PcrSelection& selection) = 0;
  // digests must hold exactly one digest for every allocated bank.
  virtual Status Extend(int pcr, const std::map<uint16_t, Bytes>& digests) = 0;
  virtual Result<ClockInfo> ReadClock() = 0;

  // The EK created from the TCG EK Credential Profile low-range template.
  virtual Result<TPMT_PUBLIC> ReadEkPublic(EkType ek) = 0;
  // The EK certificate the manufacturer (or swtpm_setup) stored in NV (TCG EK Credential
  // Profile: 0x01c00002 RSA 2048, 0x01c0000a ECC P-256), DER; nullopt when the index is not
  // defined. Bounded by the index's own size (at most 16 KiB).
  virtual Result<std::optional<Bytes>> ReadEkCertificate(EkType ek) {
    (void)ek;
    return std::optional<Bytes>();
  }
  // A restricted signing key under the EK (not persisted in the TPM; save it with SaveAk).
  virtual Result<AkKey> CreateAk(EkType ek, AkAlg alg) = 0;
  // Quote over selection with the caller's nonce (at most 64 bytes), signed with the AK's
  // scheme; the PCR values returned match the quote's pcrDigest.
  virtual Result<Quote> MakeQuote(const AkKey& ak, const PcrSelection& selection, ByteView nonce) = 0;
  // TPM2_ActivateCredential: id_object is a marshalled TPM2B_ID_OBJECT, secret a marshalled
  // TPM2B_ENCRYPTED_SECRET (as MakeCredential returns them). Returns the credential.
  virtual Result<Bytes> ActivateCredential(const AkKey& ak, ByteView id_object, ByteView secret) = 0;

  // Sealing (seal.h): secret (1 to kMaxSealedSecret bytes) into a data object under the
  // storage primary key with PolicyPCR over pcrs at their current values; Unseal gives it
  // back into locked memory only while those PCRs hold the same values (kMismatch, naming
  // the PCRs that moved, otherwise). The software TPM cannot seal (Unsupported).
  virtual Result<SealedObject> Seal(ByteView secret, const PcrSelection& pcrs);
  virtual Result<SecretBytes> Unseal(const SealedObject& sealed);
};

// Extends pcr in every allocated bank with H_bank(data).
Status ExtendWithData(Tpm& tpm, int pcr, ByteView data);
// Every allocated bank, all 24 PCRs (or the given ones).
Result<PcrSelection> FullSelection(Tpm& tpm, const std::set<int>& pcrs);

// The TCTI to use when none is given: $LIM_TCTI, else "device:/dev/tpmrm0".
std::string DefaultTcti();

struct OpenOptions {
  // A timeout on every TPM command: a stuck TPM (or a swtpm busy with another client)
  // becomes an error, never a hang.
  std::chrono::milliseconds call_timeout{10000};
  // For one-client TCTIs (swtpm, mssim): release the connection after this much idle time
  // so tpm2-tools and evmctl can get in. /dev/tpmrm0 and tabrmd hold one connection.
  std::chrono::milliseconds idle_release{50};
};

// Opens the TPM behind a TCTI string ("device:/dev/tpmrm0", "swtpm:path=…",
// "swtpm:host=…,port=…", "mssim:host=…,port=…", "tabrmd", "NAME:CONF"). Connects once to
// check it is there; the error says how to start the embedded swtpm.
Result<std::unique_ptr<Tpm>> OpenTpm(const std::string& tcti, const OpenOptions& options = {});
// The software TPM (banks sha1 and sha256 unless given): explicit only.
std::unique_ptr<Tpm> OpenSoftwareTpm(std::vector<uint16_t> banks = {});

// AK persistence in a directory: ak.pub (TPM2B_PUBLIC), ak.priv (TPM2B_PRIVATE) or
// ak.key.pem (software), ak.name, ak.pub.pem, ak.json (EK type, backend).
Status SaveAk(const AkKey& ak, const std::string& dir);
Result<AkKey> LoadAk(const std::string& dir);

// The standard EK templates (TCG EK Credential Profile 2.0, templates L-1 RSA 2048 and
// L-2 ECC NIST P-256) and lim's AK templates (as tpm2_createak makes them).
TPM2B_PUBLIC EkTemplate(EkType ek);
TPM2B_PUBLIC AkTemplate(AkAlg alg);

}  // namespace lim::tpm
