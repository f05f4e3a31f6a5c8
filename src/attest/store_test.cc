// The Store tests, run against both backends (SQLite, and PostgreSQL on a private server
// started by this binary — skipped with the reason when none can be started), and the
// lease tests (several verifiers on one PostgreSQL database).
#include "attest/store.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "attest/leases.h"
#include "attest/pg_store.h"
#include "attest/pg_test_server.h"
#include "tests/testing.h"

namespace lim::attest {
namespace {

// One private PostgreSQL server for the whole binary, started by the first test that needs
// it and stopped by the environment's TearDown (after the last test, also when tests failed).
class PgEnvironment : public ::testing::Environment {
 public:
  static PgTestServer* Server(std::string* why) {
    if (!tried_) {
      tried_ = true;
      auto s = PgTestServer::Start();
      if (s.ok()) {
        server_ = std::move(s).value();
      } else {
        error_ = s.status().message();
      }
    }
    *why = error_;
    return server_.get();
  }
  void TearDown() override { server_.reset(); }

 private:
  static inline bool tried_ = false;
  static inline std::unique_ptr<PgTestServer> server_;
  static inline std::string error_;
};
[[maybe_unused]] const auto* const kPgEnvironment = ::testing::AddGlobalTestEnvironment(new PgEnvironment());

// The agent's row version as stored (-1, and a failure, when it cannot be read).
int64_t VersionOf(Store& s, const std::string& id) {
  auto a = s.GetAgent(id);
  EXPECT_TRUE(a.ok() && a->has_value()) << id;
  return a.ok() && a->has_value() ? (*a)->version : -1;
}

AgentRecord Agent(const std::string& id) {
  AgentRecord a;
  a.id = id;
  a.address = "10.0.0.1:8992";
  a.identity.agent_id = id;
  a.identity.ek_public = {1, 2, 3};
  a.identity.ak_public = {4, 5, 6};
  a.state.next_index = 7;
  a.state.pcr10[0x000b] = Bytes(32, 9);
  return a;
}

// The parameter is the backend; each test gets a fresh database by NewSpec() (an OpenStore
// argument) and can run raw SQL on it with Raw().
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      std::string why;
      pg_ = PgEnvironment::Server(&why);
      if (!pg_) GTEST_SKIP() << "no PostgreSQL server could be started: " << why;
    }
  }
  std::string NewSpec() {
    if (GetParam() == "sqlite") return "sqlite:" + lim::testing::MakeTempDir() + "/verifier.db";
    auto uri = pg_->CreateDatabase();
    EXPECT_TRUE(uri.ok()) << uri.status().message();
    return uri.ok() ? *uri : "postgresql:///none";
  }
  std::unique_ptr<Store> Open(const std::string& spec) {
    auto s = OpenStore(spec);
    EXPECT_TRUE(s.ok()) << spec << ": " << s.status().message();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  Status Raw(const std::string& spec, const std::string& sql) {
    if (GetParam() == "postgresql") return PgTestServer::Exec(spec, sql);
    sqlite3* db = nullptr;
    if (sqlite3_open(spec.substr(7).c_str(), &db) != SQLITE_OK) return Status::IoError("sqlite3_open");
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc == SQLITE_OK ? Status::Ok() : Status::IoError(sql);
  }
  // SQL that takes a store of schema 3 back to schema 2 (no row versions).
  std::string DownToTwo() const {
    if (GetParam() == "postgresql") {
      return "DROP TRIGGER agents_version ON agents; DROP FUNCTION lim_agent_next_version(); "
             "ALTER TABLE agents DROP COLUMN version; DROP SEQUENCE agent_versions; "
             "DELETE FROM schema_version WHERE version = 3";
    }
    return "ALTER TABLE agents DROP COLUMN version; DELETE FROM schema_version WHERE version = 3";
  }
  PgTestServer* pg_ = nullptr;
};

TEST_P(StoreTest, AgentsPoliciesAndStateSurviveReopen) {
  std::string spec = NewSpec();
  {
    auto s = Open(spec);
    ASSERT_TRUE(s);
    AgentRecord a = Agent("web1");
    a.identity.ek_certificate = Bytes{0x30, 0x00};
    ASSERT_TRUE(s->PutAgent(a).ok());
    AgentRecord b = Agent("db1");
    b.tofu = true;
    ASSERT_TRUE(s->PutAgent(b).ok());
    EXPECT_FALSE(s->AssignPolicy("web1", "base").ok());  // no such policy
    ASSERT_TRUE(s->PutPolicy("base", R"({"lim_runtime_policy":1})").ok());
    ASSERT_TRUE(s->AssignPolicy("web1", "base").ok());
    EXPECT_FALSE(s->AssignPolicy("nobody", "base").ok());
  }
  auto s = Open(spec);
  ASSERT_TRUE(s);
  auto names = s->ListAgents();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"db1", "web1"}));
  auto a = s->GetAgent("web1");
  ASSERT_TRUE(a.ok() && a->has_value()) << a.status().message();
  EXPECT_EQ((*a)->policy, "base");
  EXPECT_EQ((*a)->identity.ek_certificate, (Bytes{0x30, 0x00}));
  EXPECT_EQ((*a)->identity.ek_public, (Bytes{1, 2, 3}));
  EXPECT_EQ((*a)->identity.ak_public, (Bytes{4, 5, 6}));
  EXPECT_EQ((*a)->address, "10.0.0.1:8992");
  EXPECT_EQ((*a)->state.next_index, 7u);
  EXPECT_EQ((*a)->state.pcr10.at(0x000b), Bytes(32, 9));
  EXPECT_EQ((*a)->status, AgentStatus::kEnrolling);
  EXPECT_FALSE((*a)->tofu);
  auto b = s->GetAgent("db1");
  EXPECT_TRUE((*b)->tofu);
  EXPECT_FALSE((*b)->identity.ek_certificate);
  EXPECT_FALSE((*s->GetAgent("none")).has_value());
  EXPECT_EQ(*s->ListPolicies(), std::vector<std::string>{"base"});
  EXPECT_EQ(**s->GetPolicy("base"), R"({"lim_runtime_policy":1})");
  EXPECT_FALSE((*s->GetPolicy("nothing")).has_value());
  // Replacing an agent keeps one row.
  AgentRecord again = Agent("web1");
  again.address = "10.0.0.2:8992";
  ASSERT_TRUE(s->PutAgent(again).ok());
  EXPECT_EQ(s->ListAgents()->size(), 2u);
  EXPECT_EQ((*s->GetAgent("web1"))->address, "10.0.0.2:8992");
}

