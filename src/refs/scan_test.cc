#include "refs/scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/hex.h"
#include "refs/refs_test_util.h"
#include "tests/testing.h"

namespace lim::refs {
namespace {

using lim::testing::ShellQuote;
using testing::MakeDir;
using testing::WriteFile;

// A tree with what trips scanners up: odd names, a sparse file, hard links, links, a fifo,
// an empty file, a file bigger than one read.
std::string OddTree() {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/sub");
  WriteFile(d + "/with space", "space");
  WriteFile(d + "/new\nline", "newline");
  WriteFile(d + "/bad\xff\xfe", "not utf-8");
  WriteFile(d + "/back\\slash", "backslash");
  WriteFile(d + "/empty", "");
  WriteFile(d + "/sub/script", "#!/bin/sh -e\necho hi\n", 0755);
  std::string big;
  for (int i = 0; i < 300000; ++i) big += static_cast<char>('a' + i % 26);
  WriteFile(d + "/sub/big", big);
  int fd = open((d + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pwrite(fd, "end", 3, 5 << 20), 3);  // 5 MiB hole, then data
  close(fd);
  EXPECT_EQ(link((d + "/with space").c_str(), (d + "/sub/hard link").c_str()), 0);
  EXPECT_EQ(symlink("/etc/passwd", (d + "/link").c_str()), 0);
  EXPECT_EQ(mkfifo((d + "/fifo").c_str(), 0644), 0);
  return d;
}

ScanOptions Options(int jobs = 0, size_t read_size = 1 << 20) {
  ScanOptions o;
  o.algo = Sha256Algo();
  o.jobs = jobs;
  o.read_size = read_size;
  return o;
}

std::map<std::string, const ManifestEntry*> ByPath(const Manifest& m) {
  std::map<std::string, const ManifestEntry*> out;
  for (const auto& e : m.entries) out[e.path] = &e;
  return out;
}

// sha256sum's digest of one file, read from standard input so that no name is escaped.
std::string Sha256sum(const std::string& path) {
  auto r = lim::testing::Run("sha256sum < " + ShellQuote(path));
  return r.exit_code == 0 ? r.out.substr(0, 64) : "sha256sum failed: " + r.err;
}

TEST(ScanTest, DigestsAgreeWithSha256sumOnEveryRegularFile) {
  std::string d = OddTree();
  auto m = Scan({d}, Options(), nullptr);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->errors, 0u);
  // Every regular file find(1) sees is in the manifest with sha256sum's digest.
  auto found = lim::testing::Run("find " + ShellQuote(d) + " -type f -print0");
  ASSERT_EQ(found.exit_code, 0);
  std::set<std::string> files;
  for (size_t i = 0, j; i < found.out.size(); i = j + 1) {
    j = found.out.find('\0', i);
    files.insert(found.out.substr(i, j - i));
  }
  EXPECT_EQ(files.size(), 9u);
  auto by = ByPath(*m);
  for (const auto& f : files) {
    ASSERT_TRUE(by.count(f)) << f;
    EXPECT_EQ(ToHex(by[f]->digest), Sha256sum(f)) << f;
  }
  EXPECT_EQ(by[d + "/sparse"]->size, (5u << 20) + 3);
  EXPECT_EQ(by[d + "/link"]->kind, FileKind::kSymlink);
  EXPECT_EQ(by[d + "/link"]->link_target, "/etc/passwd");
  EXPECT_TRUE(by[d + "/link"]->digest.empty());
  EXPECT_EQ(by[d + "/fifo"]->kind, FileKind::kOther);
  EXPECT_EQ(m->entries.size(), files.size() + 2);
  EXPECT_EQ(m->bytes_hashed, uint64_t{5 << 20} + 3 + 300000 + 5 + 7 + 9 + 9 + 0 + 21);
}

TEST(ScanTest, SameDigestsWhateverTheThreadsAndReadSize) {
  std::string d = OddTree();
  auto base = Scan({d}, Options(1), nullptr);
  ASSERT_TRUE(base.ok());
  for (auto [jobs, read] : {std::pair{4, size_t{7}}, std::pair{2, size_t{4096}}, std::pair{3, size_t{1 << 20}}}) {
    auto m = Scan({d}, Options(jobs, read), nullptr);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->entries.size(), base->entries.size());
    for (size_t i = 0; i < m->entries.size(); ++i) {
      EXPECT_EQ(m->entries[i].path, base->entries[i].path);
      EXPECT_EQ(m->entries[i].digest, base->entries[i].digest) << jobs << "/" << read << " " << m->entries[i].path;
      EXPECT_EQ(m->entries[i].kind, base->entries[i].kind);
    }
  }
}

TEST(ScanTest, HardLinksAreHashedOnceAndNamedByTheirFirstPath) {
  std::string d = OddTree();
  auto m = Scan({d}, Options(), nullptr);
  ASSERT_TRUE(m.ok());
  auto by = ByPath(*m);
  const ManifestEntry* later = by[d + "/with space"];
  const ManifestEntry* first = by[d + "/sub/hard link"];
  // The walk meets "sub" before "with space" (byte order): the link in sub is the first name.
  EXPECT_EQ(first->hardlink_of, "");
  EXPECT_EQ(later->hardlink_of, d + "/sub/hard link");
  EXPECT_EQ(later->digest, first->digest);
  EXPECT_FALSE(later->digest.empty());
}

TEST(ScanTest, KindsAndScriptInterpreters) {
  std::string d = OddTree();
  std::string prog = d + "/prog";
  ASSERT_EQ(lim::testing::Run("cp /proc/self/exe " + ShellQuote(prog)).exit_code, 0);
  auto m = Scan({d}, Options(), nullptr);
  ASSERT_TRUE(m.ok());
  auto by = ByPath(*m);
  EXPECT_EQ(by[prog]->kind, FileKind::kElfExecutable);
  EXPECT_EQ(by[d + "/sub/script"]->kind, FileKind::kScript);
  EXPECT_EQ(by[d + "/sub/script"]->interpreter, "/bin/sh");
  EXPECT_EQ(by[d + "/sub/script"]->interpreter_arg, "-e");
  EXPECT_EQ(by[d + "/sub/script"]->mode, 0755u);
  EXPECT_EQ(by[d + "/empty"]->kind, FileKind::kRegular);
}

TEST(ScanTest, UnreadableFileIsReportedCountedAndNotFatal) {
  std::string d = OddTree();
  WriteFile(d + "/sub/locked", "secret", 0);
  int rc = testing::AsNobody([&] {
    std::vector<std::string> reported;
    auto m = Scan({d}, Options(2), [&](const std::string& p, const std::string& msg) { reported.push_back(p + ": " + msg); });
    if (!m.ok()) return 1;
    if (reported != std::vector<std::string>{d + "/sub/locked: open: Permission denied"}) return 2;
    if (m->errors != 1) return 3;
    auto by = ByPath(*m);
    if (by[d + "/sub/locked"]->error != "open: Permission denied" || !by[d + "/sub/locked"]->digest.empty()) return 4;
    // Everything else was hashed.
    return by[d + "/sub/big"]->digest.size() == 32 && by[d + "/new\nline"]->digest.size() == 32 ? 0 : 5;
  });
  EXPECT_EQ(rc, 0);
}

TEST(ScanTest, OverlappingRootsListEachPathOnce) {
  std::string d = OddTree();
  auto m = Scan({d, d + "/sub", d + "/sub/script"}, Options(), nullptr);
  ASSERT_TRUE(m.ok());
  std::set<std::string> paths;
  for (const auto& e : m->entries) EXPECT_TRUE(paths.insert(e.path).second) << e.path;
  EXPECT_EQ(m->errors, 0u);
}

class FakeOwners : public OwnerLookup {
 public:
  std::optional<FileOwner> Owner(std::string_view path) const override {
    if (path.ends_with("/sub/script")) return FileOwner{"dash", "0.5.12-2"};
    return std::nullopt;
  }
};

TEST(ScanTest, OwnersComeFromTheLookupWhenGiven) {
  std::string d = OddTree();
  auto none = Scan({d}, Options(), nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->owners_looked_up);
  FakeOwners owners;
  ScanOptions o = Options();
  o.owners = &owners;
  auto m = Scan({d}, o, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->owners_looked_up);
  auto by = ByPath(*m);
  ASSERT_TRUE(by[d + "/sub/script"]->owner.has_value());
  EXPECT_EQ(by[d + "/sub/script"]->owner->package, "dash");
  EXPECT_FALSE(by[d + "/empty"]->owner.has_value());
}

// Owners of a large tree are looked up from every hashing thread at once (a slice each):
// every entry gets its own path's answer, and every thread took part.
class PathOwners : public OwnerLookup {
 public:
  std::optional<FileOwner> Owner(std::string_view path) const override {
    {
      std::lock_guard<std::mutex> l(mu_);
      threads_.insert(std::this_thread::get_id());
    }
    if (path.ends_with("7")) return std::nullopt;
    return FileOwner{std::string(path.substr(path.rfind('/') + 1)), "1"};
  }
  size_t threads() const {
    std::lock_guard<std::mutex> l(mu_);
    return threads_.size();
  }

