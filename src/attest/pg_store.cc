// The PostgreSQL implementation of Store (pg_store.h).
#include "attest/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "attest/group_commit.h"

namespace lim::attest {
namespace {

// Advisory lock key held (transaction-scoped) while the schema is created or upgraded.
constexpr int64_t kMigrationLockKey = 0x6c696d5f7374;  // "lim_st"

const char kPgSchemaV1[] = R"sql(
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  address TEXT NOT NULL,
  ek_public BYTEA NOT NULL,
  ek_certificate BYTEA,
  ak_public BYTEA NOT NULL,
  tofu BOOLEAN NOT NULL,
  policy TEXT NOT NULL,
  status TEXT NOT NULL,
  state TEXT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE TABLE policies (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE verdicts (
  seq BIGSERIAL PRIMARY KEY,
  agent TEXT NOT NULL,
  time BIGINT NOT NULL,
  attested BOOLEAN NOT NULL,
  reason TEXT NOT NULL,
  entry BIGINT,
  pcr INTEGER,
  bank TEXT NOT NULL,
  template TEXT NOT NULL,
  path TEXT NOT NULL,
  digest TEXT NOT NULL,
  reference TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX verdicts_agent ON verdicts(agent, seq);
CREATE TABLE leases (
  agent TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
  owner TEXT NOT NULL DEFAULT '',
  fence BIGINT NOT NULL DEFAULT 0,
  expires TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
CREATE INDEX leases_expires ON leases(expires);
)sql";

// v2: one row per live verifier (its heartbeat, renewed with its leases): the fair share of
// leases is ceil(agents / live verifiers).
const char kPgSchemaV2[] = R"sql(
CREATE TABLE verifiers (
  owner TEXT PRIMARY KEY,
  expires TIMESTAMPTZ NOT NULL
);
)sql";

// v3: row versions (store.h). A trigger, not each statement, moves the version, so that every
// writer of a row — an older lim-verifier still running, an operator's psql — moves it too.
// One sequence for all rows: a row removed and enrolled again never repeats a version.
const char kPgSchemaV3[] = R"sql(
CREATE SEQUENCE agent_versions;
ALTER TABLE agents ADD COLUMN version BIGINT NOT NULL DEFAULT nextval('agent_versions');
CREATE FUNCTION lim_agent_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := nextval('agent_versions');
  RETURN NEW;
END
$$;
CREATE TRIGGER agents_version BEFORE UPDATE ON agents FOR EACH ROW EXECUTE FUNCTION lim_agent_next_version();
)sql";

// Every statement the store runs, prepared on each (re)connection. Values are always $n.
const std::pair<const char*, const char*> kStatements[] = {
    {"put_agent",
     "INSERT INTO agents(id,address,ek_public,ek_certificate,ak_public,tofu,policy,status,state,updated) "
     "VALUES ($1,$2,$3,$4,$5,$6::boolean,$7,$8,$9,$10::bigint) ON CONFLICT (id) DO UPDATE SET "
     "address=EXCLUDED.address, ek_public=EXCLUDED.ek_public, ek_certificate=EXCLUDED.ek_certificate, "
     "ak_public=EXCLUDED.ak_public, tofu=EXCLUDED.tofu, policy=EXCLUDED.policy, status=EXCLUDED.status, "
     "state=EXCLUDED.state, updated=EXCLUDED.updated"},
    {"put_lease", "INSERT INTO leases(agent) VALUES ($1) ON CONFLICT (agent) DO NOTHING"},
    {"get_agent",
     "SELECT address,ek_public,ek_certificate,ak_public,tofu,policy,status,state,updated,version FROM agents "
     "WHERE id=$1"},
    {"list_agents", "SELECT id FROM agents ORDER BY id"},
    {"remove_verdicts", "DELETE FROM verdicts WHERE agent=$1"},
    {"remove_agent", "DELETE FROM agents WHERE id=$1"},
    {"put_policy", "INSERT INTO policies(name,body) VALUES ($1,$2) ON CONFLICT (name) DO UPDATE SET body=EXCLUDED.body"},
    {"get_policy", "SELECT body FROM policies WHERE name=$1"},
    {"list_policies", "SELECT name FROM policies ORDER BY name"},
    {"assign_policy", "UPDATE agents SET policy=$1 WHERE id=$2"},
    // A round in one statement: the lease row locked first (until COMMIT: a verifier taking
    // the lease over waits for it, or skips it, so the fence cannot move before the write),
    // then the agent's row written if its version and the fence are the ones given (NULL:
    // not checked). Failed is sticky. No row back: refused (round_refusal says why). The
    // NOWAIT form is a batch's (CommitRounds): a lease row another transaction holds fails
    // the statement at once.
#define LIM_WRITE_ROUND(LOCK)                                                                                  \
  "UPDATE agents SET state=$1, status=CASE WHEN status='failed' THEN 'failed' ELSE $2 END, updated=$3::bigint " \
  "WHERE id=$4 AND ($6::bigint IS NULL OR (SELECT fence FROM leases WHERE agent=$4 " LOCK ")=$6::bigint) "     \
  "AND ($5::bigint IS NULL OR version=$5::bigint) RETURNING version"
    {"write_round", LIM_WRITE_ROUND("FOR UPDATE")},
    {"write_round_nowait", LIM_WRITE_ROUND("FOR UPDATE NOWAIT")},
#undef LIM_WRITE_ROUND
    {"round_refusal", "SELECT a.version, l.fence FROM agents a LEFT JOIN leases l ON l.agent=a.id WHERE a.id=$1"},
    {"insert_verdict",
     "INSERT INTO verdicts(agent,time,attested,reason,entry,pcr,bank,template,path,digest,reference,detail) "
     "VALUES ($1,$2::bigint,$3::boolean,$4,$5::bigint,$6::integer,$7,$8,$9,$10,$11,$12)"},
    {"history",
     "SELECT time,attested,reason,entry,pcr,bank,template,path,digest,reference,detail FROM verdicts "
     "WHERE agent=$1 ORDER BY seq DESC LIMIT $2::bigint"},
    // The oldest findings beyond the bound go (the (agent, seq) index finds the cut).
    {"trim_history",
     "DELETE FROM verdicts WHERE agent=$1 AND seq <= (SELECT seq FROM verdicts WHERE agent=$1 "
     "ORDER BY seq DESC LIMIT 1 OFFSET $2::bigint)"},
    {"acknowledge", "UPDATE agents SET status='attested' WHERE id=$1 AND status='failed'"},
    // The caller's leases still valid: renewed, fence unchanged.
    {"renew_leases",
     "UPDATE leases SET expires = clock_timestamp() + $2::bigint * interval '1 millisecond' "
     "WHERE owner=$1 AND expires > clock_timestamp() RETURNING agent, fence"},
    // The heartbeat first: its expiry is before the leases' renewed below, so a dead
    // verifier no longer counts as live when its leases expire.
    {"heartbeat",
     "INSERT INTO verifiers(owner, expires) VALUES ($1, clock_timestamp() + $2::bigint * interval '1 millisecond') "
     "ON CONFLICT (owner) DO UPDATE SET expires=EXCLUDED.expires"},
    // Rows of verifiers long dead (their leases went long ago).
    {"forget_verifiers", "DELETE FROM verifiers WHERE expires < clock_timestamp() - interval '1 day'"},
    {"census",
     "SELECT (SELECT count(*) FROM verifiers WHERE expires > clock_timestamp()), (SELECT count(*) FROM leases)"},
    // Free or expired leases, at most $3: taken with the next fence. SKIP LOCKED: a lease
    // another verifier is claiming or writing a round under right now is left to it (no
    // waiting, no deadlock).
    {"take_leases",
     "WITH free AS (SELECT agent FROM leases WHERE expires <= clock_timestamp() ORDER BY agent "
     "LIMIT $3::bigint FOR UPDATE SKIP LOCKED) "
     "UPDATE leases l SET owner=$1, fence=l.fence+1, "
     "expires = clock_timestamp() + $2::bigint * interval '1 millisecond' "
     "FROM free WHERE l.agent=free.agent RETURNING l.agent, l.fence"},
    // One lease for $2 whoever holds it; the fence moves unless $2 held it still.
    {"take_lease",
     "UPDATE leases SET fence = CASE WHEN owner=$2 AND expires > clock_timestamp() THEN fence ELSE fence+1 END, "
     "owner=$2, expires = clock_timestamp() + $3::bigint * interval '1 millisecond' WHERE agent=$1 RETURNING fence"},
    {"give_up_lease", "UPDATE leases SET owner='', expires='-infinity' WHERE agent=$1 AND owner=$2"},
    {"release_leases", "UPDATE leases SET owner='', expires='-infinity' WHERE owner=$1"},
    {"forget_verifier", "DELETE FROM verifiers WHERE owner=$1"},
};

// One bound parameter: text, binary (bytea) or NULL.
struct Param {
  std::string value;
  bool binary = false;
  bool null = false;
};
Param T(std::string v) { return {std::move(v), false, false}; }
Param I(int64_t v) { return {std::to_string(v), false, false}; }
Param B(const Bytes& v) { return {std::string(v.begin(), v.end()), true, false}; }
Param Null() { return {"", false, true}; }

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

std::string Col(const PgResult& r, int row, int col) {
  return std::string(PQgetvalue(r.get(), row, col), static_cast<size_t>(PQgetlength(r.get(), row, col)));
}
bool ColNull(const PgResult& r, int row, int col) { return PQgetisnull(r.get(), row, col) != 0; }
int64_t ColInt(const PgResult& r, int row, int col) { return std::stoll(Col(r, row, col)); }
bool ColBool(const PgResult& r, int row, int col) { return Col(r, row, col) == "t"; }
Result<Bytes> ColBytes(const PgResult& r, int row, int col) {
  size_t n = 0;
  unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r.get(), row, col)), &n);
  if (!p) return Status::Corrupt("verifier database: undecodable bytea");
  Bytes out(p, p + n);
  PQfreemem(p);
  return out;
}

