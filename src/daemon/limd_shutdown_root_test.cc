// limd stops cleanly when its own state directory lies on a filesystem it marks (as with
// the README main command: /var/lib/lim on a marked `/`). The last list appends and the
// final status.json are limd's own accesses; they must not wait on a reader thread that has
// already stopped. Root only; the test's own tmpfs; limd under `timeout -k`, stopped by pid.
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

#ifndef LIMD_BIN
#error "LIMD_BIN must name the limd binary"
#endif

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

TEST(LimdShutdown, StateOnAWatchedFilesystemStopsCleanlyOnSigterm) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (!why.empty()) GTEST_SKIP() << why;
  testing::ScratchMounts mounts;  // before limd: unmounted after it has stopped
  std::string mnt;
  ASSERT_EQ(mounts.AddTmpfs(&mnt, "size=32m,mode=755"), "");
  std::string state = mnt + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileBytes(state + "/policy", AsBytes(std::string("measure func=FILE_CHECK mask=MAY_READ\n"))).ok());
  ASSERT_TRUE(WriteFileBytes(mnt + "/data", AsBytes(std::string("some data\n"))).ok());
  testing::LimdChild limd;
  auto rc = limd.Start(
      testing::LimdCommand(state, mnt, "--config /dev/null --no-tpm --policy " + ShellQuote(state + "/policy")), state,
      30);
  ASSERT_FALSE(rc.has_value()) << "limd did not become ready";
  auto cat = RunCommand("timeout 20 cat " + ShellQuote(mnt + "/data"));
  EXPECT_EQ(cat.exit_code, 0);
  auto start = std::chrono::steady_clock::now();
  int status = limd.Stop(SIGTERM);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Before the shutdown flush, limd's final status.json write waited on itself until the
  // 3 s SIGKILL of Stop(): status 137.
  EXPECT_EQ(status, 0) << "limd did not exit by itself after SIGTERM";
  EXPECT_LT(secs, 2.5);
  auto text = ReadFileText(state + "/status.json");
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text, nullptr, false);
  EXPECT_EQ(j["running"], false) << *text;
  int data_entries = 0;
  for (const auto& r : testing::ReadListRows(state + "/binary_runtime_measurements")) {
    data_entries += r.name == mnt + "/data" ? 1 : 0;
  }
  EXPECT_EQ(data_entries, 1);
}

// Execs that fanotify measured while limd stops: their completion records are read in the
// tracepoint consumer's last passes. Read after the reader had removed the marks, each
// found its superblock unmarked and became a lim-late-exec entry for an exec measured
// before it ran. The consumers now stop first, while the marks are in place, so every
// record they read is of an exec the marks saw (execs after the flush are not observed at
// all, as any access after the stop).
TEST(LimdShutdown, ExecsDuringTheStopGetNoLateEntry) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (!why.empty()) GTEST_SKIP() << why;
  testing::ScratchMounts mounts;
  std::string mnt;
  ASSERT_EQ(mounts.AddTmpfs(&mnt, "size=32m,mode=755"), "");
  std::string state = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(state + "/policy", AsBytes(std::string("measure func=BPRM_CHECK mask=MAY_EXEC\n"))).ok());
  ASSERT_EQ(RunCommand("cp /bin/true " + ShellQuote(mnt + "/prog")).exit_code, 0);
  int late = 0, rounds = 0;
  for (; rounds < 5; ++rounds) {
    std::string dir = state + "/" + std::to_string(rounds);
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    testing::LimdChild limd;
    auto rc = limd.Start(
        testing::LimdCommand(dir, mnt, "--config /dev/null --no-tpm --policy " + ShellQuote(state + "/policy")), dir, 30);
    ASSERT_FALSE(rc.has_value()) << "limd did not become ready";
    // Execs without a pause, across the signal.
    std::string stop_file = dir + "/stop-loop";
    pid_t loop = ::fork();
    ASSERT_GE(loop, 0);
    if (loop == 0) {
      ::execl("/bin/sh", "sh", "-c",
              ("while [ ! -e " + ShellQuote(stop_file) + " ]; do " + ShellQuote(mnt + "/prog") + "; done").c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(limd.Stop(SIGTERM), 0);
    ASSERT_TRUE(WriteFileBytes(stop_file, {}).ok());
    int st = 0;
    ASSERT_EQ(::waitpid(loop, &st, 0), loop);
    auto rows = testing::ReadListRows(dir + "/binary_runtime_measurements");
    int regular = 0;
    for (const auto& r : rows) {
      regular += r.name == mnt + "/prog";
      late += r.name == "lim-late-exec" &&
              std::string(r.extra.begin(), r.extra.end()).find(mnt + "/prog") != std::string::npos;
    }
    EXPECT_EQ(regular, 1);
  }
  EXPECT_EQ(late, 0) << "execs fanotify measured got late entries at the stop, over " << rounds << " runs";
}

}  // namespace
}  // namespace lim::daemon
