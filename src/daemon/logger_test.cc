#include "daemon/logger.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

TEST(Logger, AuditRecordHasTheKernelsLayout) {
  EXPECT_EQ(FormatAuditRecord(AuditType::kIntegrityPcr, 1764745200123, 7, "pid=1 op=invalid_pcr"),
            "type=INTEGRITY_PCR msg=audit(1764745200.123:7): pid=1 op=invalid_pcr");
  EXPECT_EQ(FormatAuditRecord(AuditType::kIntegrityRule, 5, 1, "x=1"), "type=INTEGRITY_RULE msg=audit(0.005:1): x=1");
}

TEST(Logger, FileGetsLinesAndNumberedAuditRecords) {
  std::string file = lim::testing::MakeTempDir() + "/limd.log";
  Logger log;
  LoggerOptions o;
  o.log_file = file;
  o.use_syslog = false;
  ASSERT_TRUE(log.Open(o).ok());
  EXPECT_EQ(log.Describe(), file);
  log.Line("hello");
  log.Audit(AuditType::kIntegrityPcr, "pid=3 uid=0 op=invalid_pcr cause=ToMToU");
  log.Audit(AuditType::kIntegrityPcr, "pid=4 uid=0 op=invalid_pcr cause=open_writers");
  auto text = ReadFileText(file);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("]: hello\n"), std::string::npos) << *text;
  EXPECT_NE(text->find(":1): pid=3 uid=0 op=invalid_pcr cause=ToMToU\n"), std::string::npos) << *text;
  EXPECT_NE(text->find(":2): pid=4 uid=0 op=invalid_pcr cause=open_writers\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("type=INTEGRITY_PCR msg=audit("), std::string::npos) << *text;
}

TEST(Logger, SyslogOnlyWhenDevLogExists) {
  Logger log;
  LoggerOptions o;
  o.dev_log = lim::testing::MakeTempDir() + "/no-dev-log";
  ASSERT_TRUE(log.Open(o).ok());
  EXPECT_EQ(log.Describe(), "stderr");
}

TEST(Logger, SyslogWhenDevLogExistsAndAGivenFileStillGetsLines) {
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/dev-log", AsBytes("")).ok());  // stands in for /dev/log
  Logger log;
  LoggerOptions o;
  o.dev_log = dir + "/dev-log";
  o.log_file = dir + "/limd.log";
  ASSERT_TRUE(log.Open(o).ok());
  EXPECT_EQ(log.Describe(), "syslog + " + o.log_file);
  log.Line("to both");
  auto text = ReadFileText(o.log_file);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("]: to both\n"), std::string::npos) << *text;
}

TEST(Logger, UnwritableLogFileIsAnError) {
  Logger log;
  LoggerOptions o;
  o.log_file = lim::testing::MakeTempDir() + "/missing-dir/limd.log";
  o.use_syslog = false;
  Status s = log.Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--log-file"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace lim::daemon