TEST_P(StoreTest, RoundsRecordStateAndFindingsAndFailuresAreSticky) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  AgentState st;
  st.next_index = 100;
  ASSERT_TRUE(s->RecordRound("web1", st, AgentStatus::kAttested, 1000, {}).ok());
  EXPECT_EQ((*s->GetAgent("web1"))->status, AgentStatus::kAttested);
  Finding f;
  f.reason = Reason::kUnknownFile;
  f.entry = 101;
  f.pcr = 10;
  f.tmpl = "ima-ng";
  f.path = "/tmp/evil";
  f.digest = "sha256:00";
  f.reference = "policy: path not listed";
  st.next_index = 102;
  ASSERT_TRUE(s->RecordRound("web1", st, AgentStatus::kFailed, 1002, {f}).ok());
  // A clean round afterwards does not clear the failure.
  ASSERT_TRUE(s->RecordRound("web1", st, AgentStatus::kAttested, 1004, {}).ok());
  auto a = s->GetAgent("web1");
  EXPECT_EQ((*a)->status, AgentStatus::kFailed);
  EXPECT_EQ((*a)->state.next_index, 102u);
  EXPECT_EQ((*a)->updated, 1004);
  auto h = s->History("web1", 10);
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].finding.entry, 101u);
  EXPECT_EQ((*h)[0].finding.pcr, 10);
  EXPECT_EQ((*h)[0].finding.path, "/tmp/evil");
  EXPECT_EQ((*h)[0].finding.reason, Reason::kUnknownFile);
  EXPECT_EQ((*h)[0].time, 1002);
  EXPECT_FALSE((*h)[0].attested);
  EXPECT_EQ(FormatFinding("web1", (*h)[0].finding), FormatFinding("web1", f));
  ASSERT_TRUE(s->Acknowledge("web1").ok());
  EXPECT_EQ((*s->GetAgent("web1"))->status, AgentStatus::kAttested);
  EXPECT_FALSE(s->Acknowledge("web1").ok());  // not failed any more
  EXPECT_FALSE(s->RecordRound("ghost", st, AgentStatus::kAttested, 1, {}).ok());
  ASSERT_TRUE(s->RemoveAgent("web1").ok());
  EXPECT_TRUE(s->History("web1", 10)->empty());
  EXPECT_FALSE((*s->GetAgent("web1")).has_value());
}

// Every write of an agent's row moves its version (store.h), and a round written against a
// version that is no longer the row's is refused with nothing of it written — what lets a
// verifier keep a row across rounds and still never overwrite an operator's change.
TEST_P(StoreTest, RowVersionsMoveOnEveryWriteAndARoundOnAnOldOneIsRefused) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  ASSERT_TRUE(s->PutPolicy("base", R"({"lim_runtime_policy":1})").ok());
  std::set<int64_t> seen;
  auto version = [&] { return VersionOf(*s, "web1"); };
  int64_t v0 = version();
  seen.insert(v0);
  AgentState st;
  st.next_index = 50;
  auto v1 = s->WriteRound("web1", {std::nullopt, v0}, st, AgentStatus::kAttested, 1000, {});
  ASSERT_TRUE(v1.ok()) << v1.status().message();
  EXPECT_EQ(*v1, version());
  EXPECT_TRUE(seen.insert(*v1).second) << *v1;
  ASSERT_TRUE(s->AssignPolicy("web1", "base").ok());
  int64_t v2 = version();
  EXPECT_TRUE(seen.insert(v2).second) << v2;
  // A round begun before the assignment: refused, state and history untouched.
  Finding f;
  f.reason = Reason::kUnknownFile;
  f.path = "/tmp/evil";
  st.next_index = 60;
  auto stale = s->WriteRound("web1", {std::nullopt, *v1}, st, AgentStatus::kFailed, 1002, {f});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kMismatch) << stale.status().message();
  EXPECT_NE(stale.status().message().find("changed since this round read it"), std::string::npos)
      << stale.status().message();
  auto a = s->GetAgent("web1");
  EXPECT_EQ((*a)->state.next_index, 50u);
  EXPECT_EQ((*a)->status, AgentStatus::kAttested);
  EXPECT_EQ((*a)->policy, "base");
  EXPECT_EQ(version(), v2);
  EXPECT_TRUE(s->History("web1", 10)->empty());
  // The same round against the row as it is now is written.
  auto v3 = s->WriteRound("web1", {std::nullopt, v2}, st, AgentStatus::kFailed, 1002, {f});
  ASSERT_TRUE(v3.ok()) << v3.status().message();
  EXPECT_TRUE(seen.insert(*v3).second) << *v3;
  EXPECT_EQ(s->History("web1", 10)->size(), 1u);
  ASSERT_TRUE(s->Acknowledge("web1").ok());
  EXPECT_TRUE(seen.insert(version()).second);
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());  // enrolled again
  EXPECT_TRUE(seen.insert(version()).second);
  // Without a version the round is written whatever the row's (RecordRound).
  ASSERT_TRUE(s->RecordRound("web1", st, AgentStatus::kAttested, 1004, {}).ok());
  EXPECT_TRUE(seen.insert(version()).second);
  auto ghost = s->WriteRound("ghost", {std::nullopt, v0}, st, AgentStatus::kAttested, 1, {});
  EXPECT_EQ(ghost.status().code(), StatusCode::kNotFound) << ghost.status().message();
}

// Rounds written from many threads at once share transactions (group_commit.h) and each gets
// its own outcome: a round for a missing agent, or with a stale fence, is refused alone while
// the rounds batched with it are written; every agent ends with its own last state and its
// findings, none lost, none doubled.
TEST_P(StoreTest, ConcurrentRoundsEachGetTheirOwnOutcome) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  constexpr int kAgents = 6, kRounds = 30;
  for (int a = 0; a < kAgents; ++a) ASSERT_TRUE(s->PutAgent(Agent("web" + std::to_string(a))).ok());
  std::map<std::string, int64_t> fences;
  if (s->Shared()) {
    auto claim = s->ClaimLeases("me", std::chrono::seconds(60));
    ASSERT_TRUE(claim.ok()) << claim.status().message();
    fences = claim->leases;
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int a = 0; a <= kAgents; ++a) {  // the last one is an agent that does not exist
    threads.emplace_back([&, a] {
      const std::string agent = a == kAgents ? "ghost" : "web" + std::to_string(a);
      for (int r = 1; r <= kRounds; ++r) {
        AgentState st;
        st.next_index = static_cast<uint64_t>(r);
        Finding f;
        f.reason = Reason::kUnknownFile;
        f.path = agent + "/" + std::to_string(r);
        std::vector<Finding> findings;
        if (r % 3 == 0) findings.push_back(f);
        Status w;
        if (s->Shared() && a == 0 && r % 5 == 0) {
          // A stale fence: refused, nothing written, the others in its batch unaffected.
          w = s->RecordFencedRound(agent, fences.at(agent) + 100, st, AgentStatus::kAttested, r, findings);
          if (w.code() != StatusCode::kMismatch) ++wrong;
          continue;
        }
        w = s->Shared() && fences.count(agent)
                ? s->RecordFencedRound(agent, fences.at(agent), st, AgentStatus::kAttested, r, findings)
                : s->RecordRound(agent, st, AgentStatus::kAttested, r, findings);
        if (a == kAgents ? w.code() != StatusCode::kNotFound : !w.ok()) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int a = 0; a < kAgents; ++a) {
    const std::string agent = "web" + std::to_string(a);
    auto rec = s->GetAgent(agent);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    const int last = s->Shared() && a == 0 ? kRounds - 1 : kRounds;  // round 30 of agent 0 was stale
    EXPECT_EQ((*rec)->state.next_index, static_cast<uint64_t>(last)) << agent;
    EXPECT_EQ((*rec)->updated, last) << agent;
    auto h = s->History(agent, 100);
    ASSERT_TRUE(h.ok());
    // Findings in rounds 3, 6, … 30; agent 0's rounds 15 and 30 were the stale ones on a
    // shared store.
    size_t expected = kRounds / 3 - (s->Shared() && a == 0 ? 2 : 0);
    ASSERT_EQ(h->size(), expected) << agent;
    for (size_t i = 1; i < h->size(); ++i) EXPECT_GT((*h)[i - 1].time, (*h)[i].time) << agent;
  }
}

// History is newest first and honours its limit; a finding without entry or PCR keeps both unset.
TEST_P(StoreTest, HistoryIsNewestFirstAndLimited) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  for (int i = 0; i < 5; ++i) {
    Finding f;
    f.reason = Reason::kReboot;
    f.detail = "round " + std::to_string(i);
    ASSERT_TRUE(s->RecordRound("web1", {}, AgentStatus::kAttested, 2000 + i, {f}).ok());
  }
  auto h = s->History("web1", 3);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].finding.detail, "round 4");
  EXPECT_EQ((*h)[2].finding.detail, "round 2");
  EXPECT_TRUE((*h)[0].attested);  // a notice is not a failure
  EXPECT_FALSE((*h)[0].finding.entry);
  EXPECT_FALSE((*h)[0].finding.pcr);
}

