// Root tests of EVM in limd (--evm-key, --evm-key-sealed, --evm-keys) on an ext4 loop mount
// of the test's own, under --appraise enforce: a file with a valid HMAC passes; mode, owner
// or xattr changed while limd was not running fail with invalid-HMAC (missing-HMAC when
// security.evm is gone); root's chmod of a file limd verified in this run is re-HMACed and
// still passes, the same chmod of a file never verified stays failed. The trusted keys are
// in the list as ima-buf entries. limd runs under `timeout -k` and is stopped by its own
// pid (LimdChild). Skipped without root, fanotify or loop ext4.
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include <gtest/gtest.h>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;
using testing::LimdChild;
using testing::LimdCommand;
using testing::ScratchMounts;

class LimdEvmRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (why.empty()) why = mounts_.AddExt4(&mnt_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    secret_ = lim::testing::MakeTempDir();
    keys_ = lim::testing::MakeTempDir();
    ASSERT_TRUE(WriteFileBytes(secret_ + "/evm.key", AsBytes("limd's EVM key, thirty-two bytes"), 0600).ok());
    Ok("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + secret_ + "/ima.key -out " + keys_ +
       "/ima.pem -subj /CN=ima -days 2 2>&1");
  }
  void TearDown() override { limd_.Stop(SIGTERM); }

  void Ok(const std::string& line) {
    auto r = RunCommand(line);
    ASSERT_EQ(r.exit_code, 0) << line << "\n" << r.out;
  }
  lim::testing::CommandResult Lim(const std::string& args) { return RunCommand(lim::testing::LimCommand(args) + " 2>&1"); }
  // A file with a security.ima digest and a good HMAC (lim hash --fix; lim evm hmac --write).
  void Make(const std::string& name) {
    std::string p = mnt_ + "/" + name;
    ASSERT_TRUE(WriteFileBytes(p, AsBytes("data of " + name + "\n")).ok());
    ASSERT_EQ(Lim("hash --fix " + p).exit_code, 0);
    auto h = Lim("evm hmac --write --hmac-key " + secret_ + "/evm.key " + p);
    ASSERT_EQ(h.exit_code, 0) << h.out;
  }
  bool CliVerifies(const std::string& name) {
    return Lim("evm verify --keys " + keys_ + " --hmac-key " + secret_ + "/evm.key " + mnt_ + "/" + name).exit_code == 0;
  }
  void Start(const std::string& extra) {
    limd_.Stop(SIGTERM);
    std::string policy = state_ + "/policy";
    ASSERT_TRUE(WriteFileBytes(policy, AsBytes("appraise func=FILE_CHECK\n")).ok());
    std::string flags = "--policy " + policy + " --appraise enforce --keys " + keys_ + " " + extra;
    auto rc = limd_.Start(LimdCommand(state_, mnt_, flags) + " 2>>" + ShellQuote(state_ + "/stderr"), state_);
    ASSERT_FALSE(rc.has_value()) << "limd exited " << *rc << ": " << Text(state_ + "/stderr") << Log();
  }
  // cat through limd's decision: "ok" or the error cat printed.
  std::string Cat(const std::string& name) {
    auto r = testing::ShIn(mnt_, "cat " + name + " >/dev/null 2>&1 && echo ok || echo denied");
    return r.out.substr(0, r.out.find('\n'));
  }
  static std::string Text(const std::string& path) {
    auto t = ReadFileText(path);
    return t.ok() ? *t : std::string();
  }
  std::string Log() { return Text(state_ + "/log"); }
  bool Audited(const std::string& name, const std::string& cause) {
    std::string log = Log();
    std::string want = "op=appraise_data cause=" + cause + " ";
    for (size_t pos = 0; (pos = log.find(want, pos)) != std::string::npos;) {
      size_t end = log.find('\n', pos);
      if (log.substr(pos, end - pos).find("name=\"" + mnt_ + "/" + name + "\"") != std::string::npos) return true;
      pos = end;
    }
    return false;
  }

  std::string mnt_, state_, secret_, keys_;
  ScratchMounts mounts_;
  LimdChild limd_;  // after the mounts: stopped before they go
};

