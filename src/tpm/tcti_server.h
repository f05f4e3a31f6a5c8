// TctiServer: which local process serves a socket TCTI (swtpm, mssim) — the process limd
// must treat like itself (docs/limd.md "The TPM server"). A unix socket's server is the
// peer of a connection to it (SO_PEERCRED, checked against the process that holds the
// listening socket, since a daemon may fork after listen()); a TCP server on loopback is
// the holder of the listening socket's inode (/proc/net/tcp{,6} → /proc/*/fd). A device
// (/dev/tpmrm0: the kernel resource manager is no process), tabrmd or a remote host has
// no local server. Reads /proc; thread-safe; never touches the TCTI's own connection.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/status.h"

namespace lim::tpm {

struct TctiServer {
  pid_t pid = 0;    // a thread-group id
  std::string how;  // e.g. "peer of unix socket /run/lim/swtpm/sock (SO_PEERCRED)"
};

// The socket a "swtpm:" or "mssim:" TCTI string names: a unix path, or host and port
// (swtpm/mssim default: localhost:2321). nullopt for every other TCTI.
struct TctiSocket {
  std::string path;  // unix socket, or empty
  std::string host = "localhost";
  int port = 2321;
};
std::optional<TctiSocket> ParseSocketTcti(const std::string& tcti);

// The process holding the socket with this inode (scans /proc/*/fd); NotFound if none.
Result<pid_t> SocketHolderPid(ino_t inode);
// The listening unix socket bound to path (/proc/net/unix) and the pid serving it.
Result<TctiServer> UnixSocketServer(const std::string& path);
// The process listening on a loopback or wildcard address at this TCP port.
Result<TctiServer> TcpLoopbackServer(int port);

// The local server process of a TCTI: nullopt when the TCTI has none (device, tabrmd, a
// remote host); an error when it should have one but it cannot be found.
Result<std::optional<TctiServer>> FindTctiServer(const std::string& tcti);

}  // namespace lim::tpm
