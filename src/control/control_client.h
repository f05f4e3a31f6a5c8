// The client side of limd's control socket (daemon/control_socket.h serves it): a unix
// stream socket that sends one status document per connection and closes. `lim status`
// uses this; limd uses it only to tell a live socket from a stale one. Whatever answers on
// the path is not trusted: the reply is capped in size and in total time. Stateless
// functions; thread-safe.
#pragma once

#include <sys/un.h>

#include <cstddef>
#include <string>

#include "base/status.h"

namespace lim::control {

inline constexpr const char* kDefaultControlSocket = "/run/lim/limd.sock";

// A reply is a status document of a few hundred bytes.
inline constexpr size_t kMaxControlReply = 1u << 20;

// The socket address for path (InvalidArgument when empty or too long for sun_path).
Result<sockaddr_un> ControlSocketAddress(const std::string& path);

// Reads the one document a control socket sends, at most kMaxControlReply bytes within
// timeout_ms in all. Errors: kUnavailable when nothing listens, kIoError otherwise.
Result<std::string> QueryControlSocket(const std::string& path, int timeout_ms = 2000);

}  // namespace lim::control
