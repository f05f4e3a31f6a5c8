// Verifier: the lim-verifier service (docs/attestation.md "lim-verifier"), built from the
// verifier core (src/attest) and the HTTPS transport (src/net). It enrolls pulled agents
// (identity → EK/AK checks → MakeCredential → the agent's ActivateCredential → secret
// compared), runs the attestation loop (every interval per agent: a fresh nonce, evidence
// from entry N, attest::Verify, state and findings written in one transaction, failures
// logged one line each), and serves the operators' REST API on its own mTLS socket — with
// GET /metrics (Prometheus text, metrics.h) on the same socket. A change of an agent's
// state is an alert (alerts.h): the --webhook JSON and a syslog line, both queued.
//
// Threading: one loop thread finds the agents due and queues them; round_threads threads
// run the rounds (one round per agent at a time, each over the agent's own kept
// HttpsClient: no handshake per round). A round blocks its thread while it waits for the
// agent; once it has waited stall_after, the loop starts another round thread beside it (up
// to max_stalled_rounds), so agents that stall, however many up to that bound, delay no
// other agent's rounds; a thread beyond round_threads that is not stalled returns after
// its round. A pull agent found unreachable is asked again after UnreachableBackoff, from a
// slow lane: threads take agents that answered first, and at most max_stalled_rounds
// rounds of unreachable agents run at once, so a thousand dark hosts cannot take the threads
// the others need. The loop also turns a push agent that went silent unreachable. REST handlers run on the server's
// threads. The agent table and the queue are guarded by mu_; a Worker is used by one thread
// at a time (its own mutex).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "attest/enroll.h"
#include "attest/leases.h"
#include "attest/runtime_policy.h"
#include "attest/store.h"
#include "base/status.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "net/tls.h"
#include "verifier/alerts.h"
#include "verifier/failure_hook.h"
#include "verifier/metrics.h"
#include "verifier/webhook.h"

namespace lim::verifier {

struct VerifierOptions {
  net::TlsConfig tls;            // this verifier's certificate: server (REST) and client (agents)
  std::string ek_ca_dir;         // EK certificate CAs; empty: none (only --allow-tofu agents)
  std::chrono::milliseconds interval{2000};
  std::vector<uint16_t> banks;   // PCR banks quoted; empty: sha256
  net::ServerOptions server;     // the REST socket
  std::vector<std::string> operator_cn;  // REST clients allowed (certificate CN); empty: any the CA signed
  std::chrono::milliseconds agent_timeout{10000};
  // Threads running rounds (1-64): how many rounds run at once besides those stalled on
  // their agents (max_stalled_rounds), which get threads of their own.
  int round_threads = 4;
  // Rounds whose agent has not answered for stall_after (half an interval, 100 ms-1 s) no
  // longer count against round_threads: a thread is started beside them, up to this many
  // at once (0-1024; 0: a stalled agent holds one of the round_threads until its timeout).
  int max_stalled_rounds = 64;
  // A push agent (enrolled) that posted no evidence for this long turns unreachable; zero:
  // 3 × interval + agent_timeout.
  std::chrono::milliseconds push_silence{0};
  // --on-failure: an executable run when an agent turns failed (failure_hook.h); empty: none.
  std::string on_failure;
  std::chrono::milliseconds on_failure_timeout{10000};
  // This process's name in the store's lease rows (several verifiers on one PostgreSQL
  // database, attest/leases.h); empty: "HOST/PID/RANDOM".
  std::string lease_owner;
  // --webhook: an https:// URL the verdict JSON is POSTed to when an agent turns failed
  // (webhook.h); empty: none. webhook_ca checks the receiver (empty: tls.ca_file).
  std::string webhook;
  std::string webhook_ca;
  // Syslog alerts on state changes (alerts.h): a LOG_* facility, or -1 for none. syslog_sink
  // replaces syslog(3) (tests).
  int alert_syslog_facility = -1;
  SyslogAlerts::Sink syslog_sink;
  // Certificate CNs allowed to GET /metrics besides the operators (a Prometheus scraper's
  // certificate then needs no operator rights).
  std::vector<std::string> metrics_cn;
  // Where log lines go (default stderr); one call per line.
  std::function<void(const std::string&)> log;
};

// One row of an agent's integrated table (`lim verifier show --entries`, the web view):
// firmware and IMA rows numbered with one running index.
struct EntryRow {
  size_t index = 0;
  std::string source;  // "firmware" or "ima"
  uint32_t pcr = 0;
  uint32_t type = 0;   // firmware event type (0 for IMA rows)
  std::string digest;  // hex
  std::string event;   // tagged event data ("[IMA:/usr/bin/x]")
  // A finding's reason code, "ok", "pending" (received, not yet covered by a quote) or
  // "unverified" (a firmware log not accepted yet).
  std::string verdict;
};

class Verifier {
 public:
  static Result<std::unique_ptr<Verifier>> Create(std::unique_ptr<attest::Store> store, VerifierOptions options);
  ~Verifier();  // Stop()

