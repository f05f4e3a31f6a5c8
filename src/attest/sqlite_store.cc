// The SQLite implementation of Store (store.h).
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "attest/store.h"

namespace lim::attest {

const char* AgentStatusName(AgentStatus s) {
  switch (s) {
    case AgentStatus::kEnrolling: return "enrolling";
    case AgentStatus::kAttested: return "attested";
    case AgentStatus::kFailed: return "failed";
    case AgentStatus::kUnreachable: return "unreachable";
  }
  return "unknown";
}

std::optional<AgentStatus> AgentStatusFromName(std::string_view name) {
  for (auto s : {AgentStatus::kEnrolling, AgentStatus::kAttested, AgentStatus::kFailed, AgentStatus::kUnreachable}) {
    if (name == AgentStatusName(s)) return s;
  }
  return std::nullopt;
}

namespace {

const char kSchemaV1[] = R"sql(
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  address TEXT NOT NULL,
  ek_public BLOB NOT NULL,
  ek_certificate BLOB,
  ak_public BLOB NOT NULL,
  tofu INTEGER NOT NULL,
  policy TEXT NOT NULL,
  status TEXT NOT NULL,
  state TEXT NOT NULL,
  updated INTEGER NOT NULL
);
CREATE TABLE policies (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE verdicts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  agent TEXT NOT NULL,
  time INTEGER NOT NULL,
  attested INTEGER NOT NULL,
  reason TEXT NOT NULL,
  entry INTEGER,
  pcr INTEGER,
  bank TEXT NOT NULL,
  template TEXT NOT NULL,
  path TEXT NOT NULL,
  digest TEXT NOT NULL,
  reference TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX verdicts_agent ON verdicts(agent, seq);
)sql";

// v2: the verifiers table of the PostgreSQL schema (heartbeats for the fair share of leases),
// so that both schemas carry the same version; one process on SQLite leaves it empty.
const char kSchemaV2[] = R"sql(
CREATE TABLE verifiers (
  owner TEXT PRIMARY KEY,
  expires INTEGER NOT NULL
);
)sql";

// v3: row versions (store.h). One process writes a SQLite store, so each write moves its
// row's version by one in the statement itself.
const char kSchemaV3[] = "ALTER TABLE agents ADD COLUMN version INTEGER NOT NULL DEFAULT 0;";

// Prepared statements kept for the store's life, one per SQL text: a round's write ran
// three to four sqlite3_prepare_v2 calls, a fifth of its CPU. A statement is lent to one
// Stmt at a time (calls are serialised by the store's mutex); a second Stmt of the same text
// while the first is alive gets a statement of its own.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache() { Clear(); }
  void Clear() {
    for (auto& [sql, e] : map_) sqlite3_finalize(e.stmt);
    map_.clear();
  }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  // The cached statement of sql, marked lent; null when it is lent already or cannot be
  // prepared (the caller prepares its own, which reports the error).
  sqlite3_stmt* Borrow(const char* sql) {
    auto it = map_.find(std::string_view(sql));
    if (it == map_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
        sqlite3_finalize(s);
        return nullptr;
      }
      it = map_.emplace(std::string(sql), Entry{s, false}).first;
    }
    if (it->second.lent) return nullptr;
    it->second.lent = true;
    return it->second.stmt;
  }
  // Back from its Stmt: reset, bindings cleared (a bound blob or text is not kept alive).
  void Return(sqlite3_stmt* s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    auto it = map_.find(std::string_view(sqlite3_sql(s)));
    if (it != map_.end() && it->second.stmt == s) it->second.lent = false;
  }

 private:
  struct Entry {
    sqlite3_stmt* stmt;
    bool lent;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return std::hash<std::string_view>()(v); }
  };
  sqlite3* db_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
};

