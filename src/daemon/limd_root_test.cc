// Root tests: limd on its own fresh tmpfs mount, started as a child under `timeout -k 2 30`,
// stopped by its own PID, the mount unmounted after it. Skipped (with the reason) when
// not root or when fanotify permission events are unavailable. Never marks anything but
// the test's own mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <tuple>
#include <map>
#include <sstream>
#include <thread>

#include "base/file.h"
#include "crypto/digest.h"
#include "ima/digest_field.h"
#include "ima/list_reader.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"
#include "tpm/tpm.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

using Row = testing::ListRow;
std::vector<Row> ReadRows(const std::string& path) { return testing::ReadListRows(path); }

class LimdRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    if (ext4_) {
      why = mounts_.AddExt4(&mnt_);  // no loop ext4 here: skip; a tmpfs that fails to mount: fail
      if (!why.empty()) GTEST_SKIP() << why;
    } else {
      ASSERT_EQ(mounts_.AddTmpfs(&mnt_), "");
    }
  }
  void TearDown() override { StopLimd(); }
  // Starts limd; returns its exit status if it exited before becoming ready.
  std::optional<int> StartLimd(const std::string& extra = "--no-tpm") {
    auto rc = limd_child_.Start(std::string(LIMD_BIN) + " --foreground --securityfs none --state " +
                                    ShellQuote(state_) + " --watch " + ShellQuote(mnt_) + " --log-file " +
                                    ShellQuote(state_ + "/log") + " " + extra + " 2>>" + ShellQuote(state_ + "/stderr"),
                                state_);
    limd_ = limd_child_.pid();
    if (rc == -1) ADD_FAILURE() << "limd did not become ready";
    return rc;
  }
  void StopLimd(int sig = SIGTERM) {
    limd_child_.Stop(sig);
    limd_ = -1;
  }
  std::string List() { return state_ + "/binary_runtime_measurements"; }
  std::vector<Row> Rows() { return ReadRows(List()); }
  int Count(const std::string& name, bool violation = false) {
    int n = 0;
    for (const auto& r : Rows()) n += (r.name == name && r.violation == violation) ? 1 : 0;
    return n;
  }
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line); }
  void ExpectVerifies() {
    auto r = RunCommand(lim::testing::LimBinary() + " verify " + List() + " --pcrs " + state_ + "/software_pcrs.json");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  Bytes Sha256Of(const std::string& path) { return *Digest(Sha256Algo(), *ReadFileBytes(path)); }
  void WritePolicy(const std::string& text) { ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes(text)).ok()); }

  std::string mnt_, state_;
  bool ext4_ = false;
  testing::ScratchMounts mounts_;
  testing::LimdChild limd_child_;  // declared after the mounts: stopped before they go
  pid_t limd_ = -1;
};

TEST_F(LimdRoot, ExecIsMeasuredBeforeItReturns) {
  ASSERT_EQ(Sh("cp /bin/true ./true").exit_code, 0);
  ASSERT_FALSE(StartLimd().has_value());
  ASSERT_EQ(Sh("./true").exit_code, 0);
  // The exec has returned: its entry must already be in the list (and the PCR).
  std::vector<Row> rows = Rows();
  const Row* hit = nullptr;
  for (const auto& r : rows) {
    if (r.name == mnt_ + "/true") hit = &r;
  }
  ASSERT_NE(hit, nullptr) << "no entry for " << mnt_ << "/true";
  EXPECT_EQ(hit->tmpl, "ima-ng");
  EXPECT_EQ(hit->algo, "sha256");
  EXPECT_EQ(hit->digest, Sha256Of("/bin/true"));
  EXPECT_EQ(rows[0].name, "boot_aggregate");
  EXPECT_EQ(rows[1].name, "lim-start");
  // ... and already in the PCR: the software bank's dump, taken after each extend, attests
  // every entry (no unattested tail) while limd still runs.
  auto v = RunCommand(lim::testing::LimBinary() + " verify " + List() + " --pcrs " + state_ + "/software_pcrs.json");
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("unattested: 0"), std::string::npos) << v.out;
  ASSERT_EQ(Sh("./true && ./true").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/true"), 1);  // unchanged: measured once
  StopLimd();
  ExpectVerifies();
}

