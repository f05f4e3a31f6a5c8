// Root test: limd's memory stays bounded however many distinct inodes an unprivileged user
// opens (issue 18 item 12). limd watches the test's own tmpfs with the tcb rules (without
// their tmpfs exclusion, so root's reads are measured); uid 65534 creates and reads files,
// then root reads them. Skipped when not root or without fanotify permission events.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "daemon/bpf_test_util.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::ShellQuote;

// Creates (write one byte) and reads files dir/f<first>…dir/f<first+n-1>, as uid (a forked
// child; 0: as root). True when every open, write and read worked.
bool CreateAndRead(const std::string& dir, int first, int n, uid_t uid, bool create) {
  pid_t child = fork();
  if (child == 0) {
    if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0)) {
      _exit(3);
    }
    for (int i = first; i < first + n; ++i) {
      std::string f = dir + "/f" + std::to_string(i);
      char b = 'x';
      if (create) {
        int w = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w < 0 || ::write(w, &b, 1) != 1) _exit(4);
        ::close(w);
      }
      int r = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (r < 0 || ::read(r, &b, 1) != 1) _exit(5);
      ::close(r);
    }
    _exit(0);
  }
  int st = 0;
  return child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

long StatusKb(pid_t pid, const char* key) {
  auto s = ReadFileText("/proc/" + std::to_string(pid) + "/status");
  if (!s.ok()) return -1;
  size_t at = s->find(key);
  return at == std::string::npos ? -1 : std::atol(s->c_str() + at + std::strlen(key));
}

