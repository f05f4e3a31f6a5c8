#include "debs/deb_archive.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "crypto/digest.h"
#include "debs/control_file.h"
#include "debs/debs_test_util.h"
#include "debs/dpkg_version.h"

namespace lim::debs {
namespace {

using testing::HaveDpkg;
using testing::MakeDeb;
using lim::testing::MakeTempDir;
using lim::testing::ShellQuote;

Bytes Sha(const std::string& s) { return *Digest(Sha256Algo(), AsBytes(s)); }

class DebArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveDpkg()) GTEST_SKIP() << "dpkg-deb not installed";
    dir_ = MakeTempDir();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(DebArchiveTest, EveryCompressorGivesNameVersionAndEveryFileDigest) {
  for (const char* z : {"xz", "zstd", "gzip", "none"}) {
    std::string deb = MakeDeb(dir_, std::string("pkg-") + z, "1:2.0-3", {{"/bin/tool", "tool v2\n"},
                                                                        {"/usr/share/doc/x/README", "read me"},
                                                                        {"/usr/lib/libx.so.1", std::string(300000, 'x')}},
                              z);
    auto p = ReadDeb(deb, Sha256Algo());
    ASSERT_TRUE(p.ok()) << z << ": " << p.status().message();
    EXPECT_EQ(p->name, std::string("pkg-") + z);
    EXPECT_EQ(p->version, "1:2.0-3");
    EXPECT_EQ(p->architecture, "all");
    ASSERT_EQ(p->files.size(), 3u) << z;
    std::map<std::string, const DebFile*> by;
    for (const auto& f : p->files) by[f.path] = &f;
    ASSERT_TRUE(by.count("/bin/tool"));
    EXPECT_EQ(by["/bin/tool"]->sha256, Sha("tool v2\n"));
    EXPECT_EQ(by["/bin/tool"]->digest, Sha("tool v2\n"));
    EXPECT_EQ(by["/bin/tool"]->size, 8u);
    EXPECT_EQ(ToHex(by["/bin/tool"]->md5), ToHex(*Digest(*HashAlgoByName("md5"), AsBytes("tool v2\n"))));
    EXPECT_EQ(by["/usr/lib/libx.so.1"]->sha256, Sha(std::string(300000, 'x')));
  }
}

TEST_F(DebArchiveTest, PolicyHashAndHardLinks) {
  std::string deb = MakeDeb(dir_, "links", "1.0", {{"/usr/bin/a", "same bytes"}, {"/usr/bin/b", "@link:/usr/bin/a"}});
  auto sha1 = ReadDeb(deb, Sha1Algo());
  ASSERT_TRUE(sha1.ok()) << sha1.status().message();
  ASSERT_EQ(sha1->files.size(), 2u);
  for (const auto& f : sha1->files) {
    EXPECT_EQ(f.digest, *Digest(Sha1Algo(), AsBytes("same bytes"))) << f.path;
    EXPECT_EQ(f.sha256, Sha("same bytes")) << f.path;
  }
}

// Only the digests asked for are computed: the requested one always, md5 and sha256 on
// request (each is another pass over every byte).
TEST_F(DebArchiveTest, OnlyTheDigestsAskedFor) {
  std::string deb = MakeDeb(dir_, "few", "1.0", {{"/usr/bin/a", "bytes"}, {"/usr/bin/b", "@link:/usr/bin/a"}});
  auto none = ReadDeb(deb, Sha1Algo(), {}, DebDigests{false, false});
  ASSERT_TRUE(none.ok()) << none.status().message();
  ASSERT_EQ(none->files.size(), 2u);
  for (const auto& f : none->files) {
    EXPECT_EQ(f.digest, *Digest(Sha1Algo(), AsBytes("bytes"))) << f.path;
    EXPECT_TRUE(f.md5.empty()) << f.path;
    EXPECT_TRUE(f.sha256.empty()) << f.path;
  }
  auto sha256 = ReadDeb(deb, Sha256Algo(), {}, DebDigests{false, false});  // the digest is sha256 itself
  ASSERT_TRUE(sha256.ok());
  EXPECT_EQ(sha256->files[0].digest, Sha("bytes"));
  EXPECT_EQ(sha256->files[0].sha256, Sha("bytes"));
  EXPECT_TRUE(sha256->files[0].md5.empty());
  auto md5 = ReadDeb(deb, Sha256Algo(), {}, DebDigests{true, false});
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ(md5->files[1].md5, *Digest(*HashAlgoByName("md5"), AsBytes("bytes")));
}

TEST_F(DebArchiveTest, HostileArchivesGiveNamedErrors) {
  // Content that does not compress, so that half of the .deb ends inside data.tar.
  std::string noise;
  Bytes block = Sha("seed");
  while (noise.size() < 100000) {
    block = *Digest(Sha256Algo(), block);
    noise.append(reinterpret_cast<const char*>(block.data()), block.size());
  }
  noise.resize(100000);
  std::string good = MakeDeb(dir_, "good", "1.0", {{"/usr/bin/x", noise}});
  // Truncated: half of a real .deb.
  {
    auto bytes = ReadFileBytes(good);
    ASSERT_TRUE(bytes.ok());
    auto r = ReadDebMemory(ByteView(bytes->data(), bytes->size() / 2), Sha256Algo(), {}, "half.deb");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("half.deb: data.tar.xz: "), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("runcated"), std::string::npos) << r.status().message();
  }
  // A member larger than the limit.
  {
    DebLimits small;
    small.max_member_bytes = 1000;
    auto r = ReadDeb(good, Sha256Algo(), small);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("./usr/bin/x: 100000 bytes, more than the limit of 1000 per file"),
              std::string::npos)
        << r.status().message();
    DebLimits bomb;
    bomb.max_total_bytes = 5000;
    r = ReadDeb(good, Sha256Algo(), bomb);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("data.tar holds more than 5000 bytes"), std::string::npos);
  }
  // Not an archive at all.
  {
    auto r = ReadDebMemory(AsBytes("this is not an ar archive, just text"), Sha256Algo(), {}, "text.deb");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("text.deb: not a .deb"), std::string::npos) << r.status().message();
  }
  // Path traversal in data.tar: built by hand (dpkg-deb refuses to build one).
  {
    std::string w = dir_ + "/evil";
    std::filesystem::create_directories(w);
    auto r = lim::testing::RunCommand("cd " + ShellQuote(w) +
                 " && printf '2.0\\n' > debian-binary"
                 " && ar x " + ShellQuote(good) + " control.tar.xz"
                 " && python3 -c \"import tarfile,io\n"
                 "t=tarfile.open('data.tar','w')\n"
                 "i=tarfile.TarInfo('./usr/../../etc/evil'); d=b'pwned'; i.size=len(d); t.addfile(i, io.BytesIO(d))\n"
                 "t.close()\""
                 " && ar rc evil.deb debian-binary control.tar.xz data.tar");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto p = ReadDeb(w + "/evil.deb", Sha256Algo());
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("evil.deb: data.tar: ./usr/../../etc/evil: \"..\" component: path traversal"),
              std::string::npos)
        << p.status().message();
  }
  // No data.tar.
  {
    std::string w = dir_ + "/nodata";
    std::filesystem::create_directories(w);
    auto r = lim::testing::RunCommand("cd " + ShellQuote(w) + " && ar x " + ShellQuote(good) +
                 " debian-binary control.tar.xz && ar rc nodata.deb debian-binary control.tar.xz");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto p = ReadDeb(w + "/nodata.deb", Sha256Algo());
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("no data.tar member"), std::string::npos) << p.status().message();
  }
}