 private:
  mutable std::mutex mu_;
  mutable std::set<std::thread::id> threads_;
};

TEST(ScanTest, OwnersOfALargeTreeAreLookedUpInParallelEachForItsPath) {
  std::string d = testing::OpenTempDir();
  for (int i = 0; i < 3000; ++i) WriteFile(d + "/f" + std::to_string(i), std::to_string(i));
  PathOwners owners;
  ScanOptions o = Options(2);
  o.owners = &owners;
  auto m = Scan({d}, o, nullptr);
  ASSERT_TRUE(m.ok());
  ASSERT_GE(m->entries.size(), 3000u);
  size_t owned = 0;
  for (const auto& e : m->entries) {
    std::string name = e.path.substr(e.path.rfind('/') + 1);
    if (name.ends_with("7")) {
      EXPECT_FALSE(e.owner.has_value()) << e.path;
    } else {
      ASSERT_TRUE(e.owner.has_value()) << e.path;
      EXPECT_EQ(e.owner->package, name);
      ++owned;
    }
  }
  EXPECT_GE(owned, 3000u - 300u);  // f7, f17, … f2997: 300 file names end in 7
  EXPECT_EQ(owners.threads(), 2u);
}

TEST(ScanTest, AnyHashOpenSslComputes) {
  std::string d = OddTree();
  for (const char* name : {"sha1", "sha512", "sm3", "sha3-256"}) {
    auto algo = HashAlgoByName(name);
    ASSERT_TRUE(algo.ok());
    if (!HashAlgoAvailable(*algo)) continue;
    ScanOptions o = Options();
    o.algo = *algo;
    auto m = Scan({d + "/sub/script"}, o, nullptr);
    ASSERT_TRUE(m.ok()) << name;
    ASSERT_EQ(m->entries.size(), 1u);
    EXPECT_EQ(m->entries[0].digest.size(), algo->size) << name;
    if (std::string(name) == "sha1") {
      auto r = lim::testing::Run("sha1sum < " + ShellQuote(d + "/sub/script"));
      EXPECT_EQ(ToHex(m->entries[0].digest), r.out.substr(0, 40));
    }
  }
}

}  // namespace
}  // namespace lim::refs
