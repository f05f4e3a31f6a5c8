#include "attest/verdict.h"

#include <array>
#include <utility>

#include "base/escape.h"

namespace lim::attest {
namespace {

constexpr std::array<std::pair<Reason, const char*>, 34> kNames = {{
    {Reason::kEvidenceMalformed, "evidence-malformed"},
    {Reason::kQuoteSignature, "quote-signature"},
    {Reason::kQuoteMagic, "quote-magic"},
    {Reason::kNonce, "nonce"},
    {Reason::kPcrSelection, "pcr-selection"},
    {Reason::kPcrDigest, "pcr-digest"},
    {Reason::kResetCount, "reset-count"},
    {Reason::kClock, "clock"},
    {Reason::kReboot, "reboot"},
    {Reason::kListIncomplete, "list-incomplete"},
    {Reason::kListRewound, "list-rewound"},
    {Reason::kListGap, "list-gap"},
    {Reason::kListMalformed, "list-malformed"},
    {Reason::kTemplateDigest, "template-digest"},
    {Reason::kListDoesNotReplay, "list-does-not-replay"},
    {Reason::kBootAggregate, "boot-aggregate"},
    {Reason::kBootPcrChanged, "boot-pcr-changed"},
    {Reason::kFirmwareLogMalformed, "firmware-log-malformed"},
    {Reason::kFirmwareLogDiffers, "firmware-log-differs"},
    {Reason::kFirmwareEventDiffers, "firmware-event-differs"},
    {Reason::kMeasuredBoot, "measured-boot"},
    {Reason::kBootComponent, "boot-component"},
    {Reason::kSecureBoot, "secure-boot"},
    {Reason::kUnknownFile, "unknown-file"},
    {Reason::kDigestNotAllowed, "digest-not-allowed"},
    {Reason::kBadSignature, "bad-signature"},
    {Reason::kUntrustedKey, "untrusted-key"},
    {Reason::kViolation, "violation"},
    {Reason::kImaBufNotAllowed, "ima-buf-not-allowed"},
    {Reason::kKeyringNotAllowed, "keyring-not-allowed"},
    {Reason::kOldVersion, "old-version"},
    {Reason::kDmPolicy, "dm-policy"},
    {Reason::kLimdNotRunning, "limd-not-running"},
    {Reason::kUnreachable, "unreachable"},
}};

// A value goes bare when it is non-empty and has no space, quote, '=' or escape; else it is
// quoted with the escaped form (base/escape.h), '"' written as \x22.
void AppendValue(std::string_view v, std::string* out) {
  std::string esc = Escaped(v);
  bool bare = !esc.empty() && esc.find_first_of(" \"=\\") == std::string::npos;
  if (bare) {
    *out += esc;
    return;
  }
  *out += '"';
  for (char c : esc) {
    if (c == '"') {
      *out += "\\x22";
    } else {
      *out += c;
    }
  }
  *out += '"';
}

void AppendKey(const char* key, std::string_view v, std::string* out) {
  *out += ' ';
  *out += key;
  *out += '=';
  AppendValue(v, out);
}

}  // namespace

const char* ReasonName(Reason r) {
  for (const auto& [reason, name] : kNames) {
    if (reason == r) return name;
  }
  return "unknown";
}

std::optional<Reason> ReasonFromName(std::string_view name) {
  for (const auto& [reason, n] : kNames) {
    if (name == n) return reason;
  }
  return std::nullopt;
}

bool IsNotice(Reason r) {
  return r == Reason::kReboot || r == Reason::kListIncomplete || r == Reason::kOldVersion;
}

std::string FormatFinding(std::string_view agent, const Finding& f) {
  std::string out = "lim-verifier:";
  AppendKey("agent", agent, &out);
  AppendKey("reason", ReasonName(f.reason), &out);
  if (f.entry) AppendKey("entry", std::to_string(*f.entry), &out);
  if (f.pcr) AppendKey("pcr", std::to_string(*f.pcr), &out);
  if (!f.bank.empty()) AppendKey("bank", f.bank, &out);
  if (!f.tmpl.empty()) AppendKey("template", f.tmpl, &out);
  if (!f.path.empty()) AppendKey("path", f.path, &out);
  if (!f.digest.empty()) AppendKey("digest", f.digest, &out);
  if (!f.reference.empty()) AppendKey("reference", f.reference, &out);
  if (!f.detail.empty()) AppendKey("detail", f.detail, &out);
  return out;
}

}  // namespace lim::attest
