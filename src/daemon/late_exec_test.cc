// LateExecs' pieces that need no root: the lim-late-exec buffer, the mark clock, and the
// order of trace records across CPUs.
#include "daemon/late_exec.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include "daemon/list_rows_test_util.h"
#include "daemon/measurer_test_util.h"

namespace lim::daemon {
namespace {

TEST(LateExecBuffer, MeasuredAndGapForms) {
  EXPECT_EQ(LateExecBuffer("sha256:ab", "/mnt/u/prog", 42, makedev(0, 77), 5, 1234, ""),
            "digest=sha256:ab;path=/mnt/u/prog;pid=42;dev=0:77;ino=5;delay_us=1234;");
  EXPECT_EQ(LateExecBuffer("", "/mnt/u/prog", 42, makedev(8, 1), 5, 9, "gone"),
            "path=/mnt/u/prog;pid=42;dev=8:1;ino=5;delay_us=9;error=gone;");
}

TEST(LateExecBuffer, FieldSeparatorsInAPathAreEscaped) {
  // A path with ';' must not forge a field (e.g. a fake digest=).
  EXPECT_EQ(LateExecBuffer("", "/m/a;digest=x\n\\", 1, 0, 0, 0, ""),
            "path=/m/a\\073digest=x\\012\\134;pid=1;delay_us=0;");
}

TEST(MarkedDevs, LaterMarkOfARecycledNumberWins) {
  MarkedDevs m;
  EXPECT_FALSE(m.MarkedAt(77).has_value());
  m.Add(77, 100);
  EXPECT_EQ(m.MarkedAt(77), 100u);
  m.Add(77, 500);  // a new superblock took the number: execs before 500 were not seen
  EXPECT_EQ(m.MarkedAt(77), 500u);
  EXPECT_GT(MonotonicNs(), 0u);
}

// The observer (ExecTraceBpf's device map) hears of every mark in place and of every change.
TEST(MarkedDevs, AnObserverHearsWhatIsMarkedAndEachChange) {
  MarkedDevs m;
  m.Add(1, 100);
  m.Marking(2);
  std::vector<std::pair<uint64_t, bool>> heard;
  m.Observe([&](uint64_t dev, bool marked) { heard.emplace_back(dev, marked); });
  EXPECT_EQ(heard, (std::vector<std::pair<uint64_t, bool>>{{1, true}, {2, false}}));
  heard.clear();
  m.Add(2, 200);
  m.Marking(1);  // a new superblock under 1: not marked until its Add
  m.Forget(3);
  EXPECT_EQ(heard, (std::vector<std::pair<uint64_t, bool>>{{2, true}, {1, false}, {3, false}}));
  m.Observe(nullptr);
  heard.clear();
  m.Add(4, 400);
  EXPECT_TRUE(heard.empty());
}

// While a new superblock under a recycled number is being marked, the gone superblock's
// earlier mark time must not stand: an exec in that window would pass as seen by fanotify.
TEST(MarkedDevs, WhileAMarkIsPlacedNoEarlierTimeStands) {
  MarkedDevs m;
  m.Add(77, 100);  // the gone superblock that had the number
  m.Marking(77);
  ASSERT_TRUE(m.MarkedAt(77).has_value());
  EXPECT_GT(*m.MarkedAt(77), MonotonicNs());  // no exec began after it
  m.Add(77, 900);
  EXPECT_EQ(m.MarkedAt(77), 900u);
  m.Marking(78);
  m.Forget(78);  // the mark failed
  EXPECT_FALSE(m.MarkedAt(78).has_value());
}

// An exec's records as limd reads them when the exec moved to another CPU (sched_exec):
// its completion is read before its start. Its process is gone, so its binary is told by
// the mapping between its start and its completion — with the wrong start (a failed
// execvp attempt's, or none: the 20 ms before), the previous program's libc was taken for
// the binary, found on a superblock limd never marks, and the exec got no entry at all.
class LateExecOrder : public testing::MeasurerFixture {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(OpenParts("measure func=BPRM_CHECK\n")); }
  // A pid no process has (a child that exited and was reaped).
  static pid_t GonePid() {
    pid_t c = ::fork();
    if (c == 0) ::_exit(0);
    ::waitpid(c, nullptr, 0);
    return c;
  }
  std::vector<std::string> LateExecBuffers() {
    std::vector<std::string> out;
    for (const auto& r : testing::ReadListRows(dir_ + "/binary_runtime_measurements")) {
      if (r.name == "lim-late-exec") out.emplace_back(r.extra.begin(), r.extra.end());
    }
    return out;
  }
};

TEST_F(LateExecOrder, AStartReadAfterItsCompletionStillFindsTheBinary) {
  const uint64_t root = makedev(8, 1), tmp = makedev(0, 4242);
  MarkedDevs marked;
  LateExecHooks hooks;
  hooks.never_marked = [root](uint64_t dev) { return dev == root; };
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), hooks);
  pid_t pid = GonePid();
  const uint64_t ms = 1'000'000;
  uint64_t t = MonotonicNs() - 100 * ms;
  // unshare's execvp("sh"): two failed attempts, then /usr/bin/sh.
  late.OnExecEnter(pid, t + 1 * ms);
  late.OnExecEnter(pid, t + 2 * ms);
  late.OnExecEnter(pid, t + 3 * ms);
  late.OnExecMmap(pid, t + 4 * ms, root, 10, "/usr/bin/dash");
  late.OnExec(pid, pid, "/usr/bin/sh", t + 5 * ms);
  late.OnExecMmap(pid, t + 6 * ms, root, 11, "/usr/lib/x86_64-linux-gnu/libc.so.6");  // sh runs
  // The program's exec: its mapping and completion on one CPU...
  late.OnExecMmap(pid, t + 8 * ms, tmp, 2, "/prog");
  late.OnExec(pid, pid, "/dev/fd/4/prog", t + 9 * ms);
  // ...its start on the other, read after them in the same pass.
  late.OnExecEnter(pid, t + 7 * ms);
  late.AfterDrain();
  auto bufs = LateExecBuffers();
  ASSERT_EQ(bufs.size(), 1u);  // the program's; sh's binary lies on the never-marked root
  EXPECT_NE(bufs[0].find("path=/prog;"), std::string::npos) << bufs[0];
  EXPECT_NE(bufs[0].find("filename=/dev/fd/4/prog;"), std::string::npos) << bufs[0];
}

