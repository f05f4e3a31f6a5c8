// PgStore: the Store (store.h) in PostgreSQL (libpq), for several lim-verifier processes
// sharing one database (docs/fleet.md). The same tables as the SQLite store plus a leases
// table: one row per agent with its owner, a fencing counter and an expiry in the
// database's clock (so verifiers on hosts whose clocks differ agree on expiry).
//
// Every statement is prepared once per connection and run with bound parameters; the schema
// is created or upgraded on open under a transaction-scoped advisory lock (two verifiers
// starting at once do not both migrate); a database newer than this build is refused. A lost
// connection is re-established (and the statements prepared again) at the next call.
//
// Threading: safe from several threads; calls are serialised on the one connection.
#pragma once

#include <memory>
#include <string>

#include "attest/store.h"
#include "base/status.h"

namespace lim::attest {

// uri: a libpq connection URI ("postgresql://user@host/db", "postgresql:///db?host=/run/pg").
// A malformed URI is kInvalidArgument; an unreachable server kUnavailable; options as for
// OpenSqliteStore (only the newest history_per_agent findings of an agent are kept).
Result<std::unique_ptr<Store>> OpenPgStore(const std::string& uri, const StoreOptions& options = {});

}  // namespace lim::attest
