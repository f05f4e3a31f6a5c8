#include "attest/dm_policy.h"

#include <gtest/gtest.h>

#include "attest/attest_test_util.h"
#include "attest/runtime_policy.h"
#include "base/file.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "tests/testing.h"

namespace lim::attest {
namespace {

using lim::testing::Fixture;

// keylime-tests' real ima-buf device-mapper entries of RHEL hosts (LVM rhel-root and
// rhel-swap, linear targets on 252:3): load, resume, load, resume (one list), then the
// rhel-root table load of another list — a second load of that device.
std::vector<ima::Record> RhelDmRecords() {
  std::string dm;
  for (const char* f : {"keylime-tests/functional/keylime_create_policy-static-data/test2/ascii_runtime_measurements-2",
                        "keylime-tests/functional/keylime-policy-commands/ima_log.txt"}) {
    auto text = ReadFileText(Fixture(f));
    EXPECT_TRUE(text.ok()) << f;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      if (line.find(" dm_") != std::string::npos) dm += line + "\n";
    }
  }
  return testing::AsciiRecords(dm);
}

// A keylime runtime policy whose dm_policy has one rule per LVM volume (rule order: root
// first, as written).
std::string KeylimePolicy(const std::string& root_extra = "", bool root_required = true) {
  auto rule = [](const std::string& name, const std::string& len, bool required, const std::string& extra) {
    return "{\"required\": " + std::string(required ? "true" : "false") +
           ", \"device_resume_required\": true, \"allow_clear\": false, "
           "\"device_remove\": {\"allow_removal\": false}, "
           "\"device_rename\": {\"valid_name\": false, \"valid_uuid\": false}, "
           "\"table_load\": {\"allow_multiple_loads\": false, \"name\": \"" + name +
           "\", \"uuid\": \"LVM-[A-Za-z0-9]+\", \"major\": 253, \"minor\": null, \"minor_count\": 1, "
           "\"num_targets\": 1, \"targets\": [{\"target_name\": \"linear\", \"target_len\": " + len +
           ", \"device_name\": \"252:3\"" + extra + "}]}}";
  };
  return R"({"meta": {"version": 1}, "release": 0, "digests": {}, "excludes": [], "keyrings": {},
    "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": {"match_on": "name", "rules": {"root": )" +
         rule("rhel-root", "133136384", root_required, root_extra) + ", \"swap\": " +
         rule("rhel-swap", "8241152", false, "") + R"(}}}, "ima-buf": {}, "verification-keys": ""})";
}

RuntimePolicy Parse(const std::string& json) {
  auto p = RuntimePolicy::FromJson(json);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(p).value();
}

// The records as one list, each checked with the agent's dm state; "reason@index detail".
std::vector<std::string> Verdicts(const RuntimePolicy& p, const std::vector<ima::Record>& records, DmState* state,
                                  std::vector<Finding>* findings = nullptr) {
  Bytes list;
  ima::ListWriter w(Sha1Algo(), ByteOrder::kLittle);
  for (const auto& r : records) EXPECT_TRUE(w.Append(r, &list).ok());
  std::vector<std::string> out;
  auto reader = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(reader.ok());
  ima::Entry e;
  while (*(*reader)->Next(&e)) {
    LearnedKeys fresh;
    auto f = p.Check(e, {}, &fresh, state);
    if (!f) continue;
    out.push_back(std::string(ReasonName(f->reason)) + "@" + std::to_string(*f->entry) + " " + f->detail);
    if (findings) findings->push_back(*f);
  }
  return out;
}

ima::Record DmRecord(const std::string& name, const std::string& text) {
  auto r = ima::ImaBufRecord(Sha256Algo(), name, AsBytes(text));
  EXPECT_TRUE(r.ok());
  return *r;
}

const char kRootMeta[] =
    "dm_version=4.46.0;name=rhel-root,uuid=LVM-yT58eL2hadptjU9lVQ1W0x1P5TFyEN5btPAk7Yc8gyXf3DfgdzjuTFkJ9P6athhX,"
    "major=253,minor=0,minor_count=1,num_targets=1;";

TEST(DmPolicyTest, RealLvmEntriesPassAndTheSecondLoadOfRootFails) {
  RuntimePolicy p = Parse(KeylimePolicy());
  ASSERT_NE(p.dm(), nullptr);
  std::vector<ima::Record> records = RhelDmRecords();
  ASSERT_EQ(records.size(), 5u);
  DmState state;
  std::vector<ima::Record> first4(records.begin(), records.begin() + 4);
  EXPECT_TRUE(Verdicts(p, first4, &state).empty());
  ASSERT_EQ(state.devices.size(), 2u);
  EXPECT_TRUE(state.devices["rhel-root"].active);
  EXPECT_TRUE(state.devices["rhel-root"].valid);
  EXPECT_EQ(state.devices["rhel-root"].rule, "root");
  EXPECT_EQ(state.devices["rhel-swap"].rule, "swap");
  EXPECT_EQ(state.devices["rhel-root"].table_hash,
            "sha256:571016c9f57363c80e08dd4346391c4e70227e41b0247b8a3aa2240a178d3d14");
  EXPECT_TRUE(p.dm()->CheckRequired(state).empty());
  // The log's fifth dm entry loads rhel-root's table again: the rule does not allow it.
  std::vector<Finding> fs;
  std::vector<std::string> v = Verdicts(p, {records[4]}, &state, &fs);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "dm-policy@0 device rhel-root: a second table load");
  EXPECT_EQ(fs[0].reference, "dm_policy rule root: allow_multiple_loads false");
  EXPECT_EQ(fs[0].path, "dm_table_load");
  EXPECT_EQ(fs[0].tmpl, "ima-buf");
  // The state goes through the agent state's JSON.
  auto back = DmState::FromJson(state.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToJson(), state.ToJson());
}

TEST(DmPolicyTest, TargetsResumesAndDeviceEventsAreHeldAgainstTheirRule) {
  RuntimePolicy p = Parse(KeylimePolicy());
  const std::string target_linear = "target_index=0,target_begin=0,target_len=133136384,target_name=linear,"
                                    "target_version=1.4.0,device_name=252:3,start=73246720;";
  // A crypt target where the rule says linear.
  DmState s1;
  std::vector<Finding> fs;
  auto v = Verdicts(p,
                    {DmRecord("dm_table_load", std::string(kRootMeta) +
                                                   "target_index=0,target_begin=0,target_len=133136384,"
                                                   "target_name=crypt,target_version=1.23.0,allow_discards=n;")},
                    &s1, &fs);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "dm-policy@0 device rhel-root: target 0 target_name=crypt");
  EXPECT_EQ(fs[0].reference, "dm_policy rule root: target_name \"linear\"");
  EXPECT_TRUE(s1.devices.empty());
  // A resume naming another table than the one loaded.
  DmState s2;
  v = Verdicts(p,
               {DmRecord("dm_table_load", std::string(kRootMeta) + target_linear),
                DmRecord("dm_device_resume", std::string(kRootMeta) +
                                                 "active_table_hash=sha256:00112233445566778899aabbccddeeff00112233445566"
                                                 "778899aabbccddeeff;current_device_capacity=133136384;")},
               &s2);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("dm-policy@1 device rhel-root: active_table_hash=sha256:0011"), std::string::npos) << v[0];
  EXPECT_FALSE(s2.devices["rhel-root"].valid);
  // The required rule root with only the swap volume loaded.
  DmState swap_only;
  std::vector<ima::Record> real = RhelDmRecords();
  EXPECT_TRUE(Verdicts(p, {real[2], real[3]}, &swap_only).empty());
  auto req = p.dm()->CheckRequired(swap_only);
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0].reference, "dm_policy rule root: required");
  EXPECT_EQ(req[0].detail, "no device is loaded under the required rule root");
  // Removal, clear and rename are refused by the rule; an unknown device matches no rule;
  // a resume before any load is refused.
  DmState s3;
  v = Verdicts(p,
               {DmRecord("dm_table_load", std::string(kRootMeta) + target_linear),
                DmRecord("dm_device_remove",
                         "dm_version=4.46.0;device_active_metadata=name=rhel-root,uuid=LVM-x,major=253,minor=0,"
                         "minor_count=1,num_targets=1;active_table_hash=sha256:00,remove_all=n;"
                         "current_device_capacity=133136384;"),
                DmRecord("dm_table_clear", std::string(kRootMeta) + "current_device_capacity=0;"),
                DmRecord("dm_device_rename", std::string(kRootMeta) + "new_name=evil,new_uuid=LVM-yT58eL2hadptjU9lVQ1W0x1P5TFyEN5btPAk7Yc8gyXf3DfgdzjuTFkJ9P6athhX;current_device_capacity=1;"),
                DmRecord("dm_table_load", "dm_version=4.46.0;name=evil,uuid=LVM-e,major=253,minor=3,minor_count=1,"
                                          "num_targets=1;" + target_linear),
                DmRecord("dm_device_resume", "dm_version=4.46.0;name=other,uuid=LVM-o,major=253,minor=4,"
                                             "minor_count=1,num_targets=1;active_table_hash=sha256:00;"
                                             "current_device_capacity=1;")},
               &s3);
  std::vector<std::string> want = {
      "dm-policy@1 device rhel-root: removed",
      "dm-policy@2 device rhel-root: table cleared",
      "dm-policy@3 device rhel-root: renamed to evil",
      "dm-policy@4 device evil: no rule's table_load.name matches",
      "dm-policy@5 device other: device_resume before a table load",
  };
  EXPECT_EQ(v, want);
  // A malformed buffer is named, not a crash.
  DmState s4;
  v = Verdicts(p, {DmRecord("dm_table_load", "garbage without pairs")}, &s4);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("is not key=value"), std::string::npos) << v[0];
}

