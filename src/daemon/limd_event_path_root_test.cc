// limd's per-event path: an exec open is one FAN_OPEN_PERM (limd marks no
// FAN_OPEN_EXEC_PERM) that decides both steps of the open from one /proc/<tid>/syscall read —
// BPRM_CHECK, and FILE_CHECK with MAY_EXEC, not a read, not a writer; the event reader runs
// at --reader-nice. Root: limd on its own tmpfs under `timeout -k`, stopped by its own pid.
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/mount.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

class LimdEventPath : public testing::TmpfsLimdTest {
 protected:
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line); }
};

TEST_F(LimdEventPath, OneEventPerExecOpenIsBprmCheckAndFileCheckMayExec) {
  // BPRM_CHECK into PCR 10, FILE_CHECK MAY_EXEC into PCR 11, reads and writes nowhere: each
  // PCR says which step measured the binary.
  ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes("measure func=BPRM_CHECK mask=MAY_EXEC\n"
                                                          "measure func=FILE_CHECK mask=MAY_EXEC pcr=11\n"))
                  .ok());
  ASSERT_EQ(Sh("cp /bin/true ./true && cp /bin/true ./data").exit_code, 0);
  auto rc = limd_.Start(testing::LimdCommand(state_, mnt_, "--no-tpm --policy " + ShellQuote(state_ + "/policy")), state_);
  ASSERT_FALSE(rc.has_value()) << "limd exited: " << *rc;
  ASSERT_EQ(Sh("./true && ./true && ./true && cat data >/dev/null && echo x >> data").exit_code, 0);
  limd_.Stop(SIGTERM);
  int bprm = 0, file_exec = 0, data = 0;
  for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
    if (r.name == mnt_ + "/true") (r.pcr == 10 ? bprm : file_exec)++;
    if (r.name == mnt_ + "/data") data++;
  }
  EXPECT_EQ(bprm, 1);
  EXPECT_EQ(file_exec, 1);  // the exec's OPEN_PERM was FILE_CHECK with MAY_EXEC
  EXPECT_EQ(data, 0);       // plain reads and writes match neither rule
  auto status = ReadFileText(state_ + "/status.json");
  ASSERT_TRUE(status.ok());
  auto j = nlohmann::json::parse(*status);
  // No OPEN_EXEC_PERM events: no OPEN_PERM follows one.
  EXPECT_EQ(j["exec_open_reuses"].get<uint64_t>(), 0u) << *status;
  EXPECT_EQ(j["unknown_syscall"].get<uint64_t>(), 0u) << *status;
  EXPECT_EQ(j["exec_opens_unsure"].get<uint64_t>(), 0u) << *status;
}

// The nice value (field 19 of /proc/<pid>/task/<tid>/stat) of every thread of pid.
std::vector<int> ThreadNices(pid_t pid) {
  std::vector<int> out;
  auto tasks = RunCommand("ls /proc/" + std::to_string(pid) + "/task");
  std::istringstream ts(tasks.out);
  std::string tid;
  while (ts >> tid) {
    auto stat = ReadFileText("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
    if (!stat.ok()) continue;
    std::istringstream fields(stat->substr(stat->rfind(')') + 2));  // after "pid (comm) "
    std::string f;
    for (int i = 3; i <= 19 && fields >> f; ++i) {
      if (i == 19) out.push_back(std::stoi(f));
    }
  }
  return out;
}

TEST_F(LimdEventPath, OnlyTheEventReaderDiscoveryAndTracepointsRunAtReaderNice) {
  auto rc = limd_.Start(testing::LimdCommand(state_, mnt_, "--no-tpm --reader-nice -7"), state_);
  ASSERT_FALSE(rc.has_value()) << "limd exited: " << *rc;
  // The event reader, and the two threads that race a new mount's first exec: discovery
  // and the tracepoint reader (when tracepoints are on; docs/limd.md "New superblocks").
  std::string tracepoints;
  for (int i = 0; i < 50 && tracepoints.empty(); ++i) {
    auto status = ReadFileText(state_ + "/status.json");
    if (status.ok() && !status->empty()) tracepoints = nlohmann::json::parse(*status)["tracepoints"];
    if (tracepoints.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  long want = tracepoints.rfind("off", 0) == 0 ? 2 : 3;
  std::vector<int> nices;
  for (int i = 0; i < 50; ++i) {  // each sets its priority as it starts
    nices = ThreadNices(limd_.pid());
    if (std::count(nices.begin(), nices.end(), -7) >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(nices.size(), 3u);
  EXPECT_EQ(std::count(nices.begin(), nices.end(), -7), want) << "tracepoints: " << tracepoints;
  EXPECT_EQ(std::count(nices.begin(), nices.end(), 0), static_cast<long>(nices.size()) - want);
  ASSERT_EQ(Sh("cp /bin/true ./t && ./t").exit_code, 0);  // and it answers
}

}  // namespace
}  // namespace lim::daemon