class PgStore final : public Store {
 public:
  PgStore(std::string uri, size_t history) : uri_(std::move(uri)), history_(history) {}
  ~PgStore() override {
    if (conn_) PQfinish(conn_);
  }

  Status Open() {
    std::lock_guard lock(mu_);
    // Defaults before the URI (whose own values win): a server that vanished without a
    // reset (a host gone, packets dropped) fails a connection attempt in 5 s and a
    // connection in use in about 15-25 s instead of the kernel's TCP timeouts (minutes to
    // hours), during which every store call of this verifier would wait. PQreset reuses them.
    const char* const keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                                "tcp_user_timeout", "dbname", nullptr};
    const char* const values[] = {"5", "10", "5", "3", "15000", uri_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      return Status::Unavailable("verifier database: cannot connect: " + ConnError());
    }
    // NOTICEs ("relation … already exists, skipping") are not errors; libpq would print them.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    LIM_RETURN_IF_ERROR(Migrate());
    return PrepareAll();
  }

  bool Shared() const override { return true; }

  Status PutAgent(const AgentRecord& a) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      LIM_RETURN_IF_ERROR(Run("put_agent",
                              {T(a.id), T(a.address), B(a.identity.ek_public),
                               a.identity.ek_certificate ? B(*a.identity.ek_certificate) : Null(),
                               B(a.identity.ak_public), T(a.tofu ? "true" : "false"), T(a.policy),
                               T(AgentStatusName(a.status)), T(AgentStateToJson(a.state)), I(a.updated)},
                              "storing agent " + a.id)
                              .status());
      return Run("put_lease", {T(a.id)}, "storing the lease of " + a.id).status();
    });
  }

  Result<std::optional<AgentRecord>> GetAgent(const std::string& id) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run("get_agent", {T(id)}, "reading agent " + id));
    if (PQntuples(r.get()) == 0) return std::optional<AgentRecord>();
    AgentRecord a;
    a.id = id;
    a.identity.agent_id = id;
    a.address = Col(r, 0, 0);
    LIM_ASSIGN_OR_RETURN(a.identity.ek_public, ColBytes(r, 0, 1));
    if (!ColNull(r, 0, 2)) {
      LIM_ASSIGN_OR_RETURN(auto cert, ColBytes(r, 0, 2));
      a.identity.ek_certificate = std::move(cert);
    }
    LIM_ASSIGN_OR_RETURN(a.identity.ak_public, ColBytes(r, 0, 3));
    a.tofu = ColBool(r, 0, 4);
    a.policy = Col(r, 0, 5);
    auto status = AgentStatusFromName(Col(r, 0, 6));
    if (!status) return Status::Corrupt("agent " + id + ": unknown status \"" + Col(r, 0, 6) + "\"");
    a.status = *status;
    auto state = AgentStateFromJson(Col(r, 0, 7));
    if (!state.ok()) return state.status().WithPrefix("agent " + id);
    a.state = std::move(state).value();
    a.updated = ColInt(r, 0, 8);
    a.version = ColInt(r, 0, 9);
    return std::optional<AgentRecord>(std::move(a));
  }

  Result<std::vector<std::string>> ListAgents() override { return Names("list_agents"); }

  Status RemoveAgent(const std::string& id) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      LIM_RETURN_IF_ERROR(Run("remove_verdicts", {T(id)}, "removing the history of " + id).status());
      return Run("remove_agent", {T(id)}, "removing agent " + id).status();  // its lease by cascade
    });
  }

  Status PutPolicy(const std::string& name, const std::string& body) override {
    std::lock_guard lock(mu_);
    return Run("put_policy", {T(name), T(body)}, "storing policy " + name).status();
  }

  Result<std::optional<std::string>> GetPolicy(const std::string& name) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run("get_policy", {T(name)}, "reading policy " + name));
    if (PQntuples(r.get()) == 0) return std::optional<std::string>();
    return std::optional<std::string>(Col(r, 0, 0));
  }

  Result<std::vector<std::string>> ListPolicies() override { return Names("list_policies"); }

  Status AssignPolicy(const std::string& agent, const std::string& policy) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto p, Run("get_policy", {T(policy)}, "reading policy " + policy));
    if (PQntuples(p.get()) == 0) return Status::NotFound("no policy named " + policy);
    LIM_ASSIGN_OR_RETURN(auto r, Run("assign_policy", {T(policy), T(agent)}, "assigning policy"));
    if (std::string(PQcmdTuples(r.get())) == "0") return Status::NotFound("no agent named " + agent);
    return Status::Ok();
  }

  // Rounds that arrive together share a transaction, and so one WAL flush (group_commit.h).
  Result<int64_t> WriteRound(const std::string& agent, const RoundBasis& basis, const AgentState& state,
                             AgentStatus status, int64_t time, const std::vector<Finding>& findings) override {
    int64_t version = 0;
    LIM_RETURN_IF_ERROR(group_.Write(
        RoundWrite{&agent, basis.fence, &state, status, time, &findings, basis.version, &version},
        [this](const std::vector<const RoundWrite*>& rounds, std::vector<Status>* results) {
          CommitRounds(rounds, results);
        }));
    return version;
  }

  Result<std::vector<VerdictRecord>> History(const std::string& agent, size_t limit) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run("history", {T(agent), I(static_cast<int64_t>(limit))},
                                     "reading history of " + agent));
    std::vector<VerdictRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      VerdictRecord v;
      v.agent = agent;
      v.time = ColInt(r, i, 0);
      v.attested = ColBool(r, i, 1);
      auto reason = ReasonFromName(Col(r, i, 2));
      if (!reason) return Status::Corrupt("verdict of " + agent + ": unknown reason \"" + Col(r, i, 2) + "\"");
      v.finding.reason = *reason;
      if (!ColNull(r, i, 3)) v.finding.entry = static_cast<uint64_t>(ColInt(r, i, 3));
      if (!ColNull(r, i, 4)) v.finding.pcr = static_cast<int>(ColInt(r, i, 4));
      v.finding.bank = Col(r, i, 5);
      v.finding.tmpl = Col(r, i, 6);
      v.finding.path = Col(r, i, 7);
      v.finding.digest = Col(r, i, 8);
      v.finding.reference = Col(r, i, 9);
      v.finding.detail = Col(r, i, 10);
      out.push_back(std::move(v));
    }
    return out;
  }

  Status Acknowledge(const std::string& agent) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run("acknowledge", {T(agent)}, "acknowledging " + agent));
    if (std::string(PQcmdTuples(r.get())) == "0") return Status::NotFound("agent " + agent + " is not failed");
    return Status::Ok();
  }

  Result<LeaseClaim> ClaimLeases(const std::string& owner, std::chrono::milliseconds ttl,
                                 const std::vector<std::string>& give_up) override {
    std::lock_guard lock(mu_);
    LeaseClaim out;
    Status st = InTransaction([&]() -> Status {
      for (const auto& agent : give_up) {
        LIM_RETURN_IF_ERROR(Run("give_up_lease", {T(agent), T(owner)}, "releasing the lease of " + agent).status());
      }
      LIM_RETURN_IF_ERROR(Run("heartbeat", {T(owner), I(ttl.count())}, "renewing the heartbeat").status());
      LIM_RETURN_IF_ERROR(Run("forget_verifiers", {}, "forgetting dead verifiers").status());
      LIM_ASSIGN_OR_RETURN(auto renewed, Run("renew_leases", {T(owner), I(ttl.count())}, "renewing leases"));
      for (int i = 0; i < PQntuples(renewed.get()); ++i) out.leases[Col(renewed, i, 0)] = ColInt(renewed, i, 1);
      LIM_ASSIGN_OR_RETURN(auto census, Run("census", {}, "counting verifiers"));
      out.verifiers = static_cast<size_t>(std::max<int64_t>(1, ColInt(census, 0, 0)));
      auto agents = static_cast<size_t>(ColInt(census, 0, 1));
      out.fair_share = (agents + out.verifiers - 1) / out.verifiers;
      if (out.leases.size() >= out.fair_share) return Status::Ok();
      auto want = static_cast<int64_t>(out.fair_share - out.leases.size());
      LIM_ASSIGN_OR_RETURN(auto taken, Run("take_leases", {T(owner), I(ttl.count()), I(want)}, "claiming leases"));
      for (int i = 0; i < PQntuples(taken.get()); ++i) out.leases[Col(taken, i, 0)] = ColInt(taken, i, 1);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return out;
  }

  Result<int64_t> TakeLease(const std::string& agent, const std::string& owner,
                            std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run("take_lease", {T(agent), T(owner), I(ttl.count())}, "taking the lease of " + agent));
    if (PQntuples(r.get()) == 0) return Status::NotFound("no agent named " + agent);
    return ColInt(r, 0, 0);
  }

  Status ReleaseLeases(const std::string& owner) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      LIM_RETURN_IF_ERROR(Run("release_leases", {T(owner)}, "releasing leases").status());
      return Run("forget_verifier", {T(owner)}, "removing the heartbeat").status();
    });
  }

 private:
  // One transaction for all the rounds (sorted by agent); a round refused alone
  // (RoundRefusedAlone: no agent, stale fence or version) wrote nothing and leaves the others be.
  //  - A statement of the batch failing on a working connection aborts the PostgreSQL
  //    transaction: it is rolled back and each round written again on its own, so one
  //    round's error is not the others'.
  //  - A failed BEGIN or COMMIT, or a connection that broke, is every round's error at once:
  //    a COMMIT cut off may have committed (writing again would double the findings), and a
  //    server that is down would be waited for once per round.
  // Fences are checked with NOWAIT inside a batch: a batch holds several lease rows, and
  // waiting for one while holding others could close a cycle with another verifier's lease
  // renewal (which locks its rows in its own order); a row that is busy fails the batch into
  // the one-by-one path, where a round holds one lease row and may wait for it.
  void CommitRounds(const std::vector<const RoundWrite*>& rounds, std::vector<Status>* results) {
    std::lock_guard lock(mu_);
    if (rounds.size() == 1) {
      (*results)[0] = InTransaction([&] { return RoundLocked(*rounds[0], /*nowait=*/false); });
      return;
    }
    auto all = [&](const Status& st) {
      for (auto& r : *results) r = st;
    };
    if (Status begun = Exec("BEGIN"); !begun.ok()) return all(begun);
    Status failed;
    for (size_t i = 0; failed.ok() && i < rounds.size(); ++i) {
      (*results)[i] = RoundLocked(*rounds[i], /*nowait=*/true);
      if (!(*results)[i].ok() && !RoundRefusedAlone((*results)[i])) failed = (*results)[i];
    }
    if (failed.ok()) {
      if (Status committed = Exec("COMMIT"); !committed.ok()) all(committed);
      return;
    }
    (void)Exec("ROLLBACK");
    if (PQstatus(conn_) != CONNECTION_OK) return all(failed);
    for (size_t i = 0; i < rounds.size(); ++i) {
      (*results)[i] = InTransaction([&] { return RoundLocked(*rounds[i], /*nowait=*/false); });
    }
  }

  // One round: the agent's row (write_round, its fence and version checked there), then its
  // findings. Caller holds mu_, in a transaction.
  Status RoundLocked(const RoundWrite& w, bool nowait) {
    const std::string& agent = *w.agent;
    LIM_ASSIGN_OR_RETURN(auto r, Run(nowait ? "write_round_nowait" : "write_round",
                                     {T(AgentStateToJson(*w.state)), T(AgentStatusName(w.status)), I(w.time), T(agent),
                                      w.version ? I(*w.version) : Null(), w.fence ? I(*w.fence) : Null()},
                                     "storing state of " + agent));
    if (PQntuples(r.get()) == 0) return Refusal(w);
    if (w.new_version) *w.new_version = ColInt(r, 0, 0);
    bool attested = std::none_of(w.findings->begin(), w.findings->end(), [](const Finding& f) { return f.failure(); });
    for (const auto& f : *w.findings) {
      LIM_RETURN_IF_ERROR(Run("insert_verdict",
                              {T(agent), I(w.time), T(attested ? "true" : "false"), T(ReasonName(f.reason)),
                               f.entry ? I(static_cast<int64_t>(*f.entry)) : Null(), f.pcr ? I(*f.pcr) : Null(),
                               T(f.bank), T(f.tmpl), T(f.path), T(f.digest), T(f.reference), T(f.detail)},
                              "storing a finding of " + agent)
                              .status());
    }
    if (w.findings->empty()) return Status::Ok();
    return Run("trim_history", {T(agent), I(static_cast<int64_t>(history_))}, "trimming the history of " + agent)
        .status();
  }

  // Why write_round wrote nothing: no such agent, the lease moved on, or the row changed.
  Status Refusal(const RoundWrite& w) {
    const std::string& agent = *w.agent;
    LIM_ASSIGN_OR_RETURN(auto r, Run("round_refusal", {T(agent)}, "reading the lease of " + agent));
    if (PQntuples(r.get()) == 0) return Status::NotFound("no agent named " + agent);
    std::optional<int64_t> fence;
    if (!ColNull(r, 0, 1)) fence = ColInt(r, 0, 1);
    if (w.fence && fence != w.fence) {
      return Status::Mismatch("agent " + agent + ": stale lease (fence " + std::to_string(*w.fence) + ", now " +
                              (fence ? std::to_string(*fence) : "none") +
                              "): another verifier attests it; round not written");
    }
    return Status::Mismatch("agent " + agent + ": its row changed since this round read it (version " +
                            std::to_string(w.version.value_or(-1)) + ", now " + std::to_string(ColInt(r, 0, 0)) +
                            "): round not written");
  }

  Result<std::vector<std::string>> Names(const char* stmt) {
    std::lock_guard lock(mu_);
    LIM_ASSIGN_OR_RETURN(auto r, Run(stmt, {}, "listing"));
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(Col(r, i, 0));
    return out;
  }

  // BEGIN, body, COMMIT (ROLLBACK when the body fails). Caller holds mu_.
  template <typename F>
  Status InTransaction(F body) {
    LIM_RETURN_IF_ERROR(Exec("BEGIN"));
    Status st = body();
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }

  // A read outside a transaction, or a BEGIN, that finds the connection broken (the server
  // restarted or dropped it while it was idle) is asked once more on a new connection:
  // nothing was changed by the first try. Anything else is never repeated: whether a write
  // committed before its connection broke is unknown, and the caller must hear of it.
  static bool RepeatableStatement(const char* name) {
    static constexpr std::string_view kReads[] = {"get_agent", "list_agents", "get_policy",
                                                  "list_policies", "history", "round_refusal"};
    return std::find(std::begin(kReads), std::end(kReads), name) != std::end(kReads);
  }
  bool BrokenOutsideTransaction(bool idle_before) const { return idle_before && PQstatus(conn_) == CONNECTION_BAD; }

  // A prepared statement with its parameters bound. Caller holds mu_. A connection found
  // broken is reset first (statements prepared again), outside any transaction only.
  Result<PgResult> Run(const char* name, const std::vector<Param>& params, const std::string& what) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : params) {
      values.push_back(p.null ? nullptr : p.value.c_str());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    for (int attempt = 0;; ++attempt) {
      LIM_RETURN_IF_ERROR(EnsureConnected());
      const bool idle = PQtransactionStatus(conn_) == PQTRANS_IDLE;
      PgResult r(PQexecPrepared(conn_, name, static_cast<int>(params.size()), values.data(), lengths.data(),
                                formats.data(), 0));
      ExecStatusType s = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
      if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return r;
      if (attempt == 0 && RepeatableStatement(name) && BrokenOutsideTransaction(idle)) continue;
      return Status::IoError("verifier database: " + what + ": " + ResultError(r));
    }
  }

  // Statements without values (BEGIN, COMMIT, the schema). Caller holds mu_.
  Status Exec(const char* sql) {
    for (int attempt = 0;; ++attempt) {
      LIM_RETURN_IF_ERROR(EnsureConnected());
      const bool idle = PQtransactionStatus(conn_) == PQTRANS_IDLE;
      PgResult r(PQexec(conn_, sql));
      ExecStatusType s = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
      if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return Status::Ok();
      if (attempt == 0 && std::string_view(sql) == "BEGIN" && BrokenOutsideTransaction(idle)) continue;
      return Status::IoError("verifier database: " + ResultError(r));
    }
  }

  Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE && PQtransactionStatus(conn_) != PQTRANS_UNKNOWN) {
      return Status::Unavailable("verifier database: connection lost inside a transaction");
    }
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return Status::Unavailable("verifier database: reconnecting: " + ConnError());
    return PrepareAll();
  }

  Status Migrate() {
    return InTransaction([&]() -> Status {
      std::string key = std::to_string(kMigrationLockKey);
      const char* values[] = {key.c_str()};
      PgResult lock(PQexecParams(conn_, "SELECT pg_advisory_xact_lock($1::bigint)", 1, nullptr, values, nullptr,
                                 nullptr, 0));
      if (!lock || PQresultStatus(lock.get()) != PGRES_TUPLES_OK) {
        return Status::IoError("verifier database: schema lock: " + ResultError(lock));
      }
      LIM_RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
      PgResult v(PQexec(conn_, "SELECT max(version) FROM schema_version"));
      if (!v || PQresultStatus(v.get()) != PGRES_TUPLES_OK || PQntuples(v.get()) != 1) {
        return Status::IoError("verifier database: reading schema_version: " + ResultError(v));
      }
      int64_t version = ColNull(v, 0, 0) ? 0 : ColInt(v, 0, 0);
      if (version > kStoreSchemaVersion) {
        return Status::Unsupported("verifier database schema " + std::to_string(version) +
                                   " is newer than this lim (" + std::to_string(kStoreSchemaVersion) + ")");
      }
      if (version < 1) {
        LIM_RETURN_IF_ERROR(Exec(kPgSchemaV1));
        LIM_RETURN_IF_ERROR(Exec("INSERT INTO schema_version(version) VALUES (1)"));
      }
      if (version < 2) {
        LIM_RETURN_IF_ERROR(Exec(kPgSchemaV2));
        LIM_RETURN_IF_ERROR(Exec("INSERT INTO schema_version(version) VALUES (2)"));
      }
      if (version < 3) {
        LIM_RETURN_IF_ERROR(Exec(kPgSchemaV3));
        LIM_RETURN_IF_ERROR(Exec("INSERT INTO schema_version(version) VALUES (3)"));
      }
      return Status::Ok();
    });
  }

  Status PrepareAll() {
    for (const auto& [name, sql] : kStatements) {
      PgResult r(PQprepare(conn_, name, sql, 0, nullptr));
      if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        return Status::IoError(std::string("verifier database: preparing ") + name + ": " + ResultError(r));
      }
    }
    return Status::Ok();
  }

  std::string ConnError() const {
    std::string m = conn_ ? PQerrorMessage(conn_) : "out of memory";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }
  std::string ResultError(const PgResult& r) const {
    std::string m = r ? PQresultErrorMessage(r.get()) : "";
    if (m.empty()) return ConnError();
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }

  std::string uri_;
  const size_t history_;
  PGconn* conn_ = nullptr;
  GroupCommit group_;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPgStore(const std::string& uri, const StoreOptions& options) {
  LIM_RETURN_IF_ERROR(CheckStoreOptions(options));
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (!opts) {
    std::string m = err ? err : "out of memory";
    PQfreemem(err);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    return Status::InvalidArgument("PostgreSQL URI: " + m);
  }
  // libpq checks the port only when connecting; a typo there is the operator's, say so now.
  std::string bad_port;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (std::string_view(o->keyword) != "port" || !o->val) continue;
    std::string ports = o->val;
    size_t start = 0;
    while (start <= ports.size()) {
      size_t end = std::min(ports.find(',', start), ports.size());
      std::string one = ports.substr(start, end - start);
      bool digits = !one.empty() && one.size() <= 5 && one.find_first_not_of("0123456789") == std::string::npos;
      if (!one.empty() && (!digits || std::stoi(one) < 1 || std::stoi(one) > 65535)) bad_port = one;
      start = end + 1;
    }
  }
  PQconninfoFree(opts);
  if (!bad_port.empty()) return Status::InvalidArgument("PostgreSQL URI: port \"" + bad_port + "\" is not 1-65535");
  auto store = std::make_unique<PgStore>(uri, options.history_per_agent);
  LIM_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace lim::attest
