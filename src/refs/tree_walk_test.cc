#include "refs/tree_walk.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "refs/refs_test_util.h"

namespace lim::refs {
namespace {

using testing::MakeDir;
using testing::WriteFile;

struct Walked {
  std::vector<std::string> paths;               // every entry visited
  std::map<std::string, std::string> kinds;     // path → "file", "link", "other"
  std::vector<std::string> errors;              // "path: message"
  WalkStats stats;
};

Walked WalkAll(const std::vector<std::string>& roots, WalkOptions o = {}) {
  Walked w;
  TreeWalk walk(
      std::move(o),
      [&](const WalkEntry& e) {
        w.paths.push_back(e.path);
        w.kinds[e.path] = S_ISREG(e.st.st_mode) ? "file" : S_ISLNK(e.st.st_mode) ? "link" : "other";
      },
      [&](const std::string& path, const std::string& message) { w.errors.push_back(path + ": " + message); });
  for (const auto& r : roots) walk.Walk(r);
  w.stats = walk.stats();
  return w;
}

TEST(TreeWalkTest, SymlinksAreRecordedNeverFollowed) {
  std::string d = testing::OpenTempDir();
  std::string outside = testing::OpenTempDir();
  WriteFile(outside + "/secret", "s");
  MakeDir(d + "/t");
  WriteFile(d + "/t/a", "a");
  ASSERT_EQ(symlink(outside.c_str(), (d + "/t/dirlink").c_str()), 0);
  ASSERT_EQ(symlink((outside + "/secret").c_str(), (d + "/t/filelink").c_str()), 0);
  ASSERT_EQ(symlink("nowhere", (d + "/t/dangling").c_str()), 0);
  Walked w = WalkAll({d + "/t"});
  EXPECT_EQ(w.paths, (std::vector<std::string>{d + "/t/a", d + "/t/dangling", d + "/t/dirlink", d + "/t/filelink"}));
  EXPECT_EQ(w.kinds[d + "/t/dirlink"], "link");
  EXPECT_EQ(w.kinds[d + "/t/filelink"], "link");
  EXPECT_TRUE(w.errors.empty());
  EXPECT_EQ(w.stats.directories, 1u);
}

// WalkOptions::open_files (a scan's walk): the same entries with the same stat as the
// fstatat way; a regular file arrives open (as root: O_NOATIME never fails), OpenForRead
// hands over that very descriptor, and a descriptor the visitor leaves is closed by the walk.
TEST(TreeWalkTest, OpenFilesGivesTheSameEntriesAlreadyOpen) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/t");
  MakeDir(d + "/t/sub");
  WriteFile(d + "/t/a", "aaa");
  WriteFile(d + "/t/sub/b", "bb");
  WriteFile(d + "/t/skip.pyc", "x");
  ASSERT_EQ(link((d + "/t/a").c_str(), (d + "/t/hard").c_str()), 0);
  ASSERT_EQ(symlink("a", (d + "/t/link").c_str()), 0);
  ASSERT_EQ(mkfifo((d + "/t/fifo").c_str(), 0600), 0);
  auto count_fds = [] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) n += e.exists() ? 1 : 0;
    return n;
  };
  struct Seen {
    std::vector<std::string> lines;  // "path mode size ino"
    size_t opened = 0;
  };
  auto walk = [&](bool open_files, bool take) {
    Seen seen;
    WalkOptions o;
    o.excludes = {"*.pyc"};
    o.open_files = open_files;
    TreeWalk w(
        o,
        [&](const WalkEntry& e) {
          seen.lines.push_back(e.path + " " + std::to_string(e.st.st_mode) + " " + std::to_string(e.st.st_size) + " " +
                               std::to_string(e.st.st_ino));
          if (e.opened && *e.opened >= 0) {
            ++seen.opened;
            int before = *e.opened;
            if (!take) return;
            auto fd = OpenForRead(e);
            ASSERT_TRUE(fd.ok());
            EXPECT_EQ(*fd, before);  // the walk's descriptor, not a new one
            struct stat st;
            ASSERT_EQ(fstat(*fd, &st), 0);
            EXPECT_EQ(st.st_ino, e.st.st_ino);
            close(*fd);
          }
        },
        nullptr);
    w.Walk(d + "/t");
    EXPECT_EQ(w.stats().excluded, 1u);
    return seen;
  };
  const size_t fds = count_fds();
  Seen plain = walk(false, true);
  Seen opened = walk(true, true);
  Seen left = walk(true, false);
  EXPECT_EQ(plain.lines.size(), 5u);  // a, fifo, hard, link, sub/b
  EXPECT_EQ(opened.lines, plain.lines);
  EXPECT_EQ(left.lines, plain.lines);
  EXPECT_EQ(plain.opened, 0u);
  EXPECT_EQ(opened.opened, geteuid() == 0 ? 3u : 0u);  // a, hard, sub/b
  EXPECT_EQ(count_fds(), fds);  // none leaked, taken or not
}