// Only the newest history_per_agent findings of each agent are kept; another agent's are
// not touched; the bound is range-checked.
TEST_P(StoreTest, HistoryIsBoundedPerAgent) {
  StoreOptions o;
  o.history_per_agent = 5;
  auto s = OpenStore(NewSpec(), o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE((*s)->PutAgent(Agent("web1")).ok());
  ASSERT_TRUE((*s)->PutAgent(Agent("db1")).ok());
  AgentState st;
  Finding f;
  f.reason = Reason::kUnreachable;
  for (int i = 0; i < 12; ++i) {
    f.detail = "round " + std::to_string(i);
    // Two findings in one round count as two.
    std::vector<Finding> round{f};
    if (i == 11) round.push_back(f);
    ASSERT_TRUE((*s)->RecordRound("web1", st, AgentStatus::kUnreachable, 1000 + i, round).ok());
  }
  f.detail = "db1's only one";
  ASSERT_TRUE((*s)->RecordRound("db1", st, AgentStatus::kUnreachable, 999, {f}).ok());
  auto h = (*s)->History("web1", 100);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 5u);
  EXPECT_EQ((*h)[0].finding.detail, "round 11");
  EXPECT_EQ((*h)[1].finding.detail, "round 11");
  EXPECT_EQ((*h)[4].finding.detail, "round 8");
  EXPECT_EQ((*s)->History("db1", 100)->size(), 1u);
  for (size_t bad : {size_t{0}, kMaxHistoryPerAgent + 1}) {
    o.history_per_agent = bad;
    auto refused = OpenStore(NewSpec(), o);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("findings kept per agent must be 1-10000000"), std::string::npos)
        << refused.status().message();
  }
}

// A push agent the operator allowed has no identity yet: empty blobs are stored as such.
TEST_P(StoreTest, AnAgentWithoutIdentityYetIsStored) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  AgentRecord a;
  a.id = "push-1";
  ASSERT_TRUE(s->PutAgent(a).ok());
  auto got = s->GetAgent("push-1");
  ASSERT_TRUE(got.ok() && *got) << got.status().message();
  EXPECT_TRUE((**got).identity.ek_public.empty());
  EXPECT_TRUE((**got).identity.ak_public.empty());
  EXPECT_EQ((**got).address, "");
}

TEST_P(StoreTest, NewerSchemaIsRefused) {
  std::string spec = NewSpec();
  ASSERT_TRUE(Open(spec));
  ASSERT_TRUE(Raw(spec, "INSERT INTO schema_version(version) VALUES (99)").ok());
  auto s = OpenStore(spec);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("schema 99"), std::string::npos) << s.status().message();
}

// A schema-1 store (before the verifiers table and row versions) is upgraded on open, its
// data kept.
TEST_P(StoreTest, SchemaOneIsUpgraded) {
  std::string spec = NewSpec();
  {
    auto s = Open(spec);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  }
  ASSERT_TRUE(Raw(spec, DownToTwo()).ok());
  ASSERT_TRUE(Raw(spec, "DROP TABLE verifiers").ok());
  ASSERT_TRUE(Raw(spec, "DELETE FROM schema_version WHERE version = 2").ok());
  {
    auto s = Open(spec);
    ASSERT_TRUE(s);
    auto claim = s->ClaimLeases("A", std::chrono::seconds(30));
    ASSERT_TRUE(claim.ok()) << claim.status().message();
    EXPECT_EQ(claim->leases.size(), 1u);
    EXPECT_EQ(claim->fair_share, 1u);
    EXPECT_TRUE((*s->GetAgent("web1")).has_value());
  }
  EXPECT_TRUE(Raw(spec, "SELECT count(*) FROM verifiers").ok());  // once closed: SQLite's is held
}

// A schema-2 store (before row versions) is upgraded on open: its rows get a version, and
// rounds are checked against it from then on.
TEST_P(StoreTest, SchemaTwoIsUpgradedWithRowVersions) {
  std::string spec = NewSpec();
  {
    auto s = Open(spec);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  }
  ASSERT_TRUE(Raw(spec, DownToTwo()).ok());
  EXPECT_FALSE(Raw(spec, "SELECT version FROM agents").ok());
  auto s = Open(spec);
  ASSERT_TRUE(s);
  auto a = s->GetAgent("web1");
  ASSERT_TRUE(a.ok() && a->has_value()) << a.status().message();
  int64_t v = (*a)->version;
  AgentState st;
  auto next = s->WriteRound("web1", {std::nullopt, v}, st, AgentStatus::kAttested, 1, {});
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_NE(*next, v);
  EXPECT_EQ(s->WriteRound("web1", {std::nullopt, v}, st, AgentStatus::kAttested, 2, {}).status().code(),
            StatusCode::kMismatch);
}

// Values that would break string-built SQL are stored as they are (every value is bound).
TEST_P(StoreTest, ValuesAreBoundNotSpliced) {
  auto s = Open(NewSpec());
  ASSERT_TRUE(s);
  std::string id = "x'); DROP TABLE agents; --";
  AgentRecord a = Agent(id);
  a.identity.ek_public = {0, 0x5c, 0x27, 0xff};  // NUL, backslash, quote
  ASSERT_TRUE(s->PutAgent(a).ok());
  ASSERT_TRUE(s->PutPolicy("p'\"\\", "{\"a\":\"'\"}").ok());
  auto got = s->GetAgent(id);
  ASSERT_TRUE(got.ok() && *got) << got.status().message();
  EXPECT_EQ((**got).identity.ek_public, (Bytes{0, 0x5c, 0x27, 0xff}));
  EXPECT_EQ(**s->GetPolicy("p'\"\\"), "{\"a\":\"'\"}");
  EXPECT_EQ(s->ListAgents()->size(), 1u);
}

