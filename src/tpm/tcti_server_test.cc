#include "tpm/tcti_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"
#include "tpm/tpm.h"

namespace lim::tpm {
namespace {

// A listening unix socket at path (fd returned; -1 on failure).
int ListenUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) return -1;
  return fd;
}

ino_t InodeOf(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return st.st_ino;
}

TEST(ParseSocketTcti, PathHostPortAndDefaults) {
  auto s = ParseSocketTcti("swtpm:path=/run/x/sock");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->path, "/run/x/sock");
  s = ParseSocketTcti("mssim:host=127.0.0.1,port=2400");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->path, "");
  EXPECT_EQ(s->host, "127.0.0.1");
  EXPECT_EQ(s->port, 2400);
  s = ParseSocketTcti("swtpm");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->host, "localhost");
  EXPECT_EQ(s->port, 2321);
  EXPECT_FALSE(ParseSocketTcti("device:/dev/tpmrm0").has_value());
  EXPECT_FALSE(ParseSocketTcti("tabrmd").has_value());
}

TEST(TctiServer, SocketHolderOfASocketPairIsThisProcess) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto pid = SocketHolderPid(InodeOf(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  EXPECT_EQ(*pid, ::getpid());
}

TEST(TctiServer, UnixListenerInThisProcessIsFoundBySoPeercred) {
  std::string dir = lim::testing::MakeTempDir();
  int fd = ListenUnix(dir + "/sock");
  ASSERT_GE(fd, 0) << strerror(errno);
  auto s = FindTctiServer("swtpm:path=" + dir + "/sock");
  ::close(fd);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->pid, ::getpid());
  EXPECT_NE((*s)->how.find("SO_PEERCRED"), std::string::npos) << (*s)->how;
}

// A daemon that listens, then forks and lets its parent go (swtpm --daemon): SO_PEERCRED
// names the process that called listen(), the holder of the listening socket serves.
TEST(TctiServer, UnixListenerHandedToAChildIsFoundByItsHolder) {
  std::string dir = lim::testing::MakeTempDir();
  int fd = ListenUnix(dir + "/sock");
  ASSERT_GE(fd, 0) << strerror(errno);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    char c;
    (void)!::read(go[0], &c, 1);  // holds fd until the parent closes the pipe
    _exit(0);
  }
  ::close(go[0]);
  ::close(fd);  // only the child holds the listener now
  auto s = FindTctiServer("swtpm:path=" + dir + "/sock");
  ::close(go[1]);
  int st;
  ::waitpid(child, &st, 0);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->pid, child);
  EXPECT_NE((*s)->how.find("holder"), std::string::npos) << (*s)->how;
}

TEST(TctiServer, LoopbackTcpListenerIsFoundByInode) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int port = ntohs(a.sin_port);
  auto s = FindTctiServer("swtpm:host=127.0.0.1,port=" + std::to_string(port));
  ::close(fd);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->pid, ::getpid());
  auto gone = TcpLoopbackServer(port);
  EXPECT_FALSE(gone.ok());
}

TEST(TctiServer, NoLocalServerForDevicesAndRemoteHosts) {
  for (const char* tcti : {"device:/dev/tpmrm0", "tabrmd", "swtpm:host=tpm.example.org,port=2321"}) {
    auto s = FindTctiServer(tcti);
    ASSERT_TRUE(s.ok()) << tcti << ": " << s.status().message();
    EXPECT_FALSE(s->has_value()) << tcti;
  }
  EXPECT_FALSE(FindTctiServer("swtpm:path=/nonexistent/lim/sock").ok());
}

// The Tpm of a swtpm TCTI names the swtpm process.
TEST(TctiServer, SwtpmTpmNamesItsServer) {
  auto tpm = OpenTpm(testing::SwtpmTctiForTests());
  ASSERT_TRUE(tpm.ok()) << tpm.status().message();
  auto s = (*tpm)->LocalServer();
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->pid, SwtpmStatus(testing::Swtpm().Get()).pid);
  EXPECT_FALSE(OpenSoftwareTpm()->LocalServer()->has_value());
}

}  // namespace
}  // namespace lim::tpm
