#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "tests/testing.h"

namespace lim::testing {
namespace {

std::string StatusDir() {
  std::string d = MakeTempDir();
  std::ofstream(d + "/status.json") << R"({"running":true,"pid":77,"tpm":"swtpm","banks":["sha1","sha256"],"pcr":10,
    "entries":12,"violations":2,"overflows":0,"timeouts":0,"reply_errors":0,"cache_hits":30,"hashes":10,
    "events":500,"marks":1,"events_per_second":25.5,"latency_us":{"p50":64,"p99":1024,"max":1500}})";
  return d;
}

TEST(CmdStatus, NotRunningWithoutTheLock) {
  std::string d = StatusDir();
  auto r = RunCommand(LimBinary() + " status --state " + d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("limd: not running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("entries: 12, violations: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cache hit rate: 75.0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no hardware root of trust"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p99 < 1024 us"), std::string::npos) << r.out;
}

TEST(CmdStatus, RunningWhileLockHeld) {
  std::string d = StatusDir();
  int fd = ::open((d + "/lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);  // as limd holds it
  auto r = RunCommand(LimBinary() + " status --state " + d);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("limd: running (pid 77)"), std::string::npos) << r.out;
  auto j = RunCommand(LimBinary() + " status --json --state " + d);
  EXPECT_NE(j.out.find("\"running\":true"), std::string::npos) << j.out;
  ::close(fd);
}

TEST(CmdStatus, NoStateIsUnusableInput) {
  auto r = RunCommand(LimBinary() + " status --state " + MakeTempDir() + "/none");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("lim: no limd state"), std::string::npos) << r.err;
}

// A status.json with fields of the wrong type (a foreign or damaged file) is shown with
// those fields as missing; it used to abort lim with an uncaught nlohmann type_error.
TEST(CmdStatus, WrongTypedFieldsDoNotAbort) {
  std::string d = MakeTempDir();
  std::ofstream(d + "/status.json") << R"({"banks":[7,"sha256"],"latency_us":{"p50":"x"},"state":[],"pid":"1"})";
  auto r = RunCommand(LimBinary() + " status --socket " + d + "/none.sock --state " + d);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("(banks sha256)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p50 < 0 us"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lim::testing
