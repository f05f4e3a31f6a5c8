// Root test of the TPM server exemption (docs/limd.md "The TPM server"): limd answers a
// permission event only after the PCR extend, so the swtpm it extends through must never
// wait on limd. The test's own swtpm keeps its state on the test's own loop-mounted ext4,
// which limd watches (pre-content on); while a shell measures reads of fresh files (every
// one an extend, one worker), another TPM client makes swtpm rewrite its NV state file there
// (TPM2_NV_DefineSpace/UndefineSpace: swtpm opens TMP2-00.permall for writing). Without the
// exemption that open waits behind the worker's extend, which waits on swtpm: every round
// ends only by the decision timeout (a lim-decision-timeout entry). limd runs under
// `timeout -k 2 60`, stopped by its own pid; swtpm dies with the test; the mount is
// unmounted after both.
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"
#include "tpm/swtpm.h"

namespace lim::daemon {
namespace {

std::string TextOf(const std::string& path) {
  auto t = ReadFileText(path);
  return t.ok() ? *t : std::string();
}

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

constexpr char kPolicy[] =
    "measure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n"
    "measure func=BPRM_CHECK mask=MAY_EXEC\n";

class LimdTpmPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (why.empty() && RunCommand("command -v swtpm && command -v tpm2_nvdefine").exit_code != 0) {
      why = "no swtpm/tpm2-tools";
    }
    if (why.empty()) why = mounts_.AddExt4(&mnt_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    ASSERT_EQ(::chmod(mnt_.c_str(), 0755), 0);
    swtpm_.state_dir = mnt_ + "/swtpm";  // ON the watched filesystem
    swtpm_.run_dir = state_ + "/swtpm-run";
    swtpm_.create_ek_cert = false;
    swtpm_.die_with_parent = true;
    auto pid = tpm::SwtpmStart(swtpm_);
    ASSERT_TRUE(pid.ok()) << pid.status().message();
    swtpm_pid_ = *pid;
  }
  void TearDown() override {
    limd_.Stop();
    if (swtpm_pid_ > 0) {
      EXPECT_TRUE(tpm::SwtpmStop(swtpm_).ok());
    }
  }
  std::string Tcti() const { return tpm::SwtpmTcti(swtpm_); }

  std::string mnt_, state_;
  testing::ScratchMounts mounts_;  // before limd_: unmounted after limd and swtpm have stopped
  tpm::SwtpmConfig swtpm_;
  pid_t swtpm_pid_ = 0;
  testing::LimdChild limd_;
};

TEST_F(LimdTpmPeer, SwtpmOnAWatchedFilesystemNeverWaitsOnLimd) {
  std::string list_dir = state_ + "/limd";
  ASSERT_EQ(::mkdir(list_dir.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes(kPolicy)).ok());
  auto rc = limd_.Start(std::string(LIMD_BIN) + " --foreground --tpm " + ShellQuote(Tcti()) + " --state " +
                            ShellQuote(list_dir) + " --watch " + ShellQuote(mnt_) + " --workers 1 --policy " +
                            ShellQuote(state_ + "/policy") + " --log-file " + ShellQuote(state_ + "/log") + " 2>>" +
                            ShellQuote(state_ + "/stderr"),
                        list_dir, 60);
  ASSERT_FALSE(rc.has_value()) << "limd did not become ready: " << TextOf(state_ + "/stderr");
  auto log = TextOf(state_ + "/log");
  EXPECT_NE(log.find("TPM server pid " + std::to_string(swtpm_pid_) + ", "), std::string::npos) << log;
  // Its threads are known from perf fork records: others' events cost no /proc lookup.
  EXPECT_NE(log.find("TPM server pid " + std::to_string(swtpm_pid_) + " threads: threads known from perf fork records"),
            std::string::npos)
      << log;

  // Measured reads of fresh files (an extend each) while swtpm rewrites its NV state.
  std::string work = "cd " + ShellQuote(mnt_) + " && mkdir -p w && for i in $(seq 300); do echo $i > w/f$i; " +
                     "cat w/f$i > /dev/null; done; cp /bin/true w/t && w/t";
  std::string nv = "export TPM2TOOLS_TCTI=" + ShellQuote(Tcti()) +
                   "; for i in 1 2 3 4 5; do tpm2_nvdefine 0x1500016 -C o -s 32 -a 'ownerread|ownerwrite' >/dev/null "
                   "&& tpm2_nvundefine 0x1500016 -C o >/dev/null || exit 1; done";
  auto both = RunCommand("timeout 50 sh -c " + ShellQuote("(" + work + ") & w=$!; (" + nv + "); n=$?; wait $w; exit $n"));
  EXPECT_EQ(both.exit_code, 0) << both.out << both.err;

  // Every measured read made it into the list before the status is read back.
  limd_.Stop();
  auto status = nlohmann::json::parse(TextOf(list_dir + "/status.json"), nullptr, false);
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["timeouts"], 0) << status.dump(2);
  EXPECT_LT(status["latency_us"]["max"].template get<uint64_t>(), 1000000u) << status.dump(2);  // timeout: 2 s
  EXPECT_LT(status["latency_us"]["p99"].template get<uint64_t>(), 300000u) << status.dump(2);
  EXPECT_GT(status["own_events"].template get<uint64_t>(), 0u) << status.dump(2);

  int timeouts = 0, reads = 0, swtpm_files = 0;
  for (const auto& r : testing::ReadListRows(list_dir + "/binary_runtime_measurements")) {
    timeouts += r.name == "lim-decision-timeout";
    reads += r.name.find("/w/f") != std::string::npos;
    swtpm_files += r.name.find("/swtpm/") != std::string::npos;
  }
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(reads, 300);
  EXPECT_EQ(swtpm_files, 0);
  auto v = RunCommand(lim::testing::LimBinary() + " verify " + list_dir + "/binary_runtime_measurements --tpm " +
                      ShellQuote(Tcti()));
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace lim::daemon
