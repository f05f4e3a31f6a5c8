// What every Store shares: the unshared-store lease defaults and OpenStore (store.h).
#include "attest/store.h"

#include "attest/pg_store.h"

namespace lim::attest {

Result<LeaseClaim> Store::ClaimLeases(const std::string&, std::chrono::milliseconds, const std::vector<std::string>&) {
  LIM_ASSIGN_OR_RETURN(auto ids, ListAgents());
  LeaseClaim out;
  for (auto& id : ids) out.leases.emplace(std::move(id), 0);
  out.fair_share = out.leases.size();
  return out;
}

Result<int64_t> Store::TakeLease(const std::string&, const std::string&, std::chrono::milliseconds) { return 0; }

Status Store::ReleaseLeases(const std::string&) { return Status::Ok(); }

Status CheckStoreOptions(const StoreOptions& options) {
  if (options.history_per_agent < 1 || options.history_per_agent > kMaxHistoryPerAgent) {
    return Status::InvalidArgument("verifier database: findings kept per agent must be 1-" +
                                   std::to_string(kMaxHistoryPerAgent) + ", got " +
                                   std::to_string(options.history_per_agent));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& spec, const StoreOptions& options) {
  if (spec.rfind("sqlite:", 0) == 0) {
    if (spec.size() == 7) return Status::InvalidArgument("sqlite: needs a path (sqlite:PATH)");
    return OpenSqliteStore(spec.substr(7), options);
  }
  if (spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0) return OpenPgStore(spec, options);
  return Status::InvalidArgument("expected sqlite:PATH or postgresql://…, got \"" + spec + "\"");
}

}  // namespace lim::attest
