// Tests of limd's appraisal decision (Appraiser) on xattr values handed in, so they run
// without root; fix mode's xattr write needs root and an xattr-capable $TMPDIR.
#include "daemon/appraiser.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/private_key.h"
#include "ima/ima_signature.h"
#include "ima/ima_xattr.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

TEST(AppraiseModeTest, NamesRoundTripAndBadNamesAreRefused) {
  for (const char* n : {"off", "log", "enforce", "fix"}) {
    auto m = ParseAppraiseMode(n);
    ASSERT_TRUE(m.ok()) << n;
    EXPECT_EQ(AppraiseModeName(*m), n);
  }
  auto bad = ParseAppraiseMode("enforcing");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("off, log, enforce, fix"), std::string::npos);
}

TEST(DigestDenylistTest, ParsesAlgorithmsAndNamesBadLines) {
  std::string sha256(64, 'a'), sha1(40, 'b');
  auto d = DigestDenylist::Parse("# bad builds\n\n" + sha256 + "\nsha1:" + sha1 + "\n  sha512:" + std::string(128, 'c') + "  \n", "deny");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->size(), 3u);
  EXPECT_EQ(d->algos().size(), 3u);
  EXPECT_TRUE(d->Contains(Sha256Algo(), *FromHex(sha256)));
  EXPECT_TRUE(d->Contains(Sha1Algo(), *FromHex(sha1)));
  EXPECT_FALSE(d->Contains(Sha256Algo(), Bytes(32, 0)));
  EXPECT_FALSE(d->Contains(Sha1Algo(), Bytes(20, 0xcc)));
  struct Case {
    std::string text, says;
  } cases[] = {
      {"zz\n", "deny:1: not a hex digest"},
      {"\nsha256:abcd\n", "deny:2: sha256 digests are 32 bytes, not 2"},
      {"nosuch:" + sha256 + "\n", "deny:1: unknown hash algorithm 'nosuch'"},
      {"abcdef\n", "deny:1: no hash algorithm has 3-byte digests"},
  };
  for (const auto& c : cases) {
    auto r = DigestDenylist::Parse(c.text, "deny");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().message(), c.says);
  }
}

class AppraiserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    file_ = dir_ + "/f";
    ByteView text = AsBytes("appraised content\n");
    content_.assign(text.begin(), text.end());
    ASSERT_TRUE(WriteFileBytes(file_, content_).ok());
    for (const char* stem : {"good", "evil"}) {
      auto r = testing::RunCommand("cd " + dir_ + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout " + stem +
                                   ".key -out " + stem + ".pem -subj /CN=" + stem + " -days 2 2>&1");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    keys_ = PublicKey::LoadFile(dir_ + "/good.pem").value();
    fd_ = ::open(file_.c_str(), O_RDONLY);
    ASSERT_GE(fd_, 0);
    facts_.size = content_.size();
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  Bytes Sign(const std::string& stem, ByteView content) {
    auto key = PrivateKey::Load(dir_ + "/" + stem + ".key", dir_ + "/" + stem + ".pem");
    EXPECT_TRUE(key.ok()) << key.status().message();
    Bytes d = *Digest(Sha256Algo(), content);
    return *ima::MakeSignatureV2(ima::kXattrDigsig, 2, Sha256Algo(), key->key_id(), *key->SignDigest(Sha256Algo(), d));
  }
  AppraiseOutcome Run(const FileXattrs& x, ima::AppraiseRequirements req = {}, bool created = false,
                      DigestDenylist deny = {}) {
    Appraiser ap({AppraiseMode::kEnforce}, keys_, std::move(deny), nullptr);
    hashes_ = 0;
    return ap.Appraise(fd_, facts_, file_, req, x, created, [&](const HashAlgo& a) {
      hashes_++;
      return Digest(a, content_);
    });
  }
  static FileXattrs Ima(Bytes v) {
    FileXattrs x;
    x.ima = std::move(v);
    return x;
  }
  std::string dir_, file_;
  Bytes content_;
  std::vector<PublicKey> keys_;
  int fd_ = -1;
  FileFacts facts_;
  int hashes_ = 0;
};

