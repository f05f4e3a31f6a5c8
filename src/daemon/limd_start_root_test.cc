// limd's start-up against hostile or careless input (issue 18 items 4, 6, 7, 8), through the
// limd binary: every refusal is a message naming the flag and exit 2, before limd touches its
// state where it can be. The /dev/zero cases run under `prlimit --as=64 MiB` (a limd that
// reads /dev/zero into memory dies of std::bad_alloc there, exit 134) and must answer within
// 1 s. Root: limd watches a tmpfs of the test's own; nothing else is marked.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "tests/testing.h"

#ifndef LIMD_BIN
#error "LIMD_BIN must name the limd binary"
#endif

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;
using lim::testing::Slurp;

constexpr uid_t kNobody = 65534;

bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

class LimdStartRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (!why.empty()) GTEST_SKIP() << why;
    dir_ = lim::testing::MakeTempDir();
    state_ = dir_ + "/state";
    ASSERT_EQ(mounts_.AddTmpfs(&mnt_), "");
    secret_ = dir_ + "/secret";
    std::ofstream(secret_) << "root only\n";
    ::chmod(secret_.c_str(), 0600);
  }
  // limd with the test's state, watch and no socket/view unless args set them; bounded.
  lim::testing::CommandResult Limd(const std::string& args, const std::string& wrapper = "") {
    std::string cmd = wrapper + " timeout -k 2 10 " + std::string(LIMD_BIN) + " --foreground --no-tpm --state " +
                      ShellQuote(state_) + " --watch " + ShellQuote(mnt_) + " " + args;
    if (args.find("--control-socket") == std::string::npos) cmd += " --control-socket none";
    if (args.find("--securityfs") == std::string::npos) cmd += " --securityfs none";
    auto t0 = std::chrono::steady_clock::now();
    auto r = RunCommand(cmd);
    took_ = std::chrono::steady_clock::now() - t0;
    return r;
  }
  std::string dir_, state_, mnt_, secret_;
  std::chrono::steady_clock::duration took_{};
  testing::ScratchMounts mounts_;
};

// Item 4: `limd --config /dev/zero`, `--policy /dev/zero`, `--boot-log /dev/zero` aborted
// with std::bad_alloc (exit 134).
TEST_F(LimdStartRoot, DevZeroInputsAreRefusedInBoundedMemoryAndTime) {
  const std::string prlimit = "prlimit --as=" + std::to_string(64 << 20);
  struct Case {
    std::string args, expect;
  };
  for (const Case& c : {Case{"--config /dev/zero", "config file /dev/zero: larger than 1048576 bytes"},
                        Case{"--policy /dev/zero", "--policy: /dev/zero: larger than 4194304 bytes"},
                        Case{"--securityfs " + ShellQuote(dir_ + "/view") + " --boot-log /dev/zero",
                             "--boot-log: /dev/zero: larger than 16777216 bytes"}}) {
    auto r = Limd(c.args, prlimit);
    EXPECT_EQ(r.exit_code, 2) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_LT(took_, std::chrono::seconds(1)) << c.args;
    EXPECT_FALSE(Exists(state_)) << c.args << ": state touched before the input was checked";
  }
}

// Item 4: `--workers 100000` aborted with std::system_error; 0, -1 and a decision timeout
// of 0 or -5 were accepted.
TEST_F(LimdStartRoot, NumbersOutOfRangeAreRefused) {
  for (std::string args : {"--workers 100000", "--workers 0", "--workers -1", "--decision-timeout-ms 0",
                           "--decision-timeout-ms -5"}) {
    auto r = Limd(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(args.substr(0, args.find(' ')) + ": Value"), std::string::npos) << r.err;
    EXPECT_FALSE(Exists(state_)) << args;
  }
}

// Item 6: uid 65534 made /tmp/x/limd.log (x: sticky 1777, its own) a link to a root-only
// file and root's limd appended to it. Also a link of 65534's in a root-owned sticky dir.
TEST_F(LimdStartRoot, LogFileLinkIsNeverFollowed) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  std::string x = dir_ + "/x";
  ASSERT_EQ(::mkdir(x.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(x.c_str(), 01777), 0);
  for (uid_t dir_owner : {kNobody, uid_t{0}}) {
    ASSERT_EQ(::chown(x.c_str(), dir_owner, dir_owner), 0);
    std::string log = x + "/limd.log";
    ::unlink(log.c_str());
    ASSERT_EQ(::symlink(secret_.c_str(), log.c_str()), 0);
    ASSERT_EQ(::lchown(log.c_str(), kNobody, kNobody), 0);
    auto r = Limd("--log-file " + ShellQuote(log));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--log-file " + log), std::string::npos) << r.err;
    EXPECT_EQ(Slurp(secret_), "root only\n");
  }
}

// Item 7: an existing 0777 state directory was used silently.
TEST_F(LimdStartRoot, StateDirectoryOthersCanWriteIsRefused) {
  ASSERT_EQ(::mkdir(state_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(state_.c_str(), 0777), 0);
  auto r = Limd("");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--state " + state_ + ": mode 0777"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(state_ + "/lock"));
  EXPECT_FALSE(Exists(state_ + "/binary_runtime_measurements"));
}

// Item 7: status.json, chain.json and software_pcrs.json were written 0644.
TEST_F(LimdStartRoot, StateFilesAre0600) {
  ASSERT_EQ(::mkdir(state_.c_str(), 0700), 0);  // for the log file
  testing::LimdChild limd;
  ASSERT_FALSE(limd.Start(testing::LimdCommand(state_, mnt_, "--no-tpm"), state_).has_value());
  for (int i = 0; i < 100 && !Exists(state_ + "/status.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (std::string f : {"status.json", "chain.json", "software_pcrs.json", "binary_runtime_measurements", "lock",
                        "limd.ready", "log"}) {
    struct stat st {};
    ASSERT_EQ(::lstat((state_ + "/" + f).c_str(), &st), 0) << f;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << f;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << f;
  }
  struct stat st {};
  ASSERT_EQ(::stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(limd.Stop(), 0);
}

// Item 7: a non-root limd failed only after creating the state directory and a new chain.
TEST_F(LimdStartRoot, WithoutPrivilegeNothingIsTouched) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  std::string parent = dir_ + "/nobody";
  ASSERT_EQ(::mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(::chown(parent.c_str(), kNobody, kNobody), 0);
  state_ = parent + "/state";
  auto r = Limd("", "setpriv --reuid=65534 --regid=65534 --clear-groups");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("CAP_SYS_ADMIN"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(state_));
}

// Item 8: an explicit --control-socket that cannot be used was only logged.
TEST_F(LimdStartRoot, ExplicitControlSocketThatCannotBeUsedIsAnError) {
  std::string too_long = dir_ + "/" + std::string(120, 's') + ".sock";
  auto r = Limd("--control-socket " + ShellQuote(too_long));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--control-socket: path of"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(state_));
  std::ofstream(dir_ + "/file") << "";  // a socket below a regular file cannot be bound
  r = Limd("--control-socket " + ShellQuote(dir_ + "/file/limd.sock"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--control-socket " + dir_ + "/file/limd.sock: "), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(state_));  // bound before the state is touched
}

// Item 8: a bad value in the config file was hidden when the same flag was given.
TEST_F(LimdStartRoot, BadConfigValueHiddenByAFlagIsReported) {
  std::string conf = dir_ + "/limd.conf";
  std::ofstream(conf) << "workers = 0\n";
  auto r = Limd("--config " + ShellQuote(conf) + " --workers 2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(conf + ":1: --workers: Value 0 not in range"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(state_));
}

}  // namespace
}  // namespace lim::daemon
