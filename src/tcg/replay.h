// Replay of a parsed event log into PCRs 0–23 of every bank, with the checks the TCG PC
// Client spec makes possible from the log alone.
//
// Replay follows the platform: PCRs 17–22 start all-0xFF, the others zero; a StartupLocality
// EV_NO_ACTION event puts the locality in the last byte of PCR 0's initial value; an
// EV_EFI_HCRTM_EVENT makes it locality 4; EV_NO_ACTION events are never extended; events
// with a PCR index outside 0–23 are skipped (the parser already flagged them). Banks whose
// algorithm this OpenSSL cannot compute are reported and left out.
//
// Digest checks: for event types whose digest is defined as the hash of the event data
// (EV_SEPARATOR, EV_ACTION, EV_EFI_ACTION, EV_S_CRTM_VERSION, EV_EFI_GPT_EVENT,
// EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_BOOT/AUTHORITY (whole structure or data,
// both occur in the field), EV_OMIT_BOOT_DEVICE_EVENTS, and GRUB/systemd-boot EV_IPL
// strings in PCR 8 and 12) a mismatch is flagged. The event *type* itself is covered by no
// digest: a log can relabel an event without changing any PCR, so a verifier must not trust
// types for events whose digests cannot be checked. Pure function of the log; thread-safe.
#pragma once

#include <vector>

#include "tcg/event_log.h"
#include "tcg/pcr_bank.h"

namespace lim::tcg {

enum class DigestCheck {
  kNotCheckable,  // the spec gives no way to recompute this digest from the log
  kMatches,
  kMismatch,
};

struct ReplayResult {
  PcrBanks pcrs;
  std::vector<Problem> problems;  // digest mismatches, missing bank digests, skipped banks
  std::vector<DigestCheck> checks;  // per event index
  int startup_locality = -1;        // from the StartupLocality event, or 4 for H-CRTM
};

struct ReplayOptions {
  bool check_digests = true;
  // Replays as tpm2-tools 5.4's tpm2_eventlog does, for cross-checks against it: PCR 0 starts
  // at zero whatever StartupLocality / H-CRTM say (5.4 predates locality support), and
  // EV_NO_ACTION events after the Spec ID header ARE extended (a 5.4 bug, fixed upstream
  // later; go-tpm-tools' expectations confirm the spec behaviour lim uses by default).
  bool tpm2_tools_5_4_compat = false;
};

ReplayResult Replay(const EventLog& log, const ReplayOptions& options = {});

// Checks one event's digests against its data (see above). Needs OpenSSL for the banks.
DigestCheck CheckEventDigests(const Event& event);

}  // namespace lim::tcg
