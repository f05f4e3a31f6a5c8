#include "daemon/process_exe.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "daemon/list_rows_test_util.h"
#include "daemon/measurer_test_util.h"
#include "daemon/memfd_exec_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

TEST(ProcessExe, MemfdImaNameIsTheDentryName) {
  EXPECT_EQ(MemfdImaName("/memfd:foo (deleted)"), "memfd:foo");
  EXPECT_EQ(MemfdImaName("/memfd:a b (deleted)"), "memfd:a b");
  EXPECT_EQ(MemfdImaName("/memfd:"), "memfd:");
}

// On real files (RealEnv): the executables of real processes.
class ProcessExeTest : public testing::MeasurerFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(OpenParts("measure func=BPRM_CHECK mask=MAY_EXEC\n", {}, RealEnv()));
    measurer_ = std::make_unique<Measurer>(MeasurerConfig{}, matcher_.get(), list_.get(), RealEnv());
  }
  std::vector<testing::ListRow> Rows() { return testing::ReadListRows(dir_ + "/binary_runtime_measurements"); }
};

TEST_F(ProcessExeTest, AMemfdExecIsMeasuredWithTheKernelsNameAndTheBinarysDigest) {
  ASSERT_NE(MemfdDevice(), 0u);
  testing::MemfdExec child;
  ASSERT_TRUE(child.Start("/bin/sleep", "lim-test-sleep", {"sleep", "30"}));
  ExeOutcome o = MeasureProcessExe(measurer_.get(), list_.get(), child.pid(), ExeOptions{"test", "", false});
  ASSERT_EQ(o.kind, ExeOutcome::Kind::kMemfd) << o.link << " " << o.error;
  EXPECT_EQ(o.link, "/memfd:lim-test-sleep (deleted)");
  EXPECT_EQ(o.name, "memfd:lim-test-sleep");
  EXPECT_TRUE(o.verdict.measured) << o.verdict.status.message();
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "memfd:lim-test-sleep");
  EXPECT_EQ(rows.back().tmpl, "ima-ng");
  EXPECT_EQ(rows.back().algo, "sha256");
  auto bin = ReadFileBytes("/bin/sleep");
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ(rows.back().digest, *Digest(Sha256Algo(), *bin));
  // Once measured, the unchanged memfd is a cache hit: no second entry.
  size_t n = rows.size();
  o = MeasureProcessExe(measurer_.get(), list_.get(), child.pid(), ExeOptions{"test", "", false});
  EXPECT_TRUE(o.verdict.cached);
  EXPECT_EQ(Rows().size(), n);
}

TEST_F(ProcessExeTest, OrdinaryExecutablesAreLeftToTheCaller) {
  size_t n = Rows().size();
  ExeOutcome o = MeasureProcessExe(measurer_.get(), list_.get(), ::getpid(), ExeOptions{"test", "", false});
  EXPECT_EQ(o.kind, ExeOutcome::Kind::kOther);
  EXPECT_FALSE(o.link.empty());
  EXPECT_EQ(Rows().size(), n);
}

TEST_F(ProcessExeTest, AGoneProcessLeavesANamedGap) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  ::waitpid(pid, nullptr, 0);
  ExeOutcome o =
      MeasureProcessExe(measurer_.get(), list_.get(), pid, ExeOptions{"exec", "/dev/fd/3", true});
  EXPECT_EQ(o.kind, ExeOutcome::Kind::kGone);
  EXPECT_TRUE(o.gap) << o.error;
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "lim-exe-unmeasured");
  EXPECT_EQ(rows.back().tmpl, "ima-buf");
  EXPECT_TRUE(rows.back().violation);
  std::string buf(rows.back().extra.begin(), rows.back().extra.end());
  EXPECT_EQ(buf.rfind("pid=" + std::to_string(pid) + ";exe=/dev/fd/3;why=exec;error=", 0), 0u) << buf;
}

}  // namespace
}  // namespace lim::daemon