  // The REST server and the loop. Agents already in the store are attested again.
  Status Start();
  void Stop();
  uint16_t port() const;

  // Enrollment of a pulled agent at address "HOST:PORT" (or, address "push", permission for
  // the agent to enroll itself over /v1/push/*, known by its certificate's CN) with the runtime policy named (it
  // must exist; empty: none yet — every entry then fails); errors say which check failed.
  Result<attest::AgentRecord> Enroll(const std::string& id, const std::string& address, bool allow_tofu,
                                     const std::string& policy = {});
  Status Remove(const std::string& id);
  // One round for one agent now (tests; the loop calls it when the agent is due).
  Status RunRound(const std::string& id);
  // The agent's integrated table as of its last round (empty before one). Thread-safe; does
  // not wait for a round in progress.
  std::vector<EntryRow> Entries(const std::string& id);

  attest::Store& store() { return *store_; }

  // The Prometheus exposition (GET /metrics): agents by state, rounds, round and store
  // latency, failures by reason, state changes, the alert queues' deliveries and drops.
  std::string MetricsText();
  // Where the rounds' CPU time goes (thread CPU clock, ns, summed since start), served as
  // GET /v1/stats: a round's cost split into store reads (agent record, policy), evidence
  // JSON, Verify (its quote, list and policy parts), the show table, store writes, and for
  // push the request call that hands out the nonce. Relaxed atomics: totals, not a snapshot.
  // The rounds' CPU by part (GET /v1/stats), measured with the thread's CPU clock on the
  // first kCostSample rounds and push requests and then on every kCostSample-th: the clock
  // is a system call per read, and a measured round reads it ~18 times.
  struct Costs {
    static constexpr uint64_t kCostSample = 16;
    // Whether this round (or request) is one to measure; ticks: round_ticks or request_ticks.
    bool Sample(std::atomic<uint64_t>& ticks) {
      uint64_t t = ticks.fetch_add(1, std::memory_order_relaxed);
      return t < kCostSample || t % kCostSample == 0;
    }
    std::atomic<uint64_t> round_ticks{0}, request_ticks{0};
    std::atomic<uint64_t> rounds{0}, requests{0}, sampled_rounds{0}, sampled_requests{0};
    std::atomic<uint64_t> store_read_ns{0}, parse_ns{0}, verify_ns{0}, quote_ns{0}, list_ns{0}, policy_ns{0},
        rows_ns{0}, store_write_ns{0}, round_ns{0}, request_ns{0}, fetch_ns{0};
  };
  const Costs& costs() const { return costs_; }

  struct Worker;

