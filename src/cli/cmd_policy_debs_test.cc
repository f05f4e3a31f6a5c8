// `lim policy from-debs|from-dpkg|update|owner` and `lim appraise` hints, end to end on real
// .deb files (dpkg-deb) and a private dpkg root.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "debs/debs_test_util.h"
#include "tests/testing.h"

namespace lim::testing {
namespace {

using debs::testing::HaveDpkg;
using debs::testing::Install;
using debs::testing::MakeDeb;
using debs::testing::MakeRoot;
using nlohmann::json;

class CmdPolicyDebs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveDpkg()) GTEST_SKIP() << "dpkg not installed";
    dir_ = MakeTempDir();
    root_ = MakeRoot(dir_);
    debs_ = dir_ + "/debs";
    std::filesystem::create_directories(debs_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Q(const std::string& s) { return ShellQuote(s); }
  std::string dir_, root_, debs_;
};

TEST_F(CmdPolicyDebs, FromDebsThenUpdateKeepsTheWindow) {
  MakeDeb(debs_, "tool", "1.0-1", {{"/bin/tool", "v1"}});
  MakeDeb(debs_, "tool", "2.0-1", {{"/bin/tool", "v2"}});
  std::string pol = dir_ + "/p.json";
  auto r = RunCommand(LimCommand("policy from-debs " + Q(debs_) + " --root " + Q(root_) + " -o " + Q(pol)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 paths from 1 packages (2 .debs read"), std::string::npos) << r.err;
  json p = json::parse(Slurp(pol));
  EXPECT_EQ(p["packages"]["tool"]["versions"], json({"2.0-1", "1.0-1"}));
  ASSERT_TRUE(p["paths"].contains("/usr/bin/tool"));  // merged /usr: the name limd records
  EXPECT_EQ(p["paths"]["/usr/bin/tool"].size(), 2u);
  EXPECT_EQ(p["owners"]["/usr/bin/tool"]["package"], "tool");

  std::string d3 = dir_ + "/new";
  std::filesystem::create_directories(d3);
  MakeDeb(d3, "tool", "3.0-1", {{"/bin/tool", "v3"}});
  std::string upd = dir_ + "/u.json";
  r = RunCommand(LimCommand("policy update " + Q(pol) + " " + Q(d3) + " --keep 2 --root " + Q(root_) + " -o " + Q(upd)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tool 1.0-1: left the window of 2 versions"), std::string::npos) << r.err;
  json u = json::parse(Slurp(upd));
  EXPECT_EQ(u["packages"]["tool"]["versions"], json({"3.0-1", "2.0-1"}));
  EXPECT_EQ(u["paths"]["/usr/bin/tool"].size(), 2u);

  // keylime's form: every kept version's digest, and a note that provenance is lim's only.
  r = RunCommand(LimCommand("policy update " + Q(upd) + " " + Q(d3) + " --format keylime --root " + Q(root_)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json k = json::parse(r.out);
  EXPECT_EQ(k["digests"]["/usr/bin/tool"].size(), 2u);
  EXPECT_EQ(k["meta"]["version"], 1);
  EXPECT_NE(r.err.find("not in keylime's form: package provenance"), std::string::npos) << r.err;

  // Names as shipped, or Debian 12's merge whatever the building host has.
  r = RunCommand(LimCommand("policy from-debs " + Q(d3) + " --merged-usr no"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["paths"].contains("/bin/tool"));
  r = RunCommand(LimCommand("policy from-debs " + Q(d3) + " --merged-usr yes --root /nonexistent"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["paths"].contains("/usr/bin/tool"));

  // A hostile .deb in the set is an error naming it.
  ASSERT_TRUE(WriteFileBytes(d3 + "/broken.deb", AsBytes("!<arch>\nnot really")).ok());
  r = RunCommand(LimCommand("policy from-debs " + Q(d3) + " --root " + Q(root_)));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.deb"), std::string::npos) << r.err;
}

TEST_F(CmdPolicyDebs, FromDpkgOwnerAndModifiedFiles) {
  std::string deb = MakeDeb(debs_, "alpha", "1:1.0-1", {{"/bin/alpha", "alpha"}, {"/usr/lib/alpha.so", "lib"}}, "xz", "amd64");
  Install(root_, deb);
  std::string args = " --admindir " + Q(root_ + "/var/lib/dpkg") + " --root " + Q(root_);
  auto r = RunCommand(LimCommand("policy from-dpkg --debs " + Q(debs_) + args));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json p = json::parse(r.out);
  EXPECT_EQ(p["packages"]["alpha"]["source"], "deb");
  EXPECT_EQ(p["packages"]["alpha"]["installed"], "1:1.0-1");
  // The same digests from disk (no .deb): trust on first use.
  r = RunCommand(LimCommand("policy from-dpkg --no-apt-cache" + args));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json t = json::parse(r.out);
  EXPECT_EQ(t["packages"]["alpha"]["source"], "tofu");
  EXPECT_EQ(t["paths"], p["paths"]);

  r = RunCommand(LimCommand("policy owner /usr/bin/alpha /etc/ld.so.cache /usr/local/bin/mine" + args));
  EXPECT_EQ(r.exit_code, 1);  // one path has no package
  EXPECT_NE(r.out.find("/usr/bin/alpha alpha 1:1.0-1 amd64 (dpkg: /bin/alpha)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/etc/ld.so.cache - generated: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/usr/local/bin/mine - `/usr/local/bin/mine` is not owned by any package\n"), std::string::npos)
      << r.out;

  // A replaced file: reported against md5sums, exit 1, left out of the policy.
  ASSERT_TRUE(WriteFileBytes(root_ + "/usr/bin/alpha", AsBytes("evil"), 0755).ok());
  r = RunCommand(LimCommand("policy from-dpkg --no-apt-cache" + args));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("alpha 1:1.0-1: /bin/alpha: modified on disk"), std::string::npos) << r.err;
  EXPECT_FALSE(json::parse(r.out)["paths"].contains("/usr/bin/alpha"));
  r = RunCommand(LimCommand("policy from-dpkg --check-disk --debs " + Q(debs_) + args));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(json::parse(r.out)["paths"].contains("/usr/bin/alpha"));  // from the .deb: the package's digest
}

// lim appraise on the host: a package's file names its package, a stray file says no package.
TEST(CmdAppraiseHints, HostPackageAndUnownedFile) {
  if (!std::filesystem::exists("/var/lib/dpkg/status") || !std::filesystem::exists("/usr/bin/ls")) {
    GTEST_SKIP() << "no dpkg database on this host";
  }
  auto owner = RunCommand("dpkg-query -S /bin/ls 2>/dev/null || dpkg-query -S /usr/bin/ls");
  if (owner.exit_code != 0 || owner.out.rfind("coreutils:", 0) != 0) GTEST_SKIP() << "ls is not coreutils' here";
  std::string dir = MakeTempDir();
  std::string stray = dir + "/stray";
  ASSERT_TRUE(WriteFileBytes(stray, AsBytes("x")).ok());
  auto r = RunCommand(LimCommand("appraise /usr/bin/ls " + ShellQuote(stray) + " --builtin appraise_tcb --keys " +
                          ShellQuote(dir)));
  std::filesystem::remove_all(dir);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;  // neither has security.ima here
  if (r.out.find("/usr/bin/ls: pass") != std::string::npos) GTEST_SKIP() << "ls carries a valid security.ima";
  EXPECT_NE(r.out.find("  package: coreutils "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  hint: `/usr/bin/ls` is coreutils "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  hint: `" + stray + "` is not owned by any package\n"), std::string::npos) << r.out;
  // --admindir "" turns hints off.
  r = RunCommand(LimCommand("appraise " + ShellQuote(stray) + " --builtin appraise_tcb --admindir ''"));
  EXPECT_EQ(r.out.find("hint:"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lim::testing
