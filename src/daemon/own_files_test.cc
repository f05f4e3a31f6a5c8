#include "daemon/own_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

struct stat Stat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

bool Has(const OwnFiles& own, const std::string& path) {
  struct stat st = Stat(path);
  return own.Contains(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

TEST(OwnFiles, WriteRegistersTheNewInodeAndForgetsTheReplacedOne) {
  std::string dir = lim::testing::MakeTempDir();
  OwnFiles own;
  std::string p = dir + "/status.json";
  ASSERT_TRUE(own.Write(p, AsBytes(std::string("{}\n"))).ok());
  struct stat first = Stat(p);
  EXPECT_TRUE(Has(own, p));
  // Keep the first inode alive under another name, so the filesystem cannot reuse its number.
  ASSERT_EQ(::link(p.c_str(), (dir + "/old").c_str()), 0);
  ASSERT_TRUE(own.Write(p, AsBytes(std::string("{\"a\":1}\n"))).ok());
  EXPECT_TRUE(Has(own, p));
  EXPECT_NE(Stat(p).st_ino, first.st_ino);
  EXPECT_FALSE(own.Contains(static_cast<uint64_t>(first.st_dev), static_cast<uint64_t>(first.st_ino)));
  EXPECT_EQ(own.size(), 1u);
  EXPECT_EQ(*ReadFileText(p), "{\"a\":1}\n");
}

TEST(OwnFiles, AFileRenamedIntoTheDirectoryIsNotLimds) {
  std::string dir = lim::testing::MakeTempDir();
  OwnFiles own;
  ASSERT_TRUE(own.Write(dir + "/chain.json", AsBytes(std::string("{}\n"))).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/foreign", AsBytes(std::string("#!/bin/sh\n"))).ok());
  EXPECT_FALSE(Has(own, dir + "/foreign"));
  EXPECT_TRUE(Has(own, dir + "/chain.json"));
}

TEST(OwnFiles, RevokeAndOtherDevices) {
  std::string dir = lim::testing::MakeTempDir();
  OwnFiles own;
  EXPECT_FALSE(own.Contains(1, 2));  // empty
  int fd = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  own.AddFd(fd);
  ::close(fd);
  struct stat st = Stat(dir + "/lock");
  uint64_t dev = static_cast<uint64_t>(st.st_dev), ino = static_cast<uint64_t>(st.st_ino);
  EXPECT_TRUE(own.Contains(dev, ino));
  EXPECT_FALSE(own.Contains(dev + 1, ino));
  own.Add(dev + 1, 7);  // a second device: both are looked up
  EXPECT_TRUE(own.Contains(dev + 1, 7));
  EXPECT_TRUE(own.Contains(dev, ino));
  own.Revoke(dev, ino);
  EXPECT_FALSE(own.Contains(dev, ino));
  EXPECT_EQ(own.revoked(), 1u);
  own.Revoke(dev, ino);  // not there any more: not counted again
  EXPECT_EQ(own.revoked(), 1u);
}

}  // namespace
}  // namespace lim::daemon
