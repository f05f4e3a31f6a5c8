// LateExecs' pieces that need no root: the lim-late-exec buffer and the mark clock.
#include "daemon/late_exec.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

namespace lim::daemon {
namespace {

TEST(LateExecBuffer, MeasuredAndGapForms) {
  EXPECT_EQ(LateExecBuffer("sha256:ab", "/mnt/u/prog", 42, makedev(0, 77), 5, 1234, ""),
            "digest=sha256:ab;path=/mnt/u/prog;pid=42;dev=0:77;ino=5;delay_us=1234;");
  EXPECT_EQ(LateExecBuffer("", "/mnt/u/prog", 42, makedev(8, 1), 5, 9, "gone"),
            "path=/mnt/u/prog;pid=42;dev=8:1;ino=5;delay_us=9;error=gone;");
}

TEST(LateExecBuffer, FieldSeparatorsInAPathAreEscaped) {
  // A path with ';' must not forge a field (e.g. a fake digest=).
  EXPECT_EQ(LateExecBuffer("", "/m/a;digest=x\n\\", 1, 0, 0, 0, ""),
            "path=/m/a\\073digest=x\\012\\134;pid=1;delay_us=0;");
}

TEST(MarkedDevs, LaterMarkOfARecycledNumberWins) {
  MarkedDevs m;
  EXPECT_FALSE(m.MarkedAt(77).has_value());
  m.Add(77, 100);
  EXPECT_EQ(m.MarkedAt(77), 100u);
  m.Add(77, 500);  // a new superblock took the number: execs before 500 were not seen
  EXPECT_EQ(m.MarkedAt(77), 500u);
  EXPECT_GT(MonotonicNs(), 0u);
}

}  // namespace
}  // namespace lim::daemon
