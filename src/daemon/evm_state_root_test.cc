// EvmState and AttribWatch on a loop-mounted ext4 of the test's own (root: xattrs in the
// security namespace, fanotify, mounts). AttribWatch is a notification group (no permission
// events): nothing here can wait on the test. HMACs are cross-checked with `lim evm verify`,
// which computes the kernel's formula on its own (UUID from the ext4 superblock).
#include "daemon/evm_state.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cctype>
#include <string>

#include "base/file.h"
#include "base/hex.h"
#include "daemon/env.h"
#include "crypto/key_ring.h"
#include "crypto/private_key.h"
#include "daemon/limd_test_util.h"
#include "ima/evm.h"
#include "ima/ima_signature.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;
using testing::FanotifyUnavailable;
using testing::ScratchMounts;

const std::string kKey = "0123456789abcdef0123456789abcdef";
const Bytes kImaDigest = {0x04, 0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

class EvmStateRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = geteuid() == 0 ? FanotifyUnavailable(FAN_CLASS_NOTIF) : "needs root";
    if (why.empty()) why = mounts_.AddExt4(&dir_);
    if (!why.empty()) GTEST_SKIP() << why;
    no_keys_ = lim::testing::MakeTempDir();
    key_file_ = lim::testing::MakeTempDir() + "/evm.key";
    ASSERT_TRUE(WriteFileBytes(key_file_, AsBytes(kKey), 0600).ok());
  }
  // A file with security.ima and a good HMAC, written as `lim evm hmac --write` does.
  std::string MakeFile(const std::string& name) {
    std::string p = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(p, AsBytes("#!/bin/sh\necho " + name + "\n"), 0755).ok());
    EXPECT_EQ(setxattr(p.c_str(), "security.ima", kImaDigest.data(), kImaDigest.size(), 0), 0);
    auto r = Lim("evm hmac --write --hmac-key " + key_file_ + " " + p);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }
  static lim::testing::CommandResult Lim(const std::string& args) { return RunCommand(lim::testing::LimCommand(args)); }
  // `lim evm verify` with the key: the kernel's formula computed independently.
  bool CliVerifies(const std::string& p) { return Lim("evm verify --keys " + no_keys_ + " --hmac-key " + key_file_ + " " + p).exit_code == 0; }

  std::unique_ptr<EvmState> NewRun(const std::vector<PublicKey>* keys = nullptr, bool watch = true) {
    auto key = SecretBytes::CopyOf(AsBytes(kKey));
    EXPECT_TRUE(key.ok());
    auto s = std::make_unique<EvmState>(std::move(*key), keys);
    if (watch) {
      auto* sp = s.get();
      auto w = AttribWatch::Create([sp](const std::string& k) { sp->Changed(k); }, [sp](const std::string&) { sp->Overflowed(); });
      EXPECT_TRUE(w.ok()) << w.status().message();
      watch_ = std::move(*w);
      EXPECT_TRUE(watch_->Mark(dir_, DevOf(dir_)).ok());
      s->set_watch(watch_.get());
    }
    return s;
  }
  static uint64_t DevOf(const std::string& p) {
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_dev);
  }
  static std::optional<Bytes> Xattr(const std::string& p, const char* name) {
    Bytes b(4096);
    ssize_t n = getxattr(p.c_str(), name, b.data(), b.size());
    if (n < 0) return std::nullopt;
    b.resize(static_cast<size_t>(n));
    return b;
  }
  // What limd's appraisal does at an access: open, read both xattrs once, ask EVM.
  ima::EvmVerdict Verify(EvmState& s, const std::string& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    auto v = s.Verify(fd, DevOf(p), Xattr(p, "security.ima"), Xattr(p, "security.evm"));
    ::close(fd);
    return v;
  }

  ScratchMounts mounts_;
  std::string dir_, key_file_, no_keys_;
  std::unique_ptr<AttribWatch> watch_;
};

TEST_F(EvmStateRoot, AValidHmacPassesAndAgreesWithTheCli) {
  std::string f = MakeFile("good");
  ASSERT_TRUE(CliVerifies(f));
  auto s = NewRun();
  auto v = Verify(*s, f);
  EXPECT_EQ(v.status, "pass") << v.detail;
  EXPECT_EQ(s->init_flags(), kEvmInitHmac | kEvmSetupComplete);
  EXPECT_EQ(s->tracked(), 1u);
}

