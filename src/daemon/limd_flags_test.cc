#include "daemon/limd_flags.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "tests/testing.h"

namespace lim::daemon {
namespace {

class LimdFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = lim::testing::MakeTempDir(); }
  // Parses "limd ARGS…" with no default config file (unless one is written at default()).
  ParseOutcome Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "limd");
    flags_ = LimdFlags();
    return ParseLimdFlags(args, &flags_, dir_ + "/default.conf");
  }
  std::string WriteConfig(const std::string& text) {
    std::string p = dir_ + "/limd.conf";
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
  LimdFlags flags_;
};

// issue 18 item 4: limd --workers 0 / -1 / 100000 and --decision-timeout-ms 0 / -5 were
// accepted (or aborted); every flag now has a range and a refusal names the flag.
TEST_F(LimdFlagsTest, OutOfRangeValuesNameTheFlagAndExit2) {
  const std::vector<std::vector<std::string>> bad = {
      {"--workers", "0"},          {"--workers", "-1"},          {"--workers", "100000"},
      {"--workers", "65"},         {"--workers", "x"},           {"--decision-timeout-ms", "0"},
      {"--decision-timeout-ms", "-5"}, {"--decision-timeout-ms", "600001"}, {"--pcr", "-1"},
      {"--pcr", "24"},             {"--reader-nice", "20"},      {"--mode", "enforce"},
      {"--hash", "md17"},          {"--template", "ima"},        {"--builtin", "nope"},
      {"--state", ""},             {"--tpm", ""},                {"--log-file", ""},
      {"--watch", ""},             {"--securityfs", ""},         {"--boot-log", ""},
      {"--control-socket", ""},    {"--control-socket", "/" + std::string(107, 'a')},
      {"--policy", ""},            {"--inode-cache", "63"},      {"--inode-cache", "-1"},
      {"--inode-cache", "16777217"}, {"--open-counts", "bpf"}, {"--open-counts", ""}, {"--appraise", "enforcing"}, {"--appraise", ""},
      {"--keys", ""},              {"--denylist", ""}};
  for (const auto& args : bad) {
    auto r = Parse(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[1];
    EXPECT_NE(r.output.find(args[0]), std::string::npos) << r.output;
  }
}

TEST_F(LimdFlagsTest, RangeBoundsAreAccepted) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--workers", "1"},
                                                                {"--workers", "64"},
                                                                {"--decision-timeout-ms", "1"},
                                                                {"--decision-timeout-ms", "600000"},
                                                                {"--pcr", "0"},
                                                                {"--pcr", "23"},
                                                                {"--control-socket", "/" + std::string(106, 'a')},
                                                                {"--control-socket", "none"},
                                                                {"--securityfs", "none"},
                                                                {"--inode-cache", "64"},
                                                                {"--inode-cache", "16777216"},
                                                                {"--open-counts", "auto"},
                                                                {"--open-counts", "kernel"},
                                                                {"--open-counts", "lease"}}) {
    auto r = Parse(args);
    EXPECT_EQ(r.exit_code, -1) << args[0] << " " << args[1] << ": " << r.output;
  }
  auto r = Parse({"--workers", "7", "--pcr", "11", "--decision-timeout-ms", "5"});
  ASSERT_EQ(r.exit_code, -1) << r.output;
  EXPECT_EQ(flags_.workers, 7);
  EXPECT_TRUE(flags_.pcr_explicit);
  EXPECT_FALSE(flags_.control_socket_explicit);
  EXPECT_EQ(flags_.timeout_ms, 5);
}

TEST_F(LimdFlagsTest, ConfigValuesHaveTheSameRanges) {
  std::string conf = WriteConfig("watch = /mnt\nworkers = 0\n");
  auto r = Parse({"--config", conf});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(conf + ":2: --workers"), std::string::npos) << r.output;
  conf = WriteConfig("control-socket = /run/x.sock\n");
  ASSERT_EQ(Parse({"--config", conf}).exit_code, -1);
  EXPECT_TRUE(flags_.control_socket_explicit);  // a key is as explicit as a flag
}

