// ExecTraceBpf against the kernel (root): its records decode as sched_process_exec's own,
// and another tool's tracepoint program that silences perf's exec records does not silence
// them.
#include "daemon/exec_trace_bpf.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/bpf_test_util.h"
#include "daemon/silencer_test_util.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

// What a trace consumer saw of the execs of one binary (by its filename).
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, uint64_t> exec_at;       // pid → completion time
  std::map<int, int> old_pid;            // pid → old_pid field
  std::map<int, uint64_t> enter_at;      // tid → latest start time
  std::map<int, uint64_t> mapped_ino;    // pid → inode of an executable mapping of the binary
  std::map<int, uint64_t> binary_dev, binary_ino;  // pid → the record's lim_dev_* and lim_ino
  std::map<int, uint32_t> flags;                   // pid → the record's lim_flags
};

// A trace consumer of exec completions, through ExecTraceBpf or through perf's tracepoint
// event, and of exec starts through perf (as limd reads them).
class ExecTrace {
 public:
  ExecTrace(const std::string& tracefs, const std::string& binary, Seen* seen)
      : t_(tracefs, [this](const TraceRecord& r) { OnRecord(r); }, nullptr), binary_(binary), seen_(seen) {
    t_.OnMmap([this](const MmapRecord& m) {
      if (m.filename != binary_) return;
      std::lock_guard<std::mutex> lk(seen_->mu);
      seen_->mapped_ino[static_cast<int>(m.pid)] = m.ino;
      seen_->cv.notify_all();
    });
  }
  // marked_dev: a device for the program's marked map, with quiet outputs beside the waking
  // ones (as limd sets it up); 0: neither.
  Status StartBpf(uint64_t marked_dev = 0) {
    auto exec = t_.ReadFormat("sched/sched_process_exec");
    if (!exec.ok()) return exec.status();
    auto loaded = ExecTraceBpf::Load(*exec);
    if (!loaded.ok()) return loaded.status();
    ExecTraceBpf::CpuFds exec_out, quiet_out;
    LIM_ASSIGN_OR_RETURN(done_, t_.AddBpfOutput(ExecTraceBpf::RecordFormat(*exec), true, TraceEvents::Wake::kEach,
                                                &exec_out));
    if (marked_dev != 0) {
      auto quiet = t_.AddBpfOutput(ExecTraceBpf::RecordFormat(*exec), false, TraceEvents::Wake::kWithOthers, &quiet_out);
      if (!quiet.ok()) return quiet.status();
      if (*quiet != done_) return Status::Internal("a second output set of one format got another index");
      LIM_RETURN_IF_ERROR((*loaded)->MarkDev(marked_dev, true));
    }
    LIM_ASSIGN_OR_RETURN(enter_, t_.Add("syscalls/sys_enter_execve", "", false, TraceEvents::Wake::kWithOthers));
    LIM_RETURN_IF_ERROR((*loaded)->Attach(exec_out, quiet_out));
    bpf_ = std::move(*loaded);
    return t_.Start();
  }
  Status StartPerf() {
    LIM_ASSIGN_OR_RETURN(done_, t_.Add("sched/sched_process_exec", "", true));
    LIM_ASSIGN_OR_RETURN(enter_, t_.Add("syscalls/sys_enter_execve", "", false, TraceEvents::Wake::kWithOthers));
    return t_.Start();
  }
  ~ExecTrace() {
    t_.Stop();
    bpf_.reset();
  }
  const TraceEvents& events() const { return t_; }

 private:
  void OnRecord(const TraceRecord& r) {
    std::lock_guard<std::mutex> lk(seen_->mu);
    if (r.event == enter_) {
      seen_->enter_at[static_cast<int>(r.tid)] = r.time_ns;
      seen_->cv.notify_all();
    } else if (r.event == done_ && r.Str("filename").value_or("") == binary_) {
      int pid = static_cast<int>(r.Int("pid").value_or(-1));
      seen_->exec_at[pid] = r.time_ns;
      seen_->old_pid[pid] = static_cast<int>(r.Int("old_pid").value_or(-1));
      seen_->flags[pid] = static_cast<uint32_t>(r.Int("lim_flags").value_or(~0));
      if (auto ino = r.Int("lim_ino")) {
        seen_->binary_ino[pid] = static_cast<uint64_t>(*ino);
        seen_->binary_dev[pid] = makedev(static_cast<unsigned>(r.Int("lim_dev_major").value_or(0)),
                                         static_cast<unsigned>(r.Int("lim_dev_minor").value_or(0)));
      }
      seen_->cv.notify_all();
    }
  }
  TraceEvents t_;
  std::string binary_;
  Seen* seen_;
  std::unique_ptr<ExecTraceBpf> bpf_;
  int done_ = -1, enter_ = -1;
};

