// A file whose path is longer than PATH_MAX: the kernel's ima_d_path() then records the
// dentry's own name (d_absolute_path fails), never an empty one; limd records the last
// component of the pathname the opener passed (OpenedFileName). Root: limd on its own tmpfs
// under `timeout -k`, stopped by its own pid.
#include <gtest/gtest.h>
#include <sys/fanotify.h>

#include <algorithm>
#include <string>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::ShellQuote;

class LimdLongPath : public testing::TmpfsLimdTest {};

TEST_F(LimdLongPath, PathLongerThanPathMaxRecordsTheFilesOwnName) {
  ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes("measure func=FILE_CHECK mask=MAY_READ\n")).ok());
  // 24 directories of 200 characters: the file's path is about 4,900 bytes, over PATH_MAX.
  const std::string dir(200, 'd');
  const std::string descend = "for i in $(seq 24); do mkdir -p " + dir + " && cd -P " + dir + " || exit 9; done";
  ASSERT_EQ(testing::ShIn(mnt_, descend + " && echo data > target-file && echo short > short-file").exit_code, 0);
  auto rc = limd_.Start(testing::LimdCommand(state_, mnt_, "--no-tpm --policy " + ShellQuote(state_ + "/policy")), state_);
  ASSERT_FALSE(rc.has_value()) << "limd exited: " << *rc;
  auto r = testing::ShIn(mnt_, descend + " && cat target-file >/dev/null && cat ./short-file >/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  limd_.Stop(SIGTERM);
  std::vector<std::string> names = testing::ListNames(state_ + "/binary_runtime_measurements");
  int target = 0, empty = 0;
  for (const auto& n : names) {
    if (n == "target-file") ++target;
    if (n.empty()) ++empty;
  }
  EXPECT_EQ(target, 1) << ::testing::PrintToString(names);
  EXPECT_EQ(empty, 0);
  // The same for the second file (opened as "./short-file": its own name, not ".").
  EXPECT_NE(std::find(names.begin(), names.end(), "short-file"), names.end()) << ::testing::PrintToString(names);
}

}  // namespace
}  // namespace lim::daemon