TEST_F(EvmStateRoot, OfflineChangesFailNamingWhy) {
  std::string mode = MakeFile("mode"), owner = MakeFile("owner"), xattr = MakeFile("xattr"), gone = MakeFile("gone");
  // limd is not running: the changes happen between two runs.
  ASSERT_EQ(chmod(mode.c_str(), 04755), 0);
  ASSERT_EQ(chown(owner.c_str(), 1000, 1000), 0);
  Bytes other = kImaDigest;
  other.back() ^= 1;
  ASSERT_EQ(setxattr(xattr.c_str(), "security.ima", other.data(), other.size(), 0), 0);
  ASSERT_EQ(removexattr(gone.c_str(), "security.evm"), 0);
  auto s = NewRun();
  for (const auto& f : {mode, owner, xattr}) {
    auto v = Verify(*s, f);
    EXPECT_EQ(v.status, "fail") << f;
    EXPECT_NE(v.detail.find("HMAC over the protected xattrs, inode, generation, uid, gid, mode and fs UUID does not match"),
              std::string::npos) << v.detail;
    EXPECT_NE(v.detail.find("limd has not verified this file's earlier state in this run"), std::string::npos) << v.detail;
    EXPECT_FALSE(CliVerifies(f)) << "the change was re-blessed: " << f;
  }
  auto v = Verify(*s, gone);
  EXPECT_EQ(v.status, "no_label") << v.detail;  // the appraisal's missing-HMAC
  EXPECT_EQ(s->tracked(), 0u);
  EXPECT_EQ(s->counts().rewritten.load(), 0u);
}

TEST_F(EvmStateRoot, RootsChmodOfAVerifiedFileIsReHmacedAndStillPasses) {
  std::string f = MakeFile("verified");
  auto s = NewRun();
  ASSERT_EQ(Verify(*s, f).status, "pass");
  auto before = Xattr(f, "security.evm");
  ASSERT_EQ(chmod(f.c_str(), 0700), 0);  // online, seen by the attribute watch
  ASSERT_EQ(chown(f.c_str(), 0, 1000), 0);
  auto v = Verify(*s, f);
  EXPECT_EQ(v.status, "pass") << v.detail;
  EXPECT_NE(v.detail.find("re-computed after a change limd saw"), std::string::npos) << v.detail;
  EXPECT_NE(Xattr(f, "security.evm"), before);
  EXPECT_TRUE(CliVerifies(f)) << "the re-computed HMAC is not the kernel's";
  EXPECT_EQ(s->counts().rewritten.load(), 1u);
  // The next run (no memory of this one) verifies it as it stands.
  auto next = NewRun();
  EXPECT_EQ(Verify(*next, f).status, "pass");
}

TEST_F(EvmStateRoot, RootsChmodOfAFileNeverVerifiedStaysFailed) {
  std::string verified = MakeFile("seen"), never = MakeFile("never");
  auto s = NewRun();
  ASSERT_EQ(Verify(*s, verified).status, "pass");
  ASSERT_EQ(chmod(never.c_str(), 0700), 0);
  auto v = Verify(*s, never);
  EXPECT_EQ(v.status, "fail");
  EXPECT_NE(v.detail.find("has not verified this file's earlier state"), std::string::npos) << v.detail;
  EXPECT_FALSE(CliVerifies(never));
  EXPECT_EQ(s->counts().refused.load(), 1u);
  // Asked again, still failed: a failure is never a base to re-bless from.
  EXPECT_EQ(Verify(*s, never).status, "fail");
}

TEST_F(EvmStateRoot, UnwatchedOrOverflowedChangesAreNeverBlessed) {
  std::string a = MakeFile("a"), b = MakeFile("b");
  auto unwatched = NewRun(nullptr, /*watch=*/false);
  ASSERT_EQ(Verify(*unwatched, a).status, "pass");
  ASSERT_EQ(chmod(a.c_str(), 0700), 0);
  auto v = Verify(*unwatched, a);
  EXPECT_EQ(v.status, "fail");
  EXPECT_NE(v.detail.find("changes on this filesystem are not watched"), std::string::npos) << v.detail;

  auto s = NewRun();
  ASSERT_EQ(Verify(*s, b).status, "pass");
  s->Overflowed();  // the watch's queue overflowed: changes may have gone unseen
  ASSERT_EQ(chmod(b.c_str(), 0700), 0);
  EXPECT_EQ(Verify(*s, b).status, "fail");
  EXPECT_FALSE(CliVerifies(b));
}