class Stmt {
 public:
  // A statement of its own, finalized at the end.
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  // The cache's statement when it is free, else one of its own.
  Stmt(sqlite3* db, StmtCache* cache, const char* sql) : s_(cache->Borrow(sql)) {
    if (s_) {
      cache_ = cache;
      rc_ = SQLITE_OK;
    } else {
      rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
    }
  }
  ~Stmt() {
    if (cache_) {
      cache_->Return(s_);
    } else {
      sqlite3_finalize(s_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, const Bytes& v) {
    // An empty vector's data() may be null, which SQLite stores as NULL: bind an empty blob.
    if (v.empty()) {
      sqlite3_bind_zeroblob(s_, i, 0);
      return *this;
    }
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string ColText(int i) {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, i))) : "";
  }
  Bytes ColBlob(int i) {
    const auto* b = static_cast<const uint8_t*>(sqlite3_column_blob(s_, i));
    return b ? Bytes(b, b + sqlite3_column_bytes(s_, i)) : Bytes();
  }
  int64_t ColInt(int i) { return sqlite3_column_int64(s_, i); }
  bool ColNull(int i) { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_ = nullptr;
  StmtCache* cache_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path, size_t history) : db_(db), path_(std::move(path)), history_(history) {}
  ~SqliteStore() override {
    stmts_.Clear();  // sqlite3_close refuses a connection with statements left
    sqlite3_close(db_);
  }