TEST(LimdMemoryRoot, ManyInodesOfAnyUserKeepRssBounded) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (!why.empty()) GTEST_SKIP() << why;
  constexpr int kFiles = 20000;
  testing::ScratchMounts mounts;
  std::string mnt, state = lim::testing::MakeTempDir();
  ASSERT_EQ(mounts.AddTmpfs(&mnt, "size=512m,nr_inodes=0"), "");
  std::string user_dir = mnt + "/u", root_dir = mnt + "/r";
  ASSERT_EQ(::mkdir(user_dir.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(root_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(user_dir.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(WriteFileBytes(state + "/policy", AsBytes("measure func=BPRM_CHECK mask=MAY_EXEC\n"
                                                        "measure func=FILE_CHECK mask=MAY_READ uid=0\n"
                                                        "measure func=MMAP_CHECK mask=MAY_EXEC\n"))
                  .ok());
  testing::LimdChild limd;
  // A small --inode-cache, so the bound is reached (and must hold) within the test's files.
  ASSERT_FALSE(limd.Start(testing::LimdCommand(state, mnt,
                                               "--no-tpm --config /dev/null --inode-cache 1024 --policy " +
                                                   ShellQuote(state + "/policy")),
                          state, 120)
                   .has_value());
  ASSERT_GT(limd.pid(), 0);
  long start = StatusKb(limd.pid(), "VmRSS:");
  // uid 65534: twice kFiles new inodes. The first pass fills every cache to its bound; the
  // second may reuse that memory but not add to it (before the bound: ~600 bytes an inode,
  // 12 MiB a pass).
  ASSERT_TRUE(CreateAndRead(user_dir, 0, kFiles, 65534, true));
  long first = StatusKb(limd.pid(), "VmRSS:");
  ASSERT_TRUE(CreateAndRead(user_dir, kFiles, kFiles, 65534, true));
  long second = StatusKb(limd.pid(), "VmRSS:");
  // Root reads kFiles new files: each one measured (list entries and the duplicate table
  // grow, as the kernel's), then reads them again: no entry more.
  ASSERT_TRUE(CreateAndRead(root_dir, 0, kFiles, 0, true));
  // Only the entries of the test's files count: limd also records memfd execs anywhere on the
  // host, and other tests (ctest -j) make some.
  auto root_entries = [&] {
    auto rows = testing::ReadListRows(state + "/binary_runtime_measurements");
    return static_cast<size_t>(std::count_if(rows.begin(), rows.end(),
                                             [&](const auto& r) { return r.name.rfind(root_dir + "/", 0) == 0; }));
  };
  size_t entries = root_entries();
  ASSERT_TRUE(CreateAndRead(root_dir, 0, kFiles, 0, false));
  size_t again = root_entries();
  long peak = StatusKb(limd.pid(), "VmHWM:");
  std::printf("limd RSS: start %ld KiB, %d inodes %ld KiB, %d more %ld KiB; root %d files: peak %ld KiB\n", start,
              kFiles, first, kFiles, second, kFiles, peak);
  EXPECT_EQ(limd.Stop(), 0);
  EXPECT_GE(entries, static_cast<size_t>(kFiles));  // one per root file
  EXPECT_EQ(again, entries);                          // evicted or cached: never a second entry
  EXPECT_LT(second - first, 2 * 1024) << "the second pass of new inodes grew limd";
  EXPECT_LT(peak, 32 * 1024);
}

// Creates dir/t<first>…, then opens each twice (two fds of one thread, read-only or
// write-only) and closes both at once: fanotify merges the two queued closes into one.
bool HoldTwice(const std::string& dir, int first, int n, uid_t uid, bool write) {
  pid_t child = fork();
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(3);
    for (int i = first; i < first + n; ++i) {
      std::string f = dir + "/t" + std::to_string(i);
      int c = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (c < 0 || ::write(c, "x", 1) != 1) _exit(4);
      ::close(c);
      int flags = (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC;
      int a = ::open(f.c_str(), flags), b = ::open(f.c_str(), flags);
      if (a < 0 || b < 0) _exit(5);
      ::close(a);
      ::close(b);
    }
    _exit(0);
  }
  int st = 0;
  return child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Closes merged by fanotify left reader and writer counts one too high, and such inodes
// were never evicted: 6,000 of them stayed with --inode-cache 1024. The open-count probe
// resets the counts of inodes nobody holds (the kernel's counters read (1, 0), or a write
// lease is granted: --open-counts kernel / lease) and never those of inodes someone does:
// a reader and a writer held across the whole run keep their ToMToU and open_writers.
// "auto-without-bpf": --open-counts auto with bpf() refused (lim_test_nobpf, seccomp): limd
// says why and probes with the lease.
class LimdMemoryRootCounts : public ::testing::TestWithParam<std::string> {};

TEST_P(LimdMemoryRootCounts, MergedClosesDoNotPinInodeStates) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (why.empty() && GetParam() != "lease" && ::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    why = "this kernel has no BTF for the open-count program";
  }
  if (!why.empty()) GTEST_SKIP() << why;
  constexpr int kFiles = 3000;
  testing::ScratchMounts mounts;
  std::string mnt, state = lim::testing::MakeTempDir();
  ASSERT_EQ(mounts.AddTmpfs(&mnt, "size=256m,nr_inodes=0"), "");
  std::string user_dir = mnt + "/u";
  ASSERT_EQ(::mkdir(user_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(user_dir.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(WriteFileBytes(mnt + "/held", AsBytes("r\n")).ok());
  ASSERT_TRUE(WriteFileBytes(mnt + "/held_w", AsBytes("w\n")).ok());
  ASSERT_TRUE(WriteFileBytes(state + "/policy", AsBytes("measure func=FILE_CHECK mask=MAY_READ uid=0\n")).ok());
  testing::LimdChild limd;
  const bool without_bpf = GetParam() == "auto-without-bpf";
  ASSERT_FALSE(limd.Start((without_bpf ? std::string(LIM_TEST_NOBPF_BIN) + " " : std::string()) +
                              testing::LimdCommand(state, mnt,
                                                   "--no-tpm --config /dev/null --inode-cache 1024 --open-counts " +
                                                       std::string(without_bpf ? "auto" : GetParam()) + " --policy " +
                                                       ShellQuote(state + "/policy")),
                          state, 180)
                   .has_value());
  ASSERT_GT(limd.pid(), 0);
  // Root holds one file read (measured) and another open for writing through the run.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t holder = fork();
  if (holder == 0) {
    ::close(pipefd[1]);
    int r = ::open((mnt + "/held").c_str(), O_RDONLY | O_CLOEXEC);
    int w = ::open((mnt + "/held_w").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    char b;
    if (r < 0 || w < 0 || ::read(r, &b, 1) != 1) _exit(3);
    (void)!::read(pipefd[0], &b, 1);  // until the test closes the pipe
    _exit(0);
  }
  ::close(pipefd[0]);
  ASSERT_GT(holder, 0);
  ASSERT_TRUE(HoldTwice(user_dir, 0, kFiles, 65534, false));
  ASSERT_TRUE(HoldTwice(user_dir, kFiles, kFiles, 65534, true));
  // New inodes: each one over the bound lets the eviction look at the oldest states and
  // report those kept only for their counts; a second round evicts the reset ones.
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(CreateAndRead(user_dir, round * kFiles, kFiles, 65534, true));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // probes and drains
  }
  // Neither held file was reset: a write-open of the read one is a ToMToU, a read of the
  // written one an open_writers.
  ASSERT_EQ(testing::ShIn(mnt, "echo more >> held; cat held_w >/dev/null").exit_code, 0);
  ::close(pipefd[1]);
  int st = 0;
  waitpid(holder, &st, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int tomtou = 0, open_writers = 0;
  for (const auto& r : testing::ReadListRows(state + "/binary_runtime_measurements")) {
    tomtou += (r.violation && r.name == mnt + "/held") ? 1 : 0;
    open_writers += (r.violation && r.name == mnt + "/held_w") ? 1 : 0;
  }
  EXPECT_EQ(limd.Stop(), 0);
  auto status = ReadFileText(state + "/status.json");  // written at exit
  ASSERT_TRUE(status.ok());
  auto j = nlohmann::json::parse(*status);
  std::printf("tracked %llu, probes %llu, resets %llu, evictions %llu\n",
              static_cast<unsigned long long>(j["tracked_inodes"].get<uint64_t>()),
              static_cast<unsigned long long>(j["count_probes"].get<uint64_t>()),
              static_cast<unsigned long long>(j["count_resets"].get<uint64_t>()),
              static_cast<unsigned long long>(j["inode_evictions"].get<uint64_t>()));
  EXPECT_EQ(tomtou, 1);
  EXPECT_EQ(open_writers, 1);
  EXPECT_GT(j["count_resets"].get<uint64_t>(), 1000u) << *status;
  // Every probe asked the way the flag says.
  EXPECT_EQ(j["count_probes_by_kernel_counts"].get<uint64_t>(),
            GetParam() == "kernel" ? j["count_probes"].get<uint64_t>() : 0u)
      << *status;
  auto log = ReadFileText(state + "/log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->find("checked with a write lease instead") != std::string::npos, without_bpf) << *log;
  // The exec completions' programs (exec_trace_bpf.h) fall back to perf the same way, and
  // say so.
  const bool bpf = !without_bpf && testing::BpfUnavailable().empty();
  EXPECT_EQ(j["exec_trace"], bpf ? "bpf" : "perf") << *status;
  EXPECT_EQ(j["memfd_exec_trace"], bpf ? "bpf" : "perf") << *status;
  EXPECT_EQ(log->find("exec tracepoints: perf, which another tool's tracepoint program can silence") != std::string::npos,
            !bpf)
      << *log;
  // The bound, plus what the last round's eviction had not reached yet.
  EXPECT_LT(j["tracked_inodes"].get<uint64_t>(), 1024u + 512u) << *status;
}

INSTANTIATE_TEST_SUITE_P(OpenCounts, LimdMemoryRootCounts, ::testing::Values("kernel", "lease", "auto-without-bpf"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string name = i.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// --open-counts kernel where the program cannot be loaded (bpf() refused) stops limd at
// start, naming the flag and the reason, before it marks anything.
TEST(LimdOpenCountsRoot, KernelCountsThatCannotBeHadStopLimd) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
  if (!why.empty()) GTEST_SKIP() << why;
  testing::ScratchMounts mounts;
  std::string mnt, state = lim::testing::MakeTempDir();
  ASSERT_EQ(mounts.AddTmpfs(&mnt), "");
  testing::LimdChild limd;
  auto rc = limd.Start(std::string(LIM_TEST_NOBPF_BIN) + " " +
                           testing::LimdCommand(state, mnt, "--no-tpm --config /dev/null --open-counts kernel") +
                           " 2>" + ShellQuote(state + "/stderr"),
                       state, 60);
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
  EXPECT_NE(*rc, -1) << "limd neither started nor stopped";
  auto err = ReadFileText(state + "/stderr");
  std::string text = err.ok() ? *err : "";
  EXPECT_NE(text.find("--open-counts kernel: inode open counts (BPF)"), std::string::npos) << text;
  EXPECT_NE(text.find(std::strerror(EPERM)), std::string::npos) << text;
}

}  // namespace
}  // namespace lim::daemon
