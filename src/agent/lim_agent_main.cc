// lim-agent: serves a host's attestation evidence to a lim verifier over mutual TLS 1.3
// (docs/agent.md): identity and credential activation for enrollment, and per round a
// quote for the verifier's nonce, the measurement list from entry N, the firmware event log,
// boot_id and limd's liveness. Pull mode listens (--port); push mode (--push HOST:PORT)
// connects out and listens nowhere. Its own process, never inside limd: a bug in a network
// server must not take down the daemon every exec waits on.
// Exit: 0 stopped by SIGTERM/SIGINT, 2 bad usage or a start-up failure.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/list_tail.h"
#include "agent/push.h"
#include "daemon/config_file.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/tls.h"

namespace {

using namespace lim;

struct Flags {
  std::string cert, key, ca;
  std::string agent_id;
  std::vector<std::string> verifier_cn;
  std::string listen = "0.0.0.0";
  int port = 8891;
  std::string push;
  int push_interval_ms = 2000;
  std::string tcti;
  std::string ek = "ecc";
  std::string ak_dir = "/var/lib/lim/agent";
  std::string list = "/var/lib/lim/binary_runtime_measurements";
  bool kernel_list = false;
  std::string event_log = "/sys/kernel/security/tpm0/binary_bios_measurements";
  std::string control_socket = "/run/lim/limd.sock";
  int threads = 2;
  int max_body_kib = 64;
  int request_timeout_ms = 30000;
  int tpm_timeout_ms = 10000;
};

constexpr const char* kDefaultConfig = "/etc/lim/agent.conf";

// --push HOST:PORT → host, port (nullopt: malformed). Checked while parsing, so a bad value in
// the config file is reported at its FILE:LINE.
std::optional<std::pair<std::string, uint16_t>> ParsePush(const std::string& v) {
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 6 < v.size()) return std::nullopt;
  std::string digits = v.substr(colon + 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  int port = std::atoi(digits.c_str());
  if (port < 1 || port > 65535) return std::nullopt;
  return std::make_pair(v.substr(0, colon), static_cast<uint16_t>(port));
}

void AddOptions(CLI::App& app, Flags& f) {
  app.description(
      "lim-agent: serves this host's attestation evidence (TPM quote, measurement list, firmware event log, "
      "boot_id, limd liveness) to a lim verifier over mutual TLS 1.3.");
  app.add_option("--cert", f.cert, "this agent's certificate (PEM, ECDSA P-256)")->required();
  app.add_option("--key", f.key, "its private key (PEM)")->required();
  app.add_option("--ca", f.ca, "CA certificates the verifier's certificate must chain to (PEM)")->required();
  app.add_option("--agent-id", f.agent_id, "this host's name at the verifier (default: the host name)")
      ->check(CLI::Validator(
          [](const std::string& v) { return v.empty() || v.size() > 255 ? "must be 1-255 characters" : ""; }, "ID"));
  app.add_option("--verifier-cn", f.verifier_cn,
                 "pull mode: certificate CN allowed to ask (repeat for several; default: any certificate from --ca)");
  app.add_option("--listen", f.listen, "pull mode: address to listen on")->capture_default_str();
  app.add_option("--port", f.port, "pull mode: TCP port (0: any free port, printed at start)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--push", f.push, "push mode: verifier HOST:PORT to connect to (no listening port)")
      ->check(CLI::Validator(
          [](const std::string& v) { return ParsePush(v) ? "" : "expected HOST:PORT (port 1-65535), got " + v; },
          "HOST:PORT"));
  app.add_option("--push-interval-ms", f.push_interval_ms, "push mode: time between rounds")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--tpm", f.tcti, "TCTI of the TPM (default $LIM_TCTI, else device:/dev/tpmrm0)");
  app.add_option("--ek", f.ek, "endorsement key the AK lives under")->check(CLI::IsMember({"rsa", "ecc"}))->capture_default_str();
  app.add_option("--ak-dir", f.ak_dir, "where the AK is kept (0700, created on first start)")->capture_default_str();
  app.add_option("--list", f.list, "limd's measurement list")->capture_default_str();
  app.add_flag("--kernel-list", f.kernel_list, "serve the kernel's IMA list (securityfs) instead of limd's");
  app.add_option("--event-log", f.event_log, "firmware event log, or none")->capture_default_str();
  app.add_option("--control-socket", f.control_socket, "limd's control socket (liveness), or none")->capture_default_str();
  app.add_option("--threads", f.threads, "server threads")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--max-body-kib", f.max_body_kib, "largest request body accepted")->check(CLI::Range(1, 16384))->capture_default_str();
  app.add_option("--request-timeout-ms", f.request_timeout_ms, "longest wait for one request or between requests")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--tpm-timeout-ms", f.tpm_timeout_ms, "longest wait for one TPM command")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.footer(
      "Examples:\n"
      "  lim-agent --cert agent.pem --key agent.key --ca ca.pem --tpm swtpm:path=/run/lim/swtpm/sock\n"
      "  lim-agent --cert agent.pem --key agent.key --ca ca.pem --push verifier.example:8892\n"
      "Files: /etc/lim/agent.conf (settings, key = value), AK in --ak-dir.\n"
      "Exit: 0 stopped by SIGTERM/SIGINT, 2 bad usage or a start-up failure.\n"
      "More: docs/agent.md.");
}

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

