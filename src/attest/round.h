// One attestation round: the verifier's per-agent state and Verify(), which checks one
// Evidence against it and returns the next state and the findings.
//
// What a round checks, in order: the quote (AK signature, TPM magic, this round's nonce,
// the PCR digest over the values sent, PCR 10 quoted); the TPM counters (a higher reset
// count or a new boot_id is a reboot: verification starts over from entry 0 and the round
// says so, never continues the old boot's state; a lower reset count, a lower restart count
// or a clock that went back within one boot is a failure); PCRs 0–9 unchanged within a
// boot; measured-boot expectations; the firmware event log (when sent) replayed against the
// quoted PCRs 0–7 and compared event by event with the log accepted earlier this boot, then
// its boot components against the policy's "boot" references (boot_policy.h); the
// measurement list — only the entries after the last verified one, replayed from the saved
// PCR 10 values: the quote may cover a prefix of what the agent read (it quotes first, then
// reads the list), so the first prefix whose replay equals the quoted PCR 10 in every bank is
// the verified part and the rest is kept for the next round; the boot_aggregate entry
// against the quoted PCRs 0–9; every entry's template digest; every verified entry against
// the runtime policy; and limd's liveness.
//
// Cost is that of the new entries only: the state carries PCR 10 per bank at the last
// verified entry, so a round never reads the list from 0 (except after a reboot).
//
// Verify is a pure function of its arguments: thread-safe, one call per agent at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attest/evidence.h"
#include "attest/runtime_policy.h"
#include "attest/verdict.h"
#include "base/status.h"
#include "tpm/key.h"

namespace lim::attest {

struct AgentState {
  bool started = false;       // a round of this boot has been verified
  uint64_t next_index = 0;    // entries [0, next_index) are verified
  // PCR 10 after entry next_index - 1, per quoted bank (TPM alg id). Empty before the
  // first round of a boot: replay then starts from zero.
  std::map<uint16_t, Bytes> pcr10;
  std::string replay_mode;    // "per-bank" or "sha1-padded" once known
  std::string list_bank;      // the list's template-digest bank ("sha1")
  std::string boot_id;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  uint64_t clock = 0;
  // PCRs 0–9 as quoted in the first round of this boot; they must not change within it.
  std::map<uint16_t, std::map<int, Bytes>> boot_pcrs;
  // Fingerprints (SHA-256 of PCR, type, digests and data) of the firmware log's events as
  // accepted this boot; a later log is compared event by event.
  std::vector<Bytes> firmware_events;
  bool firmware_checked = false;
  // Records read past the quoted prefix: entries next_index … next_index+pending_entries-1,
  // verified when a later quote covers them.
  Bytes pending;
  uint64_t pending_entries = 0;
  // Keys the host loaded into keyrings (ima-buf entries the policy allowed), DER.
  std::vector<Bytes> learned_certificates;
  // Device-mapper devices seen in verified entries (the policy's dm_policy), this boot.
  DmState dm;
  uint64_t rounds = 0;        // verified rounds this boot
  uint64_t reboots = 0;       // reboots seen since enrollment
  // Who kept the list in the first verified round ("limd" or "kernel"), kept across reboots:
  // only a host that has always served the kernel's list is excused from limd's liveness, so
  // an agent cannot shed that check by starting to claim "kernel" (re-enroll to change it).
  std::string list_source;
};

// CPU time (thread clock, ns) spent in the parts of Verify calls, added up (benchmarks and
// the verifier's /v1/stats); the list part includes the policy part.
struct RoundCpu {
  uint64_t quote_ns = 0;   // TPMS_ATTEST parse, AK signature, nonce, PCR digest
  uint64_t list_ns = 0;    // the new entries: replay, template digests, policy
  uint64_t policy_ns = 0;  // RuntimePolicy::Check of the new entries
};

struct VerifyOptions {
  // Pending records kept beyond this are dropped (the agent resends them): a host that
  // appends faster than it is quoted cannot grow the verifier's state without bound.
  size_t max_pending_bytes = 4 << 20;
  size_t max_event_log_bytes = 16 << 20;
  // A list tail over this is refused (evidence-malformed) before it is parsed: a hostile
  // agent cannot make one round cost more than this much replay.
  size_t max_list_bytes = 64 << 20;
  // Findings past this many in one round are summarised in one more finding.
  size_t max_findings = 100;
  // When set, the parts' CPU time is added to it (costs a few clock reads per round).
  RoundCpu* cpu = nullptr;
};

struct RoundResult {
  AgentState state;            // the state to keep for the next round
  std::vector<Finding> findings;
  bool attested = false;       // no failure (notices such as a reboot may be present)
  bool reboot = false;
  // Nothing was verified because the list must be read from entry 0 (after a reboot, or
  // the first round): ask again at once with `next`. Not attested, not failed.
  bool retry = false;
  uint64_t verified_entries = 0;   // new entries the quote covered this round
  EvidenceRequest next;            // what to ask next round (nonce left empty)
};

// ak: the enrolled AK's public key. nonce: the one sent in this round's request.
RoundResult Verify(const tpm::PublicKey& ak, const AgentState& state, const Evidence& evidence,
                   const RuntimePolicy& policy, ByteView nonce, const VerifyOptions& options = {});

// The request for an agent's next round from its state: PCRs 0–10 of every bank in banks.
EvidenceRequest NextRequest(const AgentState& state, const std::vector<uint16_t>& banks);

// The state as JSON (the store keeps it as text) and back; errors name the field.
std::string AgentStateToJson(const AgentState& state);
Result<AgentState> AgentStateFromJson(std::string_view json);

}  // namespace lim::attest
