// lim-verifier: attests lim agents (docs/attestation.md "lim-verifier"): enrolls them,
// pulls evidence from each every --interval-ms, verifies it (src/attest) and keeps agents,
// policies and findings in the store; operators use its REST API over mutual TLS 1.3
// (`lim verifier …`) and GET /metrics (Prometheus). Settings: flags, or `key = value` lines
// in /etc/lim/verifier.conf (--config; the daemon's parser, errors name FILE:LINE; flags win).
// Exit: 0 stopped by SIGTERM/SIGINT, 2 bad usage or a start-up failure.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attest/store.h"
#include "daemon/config_file.h"
#include "verifier/alerts.h"
#include "verifier/allocator.h"
#include "verifier/verifier.h"
#include "verifier/web_auth.h"
#include "verifier/web_view.h"
#include "verifier/webhook.h"

namespace {

using namespace lim;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int Fail(const std::string& m) {
  std::fprintf(stderr, "lim-verifier: %s\n", m.c_str());
  return 2;
}

constexpr const char* kDefaultConfig = "/etc/lim/verifier.conf";

// Checks run while parsing, so a bad value in the config file is reported at its FILE:LINE.
CLI::Validator Check(std::function<std::string(const std::string&)> f, const std::string& name) {
  return CLI::Validator(std::move(f), "", name);
}
std::string CheckListen(const std::string& v) {
  if (v.size() > 2 && v.compare(v.size() - 2, 2, ":0") == 0) return "";  // any port
  auto hp = verifier::ParseHostPort(v);
  return hp.ok() ? "" : hp.status().message();
}
std::string CheckStore(const std::string& v) {
  if ((v.rfind("sqlite:", 0) == 0 && v.size() > 7) || v.rfind("postgresql://", 0) == 0 || v.rfind("postgres://", 0) == 0) {
    return "";
  }
  return "expected sqlite:PATH or postgresql://…, got \"" + v + "\"";
}

int Run(int argc, char** argv) {
  std::string store = "sqlite:/var/lib/lim/verifier.db";
  std::string listen = "127.0.0.1:8892";
  std::string cert, key, ca, ek_ca_dir, on_failure, webhook, webhook_ca;
  int on_failure_timeout_ms = 10000;
  std::vector<std::string> operator_cn;
  int interval_ms = 2000, threads = 2, agent_timeout_ms = 10000, max_body_kib = 16384, round_threads = 4,
      max_stalled_rounds = 64;
  int push_silence_ms = 0;
  std::string alert_syslog = "none";
  std::vector<std::string> metrics_cn;
  size_t history = attest::StoreOptions().history_per_agent;
  std::string web, web_users;
  bool hash_password = false;
  CLI::App app;
  app.description("lim-verifier: enrolls lim agents, attests them every interval and serves the operators' REST API "
                  "over mutual TLS 1.3.");
  app.add_option("--store", store,
                 "where agents, policies and findings are kept: sqlite:PATH (one verifier) or a PostgreSQL URI "
                 "postgresql://USER@HOST/DB (several verifiers sharing the agents, docs/fleet.md)")
      ->check(Check(CheckStore, "STORE"))
      ->capture_default_str();
  app.add_option("--listen", listen, "REST API (and /metrics) address ADDR:PORT (port 0: any, printed at start)")
      ->check(Check(CheckListen, "ADDR:PORT"))
      ->capture_default_str();
  // Required, but checked after parsing: --hash-password needs none of them.
  app.add_option("--cert", cert, "this verifier's certificate (PEM, ECDSA P-256; also its client certificate); required");
  app.add_option("--key", key, "its private key (PEM); required");
  app.add_option("--ca", ca, "CA certificates agents' and operators' certificates must chain to (PEM); required");
  app.add_option("--ek-ca-dir", ek_ca_dir, "directory of EK certificate CAs (TPM manufacturers)")->check(CLI::ExistingDirectory);
  app.add_option("--operator-cn", operator_cn, "certificate CNs allowed on the REST API (default: any the CA signed)");
  app.add_option("--interval-ms", interval_ms, "time between two rounds of one agent")
      ->check(CLI::Range(100, 86400000))
      ->capture_default_str();
  app.add_option("--agent-timeout-ms", agent_timeout_ms, "longest wait for one agent's answer")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--round-threads", round_threads,
                 "threads running rounds at once, besides rounds stalled on their agents (--max-stalled-rounds)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--max-stalled-rounds", max_stalled_rounds,
                 "rounds whose agent has not answered for half an interval (100 ms-1 s) get a thread of their own "
                 "beside --round-threads, up to this many at once (0: a stalled agent holds a round thread)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--push-silence-ms", push_silence_ms,
                 "a push agent that posts no evidence for this long turns unreachable (0: 3 x interval + agent "
                 "timeout)")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  app.add_option("--history", history, "findings kept per agent (the oldest go first)")
      ->check(CLI::Range(size_t{1}, attest::kMaxHistoryPerAgent))
      ->capture_default_str();
  app.add_option("--on-failure", on_failure,
                 "executable run (no shell) when an agent turns failed: the failure lines as arguments, "
                 "LIM_AGENT, LIM_REASON, LIM_FINDING in its environment")
      ->check(Check(
          [](const std::string& v) { return ::access(v.c_str(), X_OK) == 0 ? "" : v + " is not an executable file"; },
          "PATH"));
  app.add_option("--on-failure-timeout-ms", on_failure_timeout_ms, "longest run of --on-failure (then killed)")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--webhook", webhook,
                 "https:// URL a JSON document is POSTed to when an agent's state changes (queued, retried with "
                 "backoff)")
      ->check(Check(
          [](const std::string& v) {
            auto u = verifier::ParseWebhookUrl(v);
            return u.ok() ? std::string() : u.status().message();
          },
          "URL"));
  app.add_option("--webhook-ca", webhook_ca, "CA file for the --webhook receiver's certificate (default: --ca)")
      ->check(CLI::ExistingFile);
  app.add_option("--alert-syslog", alert_syslog,
                 "syslog facility of the state-change alerts: none, daemon, user, auth, authpriv, local0-local7")
      ->check(Check(
          [](const std::string& v) {
            auto f = verifier::SyslogFacility(v);
            return f.ok() ? std::string() : f.status().message();
          },
          "FACILITY"))
      ->capture_default_str();
  app.add_option("--metrics-cn", metrics_cn,
                 "certificate CN allowed to GET /metrics without being an operator (a Prometheus scraper; repeat "
                 "for several)");
  app.add_option("--threads", threads, "REST server threads")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--max-body-kib", max_body_kib, "largest REST request body (policies)")
      ->check(CLI::Range(1, 262144))
      ->capture_default_str();
  app.add_option("--web", web,
                 "serve the read-only web view on ADDR:PORT (port 0: any, printed at start): browsers with an "
                 "operator certificate, or operators of --web-users after a login (docs/verifier.md)");
  app.add_option("--web-users", web_users,
                 "file of web view operators, one \"NAME pbkdf2-sha256:ITER:SALT:HASH\" a line (--hash-password)");
  app.add_flag("--hash-password", hash_password,
               "read a password on stdin, print its --web-users hash (PBKDF2-HMAC-SHA256) and exit");
  bool allocator = false;
  app.add_flag("--allocator", allocator,
               "print the allocator that serves malloc in this binary (jemalloc unless built without it) and exit");
  app.footer(
      "Example:\n"
      "  lim-verifier --store sqlite:/var/lib/lim/verifier.db --listen 0.0.0.0:8892 --cert v.pem --key v.key --ca ca.pem\n"
      "  lim-verifier --store 'postgresql://lim@db.example/lim?sslmode=verify-full' …   (one of several)\n"
      "  lim verifier add web1 10.0.0.5:8891 --verifier 127.0.0.1:8892 --cert op.pem --key op.key --ca ca.pem\n"
      "Files: /etc/lim/verifier.conf (settings, key = value; --config).\n"
      "Exit: 0 stopped by SIGTERM/SIGINT, 2 bad usage or a start-up failure.\n"
      "More: man lim-verifier (docs/man/lim-verifier.8), docs/verifier.md, docs/attestation.md.");
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
    std::fprintf(stderr, "lim-verifier: %s\nRun with --help for more information.\n",
                 daemon::DescribeParseError(app, e).c_str());
    return 2;
  }
  if (allocator) {
    std::printf("%s\n", verifier::AllocatorDescription().c_str());
    return 0;
  }
  if (hash_password) {
    std::string password;
    std::getline(std::cin, password);
    if (password.empty()) return Fail("--hash-password: empty password on stdin");
    auto h = verifier::web::HashPassword(password);
    if (!h.ok()) return Fail(h.status().message());
    std::printf("%s\n", h->c_str());
    return 0;
  }
  if (cert.empty() || key.empty() || ca.empty()) return Fail("--cert, --key and --ca are required");
  if (!web_users.empty()) {
    if (web.empty()) return Fail("--web-users without --web");
    // Checked before anything starts: a typo in the file is a start-up error naming its line.
    if (auto u = verifier::web::WebUsers::Load(web_users); !u.ok()) return Fail("--web-users: " + u.status().message());
  }
  auto hp = verifier::ParseHostPort(listen);
  // Port 0 is allowed here (the kernel picks one); ParseHostPort wants 1-65535.
  std::string host;
  uint16_t port = 0;
  if (listen.size() > 2 && listen.compare(listen.size() - 2, 2, ":0") == 0) {
    host = listen.substr(0, listen.size() - 2);
  } else if (!hp.ok()) {
    return Fail("--listen: " + hp.status().message());
  } else {
    host = hp->first;
    port = hp->second;
  }
  attest::StoreOptions so;
  so.history_per_agent = history;
  auto db = attest::OpenStore(store, so);
  if (!db.ok()) return Fail("--store: " + db.status().message());
  verifier::VerifierOptions o;
  o.tls = {cert, key, ca};
  o.ek_ca_dir = ek_ca_dir;
  o.interval = std::chrono::milliseconds(interval_ms);
  o.agent_timeout = std::chrono::milliseconds(agent_timeout_ms);
  o.round_threads = round_threads;
  o.max_stalled_rounds = max_stalled_rounds;
  o.push_silence = std::chrono::milliseconds(push_silence_ms);
  o.operator_cn = operator_cn;
  o.on_failure = on_failure;
  o.on_failure_timeout = std::chrono::milliseconds(on_failure_timeout_ms);
  o.webhook = webhook;
  o.webhook_ca = webhook_ca;
  o.alert_syslog_facility = *verifier::SyslogFacility(alert_syslog);  // checked while parsing
  o.metrics_cn = metrics_cn;
  o.server.address = host;
  o.server.port = port;
  o.server.threads = threads;
  o.server.limits.max_body_bytes = static_cast<uint64_t>(max_body_kib) << 10;
  auto v = verifier::Verifier::Create(std::move(*db), o);
  if (!v.ok()) return Fail(v.status().message());
  std::unique_ptr<verifier::WebView> view;
  if (!web.empty()) {
    verifier::WebOptions wo;
    wo.tls = o.tls;
    wo.operator_cn = operator_cn;
    wo.users_file = web_users;
    size_t colon = web.rfind(':');
    auto whp = verifier::ParseHostPort(web);
    if (colon != std::string::npos && web.substr(colon) == ":0") {
      wo.server.address = web.substr(0, colon);
    } else if (!whp.ok()) {
      return Fail("--web: " + whp.status().message());
    } else {
      wo.server.address = whp->first;
      wo.server.port = whp->second;
    }
    wo.server.threads = 2;
    auto w = verifier::WebView::Create(**v, wo);
    if (!w.ok()) return Fail("--web: " + w.status().message());
    view = std::move(*w);
  }

  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  if (auto st = (*v)->Start(); !st.ok()) return Fail(st.message());
  // The port line is what scripts and tests wait for.
  std::printf("lim-verifier: listening on %s:%u\n", host.c_str(), (*v)->port());
  if (view) {
    if (auto st = view->Start(); !st.ok()) return Fail("--web: " + st.message());
    std::printf("lim-verifier: web view on https://%s:%u/\n", view->server_address().c_str(), view->port());
  }
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (view) view->Stop();
  (*v)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail("internal error");
  }
}