TEST_F(LimdRoot, ScriptAndInterpreterAreBprm) {
  ASSERT_EQ(Sh("cp /bin/sh ./interp && printf '#!" + mnt_ + "/interp\\necho ok\\n' > s && chmod +x s").exit_code, 0);
  ASSERT_FALSE(StartLimd().has_value());
  auto r = Sh("./s");
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(Count(mnt_ + "/s"), 1);
  EXPECT_EQ(Count(mnt_ + "/interp"), 1);
  StopLimd();
  ExpectVerifies();
}

TEST_F(LimdRoot, RootReadsRewriteAndViolations) {
  WritePolicy("measure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=BPRM_CHECK mask=MAY_EXEC\n");
  ASSERT_EQ(Sh("echo v1 > f && echo w > g && echo t > h").exit_code, 0);
  ASSERT_FALSE(StartLimd("--no-tpm --policy " + state_ + "/policy").has_value());
  ASSERT_EQ(Sh("cat f >/dev/null && cat f > /dev/null").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/f"), 1);
  ASSERT_EQ(Sh("echo version-two > f; cat f >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/f"), 2);  // rewritten: measured again after the last writer closed
  EXPECT_EQ(Rows().back().digest, *Digest(Sha256Algo(), AsBytes("version-two\n")));
  // exec 5>>g; cat g  → exactly one open_writers (and g measured)
  ASSERT_EQ(Sh("exec 5>>g; cat g >/dev/null; cat g >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/g", true), 1);
  // read (kept open) then open for write → exactly one ToMToU
  ASSERT_EQ(Sh("exec 4<h; echo more >> h; echo again >> h").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/h", true), 1);
  auto log = ReadFileText(state_ + "/log");
  EXPECT_NE(log->find("cause=open_writers"), std::string::npos);
  EXPECT_NE(log->find("cause=ToMToU"), std::string::npos);
  StopLimd();
  ExpectVerifies();
}

// A library loaded from the mount: on tmpfs (no pre-content) the read-only open of an ELF
// file with an executable PT_LOAD is the MMAP_CHECK approximation (docs/limd.md).
TEST_F(LimdRoot, LibraryLoadFromTmpfsIsMmapCheck) {
  ASSERT_EQ(Sh("cp /lib/x86_64-linux-gnu/libc.so.6 ./libc.so.6 && echo text > plain").exit_code, 0);
  ASSERT_FALSE(StartLimd().has_value());  // built-in tcb: MMAP_CHECK, and no FILE_CHECK on tmpfs
  ASSERT_EQ(Sh("LD_LIBRARY_PATH=" + mnt_ + " /bin/true && cat plain >/dev/null").exit_code, 0);
  std::optional<Row> lib;
  for (const auto& r : Rows()) {
    if (r.name == mnt_ + "/libc.so.6") lib = r;
  }
  ASSERT_TRUE(lib.has_value());
  EXPECT_EQ(lib->digest, Sha256Of("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_EQ(Count(mnt_ + "/plain"), 0);  // not ELF, and tcb's FILE_CHECK excludes tmpfs
  StopLimd();
  ExpectVerifies();
}

// limd's own accesses on a watched mount are answered at once and never measured: here its
// state directory (list, status.json, software_pcrs.json rewritten all the time) is on the
// watched tmpfs itself. A limd waiting on itself would stall every access below.
TEST_F(LimdRoot, OwnAccessesOnWatchedMountAreAllowed) {
  ASSERT_EQ(Sh("cp /bin/true ./true && mkdir st").exit_code, 0);
  std::string outer_state = state_;
  state_ = mnt_ + "/st";
  ASSERT_FALSE(StartLimd().has_value());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Sh("./true").exit_code, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // status.json rewrites
  }
  for (const auto& r : Rows()) EXPECT_EQ(r.name.find(mnt_ + "/st/"), std::string::npos) << r.name;
  EXPECT_EQ(Count(mnt_ + "/true"), 1);
  StopLimd();
  auto status = ReadFileText(state_ + "/status.json");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->find("\"own_events\": 0,"), std::string::npos) << *status;  // limd did see itself
  EXPECT_NE(status->find("\"timeouts\": 0"), std::string::npos) << *status;
  ExpectVerifies();
  state_ = outer_state;
}

// The time bound in measure mode: a decision that takes longer than the bound is answered
// after a lim-decision-timeout gap entry; the real entry follows when hashing ends.
TEST_F(LimdRoot, DecisionTimeoutRecordsThenAllows) {
  WritePolicy("measure func=FILE_CHECK mask=MAY_READ\n");
  ASSERT_EQ(Sh("head -c 48000000 /dev/zero > big").exit_code, 0);
  ASSERT_FALSE(StartLimd("--no-tpm --decision-timeout-ms 5 --policy " + state_ + "/policy").has_value());
  ASSERT_EQ(Sh("cat big > /dev/null").exit_code, 0);
  StopLimd();  // drains: the real entry is appended before limd exits
  EXPECT_EQ(Count("lim-decision-timeout", true), 1);
  EXPECT_EQ(Count(mnt_ + "/big"), 1);
  auto rows = Rows();
  size_t gap = 0, real = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].name == "lim-decision-timeout") gap = i;
    if (rows[i].name == mnt_ + "/big") real = i;
  }
  EXPECT_LT(gap, real);  // recorded first, measured after
  ExpectVerifies();
}

