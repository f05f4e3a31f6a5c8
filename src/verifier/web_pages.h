// The pages of the verifier's web view (web_view.h) as functions of plain data: the fleet,
// one host's integrated table, a host's history of verdicts, a policy. web_view.cc fetches
// the data (store, verifier) and serves the result; tests and benchmarks call these
// directly. Every string from agents is escaped (web_html.h); every long list is cut to one
// page (web_html.h Paginate), so a page costs O(rows shown) beyond one pass over the list
// for the failing-first order. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "attest/store.h"
#include "verifier/verifier.h"
#include "verifier/web_html.h"

namespace lim::verifier::web {

using Query = std::map<std::string, std::string>;

// One line of the fleet.
struct FleetRow {
  std::string id;
  attest::AgentStatus status = attest::AgentStatus::kEnrolling;
  std::string policy;
  std::string address;  // empty: push
  int64_t updated = 0;  // last round, unix seconds
  uint64_t rounds = 0;
  uint64_t next_index = 0;  // entries verified
};

// Failed first, then unreachable, enrolling, attested; by id within each.
void SortFleet(std::vector<FleetRow>* rows);

// The fleet page body: counts by state, a search form (?q= substring of id or policy,
// ?state=), one page of the sorted rows. last_failure(id) gives a failed host's newest
// failure (called only for the rows shown).
std::string FleetBody(const std::vector<FleetRow>& sorted, const Query& query,
                      const std::function<std::string(const std::string&)>& last_failure);

// A row is failing when its verdict is a finding's reason (not ok/pending/unverified).
bool IsFailingVerdict(const std::string& verdict);

// An agent's findings, newest first, read from the store only as deep as a page needs:
// most pages need the newest few, but a failure can lie behind a long run of unreachable
// rounds (a failed host stays failed, and every round it cannot be reached adds a
// finding). Not thread-safe: one per page.
class FindingSearch {
 public:
  // fetch(limit): the newest `limit` findings (Store::History).
  using Fetch = std::function<Result<std::vector<attest::VerdictRecord>>(size_t limit)>;
  // At most max findings are read (a store may keep up to 10,000,000 per agent).
  explicit FindingSearch(Fetch fetch, size_t max = 100000) : fetch_(std::move(fetch)), max_(max) {}

  // The newest n (fewer when the agent has fewer, or the store failed).
  const std::vector<attest::VerdictRecord>& Newest(size_t n);
  // The newest finding for which pred holds, reading deeper (×20 each time, from 50) until
  // found or the history ends; nullptr when none.
  const attest::Finding* Find(const std::function<bool(const attest::Finding&)>& pred);
  size_t fetches() const { return fetches_; }

 private:
  bool Grow(size_t n);  // false when nothing more can be read
  Fetch fetch_;
  size_t max_;
  std::vector<attest::VerdictRecord> have_;
  bool complete_ = false;
  size_t fetches_ = 0;
};

// The newest finding that made the agent failed (a failure, not unreachable — which never
// fails a host) in the log-line form without its "lim-verifier: " prefix; empty when none.
std::string LastFailure(const std::string& id, FindingSearch& findings);

// The host page body: the agent's record, its 10 newest findings and one page of the
// integrated table, failing rows first, each failing row with the finding that explains
// it (the newest with its entry and reason).
std::string HostBody(const attest::AgentRecord& agent, const std::vector<EntryRow>& rows, FindingSearch& findings,
                     const Query& query);

// The history page body: `newest` are the agent's findings newest first, at most
// (page × per) + 1 of them (the extra one tells that an older page exists).
std::string HistoryBody(const std::string& id, const std::vector<attest::VerdictRecord>& newest, const Query& query);
// How many findings HistoryBody needs for the page asked (≤ max).
size_t HistoryFetchLimit(const Query& query, size_t max);

// The policy page body: its summary, one page of its paths (?q= substring), the hosts it
// is assigned to (from the fleet).
std::string PolicyBody(const std::string& name, const std::string& native_json, const std::vector<FleetRow>& fleet,
                       const Query& query);
std::string PoliciesBody(const std::vector<std::string>& names, const std::vector<FleetRow>& fleet);

}  // namespace lim::verifier::web