// The unshared (SQLite) store: one process holds the file, a second opener is refused and
// named the way to share; its one owner owns every agent and fences are not checked. The
// shared (PostgreSQL) store: a lease per agent, a verdict written only under its fence.
TEST_P(StoreTest, LeasesOfTheBackend) {
  std::string spec = NewSpec();
  auto a = Open(spec);
  ASSERT_TRUE(a);
  if (GetParam() == "sqlite") {
    const auto t0 = std::chrono::steady_clock::now();
    auto second = OpenStore(spec);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().message();
    EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos)
        << second.status().message();
    EXPECT_NE(second.status().message().find("PostgreSQL"), std::string::npos) << second.status().message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4)) << "waited past the busy timeout";
    // Another process (the sqlite3 shell) cannot even read it while the store is open.
    auto shell = lim::testing::Run("sqlite3 " + lim::testing::ShellQuote(spec.substr(7)) + " 'SELECT count(*) FROM agents'");
    EXPECT_NE(shell.exit_code, 0) << shell.out;
    EXPECT_NE(shell.err.find("locked"), std::string::npos) << shell.err;
    ASSERT_TRUE(a->PutAgent(Agent("web1")).ok());
    auto la = a->ClaimLeases("A", std::chrono::seconds(30));
    ASSERT_TRUE(la.ok());
    EXPECT_FALSE(a->Shared());
    EXPECT_EQ(la->leases, (std::map<std::string, int64_t>{{"web1", 0}}));
    EXPECT_EQ(*a->TakeLease("web1", "B", std::chrono::seconds(30)), 0);
    EXPECT_TRUE(a->RecordFencedRound("web1", 12345, {}, AgentStatus::kAttested, 5, {}).ok());
  } else {
    auto b = Open(spec);
    ASSERT_TRUE(b);
    ASSERT_TRUE(a->PutAgent(Agent("web1")).ok());
    auto la = a->ClaimLeases("A", std::chrono::seconds(30));
    auto lb = b->ClaimLeases("B", std::chrono::seconds(30));
    ASSERT_TRUE(la.ok() && lb.ok());
    EXPECT_TRUE(a->Shared());
    EXPECT_EQ(la->leases, (std::map<std::string, int64_t>{{"web1", 1}}));
    EXPECT_TRUE(lb->leases.empty());
    EXPECT_EQ(b->RecordFencedRound("web1", 12345, {}, AgentStatus::kAttested, 5, {}).code(), StatusCode::kMismatch);
    EXPECT_TRUE(a->RecordFencedRound("web1", 1, {}, AgentStatus::kAttested, 5, {}).ok());
  }
  EXPECT_EQ((*a->GetAgent("web1"))->updated, 5);
  EXPECT_FALSE(a->RecordFencedRound("ghost", 0, {}, AgentStatus::kAttested, 5, {}).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(OpenStoreTest, ArgumentsAreCheckedAndNamed) {
  auto bad = OpenStore("mysql://x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("mysql://x"), std::string::npos);
  EXPECT_EQ(OpenStore("sqlite:").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(OpenStore("sqlite:/proc/no/such/dir/v.db").ok());
  auto url = OpenStore("postgresql://host:notaport/db");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << url.status().message();
  auto opt = OpenStore("postgresql:///db?nosuchoption=1");
  EXPECT_EQ(opt.status().code(), StatusCode::kInvalidArgument) << opt.status().message();
  // Well-formed but nobody listening: unavailable, not a crash.
  auto none = OpenStore("postgresql:///db?host=/nonexistent-dir&connect_timeout=2");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable) << none.status().message();
}

// The store keeps its statements prepared; closing it must still close the database (SQLite
// refuses to close a connection with statements left, and an unclosed last connection leaves
// its -wal file behind). Every kind of call is made first, each statement twice, the rounds'
// nested ones too.
TEST(SqliteStatementsTest, KeptStatementsGiveTheSameAnswersAndTheStoreClosesCleanly) {
  std::string path = lim::testing::MakeTempDir() + "/verifier.db";
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok()) << s.status().message();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE((*s)->PutAgent(Agent("web" + std::to_string(i))).ok());
      ASSERT_TRUE((*s)->PutPolicy("base", "{}").ok());
      ASSERT_TRUE((*s)->AssignPolicy("web0", "base").ok());
      Finding f;
      f.reason = Reason::kUnknownFile;
      f.path = "/usr/bin/x" + std::to_string(i);
      ASSERT_TRUE((*s)->RecordRound("web0", {}, AgentStatus::kFailed, 10 + i, {f, f}).ok());
      EXPECT_FALSE((*s)->RecordRound("ghost", {}, AgentStatus::kAttested, 1, {}).ok());
      auto h = (*s)->History("web0", 10);
      ASSERT_TRUE(h.ok());
      EXPECT_EQ(h->size(), 2u * (i + 1));
      EXPECT_EQ(h->front().finding.path, "/usr/bin/x" + std::to_string(i));
      EXPECT_EQ((*(*s)->GetAgent("web0"))->status, AgentStatus::kFailed);
      EXPECT_TRUE((*s)->Acknowledge("web0").ok());
      EXPECT_EQ((*s)->ListAgents()->size(), static_cast<size_t>(i + 1));
    }
    ASSERT_TRUE((*s)->RemoveAgent("web1").ok());
    EXPECT_FALSE((*(*s)->GetAgent("web1")).has_value());
    EXPECT_EQ(::access((path + "-wal").c_str(), F_OK), 0);  // open: WAL mode
  }
  EXPECT_NE(::access((path + "-wal").c_str(), F_OK), 0) << "the database was not closed";
}

// SQLite on a full disk (a 1 MiB tmpfs filled by a file): the failing round says the disk
// is full and names the store, nothing of it is written (the agent keeps the last round's
// state, its history the last round's findings), reads still work; once the file filling
// the disk is removed the store opens, PRAGMA integrity_check is "ok" and rounds are
// recorded again.
TEST(SqliteFullDiskTest, AClearErrorAndNoCorruptedStore) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts a small tmpfs)";
  std::string dir = lim::testing::MakeTempDir();
  if (::mount("limstoretest", dir.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "mount tmpfs: " << std::strerror(errno);
  }
  struct Unmount {
    std::string dir;
    ~Unmount() {
      if (::umount(dir.c_str()) != 0) ::umount2(dir.c_str(), MNT_DETACH);
    }
  } unmount{dir};
  std::string path = dir + "/verifier.db";
  auto opened = OpenSqliteStore(path);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  std::unique_ptr<Store> s = std::move(opened).value();
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  // All but 128 KiB of the disk goes to a filler file: some rounds fit, then none.
  {
    int fd = ::open((dir + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(4096, 'f');
    off_t size = 0;
    for (ssize_t n; (n = ::write(fd, block.data(), block.size())) > 0;) size += n;
    ASSERT_EQ(::ftruncate(fd, std::max<off_t>(0, size - 128 * 1024)), 0);
    ::close(fd);
  }
  Status st;
  int64_t written = 0;
  for (int64_t i = 1; i <= 5000; ++i) {
    AgentState state;
    state.next_index = static_cast<uint64_t>(i);
    Finding f;
    f.reason = Reason::kUnknownFile;
    f.path = "/round/" + std::to_string(i);
    f.detail = std::string(2000, 'x');
    st = s->RecordRound("web1", state, AgentStatus::kFailed, i, {f});
    if (!st.ok()) break;
    written = i;
  }
  ASSERT_FALSE(st.ok()) << "the disk never filled";
  std::printf("full after %lld more rounds: %s\n", static_cast<long long>(written), st.message().c_str());
  EXPECT_NE(st.message().find("the disk is full"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("free space on the filesystem holding " + path), std::string::npos) << st.message();
  // Nothing of the failed round: the last round's state and findings, reads still work.
  auto rec = s->GetAgent("web1");
  ASSERT_TRUE(rec.ok() && *rec) << rec.status().message();
  EXPECT_EQ((*rec)->updated, written);
  EXPECT_EQ((*rec)->state.next_index, static_cast<uint64_t>(written));
  auto history = s->History("web1", 100000);
  ASSERT_TRUE(history.ok()) << history.status().message();
  EXPECT_EQ(history->size(), static_cast<size_t>(written));
  ASSERT_GT(written, 0);
  EXPECT_EQ(history->front().finding.path, "/round/" + std::to_string(written));
  // Still full: the next round fails the same way (no crash, no half-open transaction).
  Status again = s->RecordRound("web1", {}, AgentStatus::kAttested, 999999, {Finding{}});
  EXPECT_FALSE(again.ok());
  s.reset();

  ASSERT_EQ(::unlink((dir + "/filler").c_str()), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string check;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) += values[0] ? values[0] : "";
        return 0;
      },
      &check, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(check, "ok");
  auto back = OpenSqliteStore(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ((*(*back)->GetAgent("web1"))->updated, written);
  AgentState next;
  next.next_index = static_cast<uint64_t>(written + 1);
  EXPECT_TRUE((*back)->RecordRound("web1", next, AgentStatus::kAttested, written + 1, {}).ok());
  EXPECT_EQ((*(*back)->GetAgent("web1"))->state.next_index, static_cast<uint64_t>(written + 1));
}

// --- Leases on PostgreSQL: two store handles are two verifiers. ---

std::vector<std::string> AddAgents(Store& s, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof(id), "a%03d", i);
    EXPECT_TRUE(s.PutAgent(Agent(id)).ok());
    ids.push_back(id);
  }
  return ids;
}

// Two store handles on one fresh database: two verifiers.
class PgLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    PgTestServer* pg = PgEnvironment::Server(&why);
    if (!pg) GTEST_SKIP() << "no PostgreSQL server could be started: " << why;
    auto uri = pg->CreateDatabase();
    ASSERT_TRUE(uri.ok()) << uri.status().message();
    uri_ = *uri;
    auto a = OpenPgStore(uri_);
    auto b = OpenPgStore(uri_);
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = std::move(a).value();
    b_ = std::move(b).value();
  }
  std::string uri_;
  std::unique_ptr<Store> a_, b_;
};

