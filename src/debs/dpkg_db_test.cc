#include "debs/dpkg_db.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <unordered_map>

#include "debs/debs_test_util.h"
#include "debs/generated_files.h"

namespace lim::debs {
namespace {

using lim::testing::MakeTempDir;
using lim::testing::ShellQuote;
using testing::HaveDpkg;
using testing::Install;
using testing::MakeDeb;
using testing::MakeRoot;

class DpkgDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveDpkg()) GTEST_SKIP() << "dpkg not installed";
    dir_ = MakeTempDir();
    root_ = MakeRoot(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  Result<DpkgDb> Load() { return DpkgDb::Load({root_ + "/var/lib/dpkg", root_}); }
  std::string dir_, root_;
};

TEST_F(DpkgDbTest, OwnersThroughMergedUsrBothWays) {
  Install(root_, MakeDeb(dir_, "tools", "1:9.2p1-2", {{"/bin/ls", "ls"}, {"/usr/bin/ssh", "ssh"}}, "xz", "amd64"));
  auto db = Load();
  ASSERT_TRUE(db.ok()) << db.status().message();
  ASSERT_EQ(db->packages().size(), 1u);
  EXPECT_EQ(db->packages()[0].version, "1:9.2p1-2");
  // dpkg knows /bin/ls; limd records /usr/bin/ls.
  auto o = db->OwnerOf("/usr/bin/ls");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->package->name, "tools");
  EXPECT_EQ(o->package->architecture, "amd64");
  EXPECT_EQ(o->dpkg_path, "/bin/ls");
  // And the other way: dpkg knows /usr/bin/ssh, asked as /bin/ssh.
  o = db->OwnerOf("/bin/ssh");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->dpkg_path, "/usr/bin/ssh");
  EXPECT_FALSE(db->OwnerOf("/usr/bin/nobody"));
  // The aliases came from the root's own links, not a list: sbin and lib too, nothing else.
  EXPECT_EQ(db->usr_merge().links().size(), 3u);
  EXPECT_EQ(db->usr_merge().Canonical("/lib/x/y.so"), "/usr/lib/x/y.so");
  EXPECT_EQ(db->usr_merge().Canonical("/libexec/z"), "/libexec/z");
  auto sums = db->Md5sums(db->packages()[0]);
  ASSERT_TRUE(sums.ok());
  EXPECT_EQ((*sums)->size(), 2u);
  EXPECT_TRUE((*sums)->count("/bin/ls"));
}

TEST_F(DpkgDbTest, DiversionsMoveOwnership) {
  Install(root_, MakeDeb(dir_, "orig", "1.0", {{"/usr/bin/tool", "original"}}));
  auto r = lim::testing::RunCommand("dpkg-divert --root=" + ShellQuote(root_) + " --package wrapper --divert /usr/bin/tool.real --rename --add /usr/bin/tool");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Install(root_, MakeDeb(dir_, "wrapper", "2.0", {{"/usr/bin/tool", "wrapper"}}));
  auto db = Load();
  ASSERT_TRUE(db.ok()) << db.status().message();
  ASSERT_EQ(db->diversions().size(), 1u);
  // The file at the original name is the diverting package's ...
  auto o = db->OwnerOf("/usr/bin/tool");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->package->name, "wrapper");
  // ... and the moved one still belongs to the package that shipped it.
  o = db->OwnerOf("/usr/bin/tool.real");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->package->name, "orig");
  EXPECT_EQ(o->diverted_from, "/usr/bin/tool");
  // A local diversion: the administrator's file, no package's.
  auto local = ParseDiversions("/usr/bin/x\n/usr/bin/x.orig\n:\n", "diversions");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ((*local)[0].by, "");
}

TEST(DpkgParseTest, HostileDatabaseFilesAreNamedErrors) {
  auto s = ParseStatus("Package: ../../etc\nStatus: install ok installed\n", "status");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("status:1: bad package name"), std::string::npos);
  EXPECT_FALSE(ParseStatus("Version: 1\n", "status").ok());
  auto m = ParseMd5sums("0123456789abcdef0123456789abcdef  usr/bin/a\nnot-hex-at-all-not-hex-at-all-zz  b\n", "x.md5sums");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "x.md5sums:2: md5 is not hex");
  // Found by dpkg_status_fuzz in CI: a "0x" prefix made a 15-byte md5.
  auto prefixed = ParseMd5sums("0X23456789abcdef0123456789abcdef  usr/bin/ls\n", "x.md5sums");
  ASSERT_FALSE(prefixed.ok());
  EXPECT_EQ(prefixed.status().message(), "x.md5sums:1: md5 is not hex");
  auto ok = ParseMd5sums("0123456789abcdef0123456789abcdef  usr/bin/with space\n", "x.md5sums");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].first, "/usr/bin/with space");
  auto d = ParseDiversions("/a\n/b\n", "diversions");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not a multiple of 3"), std::string::npos);
  auto rel = ParseDiversions("a\n/b\npkg\n", "diversions");
  ASSERT_FALSE(rel.ok());
}