// Two execs of one gone process from unmarked superblocks, the first still waiting for its
// start when the second is resolved: the second must not take the first's mapping with it.
TEST_F(LateExecOrder, ALaterExecDoesNotForgetAnEarlierOnesMapping) {
  const uint64_t a = makedev(0, 4244), b = makedev(0, 4245);
  MarkedDevs marked;
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), LateExecHooks{});
  pid_t pid = GonePid();
  const uint64_t ms = 1'000'000;
  uint64_t t = MonotonicNs() - 100 * ms;
  late.OnExecMmap(pid, t + 2 * ms, a, 2, "/first");
  late.OnExec(pid, pid, "/dev/fd/3/first", t + 3 * ms);  // its start not read yet
  late.OnExecEnter(pid, t + 4 * ms);
  late.OnExecMmap(pid, t + 5 * ms, b, 2, "/second");
  late.OnExec(pid, pid, "/dev/fd/3/second", t + 6 * ms);
  late.AfterDrain();  // the second is resolved; the first waits
  late.OnExecEnter(pid, t + 1 * ms);
  late.AfterDrain();
  auto bufs = LateExecBuffers();
  ASSERT_EQ(bufs.size(), 2u);
  EXPECT_NE(bufs[0].find("path=/second;"), std::string::npos) << bufs[0];
  EXPECT_NE(bufs[1].find("path=/first;"), std::string::npos) << bufs[1];
}