TEST(TreeWalkTest, RootsAreFollowedAndMayBeFiles) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/real");
  WriteFile(d + "/real/x", "x");
  ASSERT_EQ(symlink((d + "/real").c_str(), (d + "/alias").c_str()), 0);
  Walked w = WalkAll({d + "/alias/", d + "/real/x"});
  EXPECT_EQ(w.paths, (std::vector<std::string>{d + "/alias/x", d + "/real/x"}));
  Walked missing = WalkAll({d + "/none"});
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0], d + "/none: stat: No such file or directory");
  EXPECT_EQ(missing.stats.errors, 1u);
}

TEST(TreeWalkTest, HostileNamesArePassedAsRawBytesInByteOrder) {
  std::string d = testing::OpenTempDir();
  const std::vector<std::string> names = {"new\nline", std::string("bad\xff\xfe"), "with space", "-dash", "\\back", "Z"};
  for (const auto& n : names) WriteFile(d + "/" + n, n);
  Walked w = WalkAll({d});
  std::vector<std::string> want;
  for (const auto& n : names) want.push_back(d + "/" + n);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(w.paths, want);
}

TEST(TreeWalkTest, ExcludesMatchNamesOrWholePathsAndSkipDirectories) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/__pycache__");
  WriteFile(d + "/__pycache__/m.pyc", "c");
  WriteFile(d + "/m.py", "p");
  WriteFile(d + "/n.pyc", "c");
  MakeDir(d + "/cache");
  WriteFile(d + "/cache/big", "b");
  MakeDir(d + "/keep");
  WriteFile(d + "/keep/cache", "kept: the path glob names the top directory only");
  WalkOptions o;
  o.excludes = {"__pycache__", "*.pyc", d + "/cache"};
  Walked w = WalkAll({d}, o);
  EXPECT_EQ(w.paths, (std::vector<std::string>{d + "/keep/cache", d + "/m.py"}));
  EXPECT_EQ(w.stats.excluded, 3u);  // __pycache__ (not entered), n.pyc, cache (not entered)
  EXPECT_EQ(w.stats.directories, 2u);
  // Without the excludes every file is there.
  EXPECT_EQ(WalkAll({d}).paths.size(), 5u);
}

TEST(TreeWalkTest, DepthIsBoundedAndReported) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/1");
  MakeDir(d + "/1/2");
  MakeDir(d + "/1/2/3");
  WriteFile(d + "/1/f1", "");
  WriteFile(d + "/1/2/f2", "");
  WriteFile(d + "/1/2/3/f3", "");
  WalkOptions o;
  o.max_depth = 2;
  Walked w = WalkAll({d}, o);
  EXPECT_EQ(w.paths, (std::vector<std::string>{d + "/1/2/f2", d + "/1/f1"}));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], d + "/1/2/3: more than 2 directory levels deep: not entered");
}

TEST(TreeWalkTest, UnreadableDirectoryIsCountedAndTheWalkGoesOn) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/a");
  MakeDir(d + "/locked");
  WriteFile(d + "/a/x", "x");
  WriteFile(d + "/locked/y", "y");
  WriteFile(d + "/z", "z");
  ASSERT_EQ(chmod((d + "/locked").c_str(), 0), 0);
  int rc = testing::AsNobody([&] {
    Walked w = WalkAll({d});
    if (w.paths != std::vector<std::string>{d + "/a/x", d + "/z"}) return 1;
    if (w.errors != std::vector<std::string>{d + "/locked: open: Permission denied"}) return 2;
    return w.stats.errors == 1 ? 0 : 3;
  });
  chmod((d + "/locked").c_str(), 0755);
  EXPECT_EQ(rc, 0);
}

