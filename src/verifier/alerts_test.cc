#include "verifier/alerts.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstring>
#include <filesystem>

#include "tests/testing.h"

namespace lim::verifier {
namespace {

StateChange Failed(const std::string& agent) {
  attest::Finding f;
  f.reason = attest::Reason::kUnknownFile;
  f.entry = 21;
  f.path = "/tmp/evil";
  f.digest = "sha256:00ff";
  StateChange c;
  c.agent = agent;
  c.from = attest::AgentStatus::kAttested;
  c.to = attest::AgentStatus::kFailed;
  c.findings = {f};
  c.cause = "round";
  return c;
}

TEST(AlertsTest, FacilitiesByNameAndSeveritiesByState) {
  EXPECT_EQ(*SyslogFacility("daemon"), LOG_DAEMON);
  EXPECT_EQ(*SyslogFacility("local7"), LOG_LOCAL7);
  EXPECT_EQ(*SyslogFacility("none"), -1);
  auto bad = SyslogFacility("kern");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("syslog facility \"kern\""), std::string::npos);
  EXPECT_FALSE(SyslogFacility("local8").ok());
  EXPECT_EQ(AlertSeverity(attest::AgentStatus::kFailed), LOG_ALERT);
  EXPECT_EQ(AlertSeverity(attest::AgentStatus::kUnreachable), LOG_WARNING);
  EXPECT_EQ(AlertSeverity(attest::AgentStatus::kAttested), LOG_NOTICE);
}

TEST(AlertsTest, OneLinePerChangeWithTheFirstFailure) {
  StateChange c = Failed("web1");
  std::string line = AlertLine(c);
  EXPECT_EQ(line.rfind("lim-verifier: agent=web1 state=failed previous=attested cause=round reason=unknown-file "
                       "finding=lim-verifier: agent=web1 reason=unknown-file entry=21",
                       0),
            0u)
      << line;
  StateChange back;
  back.agent = "web1";
  back.from = attest::AgentStatus::kFailed;
  back.to = attest::AgentStatus::kAttested;
  back.cause = "ack";
  EXPECT_EQ(AlertLine(back), "lim-verifier: agent=web1 state=attested previous=failed cause=ack");
}

TEST(AlertsTest, TheSinkGetsFacilityAndSeverityAndAStuckSinkNeverBlocksNotify) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::pair<int, std::string>> got;
  std::vector<std::string> log;
  uint64_t dropped = 0;
  {
    SyslogAlerts alerts(
        LOG_LOCAL3,
        [&](int priority, const std::string& line) {
          std::unique_lock<std::mutex> lk(mu);
          got.emplace_back(priority, line);
          cv.wait(lk, [&] { return release; });  // a syslog(3) whose reader is stuck
        },
        [&](const std::string& l) {
          std::lock_guard<std::mutex> lk(mu);
          log.push_back(l);
        });
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < SyslogAlerts::kMaxQueued + 10; ++i) alerts.Notify(Failed("web" + std::to_string(i)));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    // One is in the sink, kMaxQueued wait: the rest (9 or 10, by when the thread took the
    // first) were dropped, counted and logged.
    EXPECT_GE(alerts.dropped(), 9u);
    EXPECT_LE(alerts.dropped(), 10u);
    {
      std::lock_guard<std::mutex> lk(mu);
      ASSERT_FALSE(log.empty());
      EXPECT_NE(log[0].find("syslog alerts: queue full"), std::string::npos) << log[0];
      release = true;
    }
    cv.notify_all();
    dropped = alerts.dropped();
  }  // the destructor sends what waited
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].first, LOG_LOCAL3 | LOG_ALERT);
  EXPECT_EQ(got[0].second, AlertLine(Failed("web0")));
  EXPECT_EQ(got.size() + dropped, SyslogAlerts::kMaxQueued + 10);  // each change sent or dropped, none lost
}

// The real openlog(3)/syslog(3) path, into a private socket: a child process in its own
// mount namespace puts a tmpfs on /dev with /dev/log → the test's datagram socket (glibc
// always writes to /dev/log). Root only.
TEST(AlertsTest, RealSyslogReachesAPrivateDevLog) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a mount namespace)";
  std::string dir = lim::testing::MakeTempDir();
  std::string sock = dir + "/log";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/dev", "tmpfs", 0, "size=64k") != 0 || ::symlink(sock.c_str(), "/dev/log") != 0) {
      ::_exit(3);
    }
    {
      SyslogAlerts alerts(LOG_LOCAL5, {}, [](const std::string&) {});
      alerts.Notify(Failed("web9"));
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "3: the mount namespace could not be set up";
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  ASSERT_GT(n, 0);
  std::string msg(buf, static_cast<size_t>(n));
  // <PRI> = facility local5 (21) × 8 + alert (1) = 169; then the ident with the pid.
  EXPECT_EQ(msg.rfind("<169>", 0), 0u) << msg;
  EXPECT_NE(msg.find("lim-verifier[" + std::to_string(pid) + "]: lim-verifier: agent=web9 state=failed"),
            std::string::npos)
      << msg;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lim::verifier