TEST_F(LimdEvmRoot, AValidHmacPassesAndOfflineChangesFailWithTheKernelsCause) {
  for (const char* f : {"good", "mode", "owner", "xattr", "nolabel"}) Make(f);
  // Offline (limd not running): mode, owner, security.ima edited, security.evm removed.
  ASSERT_EQ(chmod((mnt_ + "/mode").c_str(), 0600), 0);
  ASSERT_EQ(chown((mnt_ + "/owner").c_str(), 1000, 0), 0);
  // A digest that matches the content, in another algorithm: only EVM can tell.
  Ok("cd " + mnt_ + " && " + lim::testing::LimCommand("hash --fix -a sha512 xattr") + " >/dev/null");
  ASSERT_EQ(removexattr((mnt_ + "/nolabel").c_str(), "security.evm"), 0);
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_EQ(Cat("good"), "ok") << Log();
  for (const char* f : {"mode", "owner", "xattr"}) {
    EXPECT_EQ(Cat(f), "denied") << f;
    EXPECT_TRUE(Audited(f, "invalid-HMAC")) << f << "\n" << Log();
  }
  EXPECT_EQ(Cat("nolabel"), "denied");
  EXPECT_TRUE(Audited("nolabel", "missing-HMAC")) << Log();
  // The key is announced by its fingerprint only.
  EXPECT_NE(Log().find("EVM HMAC key sha256:"), std::string::npos) << Log();
  EXPECT_EQ(Log().find("limd's EVM key"), std::string::npos);
  // The trusted key is in the list as the kernel's KEY_CHECK records it.
  limd_.Stop(SIGTERM);
  auto der = RunCommand("openssl x509 -in " + keys_ + "/ima.pem -outform DER | od -An -tx1 | tr -d ' \\n'");
  int key_entries = 0;
  for (const auto& row : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
    if (row.tmpl == "ima-buf" && row.name == ".ima") {
      key_entries++;
      EXPECT_EQ(ToHex(row.extra), der.out);
    }
  }
  EXPECT_EQ(key_entries, 1);
}

TEST_F(LimdEvmRoot, RootsChmodWhileLimdRunsIsReHmacedOnlyForAVerifiedFile) {
  Make("verified");
  Make("never");
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  ASSERT_EQ(Cat("verified"), "ok") << Log();
  // Root changes both while limd runs; limd verified only the first before.
  ASSERT_EQ(chmod((mnt_ + "/verified").c_str(), 0700), 0);
  ASSERT_EQ(chmod((mnt_ + "/never").c_str(), 0700), 0);
  EXPECT_EQ(Cat("verified"), "ok") << Log();
  EXPECT_EQ(Cat("never"), "denied");
  EXPECT_TRUE(Audited("never", "invalid-HMAC")) << Log();
  EXPECT_FALSE(Audited("verified", "invalid-HMAC")) << Log();
  limd_.Stop(SIGTERM);
  // lim status counts what EVM did (status.json as limd left it at exit).
  auto status = nlohmann::json::parse(Text(state_ + "/status.json"), nullptr, false);
  ASSERT_TRUE(status.is_object()) << Text(state_ + "/status.json");
  EXPECT_EQ(status["evm_flags"].get<uint64_t>() & 3u, 1u);  // EVM_INIT_HMAC (with EVM_SETUP_COMPLETE)
  EXPECT_GE(status["evm_verified"].get<uint64_t>(), 1u);
  EXPECT_GE(status["evm_failed"].get<uint64_t>(), 1u);    // "never"
  EXPECT_EQ(status["evm_rewritten"], 1u);                 // only "verified" was re-HMACed
  EXPECT_TRUE(CliVerifies("verified")) << "limd's new HMAC is not the kernel's formula";
  EXPECT_FALSE(CliVerifies("never")) << "a change limd did not see from a verified state was blessed";
  // A new run trusts the re-HMACed file as it stands.
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_EQ(Cat("verified"), "ok") << Log();
}

