// What every Store shares: the unshared-store lease defaults and OpenStore (store.h).
#include "attest/store.h"

#include "attest/pg_store.h"

namespace lim::attest {

Result<std::map<std::string, int64_t>> Store::ClaimLeases(const std::string&, std::chrono::milliseconds) {
  LIM_ASSIGN_OR_RETURN(auto ids, ListAgents());
  std::map<std::string, int64_t> out;
  for (auto& id : ids) out.emplace(std::move(id), 0);
  return out;
}

Status Store::ReleaseLeases(const std::string&) { return Status::Ok(); }

Status Store::RecordFencedRound(const std::string& agent, int64_t, const AgentState& state, AgentStatus status,
                                int64_t time, const std::vector<Finding>& findings) {
  return RecordRound(agent, state, status, time, findings);
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& spec) {
  if (spec.rfind("sqlite:", 0) == 0) {
    if (spec.size() == 7) return Status::InvalidArgument("store " + spec + ": sqlite: needs a path");
    return OpenSqliteStore(spec.substr(7));
  }
  if (spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0) return OpenPgStore(spec);
  return Status::InvalidArgument("store: expected sqlite:PATH or postgresql://…, got \"" + spec + "\"");
}

}  // namespace lim::attest