// Runs path in a child (execve) and returns the child's pid once it has exited.
pid_t RunOnce(const std::string& path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? pid : -1;
}

bool WaitExec(Seen* seen, int pid, std::chrono::milliseconds within) {
  std::unique_lock<std::mutex> lk(seen->mu);
  return seen->cv.wait_for(lk, within, [&] { return seen->exec_at.count(pid) > 0; });
}

class ExecTraceBpfRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    // Where the programs cannot load anywhere, skip; otherwise a failure to load is a failure.
    if (auto why = testing::BpfUnavailable(); !why.empty()) GTEST_SKIP() << why;
    auto dir = TracefsDir();
    if (!dir.ok()) GTEST_SKIP() << dir.status().message();
    tracefs_ = *dir;
    // A binary of the test's own, so that no other exec on the host has its name.
    binary_ = lim::testing::MakeTempDir() + "/marker-true";
    ASSERT_EQ(lim::testing::RunCommand("cp /bin/true " + binary_).exit_code, 0);
  }
  std::string tracefs_, binary_;
};

TEST_F(ExecTraceBpfRoot, AnExecsStartCompletionAndMappingDecodeAsTheTracepointsOwn) {
  Seen seen;
  ExecTrace trace(tracefs_, binary_, &seen);
  Status s = trace.StartBpf();
  ASSERT_TRUE(s.ok()) << s.message();
  struct stat st;
  ASSERT_EQ(::stat(binary_.c_str(), &st), 0);
  pid_t pid = RunOnce(binary_);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitExec(&seen, pid, std::chrono::seconds(5))) << "no completion record for pid " << pid;
  std::unique_lock<std::mutex> lk(seen.mu);
  // The start and the mapping may sit in another CPU's ring, drained later in the pass.
  seen.cv.wait_for(lk, std::chrono::seconds(5),
                   [&] { return seen.enter_at.count(pid) > 0 && seen.mapped_ino.count(pid) > 0; });
  EXPECT_EQ(seen.old_pid[pid], pid);  // a single-threaded exec keeps its pid
  // Its start is read in the pass its completion started (from whichever CPU's ring).
  ASSERT_TRUE(seen.enter_at.count(pid)) << "no start record for tid " << pid;
  EXPECT_GT(seen.enter_at[pid], 0u);
  EXPECT_LE(seen.enter_at[pid], seen.exec_at[pid]);
  // The outputs carry the exec's mapping of its binary (what LateExecs needs for a process
  // already gone).
  EXPECT_EQ(seen.mapped_ino[pid], static_cast<uint64_t>(st.st_ino));
  // The record itself names the file that ran, as stat(2) does (LateExecs decides from it).
  EXPECT_EQ(seen.binary_ino[pid], static_cast<uint64_t>(st.st_ino));
  EXPECT_EQ(seen.binary_dev[pid], static_cast<uint64_t>(st.st_dev));
  EXPECT_EQ(trace.events().short_records(), 0u);
}

TEST(ExecTraceBpfQuiet, SuperblockWatcherCountsFromTheKernelRelease) {
  EXPECT_FALSE(ExecTraceBpf::HasSuperblockWatcherCounts("6.7.12-amd64"));
  EXPECT_FALSE(ExecTraceBpf::HasSuperblockWatcherCounts("5.15.0"));
  EXPECT_FALSE(ExecTraceBpf::HasSuperblockWatcherCounts(""));
  EXPECT_FALSE(ExecTraceBpf::HasSuperblockWatcherCounts("x.y"));
  EXPECT_FALSE(ExecTraceBpf::HasSuperblockWatcherCounts("6.9.12"));
  EXPECT_TRUE(ExecTraceBpf::HasSuperblockWatcherCounts("6.10.0"));
  EXPECT_TRUE(ExecTraceBpf::HasSuperblockWatcherCounts("6.18.44-fc-v1272"));
  EXPECT_TRUE(ExecTraceBpf::HasSuperblockWatcherCounts("7.1"));
}