TEST(TreeWalkTest, XdevDoesNotEnterOtherFilesystems) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/mnt");
  WriteFile(d + "/top", "t");
  testing::ScratchTmpfs fs(d + "/mnt");
  if (!fs.ok()) GTEST_SKIP() << "needs root to mount a tmpfs";
  WriteFile(d + "/mnt/inner", "i");
  EXPECT_EQ(WalkAll({d}).paths, (std::vector<std::string>{d + "/mnt/inner", d + "/top"}));
  WalkOptions o;
  o.xdev = true;
  Walked w = WalkAll({d}, o);
  EXPECT_EQ(w.paths, (std::vector<std::string>{d + "/top"}));
  EXPECT_EQ(w.stats.mounts_skipped, (std::vector<std::string>{d + "/mnt"}));
  // A root on the other filesystem is walked: xdev is relative to each root.
  EXPECT_EQ(WalkAll({d + "/mnt"}, o).paths, (std::vector<std::string>{d + "/mnt/inner"}));
}

TEST(TreeWalkTest, OpenForReadRefusesWhatIsNoLongerTheFileSeen) {
  std::string d = testing::OpenTempDir();
  WriteFile(d + "/f", "one");
  int opened = 0, refused = 0;
  TreeWalk walk(
      {},
      [&](const WalkEntry& e) {
        // Swap the name for a link to another file between the stat and the open.
        ASSERT_EQ(rename((d + "/f").c_str(), (d + "/old").c_str()), 0);
        ASSERT_EQ(symlink((d + "/old").c_str(), (d + "/f").c_str()), 0);
        auto fd = OpenForRead(e);
        if (fd.ok()) {
          ++opened;
          close(*fd);
        } else {
          ++refused;
          EXPECT_NE(fd.status().message().find(d + "/f: open: "), std::string::npos) << fd.status().message();
        }
      },
      nullptr);
  walk.Walk(d);
  EXPECT_EQ(opened, 0);
  EXPECT_EQ(refused, 1);
}

TEST(TreeWalkTest, OpenForReadRefusesAnotherFileRenamedOverTheName) {
  std::string d = testing::OpenTempDir();
  WriteFile(d + "/f", "one");
  std::string other = testing::OpenTempDir() + "/g";
  WriteFile(other, "two");
  std::string message;
  TreeWalk walk(
      {},
      [&](const WalkEntry& e) {
        ASSERT_EQ(rename(other.c_str(), (d + "/f").c_str()), 0);
        auto fd = OpenForRead(e);
        ASSERT_FALSE(fd.ok());
        message = fd.status().message();
      },
      nullptr);
  walk.Walk(d);
  EXPECT_EQ(message, d + "/f: replaced while the walk read it (no longer the regular file seen)");
}

TEST(TreeWalkTest, RegularFilesUnderListsFilesNotLinksAndFailsOnAProblem) {
  std::string d = testing::OpenTempDir();
  MakeDir(d + "/s");
  WriteFile(d + "/s/b", "b");
  WriteFile(d + "/a", "a");
  ASSERT_EQ(symlink((d + "/a").c_str(), (d + "/s/link").c_str()), 0);
  ASSERT_EQ(mkfifo((d + "/s/fifo").c_str(), 0644), 0);
  auto files = RegularFilesUnder({d, "/not/a/dir"});
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_EQ(*files, (std::vector<std::string>{d + "/a", d + "/s/b", "/not/a/dir"}));
  ASSERT_EQ(chmod((d + "/s").c_str(), 0), 0);
  int rc = testing::AsNobody([&] {
    auto r = RegularFilesUnder({d});
    return !r.ok() && r.status().message() == d + "/s: open: Permission denied" ? 0 : 1;
  });
  chmod((d + "/s").c_str(), 0755);
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace lim::refs
