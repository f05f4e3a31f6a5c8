// Root tests of the securityfs view (docs/securityfs.md): limd (software bank) on a fresh
// tmpfs of the test, under `timeout -k 2 30`, stopped by its own pid, its view mounted on a
// directory of the test. Checks the view against the store and `lim log`, the counters, the
// violation path, the policy file's write semantics, evmctl on the view, and the mount's
// life cycle. Skipped when not root, without fanotify permission events or /dev/fuse.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/file.h"
#include "crypto/pcr_set.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "daemon/securityfs_view.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

std::string Unavailable() {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (why.empty() && ::access("/dev/fuse", R_OK | W_OK) != 0) why = "no /dev/fuse";
  return why;
}

bool IsFuseMount(const std::string& dir) {
  struct statfs s;
  return ::statfs(dir.c_str(), &s) == 0 && static_cast<uint64_t>(s.f_type) == kFuseSuperMagic;
}

class SecurityfsRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = Unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    view_ = lim::testing::MakeTempDir() + "/securityfs";
    ASSERT_EQ(mounts_.AddTmpfs(&mnt_, "size=32m"), "");
  }
  void TearDown() override {
    Stop();
    if (IsFuseMount(view_)) ::umount2(view_.c_str(), MNT_DETACH);  // limd's view (the tmpfs goes after)
  }
  void Start(const std::string& extra = "") {
    std::string cmd = std::string(LIMD_BIN) + " --no-tpm --state " + ShellQuote(state_) +
                      " --watch " + ShellQuote(mnt_) + " --securityfs " + ShellQuote(view_) +
                      " --boot-log none --log-file " + ShellQuote(state_ + "/log") + " " + extra + " 2>>" +
                      ShellQuote(state_ + "/stderr");
    auto exited = limd_.Start(cmd, state_);
    if (!exited) return;
    auto err = ReadFileText(state_ + "/stderr");
    FAIL() << "limd did not become ready (" << *exited << "): " << (err.ok() ? *err : "");
  }
  void Stop(int sig = SIGTERM) { limd_.Stop(sig); }
  std::string Ima(const std::string& name) { return view_ + "/ima/" + name; }
  std::string Read(const std::string& path) {
    auto b = ReadFileText(path);
    EXPECT_TRUE(b.ok()) << b.status().message();
    return b.ok() ? *b : "";
  }
  std::string List() { return state_ + "/binary_runtime_measurements"; }
  std::vector<testing::ListRow> Rows() { return testing::ReadListRows(List()); }
  int Count(const std::string& name) {
    int n = 0;
    for (const auto& r : Rows()) n += r.name == name ? 1 : 0;
    return n;
  }
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line); }
  std::string LimLog(const std::string& args) {
    auto r = RunCommand(lim::testing::LimBinary() + " log " + List() + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  void WritePolicyFile(const std::string& text) {
    ASSERT_TRUE(WriteFileBytes(state_ + "/policy.txt", AsBytes(text)).ok());
  }

  std::string mnt_, state_, view_;
  testing::ScratchMounts mounts_;
  testing::LimdChild limd_;  // declared after the mounts: stopped before they go
};

constexpr const char* kReadPolicy = "measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n";

TEST_F(SecurityfsRoot, TreeModesAndLinksAreTheKernels) {
  Start();
  ASSERT_TRUE(IsFuseMount(view_));
  char buf[256];
  ssize_t n = ::readlink((view_ + "/ima").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "integrity/ima");
  n = ::readlink(Ima("binary_runtime_measurements").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "binary_runtime_measurements_sha1");
  n = ::readlink(Ima("ascii_runtime_measurements").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "ascii_runtime_measurements_sha1");
  // The software bank has sha1 and sha256: one pair each (kernel >= 6.10 naming).
  for (const char* f : {"ascii_runtime_measurements_sha1", "binary_runtime_measurements_sha1",
                        "ascii_runtime_measurements_sha256", "binary_runtime_measurements_sha256",
                        "runtime_measurements_count", "violations"}) {
    struct stat st;
    ASSERT_EQ(::stat(Ima(f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 07777, 0440u) << f;
    EXPECT_EQ(st.st_size, 0) << f;  // unknown, as on securityfs
    EXPECT_EQ(st.st_uid, 0u);
  }
  struct stat st;
  ASSERT_EQ(::stat(Ima("policy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(::access(Ima("ascii_runtime_measurements_sha384").c_str(), F_OK), 0);
  EXPECT_NE(::access((view_ + "/tpm0").c_str(), F_OK), 0);  // --boot-log none
  // Lists are read-only even for root.
  EXPECT_LT(::open(Ima("binary_runtime_measurements_sha1").c_str(), O_WRONLY), 0);
  EXPECT_EQ(errno, EACCES);
}

TEST_F(SecurityfsRoot, ListsEqualStoreAndLimLogAndReadingAddsNothing) {
  ASSERT_EQ(Sh("cp /bin/true ./true && echo data > f").exit_code, 0);
  WritePolicyFile(kReadPolicy);
  Start("--policy " + state_ + "/policy.txt");
  ASSERT_EQ(Sh("./true && cat f && exec 3>f && cat f").exit_code, 0);  // with a violation
  size_t before = Rows().size();
  ASSERT_GE(before, 6u);
  std::string bin = Read(Ima("binary_runtime_measurements"));
  auto store = ReadFileBytes(List());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(bin, std::string(store->begin(), store->end()));
  EXPECT_EQ(Read(Ima("ascii_runtime_measurements")), LimLog("--format ascii"));
  EXPECT_EQ(Read(Ima("ascii_runtime_measurements_sha256")), LimLog("--format ascii --bank sha256"));
  EXPECT_EQ(Read(Ima("binary_runtime_measurements_sha256")), LimLog("--format binary --bank sha256"));
  EXPECT_EQ(Read(Ima("runtime_measurements_count")), std::to_string(before) + "\n");
  EXPECT_EQ(Read(Ima("violations")), "1\n");
  // Random access (the rendering is produced while reading): forwards, then back to 0.
  std::string full = LimLog("--format ascii --bank sha256");
  ASSERT_GT(full.size(), 300u);
  int fd = ::open(Ima("ascii_runtime_measurements_sha256").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  for (size_t at : {size_t{200}, full.size() - 50, size_t{0}, size_t{100}, full.size() + 10}) {
    char buf[100];
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(at));
    ASSERT_GE(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), at < full.size() ? full.substr(at, 100) : "") << at;
  }
  ::close(fd);
  // Reading the view (and its policy) added no entry.
  (void)Read(Ima("policy"));
  EXPECT_EQ(Rows().size(), before);
  EXPECT_EQ(Read(Ima("runtime_measurements_count")), std::to_string(before) + "\n");
}

TEST_F(SecurityfsRoot, ReadsWhileLimdMeasuresNeverTearOrHang) {
  WritePolicyFile(kReadPolicy);
  Start("--policy " + state_ + "/policy.txt");
  // A writer creates and reads new files (each one an entry) while root reads the view.
  auto r = RunCommand("cd " + ShellQuote(mnt_) +
                      " && timeout 20 sh -c 'for i in $(seq 1 150); do echo $i > f$i; cat f$i >/dev/null; done' & "
                      "for i in $(seq 1 40); do timeout 10 cat " +
                      ShellQuote(Ima("binary_runtime_measurements")) + " > " + ShellQuote(state_ + "/snap") +
                      " && " + lim::testing::LimBinary() + " log " + ShellQuote(state_ + "/snap") +
                      " >/dev/null || exit 1; timeout 10 cat " + ShellQuote(Ima("ascii_runtime_measurements_sha256")) +
                      " >/dev/null || exit 1; done; wait");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;  // every snapshot decodes: whole records only
  EXPECT_EQ(Count(mnt_ + "/f150"), 1);
}

TEST_F(SecurityfsRoot, ViolationCountsAndAddsZeroDigestEntry) {
  ASSERT_EQ(Sh("echo data > f").exit_code, 0);
  WritePolicyFile(kReadPolicy);
  Start("--policy " + state_ + "/policy.txt");
  EXPECT_EQ(Read(Ima("violations")), "0\n");
  // open_writers: read while a writer is open; ToMToU: open for write while a reader is.
  ASSERT_EQ(Sh("exec 3>>f; cat f >/dev/null; exec 3>&-").exit_code, 0);
  EXPECT_EQ(Read(Ima("violations")), "1\n");
  ASSERT_EQ(Sh("echo other > g; (exec 4<g; sleep 0.3) & sleep 0.1; echo x >> g; wait").exit_code, 0);
  EXPECT_EQ(Read(Ima("violations")), "2\n");
  std::string ascii = Read(Ima("ascii_runtime_measurements"));
  EXPECT_NE(ascii.find("10 " + std::string(40, '0') + " ima-ng sha256:" + std::string(64, '0') + " " + mnt_ + "/f\n"),
            std::string::npos)
      << ascii;
  EXPECT_NE(ascii.find(std::string(40, '0') + " ima-ng sha256:" + std::string(64, '0') + " " + mnt_ + "/g\n"),
            std::string::npos);
  std::string ascii256 = Read(Ima("ascii_runtime_measurements_sha256"));
  EXPECT_NE(ascii256.find("10 " + std::string(64, '0') + " ima-ng"), std::string::npos);  // zeros in every bank
}

TEST_F(SecurityfsRoot, PolicyWritesReplaceThenAppendAndAreLiveAfterClose) {
  ASSERT_EQ(Sh("echo data > f && echo more > g").exit_code, 0);
  Start();  // built-in tcb: tmpfs reads are not measured
  std::string builtin = Read(Ima("policy"));
  ASSERT_NE(builtin.find("dont_measure func=FILE_CHECK fsmagic=0x1021994"), std::string::npos) << builtin;
  ASSERT_EQ(Sh("cat f").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/f"), 0);
  int updates = Count("lim-policy-update");

  // One writer at a time.
  int w1 = ::open(Ima("policy").c_str(), O_WRONLY);
  ASSERT_GE(w1, 0) << strerror(errno);
  errno = 0;
  EXPECT_LT(::open(Ima("policy").c_str(), O_WRONLY), 0);
  EXPECT_EQ(errno, EBUSY);
  // A bad rule fails its write(); the batch (with the good rule before it) loads nothing.
  std::string good = "measure func=FILE_CHECK mask=MAY_READ\n";
  EXPECT_EQ(::write(w1, good.data(), good.size()), static_cast<ssize_t>(good.size()));
  std::string bad = "measure func=NO_SUCH_HOOK\n";
  errno = 0;
  EXPECT_EQ(::write(w1, bad.data(), bad.size()), -1);
  EXPECT_EQ(errno, EINVAL);
  ::close(w1);
  EXPECT_EQ(Read(Ima("policy")), builtin);
  EXPECT_EQ(Count("lim-policy-update"), updates);

  // The first written policy replaces the built-in one, live when close() returns.
  int w = ::open(Ima("policy").c_str(), O_WRONLY | O_TRUNC);  // O_TRUNC accepted, ignored
  ASSERT_GE(w, 0) << strerror(errno);
  ASSERT_EQ(::write(w, good.data(), good.size()), static_cast<ssize_t>(good.size()));
  ASSERT_EQ(::close(w), 0) << strerror(errno);
  EXPECT_EQ(Read(Ima("policy")), "measure func=FILE_CHECK mask=MAY_READ \n");
  ASSERT_EQ(Sh("cat f").exit_code, 0);
  EXPECT_EQ(Count(mnt_ + "/f"), 1);
  EXPECT_EQ(Count("lim-policy-update"), updates + 1);
  auto rows = Rows();
  bool exact = false;
  for (const auto& r : rows) {
    exact = exact || (r.name == "lim-policy-update" && std::string(r.extra.begin(), r.extra.end()) == good);
  }
  EXPECT_TRUE(exact) << "the entry holds the exact bytes written";

  // Later writes append (echo: O_TRUNC through the shell).
  ASSERT_EQ(RunCommand("echo 'dont_measure fowner=1234' > " + ShellQuote(Ima("policy"))).exit_code, 0);
  EXPECT_EQ(Read(Ima("policy")), "measure func=FILE_CHECK mask=MAY_READ \ndont_measure fowner=1234 \n");
  // A path loads that file (as systemd does) and appends it too; a missing file fails.
  WritePolicyFile("measure func=BPRM_CHECK\n");
  ASSERT_EQ(RunCommand("echo " + state_ + "/policy.txt > " + ShellQuote(Ima("policy"))).exit_code, 0);
  EXPECT_EQ(Read(Ima("policy")),
            "measure func=FILE_CHECK mask=MAY_READ \ndont_measure fowner=1234 \nmeasure func=BPRM_CHECK \n");
  EXPECT_EQ(Count("lim-policy-update"), updates + 3);
  auto missing = RunCommand("echo /nonexistent/policy > " + ShellQuote(Ima("policy")));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(Count("lim-policy-update"), updates + 3);
}

// Issue 18 items 5 and 11 through the FUSE view: a policy path naming a FIFO (or a device)
// fails its write with the kernel's EINVAL at once (it used to leave the writer in D state
// and every later writer with EBUSY); a write of only a blank line or comments succeeds
// and changes nothing; a multi-line write is taken one line per write() (short writes the
// writer loops on), as the kernel does.
TEST_F(SecurityfsRoot, PolicyPathToFifoFailsAtOnceAndEmptyWritesChangeNothing) {
  Start();
  std::string builtin = Read(Ima("policy"));
  int updates = Count("lim-policy-update");
  std::string fifo = state_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << strerror(errno);
  std::string policy = ShellQuote(Ima("policy"));
  for (const std::string& path : {fifo, std::string("/dev/zero"), state_}) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = RunCommand("timeout -k 1 10 bash -c 'echo " + path + " > " + Ima("policy") + "'");  // bash names the errno
    EXPECT_EQ(r.exit_code, 1) << path << ": " << r.err;  // not 124: timeout did not fire
    EXPECT_NE(r.err.find("Invalid argument"), std::string::npos) << path << ": " << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << path;
  }
  for (const char* empty : {"echo '' > ", "printf '# only a comment\\n\\n' > "}) {
    auto r = RunCommand(std::string(empty) + policy);
    EXPECT_EQ(r.exit_code, 0) << empty << ": " << r.err;
  }
  EXPECT_EQ(Read(Ima("policy")), builtin);
  EXPECT_EQ(Count("lim-policy-update"), updates);
  // The writer slot is free, and a valid multi-line write loads every line.
  auto ok = RunCommand("printf 'measure func=BPRM_CHECK\\n# c\\ndont_measure fowner=7\\n' > " + policy);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(Read(Ima("policy")), "measure func=BPRM_CHECK \ndont_measure fowner=7 \n");
  EXPECT_EQ(Count("lim-policy-update"), updates + 1);
}

TEST_F(SecurityfsRoot, PolicyFileFromFlagCountsAsFirstAndPolicyCheckRecordsFiles) {
  WritePolicyFile("measure func=POLICY_CHECK\nmeasure func=BPRM_CHECK\n");
  Start("--policy " + state_ + "/policy.txt");
  EXPECT_EQ(Count(state_ + "/policy.txt"), 1);  // POLICY_CHECK at start
  std::string more = state_ + "/more.txt";
  ASSERT_TRUE(WriteFileBytes(more, AsBytes("measure func=FILE_CHECK mask=MAY_READ\n")).ok());
  int updates = Count("lim-policy-update");
  ASSERT_EQ(RunCommand("echo " + more + " > " + ShellQuote(Ima("policy"))).exit_code, 0);
  // Appended to --policy's rules, and measured as POLICY_CHECK (a rule asks), not as text.
  EXPECT_EQ(Read(Ima("policy")),
            "measure func=POLICY_CHECK \nmeasure func=BPRM_CHECK \nmeasure func=FILE_CHECK mask=MAY_READ \n");
  EXPECT_EQ(Count(more), 1);
  EXPECT_EQ(Count("lim-policy-update"), updates);
}

TEST_F(SecurityfsRoot, EvmctlVerifiesTheViewsBinaryList) {
  ASSERT_EQ(Sh("cp /bin/true ./true && echo data > f").exit_code, 0);
  WritePolicyFile(kReadPolicy);
  Start("--policy " + state_ + "/policy.txt");
  ASSERT_EQ(Sh("./true && cat f && exec 3>>f && cat f").exit_code, 0);
  auto pcrs = PcrSet::Load(state_ + "/software_pcrs.json");
  ASSERT_TRUE(pcrs.ok()) << pcrs.status().message();
  for (const char* bank : {"sha1", "sha256"}) {
    ASSERT_TRUE(WriteFileBytes(state_ + "/evm_" + bank, AsBytes(pcrs->ToEvmctlText(bank))).ok());
  }
  std::string pcr_args = " --pcrs sha1," + state_ + "/evm_sha1 --pcrs sha256," + state_ + "/evm_sha256 ";
  for (const char* bank : {"sha1", "sha256"}) {
    auto evm = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=" + std::string(bank) + pcr_args +
                          Ima("binary_runtime_measurements"));
    EXPECT_EQ(evm.exit_code, 0) << bank << ": " << evm.out << evm.err;
  }
}

TEST_F(SecurityfsRoot, NamespaceScriptShowsTheViewAtSysKernelSecurity) {
  Start();
  std::string script = lim::testing::SourcePath("scripts/securityfs-ns.sh");
  std::string outside = RunCommand("ls -A /sys/kernel/security").out;
  auto r = RunCommand("timeout 20 " + script + " --view " + view_ +
                      " -- sh -c 'cat /sys/kernel/security/ima/runtime_measurements_count; "
                      "readlink /sys/kernel/security/ima/binary_runtime_measurements'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Read(Ima("runtime_measurements_count")) + "binary_runtime_measurements_sha1\n");
  EXPECT_EQ(RunCommand("ls -A /sys/kernel/security").out, outside);  // private namespace only
  // With securityfs mounted (here in a namespace of the test's own), its entries stay.
  auto with = RunCommand("timeout 20 unshare --mount --propagation private sh -c "
                         "'mount -t securityfs securityfs /sys/kernel/security && " +
                         script + " --view " + view_ +
                         " -- sh -c \"ls -A /sys/kernel/security; cat /sys/kernel/security/ima/violations\"'");
  if (with.err.find("mount") != std::string::npos && with.exit_code != 0) {
    GTEST_SKIP() << "cannot mount securityfs in a namespace: " << with.err;
  }
  ASSERT_EQ(with.exit_code, 0) << with.err;
  EXPECT_NE(with.out.find("lsm\n"), std::string::npos) << with.out;  // passed through
  EXPECT_NE(with.out.find("integrity\n"), std::string::npos) << with.out;
  EXPECT_NE(with.out.find("ima\n"), std::string::npos) << with.out;
  EXPECT_NE(with.out.find(Read(Ima("violations"))), std::string::npos) << with.out;
  EXPECT_EQ(RunCommand("ls -A /sys/kernel/security").out, outside);
}

TEST_F(SecurityfsRoot, UnmountsOnExitRecoversStaleMountAndRefusesASecondView) {
  Start();
  ASSERT_TRUE(IsFuseMount(view_));
  // A second limd (other state) cannot take a live view's place.
  std::string other = lim::testing::MakeTempDir();
  auto second = RunCommand("timeout -k 2 10 " + std::string(LIMD_BIN) + " --no-tpm --state " + other + " --watch " +
                           mnt_ + " --securityfs " + view_ + " --log-file " + other + "/log");
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.err.find("already a FUSE mount"), std::string::npos) << second.err;
  EXPECT_TRUE(IsFuseMount(view_));
  // A crashed limd leaves a dead mount; the next start detaches it and mounts again.
  Stop(SIGKILL);
  struct statfs sfs;  // statfs always asks the server (stat may answer from the attr cache)
  EXPECT_NE(::statfs(view_.c_str(), &sfs), 0);
  EXPECT_EQ(errno, ENOTCONN);
  Start();
  EXPECT_EQ(Read(Ima("runtime_measurements_count")), std::to_string(Rows().size()) + "\n");
  // A clean stop unmounts.
  Stop();
  EXPECT_FALSE(IsFuseMount(view_));
}

}  // namespace
}  // namespace lim::daemon