// A batch of rounds locks its lease rows with NOWAIT (pg_store.cc CommitRounds): a lease row
// another transaction holds fails that statement, the batch is rolled back and each round is
// written on its own (waiting for the lock): every round written once, none lost.
TEST_F(PgLeaseTest, ABusyLeaseRowInABatchFallsBackToOneByOne) {
  constexpr int kAgents = 6;
  for (int a = 0; a < kAgents; ++a) ASSERT_TRUE(a_->PutAgent(Agent("web" + std::to_string(a))).ok());
  auto claim = a_->ClaimLeases("me", std::chrono::seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status().message();
  ASSERT_EQ(claim->leases.size(), static_cast<size_t>(kAgents));
  // Other sessions hold the lease rows of web0 and web1 (as a verifier taking them over
  // would, mid-claim). web1's round goes first, alone, and waits for its row; the others
  // queue behind it. web1's row is let go first: the others then go out together while
  // web0's row is still held.
  auto hold = [&](const char* agent) {
    PGconn* c = PQconnectdb(uri_.c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    PGresult* r = PQexec(c, (std::string("SELECT fence FROM leases WHERE agent='") + agent + "' FOR UPDATE").c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    return c;
  };
  auto release = [](PGconn* c) {
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
  };
  PGconn* holder0 = hold("web0");
  PGconn* holder1 = hold("web1");
  std::vector<std::thread> threads;
  std::vector<Status> results(kAgents);
  for (int a : {1, 0, 2, 3, 4, 5}) {
    if (a == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    threads.emplace_back([&, a] {
      const std::string agent = "web" + std::to_string(a);
      AgentState st;
      st.next_index = 1000 + static_cast<uint64_t>(a);
      Finding f;
      f.reason = Reason::kUnknownFile;
      f.path = "/tmp/" + agent;
      results[static_cast<size_t>(a)] =
          a_->RecordFencedRound(agent, claim->leases.at(agent), st, AgentStatus::kFailed, 7, {f});
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  release(holder1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  release(holder0);
  for (auto& t : threads) t.join();
  for (int a = 0; a < kAgents; ++a) {
    const std::string agent = "web" + std::to_string(a);
    EXPECT_TRUE(results[static_cast<size_t>(a)].ok()) << agent << ": " << results[static_cast<size_t>(a)].message();
    auto rec = a_->GetAgent(agent);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    EXPECT_EQ((*rec)->state.next_index, 1000u + static_cast<uint64_t>(a)) << agent;
    EXPECT_EQ((*rec)->status, AgentStatus::kFailed) << agent;
    auto h = a_->History(agent, 10);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->size(), 1u) << agent;
  }
}

// On PostgreSQL the version moves whoever writes the row (a trigger: an operator's psql, an
// older lim-verifier), and one sequence serves every row, so an agent removed and enrolled
// again never comes back at a version a verifier may still hold.
TEST_F(PgLeaseTest, EveryWriterMovesTheVersionAndNoneRepeats) {
  Store* s = a_.get();
  ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
  std::set<int64_t> seen;
  auto version = [&] { return VersionOf(*s, "web1"); };
  int64_t held = version();
  seen.insert(held);
  ASSERT_TRUE(PgTestServer::Exec(uri_, "UPDATE agents SET address='10.9.9.9:8992' WHERE id='web1'").ok());
  EXPECT_TRUE(seen.insert(version()).second);
  AgentState st;
  EXPECT_EQ(s->WriteRound("web1", {std::nullopt, held}, st, AgentStatus::kAttested, 1, {}).status().code(),
            StatusCode::kMismatch);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s->RemoveAgent("web1").ok());
    ASSERT_TRUE(s->PutAgent(Agent("web1")).ok());
    EXPECT_TRUE(seen.insert(version()).second) << version();
  }
}

TEST_F(PgLeaseTest, TwoVerifiersNeverBothOwnAnAgent) {
  auto ids = AddAgents(*a_, 200);
  // Both claim at the same moment, many times: SKIP LOCKED hands each lease to one of them.
  std::map<std::string, int64_t> ma, mb;
  std::thread ta([&] {
    for (int i = 0; i < 20; ++i) ma = a_->ClaimLeases("A", std::chrono::seconds(30))->leases;
  });
  std::thread tb([&] {
    for (int i = 0; i < 20; ++i) mb = b_->ClaimLeases("B", std::chrono::seconds(30))->leases;
  });
  ta.join();
  tb.join();
  std::set<std::string> all;
  for (const auto& [id, fence] : ma) {
    EXPECT_EQ(mb.count(id), 0u) << id << " owned by both";
    EXPECT_EQ(fence, 1) << id;
    all.insert(id);
  }
  for (const auto& [id, fence] : mb) all.insert(id);
  EXPECT_EQ(all.size(), ids.size());
  // Renewing keeps the fences.
  auto again = a_->ClaimLeases("A", std::chrono::seconds(30));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->leases, ma);
}

TEST_F(PgLeaseTest, AnExpiredLeaseIsTakenOverAndTheStaleFenceIsRefused) {
  AddAgents(*a_, 3);
  auto la = a_->ClaimLeases("A", std::chrono::milliseconds(300));
  ASSERT_TRUE(la.ok());
  ASSERT_EQ(la->leases.size(), 3u);
  int64_t fa = la->leases.at("a001");
  EXPECT_TRUE(b_->ClaimLeases("B", std::chrono::seconds(30))->leases.empty());  // A's leases are valid
  // A pauses past its lease; B takes every agent over with the next fence.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto lb = b_->ClaimLeases("B", std::chrono::seconds(30));
  ASSERT_TRUE(lb.ok());
  ASSERT_EQ(lb->leases.size(), 3u);
  EXPECT_EQ(lb->leases.at("a001"), fa + 1);
  ASSERT_TRUE(b_->RecordFencedRound("a001", lb->leases.at("a001"), {}, AgentStatus::kAttested, 2000, {}).ok());
  // A wakes and writes the verdict of the round it had begun: refused, nothing written.
  Finding f;
  f.reason = Reason::kUnknownFile;
  f.path = "/stale";
  Status stale = a_->RecordFencedRound("a001", fa, {}, AgentStatus::kFailed, 2001, {f});
  EXPECT_EQ(stale.code(), StatusCode::kMismatch) << stale.message();
  auto rec = b_->GetAgent("a001");
  EXPECT_EQ((*rec)->status, AgentStatus::kAttested);
  EXPECT_EQ((*rec)->updated, 2000);
  EXPECT_TRUE(b_->History("a001", 10)->empty());
  // And A's next claim finds nothing of its own.
  EXPECT_TRUE(a_->ClaimLeases("A", std::chrono::seconds(30))->leases.empty());
}

TEST_F(PgLeaseTest, ReleasedLeasesAreTakenAtOnceAndNewAgentsGetALease) {
  AddAgents(*a_, 2);
  ASSERT_EQ(a_->ClaimLeases("A", std::chrono::seconds(30))->leases.size(), 2u);
  ASSERT_TRUE(a_->ReleaseLeases("A").ok());
  auto lb = b_->ClaimLeases("B", std::chrono::seconds(30));
  ASSERT_EQ(lb->leases.size(), 2u);
  EXPECT_EQ(lb->leases.at("a000"), 2);
  // An agent enrolled later (through A) is free until someone claims it.
  ASSERT_TRUE(a_->PutAgent(Agent("late")).ok());
  auto la = a_->ClaimLeases("A", std::chrono::seconds(30));
  EXPECT_EQ(la->leases, (std::map<std::string, int64_t>{{"late", 1}}));
  // Removing an agent removes its lease.
  ASSERT_TRUE(b_->RemoveAgent("a000").ok());
  EXPECT_EQ(b_->ClaimLeases("B", std::chrono::seconds(30))->leases.size(), 1u);
}

// A verifier keeps working when the connection was cut (the server killed the backend).
TEST_F(PgLeaseTest, ALostConnectionIsReestablished) {
  AddAgents(*a_, 1);
  ASSERT_TRUE(PgTestServer::Exec(uri_, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                  .ok());
  // The first call may see the cut; the next reconnects and prepares its statements again.
  (void)a_->ListAgents();
  auto ids = a_->ListAgents();
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  EXPECT_EQ(ids->size(), 1u);
  EXPECT_TRUE(a_->RecordRound("a000", {}, AgentStatus::kAttested, 9, {}).ok());
}

// A server that accepts the TCP connection and never answers (a hung host): opening fails
// after the default connect_timeout (5 s), or the URI's own when it gives one — not never.
TEST(PgConnectTest, AServerThatNeverAnswersTimesOut) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(fd, 8), 0);  // the kernel completes the handshakes; nobody reads
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string base = "postgresql://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/lim";
  auto timed = [](const std::string& uri) {
    auto t0 = std::chrono::steady_clock::now();
    auto s = OpenPgStore(uri);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnavailable) << s.status().message();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  };
  auto own = timed(base + "?connect_timeout=2");
  auto dflt = timed(base);
  ::close(fd);
  std::printf("a server that never answers: given up after %lld ms (URI's 2 s), %lld ms (default 5 s)\n",
              static_cast<long long>(own), static_cast<long long>(dflt));
  EXPECT_GE(own, 1500);
  EXPECT_LE(own, 4000);
  EXPECT_GE(dflt, 4500);
  EXPECT_LE(dflt, 8000);
}

// LeaseKeeper on SQLite: no thread, every agent ours with fence 0 (the single-process path).
TEST(LeaseKeeperTest, OnSqliteEveryAgentIsOwned) {
  auto s = OpenSqliteStore(":memory:");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->PutAgent(Agent("web1")).ok());
  int calls = 0;
  LeaseKeeper k(**s, "", std::chrono::milliseconds(200), [&](const std::vector<std::string>&) { ++calls; }, nullptr);
  ASSERT_TRUE(k.Start().ok());
  EXPECT_TRUE(k.Owns("web1"));
  EXPECT_TRUE(k.Owns("enrolled-later"));
  EXPECT_EQ(k.Fence("web1"), 0);
  EXPECT_EQ(calls, 0);
  EXPECT_NE(k.owner().find('/'), std::string::npos);  // HOST/PID/RANDOM
}

// Two keepers (two verifier processes) on one database: the first owns every agent until the
// second joins, then they share; the one stopped (released at once) is taken over by the
// other — the acquired callback names the agents.
TEST_F(PgLeaseTest, KeepersShareTheAgentsAndTakeOverOnStop) {
  AddAgents(*a_, 4);
  std::mutex mu;
  std::vector<std::string> got_b;
  std::vector<std::string> log;
  auto ka = std::make_unique<LeaseKeeper>(*a_, "A", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(ka->Start().ok());
  EXPECT_EQ(ka->ttl(), std::chrono::milliseconds(300));
  EXPECT_EQ(ka->owned(), 4u);
  EXPECT_EQ(ka->Fence("a001"), 1);
  LeaseKeeper kb(
      *b_, "B", std::chrono::milliseconds(200),
      [&](const std::vector<std::string>& ids) {
        std::lock_guard lk(mu);
        got_b.insert(got_b.end(), ids.begin(), ids.end());
      },
      [&](const std::string& line) {
        std::lock_guard lk(mu);
        log.push_back(line);
      });
  ASSERT_TRUE(kb.Start().ok());
  EXPECT_FALSE(kb.Fence("a001"));
  // A drains its surplus (the last agents) at its next claim and releases it at the one
  // after; B takes it: two each.
  for (int i = 0; i < 200 && kb.owned() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ka->owned(), 2u);
  EXPECT_EQ(kb.owned(), 2u);
  EXPECT_TRUE(ka->Owns("a000") && ka->Owns("a001") && kb.Owns("a002") && kb.Owns("a003"));
  EXPECT_EQ(kb.Fence("a003"), 2);
  // It stays so while both run (renewed every 100 ms, lease 300 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(ka->Owns("a001") && !kb.Owns("a001"));
  EXPECT_EQ(kb.owned(), 2u);
  ka.reset();  // Stop: released
  for (int i = 0; i < 100 && !kb.Owns("a001"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(kb.Owns("a000") && kb.Owns("a001") && kb.Owns("a002") && kb.Owns("a003"));
  EXPECT_EQ(kb.Fence("a001"), 2);
  std::lock_guard lk(mu);
  EXPECT_EQ(got_b, (std::vector<std::string>{"a002", "a003", "a000", "a001"}));
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "lim-verifier: B attests 4 agents (was 2)");
}

// A push agent that posts to the verifier holding its claimed lease chose that verifier:
// balancing drains other agents instead (the push agent would take its lease back at its
// next push, a fence moved and a row read again for nothing).
TEST_F(PgLeaseTest, APushAgentsChosenLeaseIsNotDrained) {
  AddAgents(*a_, 4);
  LeaseKeeper ka(*a_, "A", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(ka.Start().ok());
  ASSERT_EQ(ka.owned(), 4u);
  // a003 would be drained first (the last agents go first); it pushes to A.
  EXPECT_EQ(ka.Chosen("a003"), 1);
  EXPECT_FALSE(ka.Chosen("a999"));
  LeaseKeeper kb(*b_, "B", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(kb.Start().ok());
  for (int i = 0; i < 200 && kb.owned() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ka.owned(), 2u);
  EXPECT_EQ(kb.owned(), 2u);
  EXPECT_TRUE(ka.Owns("a000") && ka.Owns("a003")) << "the chosen lease was drained";
  EXPECT_TRUE(kb.Owns("a001") && kb.Owns("a002"));
  EXPECT_EQ(ka.Fence("a003"), 1);  // never moved
}

// A Store that forwards to another until "killed": then every call fails and nothing is
// released — a verifier process killed -9 (its leases and heartbeat only expire).
class KillableStore final : public Store {
 public:
  explicit KillableStore(std::unique_ptr<Store> s) : s_(std::move(s)) {}
  void Kill() { dead_ = true; }
  Status PutAgent(const AgentRecord& a) override { return s_->PutAgent(a); }
  Result<std::optional<AgentRecord>> GetAgent(const std::string& id) override { return s_->GetAgent(id); }
  Result<std::vector<std::string>> ListAgents() override { return s_->ListAgents(); }
  Status RemoveAgent(const std::string& id) override { return s_->RemoveAgent(id); }
  Status PutPolicy(const std::string& n, const std::string& b) override { return s_->PutPolicy(n, b); }
  Result<std::optional<std::string>> GetPolicy(const std::string& n) override { return s_->GetPolicy(n); }
  Result<std::vector<std::string>> ListPolicies() override { return s_->ListPolicies(); }
  Status AssignPolicy(const std::string& a, const std::string& p) override { return s_->AssignPolicy(a, p); }
  Result<int64_t> WriteRound(const std::string& a, const RoundBasis& b, const AgentState& st, AgentStatus s, int64_t t,
                             const std::vector<Finding>& f) override {
    return s_->WriteRound(a, b, st, s, t, f);
  }
  Result<std::vector<VerdictRecord>> History(const std::string& a, size_t l) override { return s_->History(a, l); }
  Status Acknowledge(const std::string& a) override { return s_->Acknowledge(a); }
  bool Shared() const override { return true; }
  Result<LeaseClaim> ClaimLeases(const std::string& o, std::chrono::milliseconds t,
                                 const std::vector<std::string>& g) override {
    if (dead_) return Status::Unavailable("killed");
    return s_->ClaimLeases(o, t, g);
  }
  Result<int64_t> TakeLease(const std::string& a, const std::string& o, std::chrono::milliseconds t) override {
    return s_->TakeLease(a, o, t);
  }
  Status ReleaseLeases(const std::string& o) override { return dead_ ? Status::Unavailable("killed") : s_->ReleaseLeases(o); }

 private:
  std::unique_ptr<Store> s_;
  std::atomic<bool> dead_{false};
};

// Waits (up to ms) for pred; whether it held.
template <typename Pred>
bool Eventually(Pred pred, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Balancing between live verifiers (docs/fleet.md): 60 agents, two keepers → 30 each; a
// third joins → 20 each, the surplus handed over only after the round in flight on it
// ended (that round's verdict is still written); one killed → the other two take its
// agents over within two intervals (30 each). Never an agent owned by two at once.
TEST_F(PgLeaseTest, LiveVerifiersShareTheAgentsAndRebalance) {
  constexpr int kIntervalMs = 200;
  const auto interval = std::chrono::milliseconds(kIntervalMs);
  auto ids = AddAgents(*a_, 60);
  auto c = OpenPgStore(uri_);
  ASSERT_TRUE(c.ok());
  KillableStore kc_store(std::move(c).value());
  LeaseKeeper ka(*a_, "A", interval, nullptr, nullptr), kb(*b_, "B", interval, nullptr, nullptr);
  auto kc = std::make_unique<LeaseKeeper>(kc_store, "C", interval, nullptr, nullptr);
  auto exclusive = [&] {
    for (const auto& id : ids) {
      int owners = ka.Owns(id) + kb.Owns(id) + (kc ? kc->Owns(id) : 0);
      if (owners > 1) return false;
    }
    return true;
  };
  ASSERT_TRUE(ka.Start().ok());
  ASSERT_TRUE(kb.Start().ok());
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return ka.owned() == 30 && kb.owned() == 30; }, 20 * kIntervalMs))
      << ka.owned() << " " << kb.owned();
  std::printf("two verifiers: 30/30 after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
  EXPECT_TRUE(exclusive());
  EXPECT_EQ(ka.fair_share(), 30u);

  // A round in flight on A's last agent (the first one A drains) when C joins.
  std::string pinned = "a029";
  ASSERT_TRUE(ka.Owns(pinned));
  std::optional<int64_t> fence = ka.BeginRound(pinned);
  ASSERT_TRUE(fence);
  ASSERT_TRUE(kc->Start().ok());
  t0 = std::chrono::steady_clock::now();
  // B hands 10 over; A only 9 while the round runs: its lease is kept, not released mid-round.
  ASSERT_TRUE(Eventually([&] { return kc->owned() == 19 && kb.owned() == 20; }, 20 * kIntervalMs))
      << ka.owned() << " " << kb.owned() << " " << kc->owned();
  std::this_thread::sleep_for(3 * interval);
  EXPECT_EQ(kc->owned(), 19u);
  EXPECT_FALSE(ka.Owns(pinned));  // draining: no new round starts on it
  EXPECT_FALSE(kc->Owns(pinned));
  EXPECT_TRUE(exclusive());
  // The round ends and writes its verdict: the lease never moved, it is accepted.
  Status st = a_->RecordFencedRound(pinned, *fence, {}, AgentStatus::kAttested, 4242, {});
  EXPECT_TRUE(st.ok()) << st.message();
  ka.EndRound(pinned);
  ASSERT_TRUE(Eventually([&] { return ka.owned() == 20 && kb.owned() == 20 && kc->owned() == 20; }, 20 * kIntervalMs))
      << ka.owned() << " " << kb.owned() << " " << kc->owned();
  std::printf("third verifier joined: 20/20/20 after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
  EXPECT_TRUE(kc->Owns(pinned));
  EXPECT_EQ((*a_->GetAgent(pinned))->updated, 4242);
  EXPECT_TRUE(exclusive());

  // C killed: no renewal, no release. Its 20 agents go to A and B within two intervals.
  std::vector<std::string> of_c;
  for (const auto& id : ids) {
    if (kc->Owns(id)) of_c.push_back(id);
  }
  ASSERT_EQ(of_c.size(), 20u);
  int64_t c_fence = *kc->Fence(of_c[0]);
  kc_store.Kill();
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return ka.owned() == 30 && kb.owned() == 30; }, 20 * kIntervalMs))
      << ka.owned() << " " << kb.owned();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  // Lease 1.5 intervals after the last renewal (at most interval/2 before the kill), the
  // next claim within interval/2; a little slack for this loaded machine.
  EXPECT_LE(took, 2 * kIntervalMs + 250);
  std::printf("one of three killed: taken over (30/30) after %lld ms (interval %d ms)\n", static_cast<long long>(took),
              kIntervalMs);
  auto owner_fence = ka.Fence(of_c[0]) ? ka.Fence(of_c[0]) : kb.Fence(of_c[0]);
  ASSERT_TRUE(owner_fence);
  EXPECT_EQ(*owner_fence, c_fence + 1);
  // C's late write of a round it had begun is refused.
  EXPECT_EQ(kc_store.RecordFencedRound(of_c[0], c_fence, {}, AgentStatus::kFailed, 1, {}).code(), StatusCode::kMismatch);
  kc.reset();
  EXPECT_TRUE(exclusive());
}

// Push agents: the lease follows the connection. TakeLease moves a lease held by another
// verifier (fence + 1, its late write refused), keeps the fence when the taker held it, and
// a keeper never drains a lease it took so (the agent would take it back at its next push).
TEST_F(PgLeaseTest, APushAgentsLeaseFollowsItsConnection) {
  AddAgents(*a_, 4);
  auto la = a_->ClaimLeases("A", std::chrono::seconds(30));
  ASSERT_TRUE(la.ok());
  ASSERT_EQ(la->leases.size(), 4u);
  auto fb = b_->TakeLease("a000", "B", std::chrono::seconds(30));
  ASSERT_TRUE(fb.ok()) << fb.status().message();
  EXPECT_EQ(*fb, la->leases.at("a000") + 1);
  EXPECT_EQ(*b_->TakeLease("a000", "B", std::chrono::seconds(30)), *fb);  // B's already: same fence
  EXPECT_EQ(a_->RecordFencedRound("a000", la->leases.at("a000"), {}, AgentStatus::kAttested, 1, {}).code(),
            StatusCode::kMismatch);
  EXPECT_TRUE(b_->RecordFencedRound("a000", *fb, {}, AgentStatus::kAttested, 2, {}).ok());
  EXPECT_EQ(a_->ClaimLeases("A", std::chrono::seconds(30))->leases.count("a000"), 0u);
  EXPECT_EQ(b_->TakeLease("ghost", "B", std::chrono::seconds(30)).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(a_->ReleaseLeases("A").ok());
  ASSERT_TRUE(b_->ReleaseLeases("B").ok());

  // A keeper that took two push agents keeps them while another verifier joins.
  LeaseKeeper ka(*a_, "A", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(ka.Start().ok());
  ASSERT_EQ(ka.owned(), 4u);
  ASSERT_TRUE(ka.Take("a002").ok());
  ASSERT_TRUE(ka.Take("a003").ok());
  LeaseKeeper kb(*b_, "B", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(kb.Start().ok());
  ASSERT_TRUE(Eventually([&] { return kb.owned() == 2; }, 4000)) << kb.owned();
  EXPECT_TRUE(ka.Owns("a002") && ka.Owns("a003"));
  EXPECT_TRUE(kb.Owns("a000") && kb.Owns("a001"));
}

// A connection that broke while idle (the server restarted): a read or a transaction on
// it is asked again on a new connection, so it does not fail; nothing had been changed by
// the first try. (A write outside a transaction is not repeated: TheDatabaseRestartedMidRun.)
TEST_F(PgLeaseTest, AReadOrATransactionAfterARestartIsAskedAgainOnANewConnection) {
  std::string why;
  PgTestServer* pg = PgEnvironment::Server(&why);
  ASSERT_NE(pg, nullptr);
  AddAgents(*a_, 2);
  ASSERT_TRUE(a_->PutPolicy("p", "{}").ok());
  ASSERT_TRUE(b_->GetAgent("a000").ok());
  for (int i = 0; i < 2; ++i) {
    Status down = pg->Stop();
    ASSERT_TRUE(down.ok()) << down.message();
    Status up = pg->Restart();
    ASSERT_TRUE(up.ok()) << up.message();
    // Each store's connection is broken now; its first call finds out.
    auto got = a_->GetAgent("a000");
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(got->has_value());
    auto policies = b_->ListPolicies();
    ASSERT_TRUE(policies.ok()) << policies.status().message();
    EXPECT_EQ(*policies, std::vector<std::string>{"p"});
  }
  // A transaction's BEGIN: a lease claim right after a restart.
  ASSERT_TRUE(pg->Stop().ok());
  ASSERT_TRUE(pg->Restart().ok());
  auto claim = a_->ClaimLeases("me", std::chrono::seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status().message();
  EXPECT_EQ(claim->leases.size(), 2u);
}

// The database restarted under load (pg_ctl stop -m fast, then start): the keepers report
// the outage (rounds stop: no lease is held), retry with backoff, and after the restart
// report how long it was away, reconnect and share the agents again; a writer doing fenced
// rounds all along resumes, and never writes under a lease it does not hold.
TEST_F(PgLeaseTest, TheDatabaseRestartedMidRun) {
  std::string why;
  PgTestServer* pg = PgEnvironment::Server(&why);
  ASSERT_NE(pg, nullptr);
  auto ids = AddAgents(*a_, 20);
  std::mutex mu;
  std::vector<std::string> log;
  auto logger = [&](const std::string& l) {
    std::lock_guard lk(mu);
    log.push_back(l);
  };
  LeaseKeeper ka(*a_, "A", std::chrono::milliseconds(200), nullptr, logger);
  LeaseKeeper kb(*b_, "B", std::chrono::milliseconds(200), nullptr, nullptr);
  ASSERT_TRUE(ka.Start().ok());
  ASSERT_TRUE(kb.Start().ok());
  ASSERT_TRUE(Eventually([&] { return ka.owned() == 10 && kb.owned() == 10; }, 4000));
  // The load: A's rounds, each written under the fence it began with.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0}, failed{0}, refused{0};
  std::thread rounds([&] {
    int64_t t = 1;
    while (!stop) {
      for (const auto& id : ids) {
        auto fence = ka.BeginRound(id);
        if (!fence) continue;
        Status st = a_->RecordFencedRound(id, *fence, {}, AgentStatus::kAttested, ++t, {});
        ka.EndRound(id);
        (st.ok() ? written : st.code() == StatusCode::kMismatch ? refused : failed)++;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int before = written;
  EXPECT_GT(before, 0);
  // A round in flight across the stop, held here: its write must fail and say why. (The
  // loop's own rounds usually have some in flight too, but on a loaded machine the keepers
  // may drop every lease before the loop's next pass, and it then writes nothing.)
  std::string held_id;
  std::optional<int64_t> held_fence;
  for (const auto& id : ids) {
    if ((held_fence = ka.BeginRound(id))) {
      held_id = id;
      break;
    }
  }
  ASSERT_TRUE(held_fence.has_value());
  Status down = pg->Stop();
  auto t0 = std::chrono::steady_clock::now();
  int at_stop = written;
  EXPECT_TRUE(down.ok()) << down.message();
  Status held = a_->RecordFencedRound(held_id, *held_fence, {}, AgentStatus::kAttested, 1000000, {});
  ka.EndRound(held_id);
  EXPECT_FALSE(held.ok());
  EXPECT_NE(held.code(), StatusCode::kMismatch) << held.message();  // the store is away; the lease did not move
  EXPECT_TRUE(Eventually([&] { return ka.owned() == 0 && kb.owned() == 0; }, 3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  int during = written;
  EXPECT_EQ(during, at_stop);  // nothing can be written while it is away
  Status up = pg->Restart();
  ASSERT_TRUE(up.ok()) << up.message();  // later tests need the server
  auto t_up = std::chrono::steady_clock::now();
  // Backoff is at most two intervals: back within that (and a claim's time).
  EXPECT_TRUE(Eventually([&] { return ka.owned() == 10 && kb.owned() == 10; }, 3000)) << ka.owned() << " " << kb.owned();
  auto back = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t_up).count();
  EXPECT_LE(back, 2 * 200 + 600);
  ASSERT_TRUE(Eventually([&] { return written > during + 10; }, 3000));
  stop = true;
  rounds.join();
  std::printf("database away %lld ms; leases back %lld ms after the restart; rounds written %d before the stop, %d while "
              "pg_ctl stopped it, %d in all; %d writes failed while it was away, %d refused\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(t_up - t0).count()),
              static_cast<long long>(back), before, at_stop - before, written.load(), failed.load(), refused.load());
  EXPECT_EQ(refused, 0);
  std::lock_guard lk(mu);
  std::string all;
  for (const auto& l : log) all += l + "\n";
  EXPECT_NE(all.find("lim-verifier: store unavailable: "), std::string::npos) << all;
  EXPECT_NE(all.find("rounds of 10 agents stop until it is back"), std::string::npos) << all;
  EXPECT_NE(all.find("lim-verifier: store back after "), std::string::npos) << all;
  EXPECT_NE(all.find("agents were not run; rounds resume"), std::string::npos) << all;
}

}  // namespace
}  // namespace lim::attest