TEST_F(AppraiserTest, TheTamperMatrixGetsTheKernelsCauses) {
  const ima::AppraiseRequirements sig{.signature_required = true};
  Bytes good = Sign("good", content_);
  AppraiseOutcome ok = Run(Ima(good), sig);
  EXPECT_TRUE(ok.pass) << ok.cause << " " << ok.detail;
  EXPECT_TRUE(ok.signature);
  ASSERT_TRUE(ok.ima_xattr);
  EXPECT_EQ(*ok.ima_xattr, good);  // what an ima-sig entry carries
  EXPECT_EQ(hashes_, 1);

  Bytes digest = ima::MakeImaDigestXattr(Sha256Algo(), *Digest(Sha256Algo(), content_));
  EXPECT_TRUE(Run(Ima(digest)).pass);
  EXPECT_EQ(Run(Ima(digest), sig).cause, "IMA-signature-required");  // digest-only where imasig needed
  EXPECT_EQ(Run(FileXattrs{}, sig).cause, "IMA-signature-required");  // xattr removed
  EXPECT_EQ(Run(FileXattrs{}).cause, "missing-hash");
  EXPECT_EQ(Run(Ima(Sign("evil", content_)), sig).cause, "invalid-signature");  // untrusted key
  EXPECT_EQ(Run(Ima(Sign("good", AsBytes("another file\n"))), sig).cause, "invalid-signature");
  Bytes other = ima::MakeImaDigestXattr(Sha256Algo(), *Digest(Sha256Algo(), AsBytes("another file\n")));
  EXPECT_EQ(Run(Ima(other)).cause, "invalid-hash");  // a byte changed after hashing, or copied
  // Hostile values: named causes.
  EXPECT_EQ(Run(Ima({0x03, 2, 4, 0, 0, 0, 1, 0, 200})).cause, "unknown-ima-data");
  EXPECT_EQ(Run(Ima({0x7f, 1, 2})).cause, "unknown-ima-data");
  EXPECT_EQ(Run(Ima({})).cause, "unknown-ima-data");
  FileXattrs oversized;
  oversized.ima_status = Status::Corrupt("f: security.ima is larger than 4096 bytes");
  AppraiseOutcome big = Run(oversized);
  EXPECT_EQ(big.cause, "unknown-ima-data");
  EXPECT_NE(big.detail.find("larger than 4096"), std::string::npos);
  // The denylist wins over a good signature.
  auto deny = DigestDenylist::Parse("sha256:" + ToHex(*Digest(Sha256Algo(), content_)) + "\n", "deny").value();
  AppraiseOutcome denied = Run(Ima(good), sig, false, deny);
  EXPECT_EQ(denied.cause, "denylisted-hash");
  EXPECT_FALSE(denied.pass);
}

TEST_F(AppraiserTest, ANewFilePassesUnlessItNeedsASignatureAndHoldsData) {
  AppraiseOutcome n = Run(FileXattrs{}, {}, /*created=*/true);
  EXPECT_TRUE(n.pass);
  EXPECT_TRUE(n.new_file);
  EXPECT_EQ(Run(FileXattrs{}, {.signature_required = true}, true).cause, "IMA-signature-required");
  facts_.size = 0;
  EXPECT_TRUE(Run(FileXattrs{}, {.signature_required = true}, true).pass);
}

TEST_F(AppraiserTest, AuditLineHasTheKernelsFields) {
  AppraiseOutcome o;
  o.cause = "invalid-hash";
  EXPECT_EQ(AppraiseAuditLine(42, 0, "cat", "/mnt/ab", 12, o),
            "pid=42 uid=0 op=appraise_data cause=invalid-hash comm=\"cat\" name=\"/mnt/ab\" ino=12 res=0 errno=0");
  // A quote, a space or a control character: upper-case hex, as audit_log_untrustedstring.
  EXPECT_NE(AppraiseAuditLine(1, 0, "x", "/a\"b", 1, o).find(" name=2F612262 "), std::string::npos);
  EXPECT_NE(AppraiseAuditLine(1, 0, "x", "/a b", 1, o).find(" name=2F612062 "), std::string::npos);
}

TEST_F(AppraiserTest, FixModeWritesADigestButNeverOverASignature) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for security.* xattrs";
  if (fsetxattr(fd_, "security.ima", "\x04", 1, 0) != 0) GTEST_SKIP() << "no security xattrs on $TMPDIR";
  Appraiser ap({AppraiseMode::kFix}, keys_, {}, nullptr);
  auto digest = [&](const HashAlgo& a) { return Digest(a, content_); };
  AppraiseOutcome o = ap.Appraise(fd_, facts_, file_, {}, FileXattrs{}, false, digest);
  EXPECT_TRUE(o.pass);
  EXPECT_TRUE(o.fixed);
  Bytes want = ima::MakeImaDigestXattr(Sha256Algo(), *Digest(Sha256Algo(), content_));
  Bytes got(4096);
  ssize_t n = fgetxattr(fd_, "security.ima", got.data(), got.size());
  ASSERT_GT(n, 0);
  got.resize(static_cast<size_t>(n));
  EXPECT_EQ(got, want);
  // A v2 signature (even a bad one) is never replaced.
  Bytes bad = Sign("evil", content_);
  ASSERT_EQ(fsetxattr(fd_, "security.ima", bad.data(), bad.size(), 0), 0);
  AppraiseOutcome s = ap.Appraise(fd_, facts_, file_, {}, Ima(bad), false, digest);
  EXPECT_FALSE(s.pass);
  EXPECT_FALSE(s.fixed);
  EXPECT_EQ(s.cause, "invalid-signature");
  auto upd = ap.UpdateXattr(fd_, facts_, file_, digest);
  ASSERT_TRUE(upd.ok());
  EXPECT_FALSE(*upd);  // signed files are immutable: no rewrite at a writer's close
}

}  // namespace
}  // namespace lim::daemon
