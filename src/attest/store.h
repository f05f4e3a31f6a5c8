// Store: what the verifier keeps — enrolled agents (identity, policy, state, status),
// runtime policies by name, and the history of findings — behind one interface with two
// backends. OpenSqliteStore is the embedded default (libsqlite3, WAL, one file, one
// verifier process); OpenPgStore (pg_store.h) keeps the same tables in PostgreSQL so that
// several verifier processes share them. Each schema carries a version (schema_version
// table) and is created or upgraded on open; a database newer than this build is refused.
//
// Leases (docs/fleet.md): on a shared store each agent is attested by one verifier at a
// time. ClaimLeases renews the caller's leases and takes free or expired ones, each taken
// lease with a fence one higher than before; RecordFencedRound writes a round only while
// the fence it was given is still the agent's current one. On an unshared store (SQLite)
// the caller owns every agent and fences are not checked.
//
// Row versions: every write of an agent's row (enrollment, policy assignment, acknowledgement,
// a round) gives it a new AgentRecord::version. A verifier may keep a row it read across
// rounds and write each round against the version it holds (WriteRound): a row changed
// meanwhile by anyone else — another verifier, an operator through another verifier — refuses
// the round (nothing written), so the kept copy is read again and never overwrites a newer one.
//
// Threading: a Store is safe to call from several threads (calls are serialised inside).
// RecordRound writes an agent's new state and its findings in one transaction, so a crash
// never leaves a state that moved on without the findings that explain it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/evidence.h"
#include "attest/round.h"
#include "attest/verdict.h"
#include "base/status.h"

namespace lim::attest {

// enrolling → attested ⇄ unreachable; any → failed (sticky until Acknowledge).
enum class AgentStatus { kEnrolling, kAttested, kFailed, kUnreachable };
const char* AgentStatusName(AgentStatus s);
std::optional<AgentStatus> AgentStatusFromName(std::string_view name);

struct AgentRecord {
  std::string id;
  std::string address;      // where the verifier reaches it (pull), empty for push
  Identity identity;
  bool tofu = false;        // enrolled without an EK certificate
  std::string policy;       // name of the assigned runtime policy, empty for none
  AgentStatus status = AgentStatus::kEnrolling;
  AgentState state;
  int64_t updated = 0;      // unix seconds of the last round
  // Moves on every write of the row (set by the store; PutAgent ignores it). PostgreSQL draws
  // it from one sequence, so a row removed and enrolled again never repeats a version; SQLite
  // (one process) counts per row.
  int64_t version = 0;
};

// What a round was computed from; WriteRound writes it only while each given part holds.
struct RoundBasis {
  std::optional<int64_t> fence;    // the lease's fence (checked on a shared store only)
  std::optional<int64_t> version;  // AgentRecord::version of the row the round started from
};

struct VerdictRecord {
  int64_t time = 0;
  std::string agent;
  bool attested = false;
  Finding finding;          // reason kReboot etc. for notices
};

// What one ClaimLeases gives the caller.
struct LeaseClaim {
  std::map<std::string, int64_t> leases;  // agent → fence: the agents the caller may attest
  size_t fair_share = 0;                  // ceil(agents / live verifiers): the most it should hold
  size_t verifiers = 1;                   // live verifiers, the caller included
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Status PutAgent(const AgentRecord& agent) = 0;  // insert or replace
  virtual Result<std::optional<AgentRecord>> GetAgent(const std::string& id) = 0;
  virtual Result<std::vector<std::string>> ListAgents() = 0;
  virtual Status RemoveAgent(const std::string& id) = 0;  // its history too

  virtual Status PutPolicy(const std::string& name, const std::string& native_json) = 0;
  virtual Result<std::optional<std::string>> GetPolicy(const std::string& name) = 0;
  virtual Result<std::vector<std::string>> ListPolicies() = 0;
  // The policy must exist; an agent keeps its own state.
  virtual Status AssignPolicy(const std::string& agent, const std::string& policy) = 0;