// The ELF interpreter arrives as an exec open too, but the kernel treats it as MMAP_CHECK:
// a copy of /bin/true whose PT_INTERP names a copy of ld.so on the mount.
TEST_F(LimdRoot, ElfInterpreterIsMmapCheckNotBprm) {
  std::string ld = mnt_ + "/ld";
  const std::string kInterp = "/lib64/ld-linux-x86-64.so.2";
  if (ld.size() > kInterp.size()) GTEST_SKIP() << "mount path too long to patch PT_INTERP: " << ld;
  auto bin = ReadFileBytes("/bin/true");
  ASSERT_TRUE(bin.ok());
  std::string b(bin->begin(), bin->end());
  size_t at = b.find(kInterp + std::string(1, '\0'));
  if (at == std::string::npos) GTEST_SKIP() << "/bin/true has no " << kInterp << " interpreter";
  b.replace(at, kInterp.size(), ld + std::string(kInterp.size() - ld.size(), '\0'));
  ASSERT_TRUE(WriteFileBytes(mnt_ + "/true", AsBytes(b)).ok());
  ASSERT_EQ(Sh("chmod +x true && cp " + kInterp + " ld && chmod +x ld").exit_code, 0);
  WritePolicy("measure func=BPRM_CHECK\n");
  ASSERT_FALSE(StartLimd("--no-tpm --policy " + state_ + "/policy").has_value());
  ASSERT_EQ(Sh("./true").exit_code, 0);
  StopLimd();
  EXPECT_EQ(Count(mnt_ + "/true"), 1);
  EXPECT_EQ(Count(ld), 0);  // not BPRM_CHECK
  WritePolicy("measure func=MMAP_CHECK mask=MAY_EXEC\n");
  ASSERT_FALSE(StartLimd("--no-tpm --policy " + state_ + "/policy").has_value());
  ASSERT_EQ(Sh("./true").exit_code, 0);
  StopLimd();
  EXPECT_EQ(Count(ld), 1);  // MMAP_CHECK
  EXPECT_EQ(Count(mnt_ + "/true"), 1);
}

