// Root tests of pre-content events (FAN_PRE_ACCESS, exact MMAP_CHECK) and of the start scan's
// writer seeding from shared writable mappings. Each test has its own loop-mounted ext4
// (pre-content) and its own tmpfs (no pre-content: ELF-at-open), limd watching both under
// `timeout -k 2 40`, stopped by its own PID; both mounts are unmounted after it. Skipped
// when not root or when the kernel has no pre-content events (< 6.14).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/file.h"
#include "crypto/digest.h"
#include "daemon/fanotify_uapi.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

constexpr char kLib[] = "/lib/x86_64-linux-gnu/libz.so.1";
constexpr char kPolicyMmapOnly[] = "measure func=MMAP_CHECK mask=MAY_EXEC\nmeasure func=BPRM_CHECK mask=MAY_EXEC\n";

// Maps FILE with PROT (read or exec) in a fresh python3 (python3 lives on /, not on the mounts).
std::string MapCmd(const std::string& file, bool exec) {
  return "/usr/bin/python3 -c \"import mmap,os; fd=os.open('" + file + "', os.O_RDONLY); m=mmap.mmap(fd, 0, "
         "flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ" + std::string(exec ? "|mmap.PROT_EXEC" : "") +
         "); print(len(m))\"";
}

class LimdPreContent : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_PRE_CONTENT);
    if (why.empty()) why = mounts_.AddExt4(&ext4_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    ASSERT_EQ(::chmod(ext4_.c_str(), 0755), 0);
    ASSERT_EQ(mounts_.AddTmpfs(&tmpfs_, "size=64m,mode=755"), "");
  }
  void TearDown() override { StopLimd(); }
  // Watches both mounts, or only `watch` when given.
  void StartLimd(const std::string& policy, const std::string& watch = "") {
    ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes(policy)).ok());
    auto rc = limd_.Start(std::string(LIMD_BIN) + " --foreground --securityfs none --no-tpm --state " +
                              ShellQuote(state_) + " " +
                              (watch.empty() ? "--watch " + ShellQuote(ext4_) + " --watch " + ShellQuote(tmpfs_) : watch) +
                              " --policy " +
                              ShellQuote(state_ + "/policy") + " --log-file " + ShellQuote(state_ + "/log") + " 2>>" +
                              ShellQuote(state_ + "/stderr"),
                          state_, 40);
    auto err = ReadFileText(state_ + "/stderr");
    ASSERT_FALSE(rc.has_value()) << "limd did not become ready: " << (err.ok() ? *err : std::string());
  }
  // Stops limd by its own pid (never the timeout wrapper's) and returns its final status.json.
  nlohmann::json StopLimd() {
    limd_.Stop();
    auto text = ReadFileText(state_ + "/status.json");
    return text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  }
  lim::testing::CommandResult Sh(const std::string& line) { return RunCommand("timeout 30 sh -c " + ShellQuote(line)); }
  int Count(const std::string& name, bool violation = false) {
    int n = 0;
    for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
      n += (r.name == name && r.violation == violation) ? 1 : 0;
    }
    return n;
  }
  std::vector<Bytes> Digests(const std::string& name) {
    std::vector<Bytes> out;
    for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
      if (r.name == name && !r.violation) out.push_back(r.digest);
    }
    return out;
  }
  // Shell: wait (at most 5 s) until limd's status.json counts `marks` filesystem marks.
  std::string WaitMarks(int marks) {
    return "for i in $(seq 50); do grep -q '\"marks\": " + std::to_string(marks) + ",' " + state_ +
           "/status.json && break; sleep 0.1; done";
  }
  Bytes Sha256Of(const std::string& path) { return *Digest(Sha256Algo(), *ReadFileBytes(path)); }

  std::string ext4_, tmpfs_, state_;
  testing::ScratchMounts mounts_;
  testing::LimdChild limd_;  // declared after the mounts: stopped before they go
};

