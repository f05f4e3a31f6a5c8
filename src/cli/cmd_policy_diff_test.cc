// `lim policy diff A B` (formats, exit codes) and `lim policy learn` adding package owners
// from a private dpkg database.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "debs/debs_test_util.h"
#include "tests/testing.h"

namespace lim::testing {
namespace {

using nlohmann::json;

const std::string kD1(64, '1'), kD2(64, '2'), kD3(64, '3');

class CmdPolicyDiff : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, AsBytes(text)).ok());
    return path;
  }
  std::string Q(const std::string& s) { return ShellQuote(s); }
  std::string dir_;
};

TEST_F(CmdPolicyDiff, TextJsonAndExitCodes) {
  std::string a = Write("a.json", R"({"lim_runtime_policy":1,"paths":{"/usr/bin/x":["sha256:)" + kD1 + R"("],
      "/usr/bin/gone":[")" + kD3 + R"("]},"excludes":[]})");
  std::string b = Write("b.json", R"({"lim_runtime_policy":1,"paths":{"/usr/bin/x":[")" + kD2 + R"("]},
      "excludes":["/var/log/.*"]})");
  // The same as a, in keylime's form: identical in effect.
  std::string k = Write("k.json", R"({"meta":{"version":1},"release":0,"digests":{"/usr/bin/gone":[")" + kD3 +
                                      R"("],"/usr/bin/x":[")" + kD1 + R"("]},"excludes":[],"keyrings":{},
      "ima":{"ignored_keyrings":[],"log_hash_alg":"sha1","dm_policy":null},"ima-buf":{},"verification-keys":""})");

  auto r = RunCommand(LimCommand("policy diff " + Q(a) + " " + Q(k)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");

  r = RunCommand(LimCommand("policy diff " + Q(a) + " " + Q(b)));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out,
            "+ exclude regex /var/log/.* (widens: matching paths pass unchecked)\n"
            "- path /usr/bin/gone path " + kD3 + "\n"
            "- path /usr/bin/x digest " + kD1 + "\n"
            "+ path /usr/bin/x digest " + kD2 + "\n");

  r = RunCommand(LimCommand("policy diff --format json " + Q(b) + " " + Q(a)));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json j = json::parse(r.out);
  EXPECT_FALSE(j["identical"].get<bool>());
  ASSERT_EQ(j["changes"].size(), 4u) << r.out;
  EXPECT_EQ(j["changes"][0]["section"], "exclude");
  EXPECT_EQ(j["changes"][0]["effect"], "forbids");
  EXPECT_EQ(j["changes"][1]["key"], "/usr/bin/gone");
  EXPECT_EQ(j["changes"][1]["effect"], "allows");

  r = RunCommand(LimCommand("policy diff --format json " + Q(a) + " " + Q(a)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["identical"].get<bool>());

  // Bad input names the file: exit 2.
  std::string bad = Write("bad.json", R"({"lim_runtime_policy":1,"paths":{"/x":["zz"]}})");
  r = RunCommand(LimCommand("policy diff " + Q(a) + " " + Q(bad)));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  r = RunCommand(LimCommand("policy diff " + Q(dir_ + "/missing.json") + " " + Q(a)));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;
}

TEST_F(CmdPolicyDiff, LearnAddsOwnersFromPrivateDpkg) {
  if (!debs::testing::HaveDpkg()) GTEST_SKIP() << "dpkg not installed";
  std::string root = debs::testing::MakeRoot(dir_);
  // dpkg's name /lib/systemd/systemd is the list's /usr/lib/systemd/systemd through merged /usr.
  std::string deb = debs::testing::MakeDeb(dir_, "sdpkg", "1.2-3", {{"/lib/systemd/systemd", "x"}});
  debs::testing::Install(root, deb);
  std::string list = Fixture("ibmtss/utils/imatest.log");
  std::string db = " --admindir " + Q(root + "/var/lib/dpkg") + " --root " + Q(root);

  auto r = RunCommand(LimCommand("policy learn " + Q(list) + db));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 owned by 1 packages"), std::string::npos) << r.err;
  json p = json::parse(r.out);
  EXPECT_EQ(p["packages"]["sdpkg"]["versions"], json({"1.2-3"}));
  EXPECT_EQ(p["packages"]["sdpkg"]["installed"], "1.2-3");
  EXPECT_EQ(p["packages"]["sdpkg"]["source"], "tofu");
  const json& o = p["owners"]["/usr/lib/systemd/systemd"];
  EXPECT_EQ(o["package"], "sdpkg");
  EXPECT_EQ(o["versions"]["1.2-3"], p["paths"]["/usr/lib/systemd/systemd"]);
  EXPECT_FALSE(p["owners"].contains("/boot/vmlinuz-6.1.6-200.fc37.x86_64"));

  // Turned off: no provenance; the policy still reads back and differs only by the package.
  std::string plain = dir_ + "/plain.json", owned = dir_ + "/owned.json";
  r = RunCommand(LimCommand("policy learn " + Q(list) + " --admindir '' -o " + Q(plain)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(json::parse(Slurp(plain)).contains("owners"));
  ASSERT_TRUE(WriteFileBytes(owned, AsBytes(p.dump())).ok());
  r = RunCommand(LimCommand("policy diff " + Q(plain) + " " + Q(owned)));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "+ package sdpkg version 1.2-3\n");

  // A database that was asked for and cannot be loaded is bad input.
  r = RunCommand(LimCommand("policy learn " + Q(list) + " --admindir " + Q(dir_ + "/nodb")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nodb"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lim::testing
