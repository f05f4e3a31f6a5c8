#include "attest/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/testing.h"

namespace lim::attest {
namespace {

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

TEST(SqliteStoreTest, AgentsPoliciesAndStateSurviveReopen) {
  std::string path = lim::testing::MakeTempDir() + "/verifier.db";
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok()) << s.status().message();
    AgentRecord a = Agent("web1");
    a.identity.ek_certificate = Bytes{0x30, 0x00};
    ASSERT_TRUE((*s)->PutAgent(a).ok());
    AgentRecord b = Agent("db1");
    b.tofu = true;
    ASSERT_TRUE((*s)->PutAgent(b).ok());
    EXPECT_FALSE((*s)->AssignPolicy("web1", "base").ok());  // no such policy
    ASSERT_TRUE((*s)->PutPolicy("base", R"({"lim_runtime_policy":1})").ok());
    ASSERT_TRUE((*s)->AssignPolicy("web1", "base").ok());
    EXPECT_FALSE((*s)->AssignPolicy("nobody", "base").ok());
  }
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.ok());
  auto names = (*s)->ListAgents();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"db1", "web1"}));
  auto a = (*s)->GetAgent("web1");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->policy, "base");
  EXPECT_EQ((*a)->identity.ek_certificate, (Bytes{0x30, 0x00}));
  EXPECT_EQ((*a)->state.next_index, 7u);
  EXPECT_EQ((*a)->state.pcr10.at(0x000b), Bytes(32, 9));
  EXPECT_EQ((*a)->status, AgentStatus::kEnrolling);
  auto b = (*s)->GetAgent("db1");
  EXPECT_TRUE((*b)->tofu);
  EXPECT_FALSE((*b)->identity.ek_certificate);
  EXPECT_FALSE((*(*s)->GetAgent("none")).has_value());
  EXPECT_EQ(*(*s)->ListPolicies(), std::vector<std::string>{"base"});
  EXPECT_EQ(**(*s)->GetPolicy("base"), R"({"lim_runtime_policy":1})");
}

TEST(SqliteStoreTest, RoundsRecordStateAndFindingsAndFailuresAreSticky) {
  auto s = OpenSqliteStore(":memory:");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->PutAgent(Agent("web1")).ok());
  AgentState st;
  st.next_index = 100;
  ASSERT_TRUE((*s)->RecordRound("web1", st, AgentStatus::kAttested, 1000, {}).ok());
  EXPECT_EQ((*(*s)->GetAgent("web1"))->status, AgentStatus::kAttested);
  Finding f;
  f.reason = Reason::kUnknownFile;
  f.entry = 101;
  f.pcr = 10;
  f.tmpl = "ima-ng";
  f.path = "/tmp/evil";
  f.digest = "sha256:00";
  f.reference = "policy: path not listed";
  st.next_index = 102;
  ASSERT_TRUE((*s)->RecordRound("web1", st, AgentStatus::kFailed, 1002, {f}).ok());
  // A clean round afterwards does not clear the failure.
  ASSERT_TRUE((*s)->RecordRound("web1", st, AgentStatus::kAttested, 1004, {}).ok());
  auto a = (*s)->GetAgent("web1");
  EXPECT_EQ((*a)->status, AgentStatus::kFailed);
  EXPECT_EQ((*a)->state.next_index, 102u);
  EXPECT_EQ((*a)->updated, 1004);
  auto h = (*s)->History("web1", 10);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].finding.entry, 101u);
  EXPECT_EQ((*h)[0].finding.path, "/tmp/evil");
  EXPECT_EQ((*h)[0].finding.reason, Reason::kUnknownFile);
  EXPECT_FALSE((*h)[0].attested);
  EXPECT_EQ(FormatFinding("web1", (*h)[0].finding), FormatFinding("web1", f));
  ASSERT_TRUE((*s)->Acknowledge("web1").ok());
  EXPECT_EQ((*(*s)->GetAgent("web1"))->status, AgentStatus::kAttested);
  EXPECT_FALSE((*s)->Acknowledge("web1").ok());  // not failed any more
  EXPECT_FALSE((*s)->RecordRound("ghost", st, AgentStatus::kAttested, 1, {}).ok());
  ASSERT_TRUE((*s)->RemoveAgent("web1").ok());
  EXPECT_TRUE((*s)->History("web1", 10)->empty());
  EXPECT_FALSE((*(*s)->GetAgent("web1")).has_value());
}

// Only the newest history_per_agent findings of each agent are kept; another agent's are
// not touched; the bound is range-checked.
TEST(SqliteStoreTest, HistoryIsBoundedPerAgent) {
  StoreOptions o;
  o.history_per_agent = 5;
  auto s = OpenSqliteStore(":memory:", o);
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
    auto refused = OpenSqliteStore(":memory:", o);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("findings kept per agent must be 1-10000000"), std::string::npos)
        << refused.status().message();
  }
}

// A push agent the operator allowed has no identity yet: empty blobs are stored as such.
TEST(SqliteStoreTest, AnAgentWithoutIdentityYetIsStored) {
  auto s = OpenSqliteStore(":memory:");
  ASSERT_TRUE(s.ok());
  AgentRecord a;
  a.id = "push-1";
  ASSERT_TRUE((*s)->PutAgent(a).ok());
  auto got = (*s)->GetAgent("push-1");
  ASSERT_TRUE(got.ok() && *got) << got.status().message();
  EXPECT_TRUE((**got).identity.ek_public.empty());
  EXPECT_TRUE((**got).identity.ak_public.empty());
  EXPECT_EQ((**got).address, "");
}

TEST(SqliteStoreTest, NewerSchemaIsRefused) {
  std::string path = lim::testing::MakeTempDir() + "/verifier.db";
  ASSERT_TRUE(OpenSqliteStore(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version(version) VALUES (99)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("schema 99"), std::string::npos) << s.status().message();
  EXPECT_FALSE(OpenSqliteStore("/proc/no/such/dir/v.db").ok());
}

}  // namespace
}  // namespace lim::attest