// issue 13: appraisal modes as the kernel's ima_appraise=, off by default; the config key
// is the flag's name.
TEST_F(LimdFlagsTest, AppraiseModesKeysAndDenylist) {
  ASSERT_EQ(Parse({}).exit_code, -1);
  EXPECT_EQ(flags_.appraise, "off");
  EXPECT_EQ(flags_.keys, "/etc/lim/keys");
  EXPECT_FALSE(flags_.keys_explicit);
  EXPECT_TRUE(flags_.denylist.empty());
  for (const char* m : {"off", "log", "enforce", "fix"}) {
    ASSERT_EQ(Parse({"--appraise", m}).exit_code, -1) << m;
    EXPECT_EQ(flags_.appraise, m);
  }
  auto r = Parse({"--appraise", "enforcing"});
  EXPECT_NE(r.output.find("off, log, enforce, fix"), std::string::npos) << r.output;
  std::string conf = WriteConfig("appraise = enforce\nkeys = /srv/keys\ndenylist = /etc/lim/deny\n");
  ASSERT_EQ(Parse({"--config", conf}).exit_code, -1);
  EXPECT_EQ(flags_.appraise, "enforce");
  EXPECT_EQ(flags_.keys, "/srv/keys");
  EXPECT_TRUE(flags_.keys_explicit);
  EXPECT_EQ(flags_.denylist, "/etc/lim/deny");
  conf = WriteConfig("appraise = sometimes\n");
  r = Parse({"--config", conf});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(conf + ":1: --appraise"), std::string::npos) << r.output;
}

// issue 18 item 8: a bad value in the file was dropped unchecked when the same flag was on
// the command line; the file is invalid, so it is reported.
TEST_F(LimdFlagsTest, BadConfigValueHiddenByAFlagIsReported) {
  std::string conf = WriteConfig("# limd\nworkers = 0\n");
  auto r = Parse({"--config", conf, "--workers", "3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(conf + ":2: --workers"), std::string::npos) << r.output;
  // Exclusive pairs: both in the file is invalid even when --policy on the command line hides both.
  conf = WriteConfig("builtin = tcb\npolicy = /etc/x\n");
  r = Parse({"--config", conf, "--policy", "/etc/y"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // A valid file overridden by a flag is fine, and the flag wins.
  conf = WriteConfig("workers = 4\n");
  r = Parse({"--config", conf, "--workers", "3"});
  ASSERT_EQ(r.exit_code, -1) << r.output;
  EXPECT_EQ(flags_.workers, 3);
  // The default file too.
  std::ofstream(dir_ + "/default.conf") << "pcr = 99\n";
  r = Parse({"--pcr", "11"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(dir_ + "/default.conf:1: --pcr"), std::string::npos) << r.output;
}

// issue 18 item 4: limd --config /dev/zero aborted with std::bad_alloc.
TEST_F(LimdFlagsTest, ConfigFromDevZeroIsRefusedQuickly) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = Parse({"--config", "/dev/zero"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("config file /dev/zero: larger than 1048576 bytes"), std::string::npos) << r.output;
}

// issue 18 item 6: the --help example suggested a log in /tmp.
TEST_F(LimdFlagsTest, HelpSuggestsNoLogInTmp) {
  auto r = Parse({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--log-file /var/log/limd.log"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("--log-file /tmp"), std::string::npos) << r.output;
  EXPECT_EQ(Parse({"--version"}).output, "limd 0.1.0\n");
}

}  // namespace
}  // namespace lim::daemon

namespace lim::daemon {
namespace {

TEST(LimdEvmFlagsTest, OneEvmKeyEitherInAFileOrSealed) {
  LimdFlags f;
  auto ok = ParseLimdFlags({"limd", "--evm-key", "/etc/lim/evm.key", "--evm-keys", "/etc/lim/evm-keys"}, &f, "/nonexistent");
  EXPECT_EQ(ok.exit_code, -1) << ok.output;
  EXPECT_EQ(f.evm_key, "/etc/lim/evm.key");
  EXPECT_EQ(f.evm_keys, "/etc/lim/evm-keys");
  LimdFlags g;
  auto both = ParseLimdFlags({"limd", "--evm-key", "a", "--evm-key-sealed", "b"}, &g, "/nonexistent");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.output.find("--evm-key excludes --evm-key-sealed"), std::string::npos) << both.output;
  LimdFlags h;
  EXPECT_EQ(ParseLimdFlags({"limd", "--evm-key", ""}, &h, "/nonexistent").exit_code, 2);
}

}  // namespace
}  // namespace lim::daemon
