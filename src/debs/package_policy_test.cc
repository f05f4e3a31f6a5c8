#include "debs/package_policy.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "attest/remediation.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "debs/debs_test_util.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"

namespace lim::debs {
namespace {

using attest::Finding;
using attest::Reason;
using attest::RuntimePolicy;
using lim::testing::MakeTempDir;
using testing::HaveDpkg;
using testing::Install;
using testing::MakeDeb;
using testing::MakeRoot;

Bytes Sha(const std::string& s) { return *Digest(Sha256Algo(), AsBytes(s)); }

// The verdict of the policy on one ima-ng entry for path with content's digest.
std::optional<Finding> Verdict(const RuntimePolicy& p, const std::string& path, const std::string& content) {
  Bytes list;
  ima::ListWriter w(Sha1Algo(), ByteOrder::kLittle);
  EXPECT_TRUE(w.Append(ima::ImaNgRecord(Sha256Algo(), Sha(content), path), &list).ok());
  auto reader = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(reader.ok());
  ima::Entry e;
  EXPECT_TRUE(*(*reader)->Next(&e));
  return p.Check(e, {}, nullptr);
}

PackagePolicyOptions Merged() {
  PackagePolicyOptions o;
  o.usr = UsrMerge::FromPairs({{"/bin", "/usr/bin"}, {"/lib", "/usr/lib"}});
  return o;
}

class PackagePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveDpkg()) GTEST_SKIP() << "dpkg not installed";
    dir_ = MakeTempDir();
    debs_ = dir_ + "/debs";
    std::filesystem::create_directories(debs_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_, debs_;
};

TEST_F(PackagePolicyTest, FromDebsNamesFilesAsMeasuredAndRoundTrips) {
  MakeDeb(debs_, "openssh-client", "1:9.2p1-2", {{"/usr/bin/ssh", "ssh 9.2"}, {"/bin/scp", "scp 9.2"}});
  MakeDeb(debs_, "coreutils", "9.1-1", {{"/bin/ls", "ls 9.1"}}, "zstd");
  PackagePolicyReport report;
  auto p = PolicyFromDebs({debs_}, Merged(), &report);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(report.debs, 2u);
  EXPECT_EQ(report.files, 3u);
  // /bin/scp of the .deb is /usr/bin/scp as limd records it.
  EXPECT_FALSE(Verdict(*p, "/usr/bin/scp", "scp 9.2"));
  EXPECT_FALSE(Verdict(*p, "/usr/bin/ls", "ls 9.1"));
  EXPECT_EQ(p->packages().at("coreutils").source, "deb");
  // Native round trip keeps the provenance; keylime export stays a valid keylime policy.
  auto again = RuntimePolicy::FromNativeJson(p->ToNativeJson());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->ToNativeJson(), p->ToNativeJson());
  std::vector<std::string> lost;
  auto keylime = RuntimePolicy::FromKeylimeJson(p->ToKeylimeJson(&lost));
  ASSERT_TRUE(keylime.ok()) << keylime.status().message();
  EXPECT_FALSE(Verdict(*keylime, "/usr/bin/ssh", "ssh 9.2"));
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_NE(lost[0].find("package provenance of 3 paths"), std::string::npos);
}

TEST_F(PackagePolicyTest, ReplacedBinaryGetsReinstallHintAndUnownedFileIsNamed) {
  MakeDeb(debs_, "openssh-client", "1:9.2p1-2", {{"/usr/bin/ssh", "ssh 9.2"}});
  PackagePolicyReport report;
  auto p = PolicyFromDebs({debs_}, Merged(), &report);
  ASSERT_TRUE(p.ok()) << p.status().message();
  auto f = Verdict(*p, "/usr/bin/ssh", "trojan");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reason, Reason::kDigestNotAllowed);
  EXPECT_TRUE(f->failure());
  EXPECT_EQ(f->detail,
            "`/usr/bin/ssh` has a digest of no version of openssh-client (newest in policy 1:9.2p1-2); "
            "reinstall: `apt-get install --reinstall openssh-client`");
  f = Verdict(*p, "/usr/local/bin/x", "x");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reason, Reason::kUnknownFile);
  EXPECT_EQ(f->detail, "`/usr/local/bin/x` is not owned by any package in the policy");
  // The one-line log form carries the hint, still one line.
  std::string line = attest::FormatFinding("web1", *f);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("detail=\"`/usr/local/bin/x` is not owned by any package in the policy\""), std::string::npos)
      << line;
}

