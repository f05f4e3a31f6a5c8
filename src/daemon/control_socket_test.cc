// The control socket without root: a socket in a temp dir, served to this test's own uid
// (the seam ControlSocketOptions::allowed_uid stands in for root), refused to any other.
#include "daemon/control_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>

#include "control/control_client.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using control::kMaxControlReply;
using control::QueryControlSocket;

TEST(ControlSocket, PeerCredentialCheck) {
  struct ucred root {0, 0, 0}, user{1, 1000, 1000};
  EXPECT_TRUE(PeerAllowed(root, 0));
  EXPECT_FALSE(PeerAllowed(user, 0));
  EXPECT_TRUE(PeerAllowed(user, 1000));
}

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = lim::testing::MakeTempDir() + "/run/limd.sock"; }
  std::unique_ptr<ControlSocket> Open(uid_t allowed, const std::string& doc = "{\"pid\":1}\n") {
    ControlSocketOptions o;
    o.path = path_;
    o.allowed_uid = allowed;
    auto c = ControlSocket::Open(o, [doc] { return doc; }, [this](const std::string& l) {
      std::lock_guard<std::mutex> lk(mu_);
      log_ += l + "\n";
    });
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return nullptr;
    (*c)->Start();
    return std::move(*c);
  }
  std::string Log() {
    std::lock_guard<std::mutex> lk(mu_);
    return log_;
  }
  std::string path_;
  std::mutex mu_;
  std::string log_;
};

TEST_F(ControlSocketTest, ServesTheStatusDocumentToTheAllowedUid) {
  auto c = Open(::geteuid(), "{\"running\":true}\n");
  ASSERT_TRUE(c);
  struct stat st;
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (int i = 0; i < 3; ++i) {
    auto doc = QueryControlSocket(path_);
    ASSERT_TRUE(doc.ok()) << doc.status().message();
    EXPECT_EQ(*doc, "{\"running\":true}\n");
  }
  EXPECT_EQ(c->served(), 3u);
  EXPECT_EQ(c->refused(), 0u);
  c.reset();
  EXPECT_NE(::lstat(path_.c_str(), &st), 0) << "the socket file is removed at stop";
  EXPECT_EQ(QueryControlSocket(path_).status().code(), StatusCode::kUnavailable);
}

TEST_F(ControlSocketTest, OtherUidsAreRefusedAndLogged) {
  auto c = Open(::geteuid() + 1);
  ASSERT_TRUE(c);
  auto doc = QueryControlSocket(path_);
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  EXPECT_NE(doc->find("\"error\":\"permission denied"), std::string::npos) << *doc;
  EXPECT_EQ(doc->find("pid"), std::string::npos) << "no status for a refused peer";
  EXPECT_EQ(c->refused(), 1u);
  c->Stop();
  EXPECT_NE(Log().find("control socket: refused pid=" + std::to_string(::getpid()) + " uid=" +
                       std::to_string(::geteuid())),
            std::string::npos)
      << Log();
}

TEST_F(ControlSocketTest, ASocketInUseIsLeftAloneAndAStaleOneReplaced) {
  auto first = Open(::geteuid());
  ASSERT_TRUE(first);
  ControlSocketOptions o;
  o.path = path_;
  o.allowed_uid = ::geteuid();
  auto second = ControlSocket::Open(o, [] { return std::string("{}"); }, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use by another limd"), std::string::npos) << second.status().message();
  EXPECT_TRUE(QueryControlSocket(path_).ok()) << "the first one still serves";
  first.reset();

  // A socket file nobody listens on (a limd killed with SIGKILL): replaced.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ::close(fd);
  auto third = Open(::geteuid(), "{\"n\":3}");
  ASSERT_TRUE(third);
  EXPECT_EQ(*QueryControlSocket(path_), "{\"n\":3}");
}

TEST_F(ControlSocketTest, RefusesAPathThatIsNoSocketOrTooLong) {
  std::string dir = lim::testing::MakeTempDir();
  std::ofstream(dir + "/file") << "x";
  ControlSocketOptions o;
  o.path = dir + "/file";
  auto r = ControlSocket::Open(o, nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not a socket"), std::string::npos) << r.status().message();
  o.path = dir + "/" + std::string(120, 'x');
  EXPECT_EQ(ControlSocket::Open(o, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
}

// `lim status --socket PATH` shows the served document; a refused peer falls back to the
// state directory's status.json.
TEST_F(ControlSocketTest, LimStatusReadsTheSocketFirst) {
  auto c = Open(::geteuid(),
                R"({"running":true,"pid":4242,"tpm":"swtpm","root_of_trust":"none","banks":["sha1","sha256"],"pcr":10,
  "entries":5,"violations":1,"overflows":0,"timeouts":0,"reply_errors":0,"cache_hits":3,"hashes":1,"events":9,
  "marks":1,"precontent_marks":1,"mount_namespaces":2,"events_per_second":2.0,"uptime_seconds":3725,"state":"/var/lib/lim",
  "latency_us":{"p50":8,"p90":16,"p99":32,"max":40}})");
  ASSERT_TRUE(c);
  std::string state = lim::testing::MakeTempDir();  // no status.json: only the socket can answer
  auto r = lim::testing::RunCommand(lim::testing::LimBinary() + " status --socket " + path_ + " --state " + state);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("limd: running (pid 4242), up 1h 2m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("read from control socket " + path_), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("root of trust: none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p50 < 8 us, p90 < 16 us, p99 < 32 us, max 40 us"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("events/s: 2.0 (9 events); marks: 1 (1 with pre-content), 2 mount namespaces"), std::string::npos)
      << r.out;
  auto j = lim::testing::RunCommand(lim::testing::LimBinary() + " status --json --socket " + path_);
  EXPECT_NE(j.out.find("\"pid\":4242"), std::string::npos) << j.out;
  c.reset();

  auto refused = Open(::geteuid() + 1);
  ASSERT_TRUE(refused);
  std::ofstream(state + "/status.json") << R"({"pid":99,"tpm":"software","entries":2})";
  r = lim::testing::RunCommand(lim::testing::LimBinary() + " status --socket " + path_ + " --state " + state);
  EXPECT_EQ(r.exit_code, 1) << "no lock held: not running";
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("limd: not running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("read from " + state + "/status.json"), std::string::npos) << r.out;
}

// Whatever answers on the socket path is not trusted: a reply over the cap, or one that
// never ends, is an error within the timeout instead of unbounded memory or a hang.
TEST_F(ControlSocketTest, ClientCapsTheReplyInSizeAndTime) {
  auto big = Open(::getuid(), std::string(kMaxControlReply + 1, ' '));
  ASSERT_TRUE(big);
  auto r = QueryControlSocket(path_, 5000);
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("larger than"), std::string::npos) << r.status().message();
  big.reset();
  // A peer that accepts and never closes: bounded by the total timeout.
  int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
  ::unlink(path_.c_str());
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(::listen(l, 4), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto hung = QueryControlSocket(path_, 300);
  EXPECT_EQ(hung.status().code(), StatusCode::kIoError);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  ::close(l);
}

}  // namespace
}  // namespace lim::daemon