// A start that never comes (its record lost): the program still gets an entry after three
// passes — a gap rather than nothing.
TEST_F(LateExecOrder, AStartNeverReadStillEndsInAnEntry) {
  const uint64_t tmp = makedev(0, 4243);
  MarkedDevs marked;
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), LateExecHooks{});
  pid_t pid = GonePid();
  uint64_t t = MonotonicNs() - 50'000'000;
  late.OnExecMmap(pid, t + 1'000'000, tmp, 2, "/prog");
  late.OnExec(pid, pid, "/dev/fd/4/prog", t + 2'000'000);
  late.AfterDrain();
  late.AfterDrain();
  EXPECT_TRUE(LateExecBuffers().empty());  // still waiting for its start
  late.AfterDrain();
  auto bufs = LateExecBuffers();
  ASSERT_EQ(bufs.size(), 1u);
  EXPECT_NE(bufs[0].find("path=/prog;"), std::string::npos) << bufs[0];
}

// The BPF record names the file the exec ran. On a superblock marked before the exec began,
// fanotify saw it: settled from the record, with no look at the process — here one that
// is gone and whose mapping never came, which without the record's file ends as a missed
// exec after three passes.
TEST_F(LateExecOrder, TheRecordsFileSettlesAnExecFanotifySaw) {
  const uint64_t marked_dev = makedev(0, 4246);
  MarkedDevs marked;
  const uint64_t ms = 1'000'000;
  uint64_t t = MonotonicNs() - 100 * ms;
  marked.Add(marked_dev, t);
  LateExecHooks hooks;
  hooks.still_marked = [marked_dev](uint64_t dev, const std::string&) { return dev == marked_dev; };
  bool vouched = true;
  hooks.record_dev_marked = [&vouched, marked_dev](uint64_t dev) { return vouched && dev == marked_dev; };
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), hooks);
  // A gone process's exec of the marked file, begun at t + 1 ms, and three passes.
  auto exec_gone = [&] {
    pid_t pid = GonePid();
    late.OnExecEnter(pid, t + 1 * ms);
    late.OnExec(pid, pid, "/bin/true", t + 2 * ms, LateExecs::ExecFile{marked_dev, 5});
    for (int i = 0; i < 3; ++i) late.AfterDrain();
  };
  // The content group cannot vouch for the record's device (a btrfs subvolume, a side
  // group's mark, a stale entry): not settled by the record.
  // Each goes the mapping way then, and none came: missed.
  vouched = false;
  exec_gone();
  EXPECT_EQ(late.seen_by_record(), 0u);
  EXPECT_EQ(late.missed(), 1u);
  vouched = true;
  // While any mark is being placed (its superblock's s_dev not known yet): not either.
  marked.Marking(makedev(0, 4251));
  exec_gone();
  EXPECT_EQ(late.seen_by_record(), 0u);
  EXPECT_EQ(late.missed(), 2u);
  marked.Forget(makedev(0, 4251));
  exec_gone();
  EXPECT_EQ(late.seen_by_record(), 1u);
  EXPECT_EQ(late.missed(), 2u);  // the two above only
  EXPECT_TRUE(LateExecBuffers().empty());
  // Marked after the exec began: not seen, so not settled by the record.
  pid_t later = GonePid();
  late.OnExecEnter(later, t - 1 * ms);
  late.OnExec(later, later, "/bin/true", t + 3 * ms, LateExecs::ExecFile{marked_dev, 5});
  EXPECT_EQ(late.seen_by_record(), 1u);
  // Its start read after its completion (the other CPU's ring): settled after the pass, for
  // a gone process and for a running one (pinned meanwhile through /proc/<pid>/exe).
  pid_t gone = GonePid();
  late.OnExec(gone, gone, "/bin/true", t + 5 * ms, LateExecs::ExecFile{marked_dev, 5});
  pid_t running = ::fork();
  if (running == 0) {
    ::pause();
    ::_exit(0);
  }
  late.OnExec(running, running, "/bin/true", t + 6 * ms, LateExecs::ExecFile{marked_dev, 5});
  late.OnExecEnter(gone, t + 4 * ms);
  late.OnExecEnter(running, t + 4 * ms);
  late.AfterDrain();
  ::kill(running, SIGKILL);
  ::waitpid(running, nullptr, 0);
  EXPECT_EQ(late.seen_by_record(), 3u);
  EXPECT_EQ(late.missed(), 2u);
}