// ReadDebs reads the largest .debs first (no idle worker at the end) and still returns the
// packages in name order, with only the policy's digest; the first broken .deb by name is
// the error, whichever was read first.
TEST_F(PackagePolicyTest, ReadDebsLargestFirstResultsInNameOrder) {
  std::string noise;
  Bytes block = *Digest(Sha256Algo(), AsBytes("seed"));
  while (noise.size() < 400000) {
    block = *Digest(Sha256Algo(), block);
    noise.append(reinterpret_cast<const char*>(block.data()), block.size());
  }
  MakeDeb(debs_, "a-small", "1", {{"/usr/bin/a", "a"}});
  MakeDeb(debs_, "b-large", "1", {{"/usr/lib/b", noise}});
  MakeDeb(debs_, "c-small", "1", {{"/usr/bin/c", "c"}});
  PackagePolicyOptions o = Merged();
  for (size_t jobs : {1, 2, 3}) {
    o.jobs = jobs;
    PackagePolicyReport report;
    auto got = ReadDebs({debs_}, o, &report);
    ASSERT_TRUE(got.ok()) << got.status().message();
    ASSERT_EQ(got->size(), 3u);
    EXPECT_EQ((*got)[0].name, "a-small");
    EXPECT_EQ((*got)[1].name, "b-large");
    EXPECT_EQ((*got)[2].name, "c-small");
    EXPECT_EQ((*got)[1].files[0].digest, *Digest(Sha256Algo(), AsBytes(noise)));
    EXPECT_TRUE((*got)[1].files[0].md5.empty());
    EXPECT_EQ(report.debs, 3u);
  }
  ASSERT_TRUE(WriteFileBytes(debs_ + "/0-broken.deb", AsBytes("not an ar archive")).ok());
  ASSERT_TRUE(WriteFileBytes(debs_ + "/z-broken.deb", AsBytes("not one either")).ok());
  PackagePolicyReport report;
  auto bad = ReadDebs({debs_}, o, &report);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind(debs_ + "/0-broken.deb: ", 0), 0u) << bad.status().message();
}

TEST_F(PackagePolicyTest, UpdateKeepsAWindowAndTellsOldFromUnknown) {
  MakeDeb(debs_, "tool", "1.0-1", {{"/usr/bin/tool", "tool 1.0"}, {"/usr/bin/gone", "gone in 3.0"}});
  PackagePolicyOptions o = Merged();
  o.keep = 2;
  PackagePolicyReport report;
  auto p = PolicyFromDebs({debs_}, o, &report);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(Verdict(*p, "/usr/bin/tool", "tool 1.0"));  // newest: passes quietly

  // 2.0 arrives: hosts still running 1.0 stay attested, with a notice.
  std::string d2 = dir_ + "/v2";
  std::filesystem::create_directories(d2);
  MakeDeb(d2, "tool", "2.0-1", {{"/usr/bin/tool", "tool 2.0"}, {"/usr/bin/gone", "gone in 3.0"}});
  auto v2 = ReadDebs({d2}, o, &report);
  ASSERT_TRUE(v2.ok());
  ASSERT_TRUE(AddPackages(*v2, o, &*p, &report).ok());
  EXPECT_EQ(p->packages().at("tool").versions, (std::vector<std::string>{"2.0-1", "1.0-1"}));
  EXPECT_FALSE(Verdict(*p, "/usr/bin/tool", "tool 2.0"));
  auto old = Verdict(*p, "/usr/bin/tool", "tool 1.0");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->reason, Reason::kOldVersion);
  EXPECT_FALSE(old->failure());
  EXPECT_EQ(std::string(attest::ReasonName(old->reason)), "old-version");
  EXPECT_EQ(old->detail, "`/usr/bin/tool` is from tool 1.0-1, older than 2.0-1 (allowed by the policy window): "
                         "restart what still runs it");
  // Unchanged between versions: the newest has it, no notice.
  EXPECT_FALSE(Verdict(*p, "/usr/bin/gone", "gone in 3.0"));
  auto unknown = Verdict(*p, "/usr/bin/tool", "tool 0.9");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->reason, Reason::kDigestNotAllowed);

  // 3.0 (through the native form, as `lim policy update` reads OLD): 1.0 leaves the window of 2.
  auto reread = RuntimePolicy::FromNativeJson(p->ToNativeJson());
  ASSERT_TRUE(reread.ok()) << reread.status().message();
  std::string d3 = dir_ + "/v3";
  std::filesystem::create_directories(d3);
  MakeDeb(d3, "tool", "3.0-1", {{"/usr/bin/tool", "tool 3.0"}});
  // An older version given late does not push a newer one out.
  MakeDeb(d3, "tool", "0.5-1", {{"/usr/bin/tool", "tool 0.5"}});
  auto v3 = ReadDebs({d3}, o, &report);
  ASSERT_TRUE(v3.ok());
  report = {};
  ASSERT_TRUE(AddPackages(*v3, o, &*reread, &report).ok());
  EXPECT_EQ(reread->packages().at("tool").versions, (std::vector<std::string>{"3.0-1", "2.0-1"}));
  EXPECT_EQ(report.dropped_versions, 1u);
  auto dropped = Verdict(*reread, "/usr/bin/tool", "tool 1.0");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->reason, Reason::kDigestNotAllowed);
  EXPECT_TRUE(Verdict(*reread, "/usr/bin/tool", "tool 0.5"));
  ASSERT_TRUE(Verdict(*reread, "/usr/bin/tool", "tool 2.0"));
  EXPECT_EQ(Verdict(*reread, "/usr/bin/tool", "tool 2.0")->reason, Reason::kOldVersion);
  // gone in 3.0: 2.0 still has it (old version), and it stays allowed.
  auto gone = Verdict(*reread, "/usr/bin/gone", "gone in 3.0");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->reason, Reason::kOldVersion);
}