// dlopen (ld.so maps the text segment PROT_EXEC) and a plain mmap(PROT_EXEC) on ext4 are
// MMAP_CHECK with the exact sha256, through the pre-content event: the policy has no
// FILE_CHECK, and the library is never exec'd.
TEST_F(LimdPreContent, ExecMappingOnExt4IsMmapCheck) {
  ASSERT_EQ(Sh("cp " + std::string(kLib) + " " + ext4_ + "/libz.so && cp /bin/true " + ext4_ + "/elf").exit_code, 0);
  StartLimd(kPolicyMmapOnly);
  auto r = Sh("/usr/bin/python3 -c \"import ctypes; ctypes.CDLL('" + ext4_ + "/libz.so')\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Count(ext4_ + "/libz.so"), 1);  // before dlopen returned
  EXPECT_EQ(Digests(ext4_ + "/libz.so")[0], Sha256Of(kLib));
  ASSERT_EQ(Sh(MapCmd(ext4_ + "/elf", true)).exit_code, 0);
  ASSERT_EQ(Count(ext4_ + "/elf"), 1);
  EXPECT_EQ(Digests(ext4_ + "/elf")[0], Sha256Of("/bin/true"));
  auto status = StopLimd();
  EXPECT_EQ(status["precontent_marks"], 1) << status.dump();  // ext4 yes, tmpfs no
  EXPECT_EQ(status["marks"], 2);
  EXPECT_EQ(status["reply_errors"], 0);
  EXPECT_EQ(status["timeouts"], 0);
}

// A PROT_READ mapping and plain reads of an ELF file are not MMAP_CHECK on ext4, while
// tmpfs (no pre-content) keeps the ELF-at-open approximation for the same reads.
TEST_F(LimdPreContent, ReadsAndReadMappingsAreNotMmapCheckOnExt4) {
  ASSERT_EQ(Sh("cp /bin/true " + ext4_ + "/elf && cp /bin/true " + tmpfs_ + "/elf").exit_code, 0);
  StartLimd(kPolicyMmapOnly);
  ASSERT_EQ(Sh(MapCmd(ext4_ + "/elf", false)).exit_code, 0);
  ASSERT_EQ(Sh("su nobody -s /bin/sh -c 'cat " + ext4_ + "/elf " + tmpfs_ + "/elf >/dev/null'").exit_code, 0);
  ASSERT_EQ(Sh("cat " + ext4_ + "/elf >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(ext4_ + "/elf"), 0);
  EXPECT_EQ(Count(tmpfs_ + "/elf"), 1);  // ELF-at-open on tmpfs
  auto status = StopLimd();
  EXPECT_GE(status["precontent_quick"], 3) << status.dump();  // the mmap and the reads passed at once
}

// Once measured, an inode carries an ignore mark: reading it takes no round trip. An
// unmeasured file of the same size does (256 reads of 4 KiB each).
TEST_F(LimdPreContent, MeasuredInodeIsIgnoredByPreContent) {
  ASSERT_EQ(Sh("head -c 1048576 /dev/urandom > " + ext4_ + "/m && head -c 1048576 /dev/urandom > " + ext4_ + "/u")
                .exit_code,
            0);
  StartLimd(kPolicyMmapOnly);
  ASSERT_EQ(Sh("dd if=" + ext4_ + "/u of=/dev/null bs=4k").exit_code, 0);
  ASSERT_EQ(Sh(MapCmd(ext4_ + "/m", true)).exit_code, 0);
  ASSERT_EQ(Count(ext4_ + "/m"), 1);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Sh("dd if=" + ext4_ + "/m of=/dev/null bs=4k").exit_code, 0);
  ASSERT_EQ(Sh(MapCmd(ext4_ + "/m", true)).exit_code, 0);  // ignored too: still one entry
  EXPECT_EQ(Count(ext4_ + "/m"), 1);
  auto status = StopLimd();
  uint64_t events = status["precontent_events"];
  EXPECT_GE(events, 256u) << status.dump();       // the unmeasured file: every read
  EXPECT_LT(events, 256u + 40u) << status.dump();  // the measured one: 768 reads, none seen
  EXPECT_GE(status["ignore_marks_added"], 1);
}

// A rewritten library is measured again at its next PROT_EXEC mapping: the last writer's
// close removes the ignore mark.
TEST_F(LimdPreContent, RewrittenLibraryIsMeasuredAgain) {
  ASSERT_EQ(Sh("cp " + std::string(kLib) + " " + ext4_ + "/lib.so").exit_code, 0);
  StartLimd(kPolicyMmapOnly);
  std::string load = "/usr/bin/python3 -c \"import ctypes; ctypes.CDLL('" + ext4_ + "/lib.so')\"";
  ASSERT_EQ(Sh(load + " && " + load).exit_code, 0);
  EXPECT_EQ(Count(ext4_ + "/lib.so"), 1);
  ASSERT_EQ(Sh("cat /lib/x86_64-linux-gnu/libm.so.6 > " + ext4_ + "/lib.so && " + load).exit_code, 0);
  auto d = Digests(ext4_ + "/lib.so");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], Sha256Of(kLib));
  EXPECT_EQ(d[1], Sha256Of("/lib/x86_64-linux-gnu/libm.so.6"));
  auto status = StopLimd();
  EXPECT_GE(status["ignore_marks_removed"], 1) << status.dump();
}