// A device limd marked, but no permission listener on the superblock (the test's own
// directory: nothing marks it): that exec may have escaped fanotify, so its completion
// still wakes the consumer (lim_flags 0).
TEST_F(ExecTraceBpfRoot, AnExecNoListenerSawWakesEvenFromAMarkedDevice) {
  Seen seen;
  ExecTrace trace(tracefs_, binary_, &seen);
  struct stat st;
  ASSERT_EQ(::stat(binary_.c_str(), &st), 0);
  Status s = trace.StartBpf(st.st_dev);
  ASSERT_TRUE(s.ok()) << s.message();
  pid_t pid = RunOnce(binary_);
  ASSERT_GT(pid, 0);
  // Woken: read well within the 1 s poll timeout (a quiet record would wait for it).
  ASSERT_TRUE(WaitExec(&seen, pid, std::chrono::milliseconds(900))) << "no completion record for pid " << pid;
  std::lock_guard<std::mutex> lk(seen.mu);
  EXPECT_EQ(seen.flags[pid], 0u);
}

TEST_F(ExecTraceBpfRoot, AScriptsRecordNamesItsInterpreterAsProcExeDoes) {
  Seen seen;
  std::string script = binary_ + ".sh";
  ASSERT_EQ(lim::testing::RunCommand("printf '#!" + binary_ + "\\n' > " + script + " && chmod 755 " + script).exit_code,
            0);
  ExecTrace trace(tracefs_, script, &seen);
  Status s = trace.StartBpf();
  ASSERT_TRUE(s.ok()) << s.message();
  struct stat interp;
  ASSERT_EQ(::stat(binary_.c_str(), &interp), 0);
  pid_t pid = RunOnce(script);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitExec(&seen, pid, std::chrono::seconds(5))) << "no completion record for pid " << pid;
  std::lock_guard<std::mutex> lk(seen.mu);
  EXPECT_EQ(seen.binary_ino[pid], static_cast<uint64_t>(interp.st_ino));
  EXPECT_EQ(seen.binary_dev[pid], static_cast<uint64_t>(interp.st_dev));
}

TEST_F(ExecTraceBpfRoot, AnotherToolsTracepointProgramSilencesPerfButNotThese) {
  if (auto why = testing::Silencer::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  Seen via_perf, via_bpf;
  ExecTrace perf(tracefs_, binary_, &via_perf);
  Status s = perf.StartPerf();
  ASSERT_TRUE(s.ok()) << s.message();
  ExecTrace bpf(tracefs_, binary_, &via_bpf);
  s = bpf.StartBpf();
  ASSERT_TRUE(s.ok()) << s.message();
  // Both see an exec while nothing silences perf.
  pid_t before = RunOnce(binary_);
  ASSERT_GT(before, 0);
  EXPECT_TRUE(WaitExec(&via_perf, before, std::chrono::seconds(5)));
  EXPECT_TRUE(WaitExec(&via_bpf, before, std::chrono::seconds(5)));

  testing::Silencer silencer;
  s = silencer.Attach();
  ASSERT_TRUE(s.ok()) << s.message();
  pid_t during = RunOnce(binary_);
  ASSERT_GT(during, 0);
  ASSERT_TRUE(WaitExec(&via_bpf, during, std::chrono::seconds(5))) << "the BPF record was silenced too";
  {
    // The start is still read through perf, and silenced: LateExecs then takes the start
    // as unknown (exec_trace_bpf.h).
    std::lock_guard<std::mutex> lk(via_bpf.mu);
    EXPECT_FALSE(via_bpf.enter_at.count(during));
  }
  // perf's record, had it been written, would have woken its consumer at once: the hazard
  // this class exists for (if a kernel stops it, this says so).
  EXPECT_FALSE(WaitExec(&via_perf, during, std::chrono::milliseconds(500)))
      << "perf recorded an exec despite a tracepoint program returning 0";
}

}  // namespace
}  // namespace lim::daemon
