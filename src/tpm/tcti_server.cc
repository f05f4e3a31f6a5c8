#include "tpm/tcti_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lim::tpm {

namespace {

bool IsDigits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// Whether /proc/<pid>/fd holds "socket:[inode]".
bool HoldsSocket(const std::string& pid_dir, const std::string& want) {
  DIR* d = ::opendir((pid_dir + "/fd").c_str());
  if (!d) return false;
  bool found = false;
  char buf[64];
  while (dirent* e = ::readdir(d)) {
    if (!IsDigits(e->d_name)) continue;
    ssize_t n = ::readlinkat(::dirfd(d), e->d_name, buf, sizeof buf - 1);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)) == want) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

std::string SocketLink(ino_t inode) { return "socket:[" + std::to_string(inode) + "]"; }

// The pid named by SO_PEERCRED on a fresh connection to a unix socket: the process that
// called listen(). The server accepts a connection that closes at once (swtpm reads EOF).
Result<pid_t> PeerCredPid(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("unix socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IoError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    return Status::Unavailable("connect " + path + ": " + std::strerror(e));
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  int r = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
  int e = errno;
  ::close(fd);
  if (r != 0) return Status::IoError("SO_PEERCRED " + path + ": " + std::strerror(e));
  if (cred.pid <= 0) return Status::NotFound("SO_PEERCRED " + path + ": no peer pid");
  return cred.pid;
}

// Inode of the listening unix socket bound to path, from /proc/net/unix
// ("Num RefCount Protocol Flags Type St Inode Path"; Flags 00010000 = listening).
std::optional<ino_t> UnixListenerInode(const std::string& path) {
  std::ifstream in("/proc/net/unix");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string num, ref, proto, flags, type, st;
    unsigned long long inode = 0;
    if (!(ls >> num >> ref >> proto >> flags >> type >> st >> inode)) continue;
    std::string p;
    std::getline(ls, p);
    if (!p.empty() && p[0] == ' ') p.erase(0, 1);
    if (p != path) continue;
    if (!(std::strtoul(flags.c_str(), nullptr, 16) & 0x10000)) continue;  // __SO_ACCEPTCON
    return static_cast<ino_t>(inode);
  }
  return std::nullopt;
}

bool LoopbackOrAny4(uint32_t printed) {
  in_addr a{};
  a.s_addr = printed;  // /proc/net/tcp prints the network-order word as a host integer
  uint32_t host = ntohl(a.s_addr);
  return host == 0 || (host >> 24) == 127;
}

bool LoopbackOrAny6(const std::string& hex) {
  if (hex.size() != 32) return false;
  in6_addr a{};
  for (int i = 0; i < 4; ++i) {
    uint32_t w = static_cast<uint32_t>(std::strtoul(hex.substr(static_cast<size_t>(i) * 8, 8).c_str(), nullptr, 16));
    std::memcpy(&a.s6_addr[i * 4], &w, 4);
  }
  if (IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a) && (a.s6_addr[12] == 127 || (a.s6_addr[12] | a.s6_addr[13] | a.s6_addr[14] | a.s6_addr[15]) == 0);
}

// Listening sockets (st 0A) on a loopback or wildcard address at port.
std::optional<ino_t> TcpListenerInode(const std::string& file, int port, bool v6) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
    unsigned long long inode = 0;
    if (!(ls >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
    if (st != "0A") continue;
    size_t colon = local.find(':');
    if (colon == std::string::npos) continue;
    if (std::strtol(local.c_str() + colon + 1, nullptr, 16) != port) continue;
    std::string addr = local.substr(0, colon);
    bool ok = v6 ? LoopbackOrAny6(addr)
                 : LoopbackOrAny4(static_cast<uint32_t>(std::strtoul(addr.c_str(), nullptr, 16)));
    if (ok && inode != 0) return static_cast<ino_t>(inode);
  }
  return std::nullopt;
}