// Writer state at start also comes from shared writable mappings whose fd is closed: the
// mapping holds the file open for write, so a root read of it is an open_writers violation.
TEST_F(LimdPreContent, StartScanSeedsWritersFromSharedMappings) {
  ASSERT_EQ(Sh("echo data > " + tmpfs_ + "/w").exit_code, 0);
  std::string ready = state_ + "/mapped";
  pid_t holder = fork();
  if (holder == 0) {
    std::string py = "import mmap,os,time; fd=os.open('" + tmpfs_ + "/w', os.O_RDWR); m=mmap.mmap(fd, 4); "
                     "os.close(fd); open('" + ready + "','w').close(); time.sleep(30)";
    execl("/usr/bin/python3", "python3", "-c", py.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200 && ::access(ready.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  StartLimd("measure func=FILE_CHECK mask=MAY_READ\n");
  ASSERT_EQ(Sh("cat " + tmpfs_ + "/w >/dev/null").exit_code, 0);
  EXPECT_EQ(Count(tmpfs_ + "/w", true), 1);  // open_writers: the mapping is a writer
  ::kill(holder, SIGKILL);
  int st;
  waitpid(holder, &st, 0);
  auto status = StopLimd();
  EXPECT_EQ(status["precontent_marks"], 0) << status.dump();  // no MMAP_CHECK rule: no pre-content marks
  auto log = ReadFileText(state_ + "/log");
  EXPECT_NE(log->find("1 from shared writable mappings"), std::string::npos) << *log;
}

}  // namespace
}  // namespace lim::daemon

namespace lim::daemon {
namespace {

// Discovery with --watch: a filesystem mounted below the watched root after limd is ready
// is marked (here a loop ext4, with pre-content), also when it is mounted in another mount
// namespace (unshare -m, private propagation: limd's own namespace never sees it). Only
// test-owned mounts can qualify: they must lie below the test's tmpfs.
TEST_F(LimdPreContent, MarksMountsAttachedLaterAlsoInOtherNamespaces) {
  ASSERT_EQ(Sh("mkdir " + tmpfs_ + "/sub " + tmpfs_ + "/ns").exit_code, 0);
  StartLimd(kPolicyMmapOnly, "--watch " + ShellQuote(tmpfs_));
  std::string sub = tmpfs_ + "/sub";
  auto mk = testing::MountLoopExt4(state_ + "/sub.img", sub);
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  mounts_.Adopt(sub);  // unmounted before the tmpfs below it if the test stops early
  auto r = Sh(WaitMarks(2) + "; cp /bin/true " + sub + "/t && " + sub + "/t");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Count(sub + "/t"), 1);
  EXPECT_EQ(Digests(sub + "/t")[0], Sha256Of("/bin/true"));
  std::string ns = tmpfs_ + "/ns";
  r = Sh("unshare -m --propagation private sh -c " +
         ShellQuote("mount -t tmpfs limdns " + ns + " && cp /bin/true " + ns + "/t2 && " + WaitMarks(3) + " && " + ns +
                    "/t2"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(ns + "/t2"), 1);
  auto status = StopLimd();
  EXPECT_EQ(status["marks"], 3) << status.dump();
  EXPECT_EQ(status["precontent_marks"], 1);  // the ext4 only
  EXPECT_GE(status["mount_namespaces"], 2);
  EXPECT_EQ(::umount(sub.c_str()), 0) << strerror(errno);
}

}  // namespace
}  // namespace lim::daemon