// A new superblock under a recycled number, marked while the trace thread decides: the
// gone one's mark time and the new one's mark must not be taken together (the exec began
// before the new mark, so fanotify did not see it).
TEST_F(LateExecOrder, AMarkPlacedWhileARecordIsDecidedSettlesNothing) {
  const uint64_t dev = makedev(0, 4252);
  MarkedDevs marked;
  const uint64_t ms = 1'000'000;
  uint64_t t = MonotonicNs() - 100 * ms;
  marked.Add(dev, t);  // the gone superblock's mark
  LateExecHooks hooks;
  hooks.record_dev_marked = [&marked, dev](uint64_t d) {
    // Discovery marks the new superblock between the trace thread's two looks.
    marked.Marking(dev);
    marked.Add(dev, MonotonicNs());
    return d == dev;
  };
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), hooks);
  pid_t pid = GonePid();
  late.OnExecEnter(pid, t + 1 * ms);
  late.OnExec(pid, pid, "/prog", t + 2 * ms, LateExecs::ExecFile{dev, 2});
  EXPECT_EQ(late.seen_by_record(), 0u);
}

TEST(MarkedDevs, QuietOnlyWhileNoMarkIsPlacedAndChangesWithEachMark) {
  MarkedDevs m;
  auto q0 = m.Quiet();
  ASSERT_TRUE(q0.has_value());
  m.BeginMark();
  EXPECT_FALSE(m.Quiet().has_value());
  m.Marking(7);
  m.EndMark();
  EXPECT_FALSE(m.Quiet().has_value());  // 7 is still being placed
  m.Add(7, 100);
  ASSERT_TRUE(m.Quiet().has_value());
  EXPECT_NE(m.Quiet(), q0);
  // The same device marked again while still being placed, a failed mark, an unknown one.
  m.Marking(8);
  m.Marking(8);
  EXPECT_FALSE(m.Quiet().has_value());
  m.Forget(8);
  EXPECT_TRUE(m.Quiet().has_value());
  m.Forget(9);
  m.Marking(7);  // a mark of 7 again (a new superblock under its number)
  EXPECT_FALSE(m.Quiet().has_value());
  m.Add(7, 200);
  EXPECT_TRUE(m.Quiet().has_value());
}

// A gone process whose exec's start was lost: its binary used to be the earliest executable
// mapping of the 20 ms before the completion — here the previous program's, on another
// superblock. The record's file picks the mapping of the inode that ran.
TEST_F(LateExecOrder, AGoneProcesssBinaryIsTheMappingOfTheRecordsFile) {
  const uint64_t a = makedev(0, 4247), b = makedev(0, 4248);
  MarkedDevs marked;
  LateExecs late(measurer_.get(), list_.get(), &marked, ::getpid(), LateExecHooks{});
  pid_t pid = GonePid();
  const uint64_t ms = 1'000'000;
  uint64_t t = MonotonicNs() - 100 * ms;
  late.OnExecMmap(pid, t + 1 * ms, a, 3, "/previous");
  late.OnExecMmap(pid, t + 3 * ms, b, 2, "/prog");
  late.OnExec(pid, pid, "/dev/fd/4/prog", t + 4 * ms, LateExecs::ExecFile{b, 2});
  for (int i = 0; i < 3; ++i) late.AfterDrain();  // its start never comes
  auto bufs = LateExecBuffers();
  ASSERT_EQ(bufs.size(), 1u);
  EXPECT_NE(bufs[0].find("path=/prog;"), std::string::npos) << bufs[0];
  EXPECT_EQ(late.seen_by_record(), 0u);
}

}  // namespace
}  // namespace lim::daemon