  // One round: the new state and status and the round's findings, atomically. A failed
  // agent stays failed whatever the round says (sticky) until Acknowledge. Only the newest
  // StoreOptions::history_per_agent findings of the agent are kept. Refused with kMismatch,
  // nothing written, when basis.version is given and the row is at another version, or (on a
  // shared store) when basis.fence is given and is no longer the agent's current fence: the
  // lease moved to another verifier since this round began. kNotFound: no such agent.
  // Returns the row's new version.
  virtual Result<int64_t> WriteRound(const std::string& agent, const RoundBasis& basis, const AgentState& state,
                                     AgentStatus status, int64_t time, const std::vector<Finding>& findings) = 0;
  Status RecordRound(const std::string& agent, const AgentState& state, AgentStatus status, int64_t time,
                     const std::vector<Finding>& findings) {
    return WriteRound(agent, {}, state, status, time, findings).status();
  }
  // Newest first, at most limit.
  virtual Result<std::vector<VerdictRecord>> History(const std::string& agent, size_t limit) = 0;
  // An operator acknowledged the failure: back to attested (the next round decides).
  virtual Status Acknowledge(const std::string& agent) = 0;

  // --- Leases (several verifiers on one store). Defaults: the unshared store. ---
  // True when other processes may attest from the same store (lease before attesting).
  virtual bool Shared() const { return false; }
  // One claim of `owner`, in one transaction: the leases in give_up are released first (the
  // caller ended their rounds), owner's heartbeat is renewed for ttl, its other valid leases
  // are renewed for ttl, and free or expired ones are taken (fence + 1) until it holds its
  // fair share: ceil(agents / live verifiers), live = heartbeat not expired. Unshared: every
  // agent, fence 0, share = all.
  virtual Result<LeaseClaim> ClaimLeases(const std::string& owner, std::chrono::milliseconds ttl,
                                         const std::vector<std::string>& give_up = {});
  // One agent's lease for owner now, whoever holds it (a push agent connected to owner: the
  // lease follows the agent's connection). Its fence: unchanged when owner held it, else one
  // higher, so a round the previous holder began cannot be written any more. Unshared: 0.
  virtual Result<int64_t> TakeLease(const std::string& agent, const std::string& owner, std::chrono::milliseconds ttl);
  // Gives up owner's leases and heartbeat at once (a clean stop), so another verifier need
  // not wait.
  virtual Status ReleaseLeases(const std::string& owner);
  // WriteRound under the lease's fence (the version unchecked).
  Status RecordFencedRound(const std::string& agent, int64_t fence, const AgentState& state, AgentStatus status,
                           int64_t time, const std::vector<Finding>& findings) {
    return WriteRound(agent, {fence, std::nullopt}, state, status, time, findings).status();
  }
};

// 2: the verifiers table (heartbeats of live verifiers, for the fair share of leases).
// 3: agents.version (row versions, WriteRound).
constexpr int kStoreSchemaVersion = 3;

struct StoreOptions {
  // Findings kept per agent: RecordRound drops the oldest beyond this many, so an agent that
  // fails every round (or a hostile one) cannot grow the store without bound. 1-10,000,000.
  size_t history_per_agent = 10000;
};
inline constexpr size_t kMaxHistoryPerAgent = 10000000;

// path ":memory:" for a private in-memory database (tests). An options.history_per_agent
// outside 1-kMaxHistoryPerAgent is refused.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options = {});

// The --store argument: "sqlite:PATH" or a PostgreSQL URI ("postgresql://…" or
// "postgres://…"). A malformed argument is kInvalidArgument naming it; a database that
// cannot be opened is the backend's error.
Result<std::unique_ptr<Store>> OpenStore(const std::string& spec, const StoreOptions& options = {});

// Both backends' check of the options (the error names the bound).
Status CheckStoreOptions(const StoreOptions& options);

}  // namespace lim::attest