  Status Init() {
    // One lim-verifier per SQLite file (store.h): the connection holds the file's lock for
    // its whole life (locking_mode=EXCLUSIVE, set before the first access, so the WAL index
    // lives in this process's memory instead of a shared -shm file). A second verifier
    // started on the same file is refused here instead of attesting the same agents beside
    // the first. And a transaction no longer takes and drops file locks (fcntl calls, ~10 %
    // of a round's store write in attest_bench BM_StoreRecordRound).
    // A page cache of up to 64 MiB (SQLite's default is 2 MiB): nobody else writes the file,
    // so what is cached stays valid, and the rows of 10,000 agents fit; with the default,
    // about one page a round was read again (pread), ~10 % of the store write's CPU.
    sqlite3_busy_timeout(db_, 1000);  // a verifier that is still closing the file
    Status locked = Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                         "PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; BEGIN IMMEDIATE; COMMIT;");
    if (!locked.ok()) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_BUSY) {
        if (!sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK");
        // The caller prefixes the path (OpenSqliteStore).
        return Status::Unavailable(
            "the verifier database is in use by another process: a SQLite store serves one lim-verifier "
            "(verifiers that share a fleet use a PostgreSQL store)");
      }
      return locked;
    }
    LIM_RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    Stmt q(db_, "SELECT max(version) FROM schema_version");
    if (!q.ok() || q.Step() != SQLITE_ROW) return Error("reading schema_version");
    int64_t version = q.ColNull(0) ? 0 : q.ColInt(0);
    if (version > kStoreSchemaVersion) {
      return Status::Unsupported("verifier database schema " + std::to_string(version) + " is newer than this lim (" +
                                 std::to_string(kStoreSchemaVersion) + ")");
    }
    if (version < kStoreSchemaVersion) {
      LIM_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
      Status st = version < 1 ? Exec(kSchemaV1) : Status::Ok();
      if (st.ok() && version < 1) st = Exec("INSERT INTO schema_version(version) VALUES (1)");
      if (st.ok() && version < 2) st = Exec(kSchemaV2);
      if (st.ok() && version < 2) st = Exec("INSERT INTO schema_version(version) VALUES (2)");
      if (st.ok() && version < 3) st = Exec(kSchemaV3);
      if (st.ok() && version < 3) st = Exec("INSERT INTO schema_version(version) VALUES (3)");
      LIM_RETURN_IF_ERROR(Finish(st));
    }
    return Status::Ok();
  }

  Status PutAgent(const AgentRecord& a) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_,
           "INSERT OR REPLACE INTO agents(id,address,ek_public,ek_certificate,ak_public,tofu,policy,status,state,"
           "updated,version) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,"
           "ifnull((SELECT version FROM agents WHERE id=?1),0)+1)");
    if (!s.ok()) return Error("preparing agent insert");
    s.Text(1, a.id).Text(2, a.address).Blob(3, a.identity.ek_public);
    if (a.identity.ek_certificate) {
      s.Blob(4, *a.identity.ek_certificate);
    } else {
      s.Null(4);
    }
    s.Blob(5, a.identity.ak_public).Int(6, a.tofu).Text(7, a.policy).Text(8, AgentStatusName(a.status));
    s.Text(9, AgentStateToJson(a.state)).Int(10, a.updated);
    if (s.Step() != SQLITE_DONE) return Error("storing agent " + a.id);
    return Status::Ok();
  }

  Result<std::optional<AgentRecord>> GetAgent(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_,
           "SELECT address,ek_public,ek_certificate,ak_public,tofu,policy,status,state,updated,version FROM agents "
           "WHERE id=?");
    if (!s.ok()) return Error("preparing agent query");
    s.Text(1, id);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return std::optional<AgentRecord>();
    if (rc != SQLITE_ROW) return Error("reading agent " + id);
    AgentRecord a;
    a.id = id;
    a.identity.agent_id = id;
    a.address = s.ColText(0);
    a.identity.ek_public = s.ColBlob(1);
    if (!s.ColNull(2)) a.identity.ek_certificate = s.ColBlob(2);
    a.identity.ak_public = s.ColBlob(3);
    a.tofu = s.ColInt(4) != 0;
    a.policy = s.ColText(5);
    auto status = AgentStatusFromName(s.ColText(6));
    if (!status) return Status::Corrupt("agent " + id + ": unknown status \"" + s.ColText(6) + "\"");
    a.status = *status;
    auto state = AgentStateFromJson(s.ColText(7));
    if (!state.ok()) return state.status().WithPrefix("agent " + id);
    a.state = std::move(state).value();
    a.updated = s.ColInt(8);
    a.version = s.ColInt(9);
    return std::optional<AgentRecord>(std::move(a));
  }

  Result<std::vector<std::string>> ListAgents() override { return Names("SELECT id FROM agents ORDER BY id"); }

  Status RemoveAgent(const std::string& id) override {
    std::lock_guard lock(mu_);
    LIM_RETURN_IF_ERROR(Exec("BEGIN"));
    Stmt a(db_, &stmts_, "DELETE FROM agents WHERE id=?");
    Stmt v(db_, &stmts_, "DELETE FROM verdicts WHERE agent=?");
    bool ok = a.ok() && v.ok() && a.Text(1, id).Step() == SQLITE_DONE && v.Text(1, id).Step() == SQLITE_DONE;
    return Finish(ok ? Status::Ok() : Error("removing agent " + id));
  }

  Status PutPolicy(const std::string& name, const std::string& body) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_, "INSERT OR REPLACE INTO policies(name, body) VALUES (?,?)");
    if (!s.ok() || s.Text(1, name).Text(2, body).Step() != SQLITE_DONE) return Error("storing policy " + name);
    return Status::Ok();
  }

  Result<std::optional<std::string>> GetPolicy(const std::string& name) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_, "SELECT body FROM policies WHERE name=?");
    if (!s.ok()) return Error("preparing policy query");
    int rc = s.Text(1, name).Step();
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return Error("reading policy " + name);
    return std::optional<std::string>(s.ColText(0));
  }

  Result<std::vector<std::string>> ListPolicies() override { return Names("SELECT name FROM policies ORDER BY name"); }

  Status AssignPolicy(const std::string& agent, const std::string& policy) override {
    std::lock_guard lock(mu_);
    Stmt p(db_, &stmts_, "SELECT 1 FROM policies WHERE name=?");
    if (!p.ok() || p.Text(1, policy).Step() != SQLITE_ROW) return Status::NotFound("no policy named " + policy);
    Stmt s(db_, &stmts_, "UPDATE agents SET policy=?, version=version+1 WHERE id=?");
    if (!s.ok() || s.Text(1, policy).Text(2, agent).Step() != SQLITE_DONE) return Error("assigning policy");
    if (sqlite3_changes(db_) == 0) return Status::NotFound("no agent named " + agent);
    return Status::Ok();
  }

  // One transaction per round, not group-committed as on PostgreSQL: with WAL and
  // synchronous=NORMAL a COMMIT flushes nothing, and handing rounds to a leader thread cost
  // more than the commits it saved (attest_bench BM_StoreRecordRound/threads:4: 14.8-17.0k
  // rounds/s grouped against 18.3-19.7k alone).
  // One process: fences are not checked (store.h); the version is.
  Result<int64_t> WriteRound(const std::string& agent, const RoundBasis& basis, const AgentState& state,
                             AgentStatus status, int64_t time, const std::vector<Finding>& findings) override {
    std::lock_guard lock(mu_);
    LIM_RETURN_IF_ERROR(ExecKept("BEGIN IMMEDIATE"));
    int64_t version = 0;
    LIM_RETURN_IF_ERROR(Finish(RecordRoundLocked(agent, basis.version, state, status, time, findings, &version)));
    return version;
  }

  Result<std::vector<VerdictRecord>> History(const std::string& agent, size_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_,
           "SELECT time,attested,reason,entry,pcr,bank,template,path,digest,reference,detail FROM verdicts "
           "WHERE agent=? ORDER BY seq DESC LIMIT ?");
    if (!s.ok()) return Error("preparing history query");
    s.Text(1, agent).Int(2, static_cast<int64_t>(limit));
    std::vector<VerdictRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      VerdictRecord v;
      v.agent = agent;
      v.time = s.ColInt(0);
      v.attested = s.ColInt(1) != 0;
      auto reason = ReasonFromName(s.ColText(2));
      if (!reason) return Status::Corrupt("verdict of " + agent + ": unknown reason \"" + s.ColText(2) + "\"");
      v.finding.reason = *reason;
      if (!s.ColNull(3)) v.finding.entry = static_cast<uint64_t>(s.ColInt(3));
      if (!s.ColNull(4)) v.finding.pcr = static_cast<int>(s.ColInt(4));
      v.finding.bank = s.ColText(5);
      v.finding.tmpl = s.ColText(6);
      v.finding.path = s.ColText(7);
      v.finding.digest = s.ColText(8);
      v.finding.reference = s.ColText(9);
      v.finding.detail = s.ColText(10);
      out.push_back(std::move(v));
    }
    if (rc != SQLITE_DONE) return Error("reading history of " + agent);
    return out;
  }

  Status Acknowledge(const std::string& agent) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_, "UPDATE agents SET status='attested', version=version+1 WHERE id=? AND status='failed'");
    if (!s.ok() || s.Text(1, agent).Step() != SQLITE_DONE) return Error("acknowledging " + agent);
    if (sqlite3_changes(db_) == 0) return Status::NotFound("agent " + agent + " is not failed");
    return Status::Ok();
  }

 private:
  Status RecordRoundLocked(const std::string& agent, std::optional<int64_t> expected, const AgentState& state,
                           AgentStatus status, int64_t time, const std::vector<Finding>& findings, int64_t* version) {
    Stmt cur(db_, &stmts_, "SELECT status, version FROM agents WHERE id=?");
    if (!cur.ok()) return Error("preparing status query");
    int rc = cur.Text(1, agent).Step();
    if (rc == SQLITE_DONE) return Status::NotFound("no agent named " + agent);
    if (rc != SQLITE_ROW) return Error("reading status of " + agent);
    if (cur.ColText(0) == "failed") status = AgentStatus::kFailed;  // sticky
    *version = cur.ColInt(1) + 1;
    if (expected && *expected != cur.ColInt(1)) {
      return Status::Mismatch("agent " + agent + ": its row changed since this round read it (version " +
                              std::to_string(*expected) + ", now " + std::to_string(cur.ColInt(1)) +
                              "): round not written");
    }
    Stmt up(db_, &stmts_, "UPDATE agents SET state=?, status=?, updated=?, version=version+1 WHERE id=?");
    if (!up.ok() ||
        up.Text(1, AgentStateToJson(state)).Text(2, AgentStatusName(status)).Int(3, time).Text(4, agent).Step() !=
            SQLITE_DONE) {
      return Error("storing state of " + agent);
    }
    bool attested = std::none_of(findings.begin(), findings.end(), [](const Finding& f) { return f.failure(); });
    for (const auto& f : findings) {
      Stmt one(db_, &stmts_,
               "INSERT INTO verdicts(agent,time,attested,reason,entry,pcr,bank,template,path,digest,reference,"
               "detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
      one.Text(1, agent).Int(2, time).Int(3, attested).Text(4, ReasonName(f.reason));
      if (f.entry) {
        one.Int(5, static_cast<int64_t>(*f.entry));
      } else {
        one.Null(5);
      }
      if (f.pcr) {
        one.Int(6, *f.pcr);
      } else {
        one.Null(6);
      }
      one.Text(7, f.bank).Text(8, f.tmpl).Text(9, f.path).Text(10, f.digest).Text(11, f.reference).Text(12, f.detail);
      if (one.Step() != SQLITE_DONE) return Error("storing a finding of " + agent);
    }
    if (findings.empty()) return Status::Ok();
    // The oldest beyond the bound go (the (agent, seq) index finds the cut without a scan).
    Stmt trim(db_, &stmts_,
              "DELETE FROM verdicts WHERE agent=?1 AND seq <= (SELECT seq FROM verdicts WHERE agent=?1 "
              "ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
    if (!trim.ok() || trim.Text(1, agent).Int(2, static_cast<int64_t>(history_)).Step() != SQLITE_DONE) {
      return Error("trimming the history of " + agent);
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> Names(const char* sql) {
    std::lock_guard lock(mu_);
    Stmt s(db_, &stmts_, sql);
    if (!s.ok()) return Error("preparing list query");
    std::vector<std::string> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.ColText(0));
    if (rc != SQLITE_DONE) return Error("listing");
    return out;
  }

  // The end of a transaction: COMMIT when the body succeeded, else (or when COMMIT failed:
  // a full disk fails there too) ROLLBACK if SQLite has not rolled back itself already. The
  // body's error is the one returned, not the rollback's.
  Status Finish(Status st) {
    if (st.ok()) {
      st = ExecKept("COMMIT");
      if (st.ok()) return st;
    }
    if (!sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK");
    return st;
  }

  // One statement of the kept set (BEGIN IMMEDIATE, COMMIT of every round): no parse per call.
  Status ExecKept(const char* sql) {
    Stmt s(db_, &stmts_, sql);
    if (s.ok() && s.Step() == SQLITE_DONE) return Status::Ok();
    return Failure(std::string("running ") + sql, sqlite3_errmsg(db_), /*say_what=*/false);
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown error";
      sqlite3_free(err);
      return Failure(std::string("running ") + sql, m, /*say_what=*/false);
    }
    return Status::Ok();
  }
  Status Error(const std::string& what) { return Failure(what, sqlite3_errmsg(db_), true); }
  // A full disk (or quota) is said plainly, with what it means for the store: the call's
  // transaction was rolled back, the file stays consistent, nothing more can be recorded
  // until space is freed.
  Status Failure(const std::string& what, const std::string& message, bool say_what) {
    int code = sqlite3_errcode(db_) & 0xff;
    if (code == SQLITE_FULL) {
      return Status::IoError("verifier database " + path_ + ": " + what + ": " + message +
                             ": the disk is full; nothing of this change was written (the store is unchanged "
                             "and consistent); free space on the filesystem holding " + path_);
    }
    return Status::IoError("verifier database: " + (say_what ? what + ": " : std::string()) + message);
  }

  sqlite3* db_;
  StmtCache stmts_{db_};
  const std::string path_;
  const size_t history_;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options) {
  LIM_RETURN_IF_ERROR(CheckStoreOptions(options));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::IoError("verifier database " + path + ": " + m);
  }
  auto store = std::make_unique<SqliteStore>(db, path, options.history_per_agent);
  LIM_RETURN_IF_ERROR(store->Init().WithPrefix(path));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace lim::attest