TEST(GeneratedFilesTest, KnownGeneratedFilesHaveAReason) {
  EXPECT_EQ(GeneratedReason("/etc/ld.so.cache").value_or(""), "ldconfig's cache of the installed libraries");
  EXPECT_TRUE(GeneratedReason("/usr/lib/python3/dist-packages/foo/__pycache__/bar.cpython-311.pyc"));
  EXPECT_TRUE(GeneratedReason("/boot/initrd.img-6.1.0-13-amd64"));
  EXPECT_TRUE(GeneratedReason("/usr/lib/modules/6.1.0-13-amd64/modules.dep.bin"));
  EXPECT_FALSE(GeneratedReason("/usr/lib/modules/6.1.0-13-amd64/kernel/fs/modules.ko"));
  EXPECT_FALSE(GeneratedReason("/usr/bin/ls"));
  EXPECT_FALSE(GeneratedReason("/usr/lib/python3/foo.pyc"));  // not under __pycache__: shipped
}

// The host's own database, when there is one: /usr/bin/ls is coreutils' /bin/ls on Debian 12.
TEST(DpkgHostTest, UsrBinLsIsCoreutils) {
  if (!std::filesystem::exists("/var/lib/dpkg/status") || !std::filesystem::exists("/usr/bin/ls")) {
    GTEST_SKIP() << "no dpkg database on this host";
  }
  auto db = DpkgDb::Load({});
  ASSERT_TRUE(db.ok()) << db.status().message();
  auto o = db->OwnerOf("/usr/bin/ls");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->package->name, "coreutils");
  EXPECT_FALSE(o->package->version.empty());
  // libc6 owns the C library under whichever name the host uses.
  auto libc = db->OwnerOf("/usr/lib/x86_64-linux-gnu/libc.so.6");
  if (std::filesystem::exists("/usr/lib/x86_64-linux-gnu/libc.so.6")) {
    ASSERT_TRUE(libc);
    EXPECT_EQ(libc->package->name, "libc6");
  }
}

// The path index against a plain map built here from the same .list files: every listed
// path has the same first owner (the first package in status order that lists it), on the
// host's whole database (160,000 paths on the development VM) — directories are listed by
// many packages, a package may list a path twice — and a path nobody lists has none.
TEST(DpkgHostTest, PathIndexAgreesWithAPlainMapOnEveryListedPath) {
  if (!std::filesystem::exists("/var/lib/dpkg/status")) GTEST_SKIP() << "no dpkg database on this host";
  std::string empty_root = MakeTempDir();  // no merged-/usr aliases: names as listed
  auto db = DpkgDb::Load({"/var/lib/dpkg", empty_root});
  std::filesystem::remove_all(empty_root);
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::set<std::string> diverted;  // their owner follows the diversion, not the first list
  for (const auto& d : db->diversions()) diverted.insert({d.from, d.to});
  std::unordered_map<std::string, std::string> first;  // path → first package listing it
  size_t listed = 0, shared = 0;
  for (const auto& p : db->packages()) {
    for (const auto& path : db->FilesOf(p)) {
      ++listed;
      if (!first.emplace(path, p.name).second) ++shared;
    }
  }
  ASSERT_GT(listed, 0u);
  EXPECT_GT(shared, 0u);  // at least "/usr" and "/usr/share" are listed by several
  for (const auto& [path, name] : first) {
    if (diverted.count(path)) continue;
    auto o = db->OwnerOf(path);
    ASSERT_TRUE(o) << path;
    ASSERT_EQ(o->package->name, name) << path;
  }
  EXPECT_FALSE(db->OwnerOf("/usr/bin/no-package-lists-this"));
  EXPECT_FALSE(db->OwnerOf(""));
}

}  // namespace
}  // namespace lim::debs
