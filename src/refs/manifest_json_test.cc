#include "refs/manifest_json.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "attest/verdict.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "refs/refs_test_util.h"
#include "tests/testing.h"

namespace lim::refs {
namespace {

using json = nlohmann::json;
using testing::MakeDir;
using testing::WriteFile;

std::string Tree() {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/bin");
  WriteFile(d + "/bin/tool", "#!/usr/bin/python3\nprint(1)\n", 0755);
  WriteFile(d + "/bin/new\nline", "n");
  WriteFile(d + "/bin/bad\xff", "b");
  WriteFile(d + "/bin/back\\slash", "s");
  WriteFile(d + "/plain", "p");
  EXPECT_EQ(symlink("bin/tool", (d + "/alias").c_str()), 0);
  return d;
}

Manifest ScanTree(const std::string& d) {
  ScanOptions o;
  o.algo = Sha256Algo();
  auto m = Scan({d}, o, nullptr);
  EXPECT_TRUE(m.ok());
  return std::move(m).value();
}

Bytes DigestOf(const Manifest& m, const std::string& path) {
  for (const auto& e : m.entries) {
    if (e.path == path) return e.digest;
  }
  return {};
}

// A sha1 ima-ng list with one entry per hashed, UTF-8-named file of m (digest replaced for
// the path tamper, when given).
Bytes ListOf(const Manifest& m, const std::string& tamper = "") {
  Bytes list;
  ima::ListWriter w(Sha1Algo(), ByteOrder::kLittle);
  for (const auto& e : m.entries) {
    if (e.digest.empty() || !IsUtf8(e.path)) continue;
    Bytes d = e.path == tamper ? Bytes(32, 0x5a) : e.digest;
    EXPECT_TRUE(w.Append(ima::ImaNgRecord(Sha256Algo(), d, e.path), &list).ok());
  }
  return list;
}

// "reason path" of every entry the policy does not allow.
std::vector<std::string> Findings(const attest::RuntimePolicy& p, ByteView list) {
  std::vector<std::string> out;
  auto reader = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(reader.ok());
  ima::Entry e;
  attest::LearnedKeys learned;
  while (*(*reader)->Next(&e)) {
    auto f = p.Check(e, learned, nullptr);
    if (f) out.push_back(std::string(attest::ReasonName(f->reason)) + " " + f->path);
  }
  return out;
}

TEST(ManifestJsonTest, PolicyHoldsEveryHashedUtf8PathAndListsTheOthers) {
  std::string d = Tree();
  Manifest m = ScanTree(d);
  std::vector<std::string> not_utf8;
  attest::RuntimePolicy p = PolicyOfManifest(m, &not_utf8);
  EXPECT_EQ(not_utf8, (std::vector<std::string>{d + "/bin/bad\xff"}));
  EXPECT_EQ(p.paths(), 4u);  // tool, new\nline, back\slash, plain; not the link
  EXPECT_TRUE(Findings(p, ListOf(m)).empty());
}

TEST(ManifestJsonTest, KeylimeJsonImportsBackWithTheSameAllowedDigests) {
  std::string d = Tree();
  Manifest m = ScanTree(d);
  attest::RuntimePolicy p = PolicyOfManifest(m, nullptr);
  std::vector<std::string> lost;
  std::string keylime = p.ToKeylimeJson(&lost);
  EXPECT_TRUE(lost.empty());
  auto back = attest::RuntimePolicy::FromJson(keylime);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(json::parse(back->ToNativeJson())["paths"], json::parse(p.ToNativeJson())["paths"]);
  EXPECT_EQ(json::parse(keylime)["digests"][d + "/bin/new\nline"][0], ToHex(DigestOf(m, d + "/bin/new\nline")));
  // The imported policy passes the tree's own list and names a changed file.
  EXPECT_TRUE(Findings(*back, ListOf(m)).empty());
  EXPECT_EQ(Findings(*back, ListOf(m, d + "/plain")), (std::vector<std::string>{"digest-not-allowed " + d + "/plain"}));
}

TEST(ManifestJsonTest, NativeFormParsesKeepsTheManifestAndImports) {
  std::string d = Tree();
  Manifest m = ScanTree(d);
  attest::RuntimePolicy p = PolicyOfManifest(m, nullptr);
  std::string text = NativeManifestJson(m, p);
  json j = json::parse(text);  // throws (fails the test) unless valid JSON
  EXPECT_EQ(j["lim_runtime_policy"], 1);
  const json& files = j["files"];
  EXPECT_EQ(files.size(), m.entries.size());
  // Keys are escaped paths: one line each, bytes that are not UTF-8 as \xNN.
  EXPECT_EQ(files[d + "/bin/new\\x0aline"]["digest"], "sha256:" + ToHex(DigestOf(m, d + "/bin/new\nline")));
  EXPECT_TRUE(files.contains(d + "/bin/bad\\xff"));
  EXPECT_TRUE(files.contains(d + "/bin/back\\\\slash"));
  EXPECT_EQ(files[d + "/bin/tool"]["kind"], "script");
  EXPECT_EQ(files[d + "/bin/tool"]["interpreter"], "/usr/bin/python3");
  EXPECT_EQ(files[d + "/bin/tool"]["mode"], "0755");
  EXPECT_EQ(files[d + "/alias"]["kind"], "symlink");
  EXPECT_EQ(files[d + "/alias"]["target"], "bin/tool");
  EXPECT_FALSE(files[d + "/alias"].contains("digest"));
  EXPECT_FALSE(files[d + "/plain"].contains("owner"));  // not looked up
  // lim's own import takes it (the manifest is accepted, not kept) with the same digests.
  auto back = attest::RuntimePolicy::FromJson(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(json::parse(back->ToNativeJson())["paths"], j["paths"]);
  EXPECT_TRUE(Findings(*back, ListOf(m)).empty());
}

TEST(ManifestJsonTest, OwnersAndErrorsInTheManifest) {
  Manifest m;
  m.algo = Sha256Algo();
  m.owners_looked_up = true;
  ManifestEntry a;
  a.path = "/usr/bin/ssh";
  a.digest = Bytes(32, 1);
  a.owner = FileOwner{"openssh-client", "1:9.2p1-2"};
  ManifestEntry b;
  b.path = "/usr/local/bin/x\"y";
  b.error = "open: Permission denied";
  m.entries = {a, b};
  json j = json::parse(NativeManifestJson(m, PolicyOfManifest(m, nullptr)));
  EXPECT_EQ(j["files"]["/usr/bin/ssh"]["owner"], json({{"package", "openssh-client"}, {"version", "1:9.2p1-2"}}));
  EXPECT_TRUE(j["files"]["/usr/local/bin/x\"y"]["owner"].is_null());
  EXPECT_EQ(j["files"]["/usr/local/bin/x\"y"]["error"], "open: Permission denied");
  EXPECT_EQ(j["paths"].size(), 1u);
  Manifest empty;
  empty.algo = Sha256Algo();
  EXPECT_TRUE(json::parse(NativeManifestJson(empty, attest::RuntimePolicy()))["files"].empty());
}

// A manifest with every kind of entry and every optional member, under names that need
// escaping (both in "files" and, for the UTF-8 ones, in the policy's "paths").
Manifest OddManifest() {
  Manifest m;
  m.algo = Sha256Algo();
  m.owners_looked_up = true;
  auto entry = [&](std::string path, FileKind kind, uint8_t digest) {
    ManifestEntry e;
    e.path = std::move(path);
    e.kind = kind;
    e.size = 1000u + digest;
    e.mode = digest % 2 ? 04755 : 0644;
    e.uid = digest;
    e.gid = 2u * digest;
    if (kind != FileKind::kSymlink && kind != FileKind::kOther) e.digest = Bytes(32, digest);
    return e;
  };
  ManifestEntry script = entry("/usr/bin/a b", FileKind::kScript, 1);
  script.interpreter = "/usr/bin/env";
  script.interpreter_arg = "python3 -u\x01";
  script.owner = FileOwner{"tool", "1:2.0-1"};
  ManifestEntry link = entry("/lib", FileKind::kSymlink, 2);
  link.link_target = "usr/l\xffib";
  ManifestEntry hard = entry("/usr/bin/q\"uote", FileKind::kElfExecutable, 3);
  hard.hardlink_of = "/usr/bin/back\\slash";
  ManifestEntry unread = entry("/etc/sh\xadow", FileKind::kRegular, 0);
  unread.digest.clear();
  unread.error = "open: Permission denied";
  m.entries = {entry("/usr/bin/back\\slash", FileKind::kElfExecutable, 3), script, link, hard, unread,
               entry("/nl\nname", FileKind::kRegular, 4), entry("/ctl\x1f\x7f", FileKind::kElfShared, 5),
               entry("/caf\xc3\xa9", FileKind::kRegular, 6), entry("/dev/null", FileKind::kOther, 7),
               entry("/bin/bad\xff", FileKind::kRegular, 8)};
  return m;
}

// The streamed writer gives what the document-based one before it gave (testdata/ was
// written by that one), byte for byte.
TEST(ManifestJsonTest, NativeJsonEqualsTheEarlierOutputByteForByte) {
  Manifest m = OddManifest();
  std::vector<std::string> not_utf8;
  attest::RuntimePolicy p = PolicyOfManifest(m, &not_utf8);
  EXPECT_EQ(not_utf8.size(), 1u);
  EXPECT_EQ(NativeManifestJson(m, p), lim::testing::Slurp(lim::testing::SourcePath("src/refs/testdata/odd_manifest.native.json")));
}

// lim scan makes the two parts on two threads and writes them one after the other: joined,
// they are the whole document.
TEST(ManifestJsonTest, HeadAndFilesJoinedAreTheWholeDocument) {
  Manifest m = OddManifest();
  attest::RuntimePolicy p = PolicyOfManifest(m, nullptr);
  std::string head = NativeManifestJsonHead(p), files = NativeManifestJsonFiles(m);
  EXPECT_EQ(head + files, lim::testing::Slurp(lim::testing::SourcePath("src/refs/testdata/odd_manifest.native.json")));
  EXPECT_NE(head.back(), '}');  // the policy's members without its closing brace
  EXPECT_EQ(files.substr(0, 13), ",\n \"files\": {");
  Manifest empty;
  EXPECT_EQ(NativeManifestJsonHead(attest::RuntimePolicy()) + NativeManifestJsonFiles(empty),
            NativeManifestJson(empty, attest::RuntimePolicy()));
}

TEST(ManifestJsonTest, IsUtf8) {
  EXPECT_TRUE(IsUtf8("/usr/bin/caf\xc3\xa9 x\n"));
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("\xc3"));
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));  // a surrogate
}

}  // namespace
}  // namespace lim::refs
