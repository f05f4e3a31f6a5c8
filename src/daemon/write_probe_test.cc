#include "daemon/write_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace lim::daemon {
namespace {

// The caller owns the file (no CAP_LEASE needed); tmpfs and ext4 take leases alike.
TEST(WriteProbeTest, AWriterIsSeenAndReadersAreNot) {
  std::string path = lim::testing::MakeTempDir() + "/f";
  int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(w, 0);
  int r = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r, 0);
  EXPECT_EQ(ProbeOpenForWrite(r), OpenForWrite::kYes);  // w holds it for write
  ::close(w);
  EXPECT_EQ(ProbeOpenForWrite(r), OpenForWrite::kNo);
  int r2 = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // other readers do not count
  ASSERT_GE(r2, 0);
  EXPECT_EQ(ProbeOpenForWrite(r), OpenForWrite::kNo);
  // No lease is left behind: a write-open does not wait, even O_NONBLOCK.
  int w2 = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  EXPECT_GE(w2, 0);
  EXPECT_EQ(ProbeOpenForWrite(r), OpenForWrite::kYes);  // O_RDWR counts as a writer
  ::close(w2);
  ::close(r2);
  ::close(r);
}

TEST(WriteProbeTest, ABadFdIsUnknown) { EXPECT_EQ(ProbeOpenForWrite(-1), OpenForWrite::kUnknown); }

}  // namespace
}  // namespace lim::daemon