TEST_F(LimdRoot, SecondLimdOnSameStateRefuses) {
  ASSERT_FALSE(StartLimd().has_value());
  auto r = RunCommand("timeout -k 2 20 " + std::string(LIMD_BIN) + " --no-tpm --foreground --state " + state_ +
                      " --watch " + mnt_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("another limd"), std::string::npos) << r.err;
}

TEST_F(LimdRoot, RefusesBadWatchRoots) {
  ASSERT_EQ(Sh("mkdir d").exit_code, 0);
  std::string base = "timeout -k 2 20 " + std::string(LIMD_BIN) + " --no-tpm --foreground --state " + state_;
  auto sub = RunCommand(base + " --watch " + mnt_ + "/d");
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_NE(sub.err.find("not a mount root"), std::string::npos) << sub.err;
  auto root = RunCommand(base + " --watch /");
  EXPECT_EQ(root.exit_code, 2);
  EXPECT_NE(root.err.find("--allow-root-fs"), std::string::npos) << root.err;
  auto proc = RunCommand(base + " --watch /proc --allow-root-fs");
  EXPECT_EQ(proc.exit_code, 2);
  EXPECT_NE(proc.err.find("proc is not a filesystem limd marks"), std::string::npos) << proc.err;
}

TEST_F(LimdRoot, KillNineThenRestartKeepsChain) {
  ASSERT_EQ(Sh("cp /bin/true ./true && cp /bin/echo ./echo").exit_code, 0);
  ASSERT_FALSE(StartLimd("--tpm " + tpm::testing::SwtpmTctiForTests()).has_value());
  ASSERT_EQ(Sh("./true").exit_code, 0);
  StopLimd(SIGKILL);
  ASSERT_FALSE(StartLimd("--tpm " + tpm::testing::SwtpmTctiForTests()).has_value());
  ASSERT_EQ(Sh("./true; ./echo x").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/true"), 1);  // no duplicate across the restart
  EXPECT_EQ(Count(mnt_ + "/echo"), 1);
  EXPECT_EQ(Count("lim-start"), 2);
  StopLimd();
  // Verify against the swtpm's PCRs read after limd let go of it.
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto pcrs = (*t)->ReadPcrs(*tpm::FullSelection(**t, {10}));
  ASSERT_TRUE(pcrs.ok());
  ASSERT_TRUE(WriteFileBytes(state_ + "/tpm_pcrs.json", AsBytes(tpm::PcrValuesToJson(*pcrs))).ok());
  t->reset();
  auto r = RunCommand(lim::testing::LimBinary() + " verify " + List() + " --pcrs " + state_ + "/tpm_pcrs.json");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // evmctl agrees, with PCRs read by tpm2_pcrread (one bank at a time: evmctl 1.4 decides on
  // the last bank it compared).
  auto read = tpm::testing::Tpm2Tools("tpm2_pcrread sha1:0,1,2,3,4,5,6,7,8,9,10+sha256:0,1,2,3,4,5,6,7,8,9,10");
  ASSERT_EQ(read.exit_code, 0) << read.err;
  tpm::PcrValues tv = tpm::testing::ParseTpm2PcrRead(read.out);
  for (auto [alg, name, size] : {std::tuple<uint16_t, const char*, size_t>{0x4, "sha1", 20}, {0xb, "sha256", 32}}) {
    std::string text;
    for (int i = 0; i < 24; ++i) {
      std::string head = std::string("PCR-") + (i < 10 ? "0" : "") + std::to_string(i) + ": ";
      text += head + (tv[alg].count(i) ? ToHex(tv[alg][i]) : std::string(size * 2, '0')) + "\n";
    }
    ASSERT_TRUE(WriteFileBytes(state_ + "/evm_" + name, AsBytes(text)).ok());
  }
  std::string pcr_args = " --pcrs sha1," + state_ + "/evm_sha1 --pcrs sha256," + state_ + "/evm_sha256 ";
  for (const char* bank : {"sha1", "sha256"}) {
    auto evm = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=" + std::string(bank) + pcr_args +
                          List());
    EXPECT_EQ(evm.exit_code, 0) << bank << ": " << evm.out << evm.err;
  }
}

