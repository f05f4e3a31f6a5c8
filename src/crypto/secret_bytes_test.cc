// Tests of SecretBytes (locked, undumpable, not inherited, wiped) and ReadSecretFile's
// refusals. The memory properties are read back from /proc/self/smaps, as an admin would.
#include "crypto/secret_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "base/file.h"
#include "tests/testing.h"

namespace lim {
namespace {

// The smaps block of the mapping that starts at addr: "Locked:" and "VmFlags:" lines.
std::string SmapsOf(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  std::string line, out;
  bool in_block = false;
  char start[32];
  std::snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(addr));
  while (std::getline(in, line)) {
    bool header = line.find('-') != std::string::npos && line.find(' ') > line.find('-') && isxdigit(line[0]);
    if (header) in_block = line.rfind(start, 0) == 0;
    if (in_block) out += line + "\n";
  }
  return out;
}

TEST(SecretBytesTest, LockedUndumpableAndWipedOnFork) {
  auto s = SecretBytes::CopyOf(AsBytes("0123456789abcdef"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->size(), 16u);
  EXPECT_EQ(std::memcmp(s->data(), "0123456789abcdef", 16), 0);
  std::string smaps = SmapsOf(s->data());
  ASSERT_FALSE(smaps.empty()) << "no mapping of its own";
  // Locked: the whole page, never swapped.
  EXPECT_NE(smaps.find("Locked:                4 kB"), std::string::npos) << smaps;
  std::string flags = smaps.substr(smaps.find("VmFlags:"));
  EXPECT_NE(flags.find(" lo"), std::string::npos) << flags;  // VM_LOCKED
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;  // VM_DONTDUMP
  EXPECT_NE(flags.find(" wf"), std::string::npos) << flags;  // VM_WIPEONFORK

  // A forked child (a helper limd runs) sees zeros where the key was.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    bool zero = true;
    for (size_t i = 0; i < 16; ++i) zero &= s->data()[i] == 0;
    _exit(zero ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child inherited the key";
}

TEST(SecretBytesTest, ClearUnmapsAndMoveLeavesNothingBehind) {
  auto s = SecretBytes::CopyOf(AsBytes("key"));
  ASSERT_TRUE(s.ok());
  const uint8_t* where = s->data();
  SecretBytes moved = std::move(*s);
  EXPECT_EQ(s->data(), nullptr);
  EXPECT_TRUE(s->empty());
  EXPECT_EQ(moved.data(), where);
  moved.Clear();
  EXPECT_EQ(moved.data(), nullptr);
  EXPECT_TRUE(SmapsOf(where).empty()) << "the mapping is still there after Clear";
}

TEST(SecretBytesTest, BoundsAndComparison) {
  EXPECT_FALSE(SecretBytes::Allocate(0).ok());
  EXPECT_FALSE(SecretBytes::Allocate(size_t{1} << 30).ok());
  auto s = SecretBytes::Allocate(10);
  ASSERT_TRUE(s.ok());
  s->Resize(100);
  EXPECT_EQ(s->size(), 10u);
  EXPECT_TRUE(SecretEquals(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(SecretEquals(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(SecretEquals(AsBytes("abc"), AsBytes("abcd")));
}

class ReadSecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = lim::testing::MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& data, mode_t mode) {
    std::string p = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(p, AsBytes(data), mode).ok());
    EXPECT_EQ(chmod(p.c_str(), mode), 0);
    return p;
  }
  std::string Error(const std::string& path, size_t max = 128) {
    auto r = ReadSecretFile(path, max, "the EVM HMAC key");
    return r.ok() ? "" : r.status().message();
  }
  std::string dir_;
};

TEST_F(ReadSecretFileTest, ReadsAPrivateFile) {
  std::string p = Write("key", std::string(32, 'k'), 0600);
  auto r = ReadSecretFile(p, 128, "the EVM HMAC key");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 32u);
  EXPECT_EQ(AsChars(r->view()), std::string(32, 'k'));
  std::string smaps = SmapsOf(r->data());
  EXPECT_NE(smaps.find(" dd"), std::string::npos);
}

TEST_F(ReadSecretFileTest, RefusesWhatADaemonMustNotTrust) {
  EXPECT_NE(Error(Write("group", "k", 0640)).find("mode 0640 lets group or others at it"), std::string::npos);
  EXPECT_NE(Error(Write("world", "k", 0604)).find("mode 0604"), std::string::npos);
  EXPECT_NE(Error(Write("gw", "k", 0620)).find("mode 0620"), std::string::npos);
  EXPECT_NE(Error(Write("empty", "", 0600)).find("empty"), std::string::npos);
  EXPECT_NE(Error(Write("big", std::string(129, 'x'), 0600)).find("129 bytes, more than the 128"), std::string::npos);
  std::string target = Write("target", "k", 0600);
  ASSERT_EQ(symlink(target.c_str(), (dir_ + "/link").c_str()), 0);
  EXPECT_NE(Error(dir_ + "/link").find("symbolic link"), std::string::npos);
  EXPECT_NE(Error(dir_).find("not a regular file"), std::string::npos);
  EXPECT_NE(Error("/dev/zero").find("not a regular file"), std::string::npos);
  EXPECT_NE(Error(dir_ + "/missing").find("No such file"), std::string::npos);
  // The message names the file and the key.
  EXPECT_NE(Error(dir_ + "/group").find(dir_ + "/group: "), std::string::npos);
  EXPECT_NE(Error(dir_ + "/group").find("(the EVM HMAC key)"), std::string::npos);
}

TEST_F(ReadSecretFileTest, RefusesAFileOwnedBySomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  std::string p = Write("other", "k", 0600);
  ASSERT_EQ(chown(p.c_str(), 65534, 65534), 0);
  EXPECT_NE(Error(p).find("owned by uid 65534, not by root"), std::string::npos);
}

}  // namespace
}  // namespace lim
