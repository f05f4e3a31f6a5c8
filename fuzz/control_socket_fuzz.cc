// libFuzzer target for limd's control socket channel end to end: a ControlSocket (started
// once, on a private path) serves the input as its status document; QueryControlSocket
// reads it back (must be byte-identical); StatusReport::Parse, Text and ToJson (what
// `lim status` does with any reply, which it cannot trust) must end in text or a clean
// error. limd reads no request from a client — a connection is the request — so the
// parsing on this channel is the reply's.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/control_socket.h"
#include "control/control_client.h"
#include "control/status_report.h"

namespace {

std::mutex g_mu;
std::string g_reply;

struct Server {
  std::string path;
  std::unique_ptr<lim::daemon::ControlSocket> socket;
  Server() {
    char dir[] = "/tmp/lim-ctlfuzz.XXXXXX";
    if (!::mkdtemp(dir)) std::abort();
    path = std::string(dir) + "/limd.sock";
    lim::daemon::ControlSocketOptions o;
    o.path = path;
    o.allowed_uid = ::getuid();
    auto s = lim::daemon::ControlSocket::Open(
        o,
        [] {
          std::lock_guard<std::mutex> lk(g_mu);
          return g_reply;
        },
        nullptr);
    if (!s.ok()) std::abort();
    socket = std::move(s).value();
    socket->Start();
  }
  ~Server() {
    socket.reset();  // stops and removes the socket file
    ::rmdir(path.substr(0, path.rfind('/')).c_str());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Server server;
  std::string input(reinterpret_cast<const char*>(data), size);
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_reply = input;
  }
  auto got = lim::control::QueryControlSocket(server.path, 5000);
  if (!got.ok() || *got != input) std::abort();
  auto report = lim::control::StatusReport::Parse(input, "fuzz");
  if (!report.ok()) return 0;
  for (bool running : {true, false}) {
    report->running = running;
    if (report->Text("/var/lib/lim").empty()) std::abort();
  }
  (void)report->ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