TEST_F(LimdRoot, StartScanMeasuresWhatRunsAndSeedsWriters) {
  ASSERT_EQ(Sh("cp /bin/sleep ./sleep && echo w > w").exit_code, 0);
  // Started before limd: a program from the mount, and a writer holding w open.
  pid_t runner = fork();
  if (runner == 0) {
    execl("/bin/sh", "sh", "-c", ("exec 5>>" + mnt_ + "/w; exec " + mnt_ + "/sleep 20").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100; ++i) {  // wait until the exec happened
    auto exe = RunCommand("readlink /proc/" + std::to_string(runner) + "/exe");
    if (exe.out.find("/sleep") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  WritePolicy("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n");
  ASSERT_FALSE(StartLimd("--no-tpm --policy " + state_ + "/policy").has_value());
  EXPECT_EQ(Count(mnt_ + "/sleep"), 1);  // measured at start, not exec'd again
  ASSERT_EQ(Sh("cat w >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/w", true), 1);  // the seeded writer: open_writers
  ::kill(runner, SIGKILL);
  int st;
  waitpid(runner, &st, 0);
  StopLimd();
  ExpectVerifies();
}

TEST_F(LimdRoot, StatusFileAndStorm) {
  ASSERT_EQ(Sh("cp /bin/true ./true").exit_code, 0);
  ASSERT_FALSE(StartLimd().has_value());
  // 8 processes spawning a binary from the mount for 3 s: every spawn must complete.
  auto r = Sh("end=$(($(date +%s)+3)); for p in 1 2 3 4 5 6 7 8; do (n=0; while [ $(date +%s) -lt $end ]; do "
              "./true || exit 1; n=$((n+1)); done; echo $n > count.$p) & done; wait; cat count.* | wc -l");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "8\n");
  auto st = RunCommand(lim::testing::LimBinary() + " status --state " + state_);
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_NE(st.out.find("limd: running (pid " + std::to_string(limd_) + ")"), std::string::npos) << st.out;
  StopLimd();
  auto status = ReadFileText(state_ + "/status.json");
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->find("\"reply_errors\": 0"), std::string::npos) << *status;
  EXPECT_NE(status->find("\"overflows\": 0"), std::string::npos) << *status;
  EXPECT_NE(status->find("\"timeouts\": 0"), std::string::npos) << *status;
  EXPECT_NE(status->find("\"tpm\": \"software\""), std::string::npos) << *status;
  EXPECT_EQ(Count(mnt_ + "/true"), 1);
  ExpectVerifies();
}

// kill -9 at random moments under load, restart: every access answered before the kill has
// its entry, the chain matches the TPM, no duplicates for unchanged files.
TEST_F(LimdRoot, KillNineUnderLoadLosesNothingAnswered) {
  WritePolicy("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n");
  ASSERT_EQ(Sh("cp /bin/true ./true").exit_code, 0);
  // PCR 11: the test process's swtpm is shared with the other swtpm test (PCR 10).
  std::string tpm_flag = "--pcr 11 --tpm " + tpm::testing::SwtpmTctiForTests() + " --policy " + state_ + "/policy";
  std::srand(static_cast<unsigned>(::getpid()));
  constexpr int kRounds = 6;
  std::vector<double> kill_times;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_FALSE(StartLimd(tpm_flag).has_value()) << *ReadFileText(state_ + "/stderr");
    std::string load = "cd " + mnt_ + "; i=" + std::to_string(round * 100000) +
                       "; while :; do echo $i > f.$i; cat f.$i >/dev/null && echo \"$i $EPOCHREALTIME\" >> " + state_ +
                       "/done." + std::to_string(round) + "; ./true; i=$((i+1)); done";
    pid_t gen = fork();
    if (gen == 0) {
      execl("/bin/bash", "bash", "-c", load.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + std::rand() % 300));
    kill_times.push_back(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    StopLimd(SIGKILL);
    ::kill(gen, SIGKILL);
    int st;
    waitpid(gen, &st, 0);
  }
  ASSERT_FALSE(StartLimd(tpm_flag).has_value()) << *ReadFileText(state_ + "/stderr");
  StopLimd();
  std::map<std::string, int> seen;
  for (const auto& r : Rows()) {
    if (!r.violation) seen[r.name]++;
  }
  int answered = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto done = ReadFileText(state_ + "/done." + std::to_string(round));
    if (!done.ok()) continue;
    std::istringstream in(*done);
    long i;
    double t;
    while (in >> i >> t) {
      if (t >= kill_times[round]) continue;  // returned after the kill: not limd's answer
      ++answered;
      EXPECT_EQ(seen[mnt_ + "/f." + std::to_string(i)], 1) << "round " << round << " file " << i;
    }
  }
  EXPECT_GT(answered, kRounds);  // the load did run
  EXPECT_EQ(seen[mnt_ + "/true"], 1);  // unchanged: once across all restarts
  EXPECT_EQ(seen["lim-start"], kRounds + 1);
  for (const auto& [name, n] : seen) {
    if (name != "lim-start" && name != "lim-recovered" && name != "lim-policy-update") {
      EXPECT_EQ(n, 1) << name;
    }
  }
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto pcrs = (*t)->ReadPcrs(*tpm::FullSelection(**t, {11}));
  ASSERT_TRUE(pcrs.ok());
  ASSERT_TRUE(WriteFileBytes(state_ + "/tpm_pcrs.json", AsBytes(tpm::PcrValuesToJson(*pcrs))).ok());
  t->reset();
  auto r = RunCommand(lim::testing::LimBinary() + " verify " + List() + " --pcrs " + state_ + "/tpm_pcrs.json");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

class LimdRootExt4 : public LimdRoot {
 protected:
  LimdRootExt4() { ext4_ = true; }
};

TEST_F(LimdRootExt4, ExecReadsXattrAlgorithmAndRewrite) {
  WritePolicy("measure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=BPRM_CHECK mask=MAY_EXEC\n");
  ASSERT_EQ(Sh("cp /bin/true ./true && echo one > f && echo sig > s").exit_code, 0);
  // security.ima type 0x04 naming sha512 (kernel id 6): the file is hashed with sha512.
  ASSERT_EQ(Sh("setfattr -n security.ima -v 0x0406" + std::string(128, 'a') + " s").exit_code, 0);
  ASSERT_FALSE(StartLimd("--no-tpm --policy " + state_ + "/policy").has_value());
  ASSERT_EQ(Sh("./true && cat f s >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/true"), 1);
  EXPECT_EQ(Count(mnt_ + "/f"), 1);
  for (const auto& r : Rows()) {
    if (r.name == mnt_ + "/s") {
      EXPECT_EQ(r.algo, "sha512");
      EXPECT_EQ(r.digest, *Digest(*HashAlgoByName("sha512"), AsBytes("sig\n")));
    }
    if (r.name == mnt_ + "/true") {
      EXPECT_EQ(r.digest, Sha256Of("/bin/true"));
    }
  }
  EXPECT_EQ(Count(mnt_ + "/s"), 1);
  // A change through a shared writable mapping is seen after the last writer closes.
  ASSERT_EQ(Sh("/usr/bin/python3 -c \"import mmap,os; fd=os.open('f', os.O_RDWR); m=mmap.mmap(fd, 4); m[0:3]=b'ONE'; "
               "m.close(); os.close(fd)\" && sleep 0.01 && cat f >/dev/null")
                .exit_code,
            0);
  EXPECT_EQ(Count(mnt_ + "/f"), 2);
  EXPECT_EQ(Rows().back().digest, *Digest(Sha256Algo(), AsBytes("ONE\n")));
  StopLimd();
  ExpectVerifies();
}

}  // namespace
}  // namespace lim::daemon