TEST_F(EvmStateRoot, SecurityEvmWrittenBySomeoneElseIsJudgedAsWritten) {
  std::string f = MakeFile("rewritten");
  auto s = NewRun();
  ASSERT_EQ(Verify(*s, f).status, "pass");
  Bytes forged(21, 0x5a);
  forged[0] = 0x02;
  ASSERT_EQ(setxattr(f.c_str(), "security.evm", forged.data(), forged.size(), 0), 0);
  auto v = Verify(*s, f);
  EXPECT_EQ(v.status, "fail");
  EXPECT_NE(v.detail.find("security.evm itself was rewritten"), std::string::npos) << v.detail;
  EXPECT_EQ(Xattr(f, "security.evm"), forged);
}

TEST_F(EvmStateRoot, ImaXattrWrittenByLimdGetsAnHmacForVerifiedAndNewFiles) {
  std::string verified = MakeFile("edited");
  std::string fresh = dir_ + "/new";
  ASSERT_TRUE(WriteFileBytes(fresh, AsBytes("new\n"), 0644).ok());
  std::string stranger = MakeFile("stranger");
  auto s = NewRun();
  ASSERT_EQ(Verify(*s, verified).status, "pass");
  Bytes updated = kImaDigest;
  updated[5] ^= 0xff;
  for (const auto& f : {verified, fresh, stranger}) {
    ASSERT_EQ(setxattr(f.c_str(), "security.ima", updated.data(), updated.size(), 0), 0);  // limd's fix/close write
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    s->ImaXattrUpdated(fd, DevOf(f));
    ::close(fd);
  }
  EXPECT_TRUE(CliVerifies(verified));
  EXPECT_TRUE(CliVerifies(fresh)) << "a new file gets its first HMAC, as the kernel's post_setxattr";
  EXPECT_FALSE(CliVerifies(stranger)) << "a file limd never verified was re-blessed";
}

TEST_F(EvmStateRoot, A03SignatureIsReplacedByAnHmacAPortableOneNever) {
  std::string keys = lim::testing::MakeTempDir();
  auto r = RunCommand("cd " + keys + " && openssl ecparam -name prime256v1 -genkey -noout -out k.pem 2>&1 && "
                      "openssl req -new -x509 -key k.pem -subj /CN=evm -days 2 -out c.pem 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto ring = KeyRing::Load(keys + "/c.pem");
  ASSERT_TRUE(ring.ok());
  std::string sig = MakeFile("sig"), portable = MakeFile("portable");
  ASSERT_EQ(Lim("evm sign --key " + keys + "/k.pem --cert " + keys + "/c.pem " + sig).exit_code, 0);
  ASSERT_EQ(Lim("evm sign --portable --key " + keys + "/k.pem --cert " + keys + "/c.pem " + portable).exit_code, 0);
  auto s = NewRun(&ring->keys());
  EXPECT_EQ(s->init_flags(), kEvmInitHmac | kEvmInitX509 | kEvmSetupComplete);
  auto v = Verify(*s, sig);
  EXPECT_EQ(v.status, "pass") << v.detail;
  EXPECT_NE(v.detail.find("replaced by an HMAC"), std::string::npos) << v.detail;
  EXPECT_EQ(Xattr(sig, "security.evm")->at(0), 0x02);
  EXPECT_TRUE(CliVerifies(sig));
  auto before = Xattr(portable, "security.evm");
  EXPECT_EQ(Verify(*s, portable).status, "pass_immutable");
  EXPECT_EQ(Xattr(portable, "security.evm"), before);
  // A chmod breaks the portable signature for good: fail_immutable, never rewritten.
  ASSERT_EQ(chmod(portable.c_str(), 0700), 0);
  EXPECT_EQ(Verify(*s, portable).status, "fail_immutable");
  EXPECT_EQ(Xattr(portable, "security.evm"), before);
}

// The facts limd's appraisal gives the EVM signature check carry the ext4 filesystem's UUID
// (FS_IOC_GETFSUUID, defined by lim since Debian 12's headers lack it), as findmnt reports
// it: a non-portable EVM signature covers it, and zeros would fail every such signature.
TEST_F(EvmStateRoot, RealEnvFactsCarryTheFilesystemUuid) {
  std::string p = MakeFile("uuid");
  auto r = RunCommand("findmnt -n -o UUID --target " + dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string uuid;
  for (char c : r.out) {
    if (std::isxdigit(static_cast<unsigned char>(c))) uuid += c;
  }
  ASSERT_EQ(uuid.size(), 32u) << r.out;
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto facts = RealEnv()->Facts(fd);
  ::close(fd);
  ASSERT_TRUE(facts.ok()) << facts.status().message();
  EXPECT_EQ(ToHex(Bytes(facts->fsuuid.begin(), facts->fsuuid.end())), uuid);
}

}  // namespace
}  // namespace lim::daemon
