// Verdicts: what the verifier found in one round, each finding explained down to the entry
// — the reason code, the list entry index, PCR, bank, template, path, digest and the
// reference value it was held against. FormatFinding gives the stable one-line log form
// ("lim-verifier: agent=… reason=… entry=…") that operators grep and tools parse: keys are
// always in the same order, absent keys are left out, values with spaces or quotes are
// quoted and escaped, so one finding is one line whatever a path contains. Plain data and
// stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lim::attest {

enum class Reason {
  // Failures of the quote and its counters.
  kEvidenceMalformed,  // evidence-malformed: a field does not parse
  kQuoteSignature,     // quote-signature: the AK did not sign this quote (another AK, altered)
  kQuoteMagic,         // quote-magic: not a TPM-generated TPMS_ATTEST quote
  kNonce,              // nonce: extraData is not this round's nonce (a replayed quote)
  kPcrSelection,       // pcr-selection: the quote does not cover the PCRs asked for
  kPcrDigest,          // pcr-digest: the PCR values sent are not the ones quoted
  kResetCount,         // reset-count: the TPM's reset count went backwards
  kClock,              // clock: the TPM clock went backwards within one boot
  kReboot,             // reboot: new reset count or boot_id — verification starts over (notice)
  kListIncomplete,     // list-incomplete: the tail was cut before the quoted entries; asked again for more (notice)
  // Failures of the measurement list.
  kListRewound,        // list-rewound: the list is shorter than what was verified before
  kListGap,            // list-gap: the list does not start where the verifier asked
  kListMalformed,      // list-malformed: a record does not parse
  kTemplateDigest,     // template-digest: an entry's stored digest is not its content's
  kListDoesNotReplay,  // list-does-not-replay: no prefix from entry N reaches the quoted PCR 10
  kBootAggregate,      // boot-aggregate: entry 0 does not match the quoted PCRs 0–9
  kBootPcrChanged,     // boot-pcr-changed: a PCR 0–9 changed within one boot
  // Failures of the firmware event log and measured boot.
  kFirmwareLogMalformed,   // firmware-log-malformed
  kFirmwareLogDiffers,     // firmware-log-differs: the log does not replay to a quoted PCR 0–7
  kFirmwareEventDiffers,   // firmware-event-differs: event N is not the one seen at enrollment
  kMeasuredBoot,           // measured-boot: a PCR 0–7 value the policy does not allow
  kBootComponent,          // boot-component: a firmware-log component (shim, grub, kernel, initrd, …) not allowed or missing
  kSecureBoot,             // secure-boot: Secure Boot off, or PK/KEK/db/dbx missing, when the policy requires it
  // Failures of entries against the runtime policy.
  kUnknownFile,        // unknown-file: path not in the policy and digest allowed nowhere
  kDigestNotAllowed,   // digest-not-allowed: path known, this digest is not allowed for it
  kBadSignature,       // bad-signature: an ima-sig signature that does not verify
  kUntrustedKey,       // untrusted-key: signed by a key the policy does not trust
  kViolation,          // violation: a ToMToU / open-writers entry (all-zero digest)
  kImaBufNotAllowed,   // ima-buf-not-allowed: an ima-buf entry the policy does not expect
  kKeyringNotAllowed,  // keyring-not-allowed: a key loaded into a keyring the policy does not allow
  kOldVersion,         // old-version: digest of an older package version the policy's window still allows (notice)
  kDmPolicy,           // dm-policy: a device-mapper entry the policy's dm_policy does not allow
  // The host.
  kLimdNotRunning,     // limd-not-running
  kUnreachable,        // unreachable: no evidence (set by the network layer)
};
const char* ReasonName(Reason r);
// Parses a ReasonName; nullopt when unknown.
std::optional<Reason> ReasonFromName(std::string_view name);
// True for reasons that are notices (kReboot, kListIncomplete, kOldVersion), not failures.
bool IsNotice(Reason r);

struct Finding {
  Reason reason = Reason::kEvidenceMalformed;
  std::optional<uint64_t> entry;  // measurement-list entry index (or firmware event index)
  std::optional<int> pcr;
  std::string bank;       // "sha256"
  std::string tmpl;       // template name
  std::string path;       // file name / event name
  std::string digest;     // what was found, "sha256:hex"
  std::string reference;  // what it was held against ("policy: sha256:… sha256:…", "quote: …")
  std::string detail;     // free text: anything the fields above do not say, and remediation hints
                          // ("reinstall: `apt-get install --reinstall PKG`", attest/remediation.h)

  bool failure() const { return !IsNotice(reason); }
};

// "lim-verifier: agent=web1 reason=unknown-file entry=12 pcr=10 template=ima-ng
// path=/usr/bin/x digest=sha256:… reference=… detail=…" (one line).
std::string FormatFinding(std::string_view agent, const Finding& f);

}  // namespace lim::attest
