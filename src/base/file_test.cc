#include "base/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <string_view>
#include <vector>

#include "tests/testing.h"

namespace lim {
namespace {

using lim::testing::ModeOf;
using lim::testing::Slurp;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    secret_ = dir_ + "/secret";
    std::ofstream(secret_) << "root only\n";
  }
  std::string dir_, secret_;
};

// State files (status.json, chain.json, software_pcrs.json) go through WriteFileBytes:
// mode as asked, and a link planted at PATH.tmp or PATH is replaced, never written through.
TEST_F(FileTest, AtomicWriteNeverFollowsALink) {
  std::string p = dir_ + "/status.json";
  ASSERT_EQ(::symlink(secret_.c_str(), (p + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileBytes(p, AsBytes(std::string("{}\n")), 0600).ok());
  EXPECT_EQ(ModeOf(p), 0600u);
  EXPECT_EQ(Slurp(p), "{}\n");
  EXPECT_EQ(Slurp(secret_), "root only\n");
  ASSERT_EQ(::unlink(p.c_str()), 0);
  ASSERT_EQ(::symlink(secret_.c_str(), p.c_str()), 0);
  ASSERT_TRUE(WriteFileBytes(p, AsBytes(std::string("{}\n")), 0600).ok());
  EXPECT_EQ(Slurp(secret_), "root only\n");
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

// `lim scan -o /dev/null` as root once renamed a regular file over /dev/null: a device,
// fifo or socket at PATH is refused, never replaced (a fifo stands in for the device here).
TEST_F(FileTest, AtomicWriteNeverReplacesADeviceOrFifo) {
  std::string p = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  Status s = WriteFileBytes(p, AsBytes(std::string("x")));
  EXPECT_EQ(s.message(), p + ": not a regular file: not replaced");
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

// A document written in pieces (lim scan's policy and manifest) is their concatenation, in
// one atomic replacement; an empty piece writes nothing.
TEST_F(FileTest, PiecesAreWrittenInOrderAndReplaceAtomically) {
  std::string p = dir_ + "/out.json";
  std::ofstream(p) << "old contents that are longer than the new\n";
  std::string big(3 << 20, 'b');
  std::vector<ByteView> pieces = {AsBytes(std::string_view("{\"a\": 1")), AsBytes(std::string_view()),
                                  AsBytes(std::string_view(big)), AsBytes(std::string_view("}\n"))};
  ASSERT_TRUE(WriteFilePieces(p, pieces, 0640).ok());
  EXPECT_EQ(Slurp(p), "{\"a\": 1" + big + "}\n");
  EXPECT_EQ(ModeOf(p), 0640u);
  EXPECT_NE(::access((p + ".tmp").c_str(), F_OK), 0);
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(WriteFilePieces(fifo, pieces).ok());
}

TEST_F(FileTest, BoundedReadStopsAtTheLimit) {
  auto z = ReadFileBounded("/dev/zero", 1000);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("larger than 1000 bytes"), std::string::npos);
  std::string f = dir_ + "/f";
  std::ofstream(f) << std::string(1000, 'x');
  EXPECT_TRUE(ReadFileBounded(f, 1000).ok());
  EXPECT_FALSE(ReadFileBounded(f, 999).ok());
  auto part = ReadFileBounded("/dev/null", 10);
  ASSERT_TRUE(part.ok());
  EXPECT_TRUE(part->empty());
}

}  // namespace
}  // namespace lim
