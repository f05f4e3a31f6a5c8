// Root tests of EVM in limd (--evm-key, --evm-key-sealed, --evm-keys) on an ext4 loop mount
// of the test's own, under --appraise enforce: a file with a valid HMAC passes; mode, owner
// or xattr changed while limd was not running fail with invalid-HMAC (missing-HMAC when
// security.evm is gone); root's chmod of a file limd verified in this run is re-HMACed and
// still passes, the same chmod of a file never verified stays failed — on FUSE too (watched
// per inode), while an overlay gets no HMAC from limd. The view's evm and evm_xattrs files. The trusted keys are
// in the list as ima-buf entries. limd runs under `timeout -k` and is stopped by its own
// pid (LimdChild). Skipped without root, fanotify or loop ext4.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/file.h"
#include "daemon/env.h"
#include "daemon/fuse_server_test_util.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "ima/evm.h"
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
  // A file with a security.ima digest and a good HMAC (lim hash --fix; lim evm hmac --write),
  // both through mnt_ (on FUSE, its content written to the server's source src_).
  void Make(const std::string& name) {
    std::string p = mnt_ + "/" + name;
    ASSERT_TRUE(WriteFileBytes((src_.empty() ? mnt_ : src_) + "/" + name, AsBytes("data of " + name + "\n")).ok());
    ASSERT_EQ(Lim("hash --fix " + p).exit_code, 0);
    auto h = Lim("evm hmac --write" + Uuid() + " --hmac-key " + secret_ + "/evm.key " + p);
    ASSERT_EQ(h.exit_code, 0) << h.out;
  }
  bool CliVerifies(const std::string& name) {
    return Lim("evm verify" + Uuid() + " --keys " + keys_ + " --hmac-key " + secret_ + "/evm.key " + mnt_ + "/" + name)
               .exit_code == 0;
  }
  // The CLI reads ext4's UUID itself; elsewhere it is told the superblock's as limd hashes
  // it (FS_IOC_GETFSUUID: overlay's own, zeros on FUSE, as the kernel's s_uuid).
  std::string Uuid() const { return uuid_.empty() ? "" : " --uuid " + uuid_; }
  void TakeSuperblockUuid() {
    int fd = ::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    uuid_ = ima::FormatFsUuid(SuperblockUuid(fd));
    ::close(fd);
  }
  std::string Evm(const std::string& name) {
    char buf[512];
    ssize_t n = ::getxattr((mnt_ + "/" + name).c_str(), "security.evm", buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }
  nlohmann::json StatusAtExit() {
    limd_.Stop(SIGTERM);
    return nlohmann::json::parse(Text(state_ + "/status.json"), nullptr, false);
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
  std::string src_;         // FUSE: the server's source directory
  std::string uuid_;        // overlay, FUSE: given to the CLI
  ScratchMounts mounts_;
  testing::FuseServer fuse_;  // stopped before the mounts go
  LimdChild limd_;            // stopped before the server and the mounts
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

// `lim evm hmac --evm-xattr` hashes the same inputs as limd --evm-xattr: a file HMACed by
// the CLI with security.lim protected passes limd started with it and fails limd without
// it (and the reverse for a file HMACed without); `lim evm verify` agrees both ways, and a
// changed security.lim fails both.
TEST_F(LimdEvmRoot, TheCliTakesTheSameAddedXattrsAsLimd) {
  Make("plain");
  Make("added");
  for (const char* f : {"plain", "added", "changed"}) {
    if (std::string(f) == "changed") Make(f);
    ASSERT_EQ(::setxattr((mnt_ + "/" + f).c_str(), "security.lim", "v", 1, 0), 0);
  }
  std::string key = " --hmac-key " + secret_ + "/evm.key ";
  for (const char* f : {"added", "changed"}) {
    auto h = Lim("evm hmac --write --evm-xattr security.lim" + Uuid() + key + mnt_ + "/" + f);
    ASSERT_EQ(h.exit_code, 0) << h.out;
  }
  ASSERT_EQ(::setxattr((mnt_ + "/changed").c_str(), "security.lim", "w", 1, 0), 0);
  auto verify = [&](const std::string& f, const std::string& extra) {
    return Lim("evm verify" + extra + Uuid() + " --keys " + keys_ + key + mnt_ + "/" + f).exit_code == 0;
  };
  EXPECT_TRUE(verify("added", " --evm-xattr security.lim"));
  EXPECT_FALSE(verify("added", ""));
  EXPECT_TRUE(verify("plain", ""));  // made before security.lim was set, without it
  EXPECT_FALSE(verify("plain", " --evm-xattr security.lim"));
  EXPECT_FALSE(verify("changed", " --evm-xattr security.lim"));
  EXPECT_NE(Lim("evm verify --evm-xattr user.lim" + Uuid() + key + mnt_ + "/added").out.find("not a security.* xattr"),
            std::string::npos);
  Start("--no-tpm --evm-key " + secret_ + "/evm.key --evm-xattr security.lim");
  EXPECT_EQ(Cat("added"), "ok") << Log();
  EXPECT_EQ(Cat("plain"), "denied");
  EXPECT_EQ(Cat("changed"), "denied");
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_EQ(Cat("plain"), "ok") << Log();
  EXPECT_EQ(Cat("added"), "denied");
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

// The view's evm_xattrs as the kernel's: reading lists the protected names; writing a
// security.* name adds it (hashed after security.capability from then on: a file whose
// HMAC was made without it fails), other names are refused, each write is an
// INTEGRITY_EVM_XATTR audit line, and "." locks the list (mode 0440, further writes EPERM).
TEST_F(LimdEvmRoot, TheViewsEvmXattrsAddsANameToTheHmacInputAndLocks) {
  Make("before");
  Make("after");
  for (const char* f : {"before", "after"}) {
    ASSERT_EQ(::setxattr((mnt_ + "/" + f).c_str(), "security.lim", "v", 1, 0), 0);
  }
  std::string view = lim::testing::MakeTempDir() + "/view";
  std::string policy = state_ + "/policy";
  ASSERT_TRUE(WriteFileBytes(policy, AsBytes("appraise func=FILE_CHECK\n")).ok());
  std::string cmd = std::string(LIMD_BIN) + " --foreground --no-tpm --control-socket none --boot-log none --state " +
                    ShellQuote(state_) + " --watch " + ShellQuote(mnt_) + " --securityfs " + ShellQuote(view) +
                    " --log-file " + ShellQuote(state_ + "/log") + " --policy " + policy +
                    " --appraise enforce --keys " + keys_ + " --evm-key " + secret_ + "/evm.key --evm-xattr security.SMACK64EXEC 2>>" +
                    ShellQuote(state_ + "/stderr");
  auto rc = limd_.Start(cmd, state_);
  ASSERT_FALSE(rc.has_value()) << Text(state_ + "/stderr");
  std::string file = view + "/integrity/evm/evm_xattrs";
  // --evm-xattr enabled SMACK64EXEC in its default place.
  EXPECT_EQ(Text(file),
            "security.selinux\nsecurity.SMACK64\nsecurity.SMACK64EXEC\nsecurity.apparmor\nsecurity.ima\n"
            "security.capability\n");
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(Cat("before"), "ok") << Log();
  // One write(2) per name, as echo does; the errno of the write.
  auto write_name = [&](const std::string& data) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = ::write(fd, data.data(), data.size());
    int e = n < 0 ? errno : 0;
    ::close(fd);
    return e;
  };
  EXPECT_EQ(write_name("security.lim\n"), 0);
  EXPECT_NE(Text(file).find("security.capability\nsecurity.lim\n"), std::string::npos) << Text(file);
  EXPECT_EQ(write_name("security.lim\n"), EEXIST);
  EXPECT_EQ(write_name("user.lim\n"), EINVAL);
  EXPECT_EQ(write_name(std::string(256, 's')), E2BIG);
  // The HMAC of "after" was made without security.lim: it fails now.
  EXPECT_EQ(Cat("after"), "denied");
  EXPECT_TRUE(Audited("after", "invalid-HMAC")) << Log();
  // Lock: echo works as with the kernel's file.
  EXPECT_EQ(RunCommand("echo . > " + file).exit_code, 0);
  EXPECT_EQ(write_name("security.more\n"), EPERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the view's attr_timeout
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
  EXPECT_EQ(Text(file).find("security.more"), std::string::npos);
  limd_.Stop(SIGTERM);
  std::string log = Log();
  for (const char* rec : {"xattr=\"security.lim\" res=0", "xattr=\"security.lim\" res=-17", "xattr=\"user.lim\" res=-22",
                          "xattr=\".\" res=0"}) {
    EXPECT_NE(log.find(std::string("type=INTEGRITY_EVM_XATTR msg=audit(")), std::string::npos) << log;
    EXPECT_NE(log.find(rec), std::string::npos) << rec << "\n" << log;
  }
  EXPECT_EQ(log.find("security.more"), std::string::npos) << "a refused write after the lock was audited";
}

// EVM on the filesystems of the side groups (side_group.h). FUSE (lim_test_fusefs passing
// xattrs, chmod and inode numbers through to a directory of the ext4 mount) refuses a
// FAN_REPORT_FID filesystem mark (zero fsid), so limd watches its files per inode: root's
// chmod or security.ima rewrite through the mount of a file verified in this run is
// re-HMACed, the same change of a file never verified fails, a change the server makes on
// its side (no event on the FUSE inode) is never re-blessed, one made while limd was
// stopped fails.
TEST_F(LimdEvmRoot, FuseChangesSeenThroughTheMountAreReHmacedOnlyForVerifiedFiles) {
  std::string src = src_ = mnt_ + "/src";
  mnt_ = lim::testing::MakeTempDir();
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  fuse_.xattrs = true;
  std::string why = fuse_.Start(src, mnt_);
  if (!why.empty()) GTEST_SKIP() << why;
  ASSERT_NO_FATAL_FAILURE(TakeSuperblockUuid());
  EXPECT_EQ(uuid_, "00000000-0000-0000-0000-000000000000");
  for (const char* f : {"good", "chmod", "ima", "never", "server", "offline"}) Make(f);
  ASSERT_TRUE(CliVerifies("good"));
  // Offline: limd not running.
  ASSERT_EQ(::chmod((mnt_ + "/offline").c_str(), 0600), 0);
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_NE(Log().find("refuses a filesystem mark for FAN_ATTRIB: its files are watched per inode"), std::string::npos)
      << Log();
  EXPECT_EQ(Cat("good"), "ok") << Log();
  EXPECT_EQ(Cat("offline"), "denied");
  EXPECT_TRUE(Audited("offline", "invalid-HMAC")) << Log();
  for (const char* f : {"chmod", "ima", "server"}) ASSERT_EQ(Cat(f), "ok") << f << "\n" << Log();
  // Online, by root through the mount: a mode change, a security.ima rewrite (a digest in
  // another algorithm: only EVM can tell), and the same mode change of a file never verified.
  ASSERT_EQ(::chmod((mnt_ + "/chmod").c_str(), 0700), 0);
  Ok("cd " + mnt_ + " && " + lim::testing::LimCommand("hash --fix -a sha512 ima") + " >/dev/null");
  ASSERT_EQ(::chmod((mnt_ + "/never").c_str(), 0700), 0);
  // On the server's side: the FUSE inode sees no event for it.
  ASSERT_EQ(::chmod((src + "/server").c_str(), 0700), 0);
  EXPECT_EQ(Cat("chmod"), "ok") << Log();
  EXPECT_EQ(Cat("ima"), "ok") << Log();
  EXPECT_EQ(Cat("never"), "denied");
  EXPECT_EQ(Cat("server"), "denied");
  EXPECT_TRUE(Audited("never", "invalid-HMAC")) << Log();
  EXPECT_TRUE(Audited("server", "invalid-HMAC")) << Log();
  auto status = StatusAtExit();
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["evm_rewritten"], 2u) << status.dump();  // "chmod" and "ima"
  EXPECT_TRUE(CliVerifies("chmod")) << "limd's new HMAC is not the kernel's formula";
  EXPECT_TRUE(CliVerifies("ima"));
  EXPECT_FALSE(CliVerifies("never")) << "a change of a file never verified was blessed";
  EXPECT_FALSE(CliVerifies("server")) << "a change limd could not see was blessed";
  EXPECT_FALSE(CliVerifies("offline"));
  // A new run trusts the re-HMACed files as they stand.
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_EQ(Cat("chmod"), "ok") << Log();
  EXPECT_EQ(Cat("ima"), "ok") << Log();
}

// overlayfs: limd writes no HMAC there, as the kernel (SB_I_EVM_HMAC_UNSUPPORTED): an
// online chmod of a verified file fails like an offline one, and security.evm stays as it was.
TEST_F(LimdEvmRoot, OverlayGetsNoHmacFromLimdOnlineOrOffline) {
  // Layers as a container runtime keeps them: one filesystem, lower/upper/work beside.
  std::string ext4 = mnt_;
  mnt_ = lim::testing::MakeTempDir();
  Ok("mkdir " + ext4 + "/lower " + ext4 + "/upper " + ext4 + "/work && mount -t overlay overlay -o lowerdir=" + ext4 +
     "/lower,upperdir=" + ext4 + "/upper,workdir=" + ext4 + "/work " + mnt_);
  mounts_.Adopt(mnt_);
  ASSERT_NO_FATAL_FAILURE(TakeSuperblockUuid());
  for (const char* f : {"good", "online", "offline"}) Make(f);
  ASSERT_TRUE(CliVerifies("good"));
  ASSERT_EQ(::chmod((mnt_ + "/offline").c_str(), 0600), 0);
  Start("--no-tpm --evm-key " + secret_ + "/evm.key");
  EXPECT_EQ(Cat("good"), "ok") << Log();
  EXPECT_EQ(Cat("offline"), "denied");
  EXPECT_TRUE(Audited("offline", "invalid-HMAC")) << Log();
  ASSERT_EQ(Cat("online"), "ok") << Log();
  std::string before = Evm("online");
  ASSERT_EQ(::chmod((mnt_ + "/online").c_str(), 0700), 0);
  EXPECT_EQ(Cat("online"), "denied");
  EXPECT_EQ(Evm("online"), before) << "limd wrote security.evm on an overlay";
  auto status = StatusAtExit();
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["evm_rewritten"], 0u) << status.dump();
  EXPECT_NE(Log().find(mnt_ + " is an overlay: limd writes no HMAC there"), std::string::npos) << Log();
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
