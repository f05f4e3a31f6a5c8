#include "daemon/fanotify_daemon.h"

#include <gtest/gtest.h>

#include "ima/policy.h"
#include "ima/policy_builtin.h"

namespace lim::daemon {
namespace {

bool Needs(const std::string& text) {
  auto p = ima::ParsePolicy(text, "test");
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() && PolicyMeasuresMmap(*p);
}

TEST(FanotifyDaemon, PreContentOnlyForPoliciesThatMeasureMmap) {
  EXPECT_TRUE(Needs("measure func=MMAP_CHECK mask=MAY_EXEC\n"));
  EXPECT_TRUE(Needs("measure func=MMAP_CHECK_REQPROT mask=MAY_EXEC\n"));
  EXPECT_TRUE(Needs("measure fowner=0\n"));  // no func=: every hook
  EXPECT_FALSE(Needs("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n"));
  EXPECT_FALSE(Needs("dont_measure func=MMAP_CHECK\nappraise func=MMAP_CHECK\n"));
  EXPECT_TRUE(PolicyMeasuresMmap(*ima::BuiltinPolicy("tcb")));
}

}  // namespace
}  // namespace lim::daemon