 private:
  Verifier() = default;
  void Loop();
  // One thread running rounds. waiting_since: steady-clock ns since its round began waiting
  // for the agent's answer (0: not waiting), written by the thread, read by the loop.
  struct RoundSlot {
    std::thread thread;
    std::atomic<int64_t> waiting_since{0};
    bool done = false;  // guarded by mu_: returned, the loop joins it
    bool slow = false;  // guarded by mu_: running a round of an unreachable agent (counts as stalled)
  };
  void RoundThread(RoundSlot* slot);
  // With mu_ held: starts one more round thread; false when none could be had.
  bool AddRoundThreadLocked();
  // With mu_ held: round threads not done whose round has waited on its agent for less than
  // stall_after_ (or is not waiting).
  size_t UnstalledLocked(int64_t now_ns) const;
  // With mu_ held: joins the round threads that returned.
  void ReapRoundThreadsLocked();
  // A push agent silent for push_silence: one unreachable finding (until it posts again).
  Status MarkSilent(Worker& w);
  void RegisterRoutes();
  void RegisterPushRoutes();
  // The agent's row: from the store, or as this verifier last read or wrote it. A kept row
  // is used while the lease it was read under holds (on an unshared store: always); every
  // round is written against its version (store.h), so a row someone else changed meanwhile
  // refuses the round and is read again, and a row is read once per change, not per round.
  // nullptr: no such agent. The row lives in w.record, lent, not copied: a round used to
  // copy the whole record with its state twice. Caller holds w.mu; valid until w.record is
  // next reset or loaded.
  Result<const attest::AgentRecord*> LoadAgent(Worker& w);
  // After a round's write: the kept row takes the new state, status (failed stays failed, as
  // in the store) and version. A failed write drops the row and what to ask next: the next
  // round reads the row and asks from the state as stored. Returns written.ok().
  bool Remember(Worker& w, const Result<int64_t>& written, attest::AgentState&& state, attest::AgentStatus status);
  // A REST call changed the agent's row: the next LoadAgent reads it again.
  void MarkStale(const std::string& id);
  // The agent's AK (parsed again when the row's AK changed: enrolled again, maybe through
  // another verifier) and policy into the worker.
  Status Prepare(Worker& w, const attest::AgentRecord& rec);
  // The runtime policy named, parsed once and shared by every agent assigned to it (a
  // 10,000-path policy is megabytes parsed: not one copy per agent, not one parse per
  // round). Its text is read from the store again at most once per interval (another
  // verifier may have replaced it) and at once after a POST /v1/policies here. Empty name
  // or a policy no longer stored: the empty policy (every entry fails).
  Result<std::shared_ptr<const attest::RuntimePolicy>> PolicyFor(const std::string& name);
  Result<std::unique_ptr<net::HttpsClient>> Connect(const std::string& address);
  std::shared_ptr<Worker> WorkerFor(const std::string& id);
  // WorkerFor(rec.id) set up from the stored record (push or pull, push silence state);
  // !wait: left as it is when another thread uses it right now.
  std::shared_ptr<Worker> AdoptWorker(const attest::AgentRecord& rec, bool wait = true);
  void Log(const std::string& line);
  void LogFindings(Worker& w, const std::vector<attest::Finding>& findings);
  // What Record counts: a round's verdict ("attested", "failed", "unreachable", "retry";
  // null: not a round, a push agent's silence), when it started, and the cause of a change.
  struct RoundEnd {
    const char* verdict = nullptr;
    std::chrono::steady_clock::time_point started{};
    const char* cause = "round";
  };
  // store_->WriteRound on basis (the lease's fence, the row's version), its metrics, then the
  // findings' log lines (only once written: a refused round logs nothing), then
  // the alerts when the agent's state changed and the --on-failure command when it turned
  // failed. Returns the row's new version.
  Result<int64_t> Record(Worker& w, const attest::RoundBasis& basis, attest::AgentStatus before,
                         const attest::AgentState& state, attest::AgentStatus status,
                         const std::vector<attest::Finding>& findings, const RoundEnd& end);
  void Alert(StateChange change);
  // Which agents' states this process reports in lim_verifier_agents (guarded by mu_).
  bool ReportsLocked(const std::string& id, const Worker& w) const;

  VerifierOptions options_;
  Costs costs_;
  std::unique_ptr<attest::Store> store_;
  std::shared_ptr<net::TlsContext> client_tls_;
  std::unique_ptr<FailureHook> hook_;  // before server_: destroyed after the threads that call it stop
  std::unique_ptr<Webhook> webhook_;   // likewise
  std::unique_ptr<SyslogAlerts> syslog_;  // likewise
  // Metrics (metrics.h; thread-safe on their own).
  CounterFamily rounds_;         // by verdict
  CounterFamily failures_;       // failure findings written, by reason
  CounterFamily changes_;        // state changes, by the new state
  Histogram round_seconds_{RoundLatencyBounds()};
  Histogram store_write_seconds_{StoreLatencyBounds()};
  Histogram store_read_seconds_{StoreLatencyBounds()};
  std::unique_ptr<net::HttpsServer> server_;
  std::unique_ptr<attest::LeaseKeeper> leases_;  // which agents this process attests (shared store)
  struct CachedPolicy {
    std::string text;
    std::shared_ptr<const attest::RuntimePolicy> policy;
    std::chrono::steady_clock::time_point checked;
  };
  std::mutex policies_mu_;
  std::map<std::string, CachedPolicy> policies_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Worker>> workers_;
  bool stop_ = false;
  bool rescan_ = false;  // an agent was enrolled: the loop scans at once, not at its next pass
  std::deque<std::shared_ptr<Worker>> queue_;  // due, waiting for a round thread
  std::deque<std::shared_ptr<Worker>> slow_queue_;  // due, but unreachable last time (RoundThread)
  size_t slow_running_ = 0;  // rounds of slow_queue_'s agents in progress (guarded by mu_)
  std::condition_variable queue_cv_;
  std::thread loop_;
  std::list<std::unique_ptr<RoundSlot>> round_slots_;  // guarded by mu_
  std::chrono::nanoseconds stall_after_{};
  std::atomic<uint64_t> spare_threads_started_{0};
};

// When a pull agent found unreachable `streak` rounds in a row is asked again: the
// interval, doubled for each further unreachable round, at most max(interval, 60 s).
std::chrono::milliseconds UnreachableBackoff(std::chrono::milliseconds interval, int streak);

// "HOST:PORT" → host, port; the error names the text.
Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text);

}  // namespace lim::verifier