TEST(DpkgVersionTest, DpkgOrder) {
  EXPECT_LT(CompareVersions("8.32-4", "9.1-1"), 0);
  EXPECT_GT(CompareVersions("1:0.1", "9.9"), 0);  // epoch wins
  EXPECT_LT(CompareVersions("1.0~rc1", "1.0"), 0);  // ~ before the end
  EXPECT_LT(CompareVersions("1.0", "1.0-1"), 0);
  EXPECT_LT(CompareVersions("1:9.2p1-1", "1:9.2p1-2"), 0);
  EXPECT_GT(CompareVersions("1.10", "1.9"), 0);  // numeric runs
  EXPECT_LT(CompareVersions("1.0a", "1.0+"), 0);  // letters before other characters
  EXPECT_EQ(CompareVersions("0:1.0-1", "1.0-1"), 0);
  EXPECT_EQ(CompareVersions("1.001", "1.1"), 0);
}

TEST(ControlFileTest, FieldsContinuationsAndNamedErrors) {
  auto s = ParseControl("Package: a\nDescription: one\n two\n\nPackage: b\nversion: 2\n", "status");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].Get("description"), "one\ntwo");
  EXPECT_EQ((*s)[1].Get("Version"), "2");
  EXPECT_EQ((*s)[1].line, 5u);
  auto bad = ParseControl("Package: a\nno colon here\n", "status");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "status:2: expected \"Field: value\"");
  EXPECT_FALSE(ParseControl(" leading continuation\n", "s").ok());
}

}  // namespace
}  // namespace lim::debs