TEST_F(PackagePolicyTest, FromDpkgAgreesWithFromDebsAndReportsModifiedFiles) {
  std::string root = MakeRoot(dir_);
  std::string a = MakeDeb(debs_, "alpha", "1.0-1", {{"/bin/alpha", "alpha"}, {"/etc/alpha.conf", "conf"}}, "xz", "amd64");
  std::string b = MakeDeb(dir_, "beta", "2:3.0", {{"/usr/bin/beta", "beta"}, {"/usr/lib/beta.so", "lib"}}, "gzip", "amd64");
  Install(root, a);
  Install(root, b);
  auto db = DpkgDb::Load({root + "/var/lib/dpkg", root});
  ASSERT_TRUE(db.ok()) << db.status().message();
  PackagePolicyOptions o;
  o.usr = db->usr_merge();
  FromDpkgOptions from;
  from.root = root;
  from.deb_dirs = {debs_};  // alpha's .deb is there, beta's is not: beta is trust on first use
  PackagePolicyReport report;
  auto p = PolicyFromDpkg(*db, from, o, &report);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(report.debs, 1u);
  EXPECT_EQ(report.tofu_packages, 1u);
  EXPECT_EQ(report.md5_mismatches, 0u);
  EXPECT_EQ(p->packages().at("alpha").source, "deb");
  EXPECT_EQ(p->packages().at("beta").source, "tofu");
  EXPECT_EQ(p->packages().at("beta").installed, "2:3.0");
  // The same digests as a policy straight from both .debs.
  std::filesystem::copy_file(b, debs_ + "/beta.deb");
  PackagePolicyReport r2;
  auto direct = PolicyFromDebs({debs_}, o, &r2);
  ASSERT_TRUE(direct.ok());
  for (const char* path : {"/usr/bin/alpha", "/etc/alpha.conf", "/usr/bin/beta", "/usr/lib/beta.so"}) {
    ASSERT_TRUE(p->PathDigests(path)) << path;
    ASSERT_TRUE(direct->PathDigests(path)) << path;
    EXPECT_EQ(*p->PathDigests(path), *direct->PathDigests(path)) << path;
  }
  // A replaced file: the md5sums cross-check reports it, tofu leaves it out, the verifier then
  // names the package and the reinstall.
  ASSERT_TRUE(WriteFileBytes(root + "/usr/bin/beta", AsBytes("replaced"), 0755).ok());
  ASSERT_TRUE(WriteFileBytes(root + "/usr/bin/alpha", AsBytes("replaced"), 0755).ok());
  PackagePolicyReport r3;
  from.check_disk = true;
  auto again = PolicyFromDpkg(*db, from, o, &r3);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(r3.md5_mismatches, 2u);
  std::string notes;
  for (const auto& n : r3.notes) notes += n + "\n";
  EXPECT_NE(notes.find("beta 2:3.0: /usr/bin/beta: modified on disk (md5 differs from dpkg's md5sums), left out"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("alpha 1.0-1: /bin/alpha: modified on disk"), std::string::npos) << notes;
  auto f = Verdict(*again, "/usr/bin/alpha", "replaced");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->detail, "`/usr/bin/alpha` has a digest of no version of alpha (installed 1.0-1); "
                       "reinstall: `apt-get install --reinstall alpha`");
  EXPECT_TRUE(Verdict(*again, "/usr/bin/beta", "replaced"));
  // Only some packages; an unknown one is an error.
  from.only = {"alpha"};
  PackagePolicyReport r4;
  auto only = PolicyFromDpkg(*db, from, o, &r4);
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->packages().size(), 1u);
  from.only = {"nosuch"};
  EXPECT_FALSE(PolicyFromDpkg(*db, from, o, &r4).ok());
}

TEST(RemediationTest, HintTexts) {
  EXPECT_EQ(attest::HintNoVersion("/usr/bin/ssh", "openssh-client", "1:9.2p1-2", "1:9.2p1-2"),
            "`/usr/bin/ssh` has a digest of no version of openssh-client (installed 1:9.2p1-2); "
            "reinstall: `apt-get install --reinstall openssh-client`");
  EXPECT_EQ(attest::HintUnowned("/opt/x"), "`/opt/x` is not owned by any package");
  EXPECT_EQ(attest::HintGenerated("/etc/ld.so.cache", "ldconfig's cache of the installed libraries"),
            "`/etc/ld.so.cache` is generated on the host, not shipped by a package (ldconfig's cache of the "
            "installed libraries)");
  EXPECT_EQ(attest::HintUnowned("/tmp/a\nb"), "`/tmp/a\\x0ab` is not owned by any package");  // one line
}

}  // namespace
}  // namespace lim::debs