TEST(DmPolicyTest, WithoutDmPolicyDmEntriesAreImaBufAndBadPoliciesAreRefused) {
  RuntimePolicy none = Parse(R"({"meta": {"version": 1}, "ima": {"dm_policy": null}})");
  EXPECT_EQ(none.dm(), nullptr);
  DmState s;
  auto v = Verdicts(none, RhelDmRecords(), &s);
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].rfind("ima-buf-not-allowed@0", 0), 0u) << v[0];
  // A reference of a type keylime cannot compare, a regex that does not compile, a rule
  // without a match_on pattern: refused naming the key.
  auto bad = RuntimePolicy::FromJson(KeylimePolicy(", \"start\": 1.5"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("dm_policy.rules.root.table_load.targets[0].start"), std::string::npos)
      << bad.status().message();
  auto re = RuntimePolicy::FromJson(KeylimePolicy(", \"start\": \"(\""));
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.status().message().find("targets[0].start"), std::string::npos) << re.status().message();
  // Exported verbatim (rule order kept) and read back by the native form.
  RuntimePolicy p = Parse(KeylimePolicy());
  std::string native = p.ToNativeJson();
  EXPECT_LT(native.find("\"root\""), native.find("\"swap\"")) << native;
  RuntimePolicy again = Parse(native);
  ASSERT_NE(again.dm(), nullptr);
  DmState s2;
  std::vector<ima::Record> r = RhelDmRecords();
  EXPECT_TRUE(Verdicts(again, {r[0], r[1]}, &s2).empty());
}

}  // namespace
}  // namespace lim::attest