bool LocalHost(const std::string& host) {
  return host.empty() || host == "localhost" || host == "ip6-localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::optional<TctiSocket> ParseSocketTcti(const std::string& tcti) {
  size_t colon = tcti.find(':');
  std::string name = tcti.substr(0, colon);
  if (name != "swtpm" && name != "mssim") return std::nullopt;
  TctiSocket s;
  std::string conf = colon == std::string::npos ? "" : tcti.substr(colon + 1);
  size_t pos = 0;
  while (pos < conf.size()) {
    size_t comma = conf.find(',', pos);
    if (comma == std::string::npos) comma = conf.size();
    std::string kv = conf.substr(pos, comma - pos);
    if (kv.rfind("path=", 0) == 0) s.path = kv.substr(5);
    if (kv.rfind("host=", 0) == 0) s.host = kv.substr(5);
    if (kv.rfind("port=", 0) == 0) s.port = std::atoi(kv.c_str() + 5);
    pos = comma + 1;
  }
  return s;
}

Result<pid_t> SocketHolderPid(ino_t inode) {
  std::string want = SocketLink(inode);
  DIR* d = ::opendir("/proc");
  if (!d) return Status::IoError(std::string("opendir /proc: ") + std::strerror(errno));
  pid_t found = 0;
  while (dirent* e = ::readdir(d)) {
    if (!IsDigits(e->d_name)) continue;
    if (HoldsSocket(std::string("/proc/") + e->d_name, want)) {
      found = static_cast<pid_t>(std::atoi(e->d_name));
      break;
    }
  }
  ::closedir(d);
  if (found == 0) return Status::NotFound("no process holds " + want);
  return found;
}

Result<TctiServer> UnixSocketServer(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(pid_t peer, PeerCredPid(path));
  auto inode = UnixListenerInode(path);
  TctiServer s;
  if (!inode) {  // bound under another name (relative path): the peer pid, if it lives
    if (::kill(peer, 0) != 0 && errno == ESRCH) {
      return Status::NotFound("SO_PEERCRED of " + path + " names pid " + std::to_string(peer) +
                              ", which is gone, and /proc/net/unix has no listener of that name");
    }
    s.pid = peer;
    s.how = "peer of unix socket " + path + " (SO_PEERCRED)";
    return s;
  }
  if (HoldsSocket("/proc/" + std::to_string(peer), SocketLink(*inode))) {
    s.pid = peer;
    s.how = "peer of unix socket " + path + " (SO_PEERCRED, holds the listening socket)";
    return s;
  }
  // A daemon that forked after listen(): SO_PEERCRED names the parent.
  LIM_ASSIGN_OR_RETURN(s.pid, SocketHolderPid(*inode));
  s.how = "holder of the listening unix socket " + path + " (SO_PEERCRED named pid " + std::to_string(peer) + ")";
  return s;
}

Result<TctiServer> TcpLoopbackServer(int port) {
  auto inode = TcpListenerInode("/proc/net/tcp", port, false);
  if (!inode) inode = TcpListenerInode("/proc/net/tcp6", port, true);
  if (!inode) return Status::NotFound("no loopback listener on TCP port " + std::to_string(port));
  TctiServer s;
  LIM_ASSIGN_OR_RETURN(s.pid, SocketHolderPid(*inode));
  s.how = "listener on loopback TCP port " + std::to_string(port) + " (/proc/net/tcp inode " +
          std::to_string(*inode) + ")";
  return s;
}

Result<std::optional<TctiServer>> FindTctiServer(const std::string& tcti) {
  auto sock = ParseSocketTcti(tcti);
  if (!sock) return std::optional<TctiServer>();
  if (!sock->path.empty()) {
    LIM_ASSIGN_OR_RETURN(TctiServer s, UnixSocketServer(sock->path));
    return std::optional<TctiServer>(s);
  }
  if (!LocalHost(sock->host)) return std::optional<TctiServer>();  // another machine
  LIM_ASSIGN_OR_RETURN(TctiServer s, TcpLoopbackServer(sock->port));
  return std::optional<TctiServer>(s);
}

}  // namespace lim::tpm