TEST_F(LimdEvmRoot, TheViewsEvmFileShowsTheKernelsInitFlagsAndRefusesWrites) {
  std::string view = lim::testing::MakeTempDir() + "/view";
  std::string policy = state_ + "/policy";
  ASSERT_TRUE(WriteFileBytes(policy, AsBytes("appraise func=FILE_CHECK\n")).ok());
  std::string cmd = std::string(LIMD_BIN) + " --foreground --no-tpm --control-socket none --boot-log none --state " +
                    ShellQuote(state_) + " --watch " + ShellQuote(mnt_) + " --securityfs " + ShellQuote(view) +
                    " --log-file " + ShellQuote(state_ + "/log") + " --policy " + policy + " --appraise log --keys " +
                    keys_ + " --evm-key " + secret_ + "/evm.key --evm-keys " + keys_ + " 2>>" +
                    ShellQuote(state_ + "/stderr");
  auto rc = limd_.Start(cmd, state_);
  ASSERT_FALSE(rc.has_value()) << Text(state_ + "/stderr");
  char buf[64];
  ssize_t n = ::readlink((view + "/evm").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "integrity/evm/evm");
  // EVM_INIT_HMAC | EVM_INIT_X509, printed as the kernel's evm_read_key does (no newline).
  EXPECT_EQ(Text(view + "/evm"), "3");
  struct stat st;
  ASSERT_EQ(::stat((view + "/integrity/evm/evm").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  auto w = RunCommand("(echo 1 > " + view + "/evm) 2>&1");
  EXPECT_NE(w.exit_code, 0);
  EXPECT_NE(w.out.find("Operation not permitted"), std::string::npos) << w.out;
  limd_.Stop(SIGTERM);
  // The EVM certificate is in the list on .evm, the IMA one on .ima.
  int ima = 0, evm = 0;
  for (const auto& row : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
    ima += row.tmpl == "ima-buf" && row.name == ".ima";
    evm += row.tmpl == "ima-buf" && row.name == ".evm";
  }
  EXPECT_EQ(ima, 1);
  EXPECT_EQ(evm, 1);
}

TEST_F(LimdEvmRoot, ASealedKeyIsUnsealedAtStartAndAMovedPcrStopsLimd) {
  std::string tcti = tpm::testing::SwtpmTctiForTests();
  Make("sealed");
  auto s = Lim("evm key seal --in " + secret_ + "/evm.key --pcrs sha256:7,23 -o " + secret_ + "/evm.sealed --tpm " +
               ShellQuote(tcti));
  ASSERT_EQ(s.exit_code, 0) << s.out;
  Start("--tpm " + ShellQuote(tcti) + " --pcr 11 --evm-key-sealed " + secret_ + "/evm.sealed");
  EXPECT_NE(Log().find("unsealed from " + secret_ + "/evm.sealed"), std::string::npos) << Log();
  EXPECT_EQ(Cat("sealed"), "ok") << Log();
  limd_.Stop(SIGTERM);
  ASSERT_EQ(tpm::testing::Tpm2Tools("tpm2_pcrextend 23:sha256=" + std::string(64, 'b')).exit_code, 0);
  auto rc = limd_.Start(LimdCommand(state_, mnt_, "--tpm " + ShellQuote(tcti) + " --pcr 11 --appraise enforce --keys " +
                                                      keys_ + " --evm-key-sealed " + secret_ + "/evm.sealed") +
                            " 2>>" + ShellQuote(state_ + "/stderr"),
                        state_);
  ASSERT_TRUE(rc.has_value()) << "limd started without its key";
  EXPECT_NE(Text(state_ + "/stderr").find("no longer hold the values they had at sealing: sha256:23"), std::string::npos)
      << Text(state_ + "/stderr");
}

}  // namespace
}  // namespace lim::daemon