void Log(const std::string& m) { std::fprintf(stderr, "lim-agent: %s\n", m.c_str()); }

int Fail(const std::string& m) {
  Log(m);
  return 2;
}

int Run(int argc, char** argv) {
  Flags f;
  CLI::App app;
  AddOptions(app, f);
  daemon::AddConfigOption(&app, kDefaultConfig);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      std::ostringstream out, err;
      app.exit(e, out, err);
      std::fputs(out.str().c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "lim-agent: %s\nRun with --help for more information.\n", daemon::DescribeParseError(app, e).c_str());
    return 2;
  }
  if (f.agent_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    f.agent_id = host;
  }
  std::string push_host;
  uint16_t push_port = 0;
  if (!f.push.empty()) {
    auto hp = ParsePush(f.push);  // checked while parsing
    if (!hp) return Fail("--push: expected HOST:PORT, got " + f.push);
    push_host = hp->first;
    push_port = hp->second;
  }

  agent::AgentOptions ao;
  ao.agent_id = f.agent_id;
  ao.ek = f.ek == "ecc" ? tpm::EkType::kEcc : tpm::EkType::kRsa;
  ao.ak_dir = f.ak_dir;
  ao.allowed_peers = f.verifier_cn;
  ao.list_path = f.kernel_list ? agent::kKernelListPath : f.list;
  ao.list_source = f.kernel_list ? "kernel" : "limd";
  ao.event_log_path = f.event_log == "none" ? "" : f.event_log;
  ao.control_socket = f.control_socket == "none" ? "" : f.control_socket;
  tpm::OpenOptions to;
  to.call_timeout = std::chrono::milliseconds(f.tpm_timeout_ms);
  auto tpm = tpm::OpenTpm(f.tcti.empty() ? tpm::DefaultTcti() : f.tcti, to);
  if (!tpm.ok()) return Fail(tpm.status().message());
  auto agent = agent::Agent::Create(ao, std::move(*tpm));
  if (!agent.ok()) return Fail(agent.status().message());

  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  net::TlsConfig tc{f.cert, f.key, f.ca};
  if (!push_host.empty()) {
    auto tls = net::MakeClientTls(tc);
    if (!tls.ok()) return Fail(tls.status().message());
    net::ClientOptions co;
    co.host = push_host;
    co.port = push_port;
    co.request_timeout = std::chrono::milliseconds(f.request_timeout_ms);
    auto client = net::HttpsClient::Create(*tls, co);
    if (!client.ok()) return Fail(client.status().message());
    agent::PushOptions po;
    po.interval = std::chrono::milliseconds(f.push_interval_ms);
    agent::PushClient push(agent->get(), client->get(), po);
    std::thread watcher([&] {
      while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      push.Stop();
    });
    Log("push mode: agent " + f.agent_id + " to " + f.push);
    push.Run(Log);
    g_stop = true;
    watcher.join();
    return 0;
  }

  auto tls = net::MakeServerTls(tc);
  if (!tls.ok()) return Fail(tls.status().message());
  net::ServerOptions so;
  so.address = f.listen;
  so.port = static_cast<uint16_t>(f.port);
  so.threads = f.threads;
  so.limits.max_body_bytes = static_cast<uint64_t>(f.max_body_kib) << 10;
  so.request_timeout = std::chrono::milliseconds(f.request_timeout_ms);
  auto server = net::HttpsServer::Create(*tls, so);
  if (!server.ok()) return Fail(server.status().message());
  (*agent)->RegisterRoutes(**server);
  if (auto st = (*server)->Start(); !st.ok()) return Fail(st.message());
  // The port line is what scripts and tests wait for (with --port 0 the kernel picks).
  std::printf("lim-agent: agent %s listening on %s:%u\n", f.agent_id.c_str(), f.listen.c_str(), (*server)->port());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Every foreseen failure is a Status and a message; this is the last line of defence
  // (an allocation, a thread that cannot be had) so lim-agent never aborts with exit 134.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lim-agent: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "lim-agent: internal error: unknown exception\n");
  }
  return 2;
}
