#include "verifier/verifier.h"

#include <openssl/rand.h>
#include <sys/resource.h>
#include <tss2/tss2_tpm2_types.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "attest/evidence_json.h"
#include "attest/round.h"
#include "attest/verdict.h"
#include "base/cpu_time.h"
#include "base/hex.h"
#include "crypto/hash_algo.h"
#include "ima/list_format.h"
#include "ima/list_reader.h"
#include "tcg/describe.h"
#include "tcg/event_log.h"
#include "tpm/key.h"

namespace lim::verifier {

using nlohmann::json;

// The per-agent part of the loop: the kept connection, the enrolled AK, the parsed policy
// (parsed again only when its text changes) and what to ask next.
struct Verifier::Worker {
  std::mutex mu;
  std::string id;
  std::string address;
  std::unique_ptr<net::HttpsClient> client;
  std::optional<tpm::PublicKey> ak;
  Bytes ak_public;  // the TPM2B_PUBLIC `ak` was parsed from
  // The assigned policy, shared with every agent that has the same one (PolicyFor).
  std::shared_ptr<const attest::RuntimePolicy> policy;
  std::optional<attest::EvidenceRequest> next;
  int64_t fence = -1;  // of the lease the last round ran under; another: forget `next`
  // The agent's row as this verifier last read or wrote it (LoadAgent), kept while the lease
  // it was read under (record_fence) holds; rounds are written against its version. `stale`
  // is set by the REST calls that change the row (acknowledge, assign) without holding mu.
  std::optional<attest::AgentRecord> record;
  std::optional<int64_t> record_fence;
  std::atomic<bool> stale{false};
  std::chrono::steady_clock::time_point due{};
  // Pull rounds in a row that found the agent unreachable: it is asked again after
  // UnreachableBackoff, on the slow lane (Verifier::RoundThread).
  int unreachable_streak = 0;
  // The kept connection's counters after the last round (read by the REST API without mu).
  std::atomic<uint64_t> handshakes{0}, requests{0};
  // The last round's log lines: a failure that persists round after round (a list that
  // does not replay) is logged when it appears, not every interval.
  std::set<std::string> last_lines;
  // Queued or running on a round thread (guarded by Verifier::mu_, not mu).
  bool busy = false;
  // The agent's state as this process last wrote or read it (an attest::AgentStatus; -1:
  // not known yet), for lim_verifier_agents.
  std::atomic<int> status{-1};
  // Push mode: the agent connects to us (address empty in the store); the loop only checks
  // that it keeps posting: last_push is its last evidence (or enrollment, or our start).
  bool push = false;
  bool push_enrolled = false;
  bool push_silent = false;  // unreachable recorded for the current silence
  std::chrono::steady_clock::time_point last_push{};
  std::optional<attest::Identity> push_identity;  // sent at /v1/push/enroll, awaiting activation
  bool push_tofu = false;
  Bytes push_secret;
  Bytes push_nonce;  // of the request handed out, single use

  // The integrated table of `show --entries` (docs/attestation.md): the firmware log's rows
  // from the last evidence that carried one, and the last kMaxImaRows list entries seen,
  // each with the reason of the finding that named it. Guarded by rows_mu (not mu: a round
  // holds mu for the agent's whole answer time, a show must not wait for it).
  struct ImaRow {
    tcg::TableRow row;
    std::string verdict;  // a finding's reason code; empty: none
  };
  std::mutex rows_mu;
  std::vector<tcg::TableRow> boot_rows;
  std::map<uint64_t, std::string> boot_verdicts;  // event index → reason
  bool boot_verified = false;
  std::map<uint64_t, ImaRow> ima_rows;            // list index → row
  uint64_t verified_entries = 0;                  // entries [0, n) verified
};

namespace {

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The CPU time since the last call (a round's parts, one after the other), on the rounds
// Verifier::Costs::Sample picked; on the others no clock is read and every lap is 0. A
// thread's CPU clock has no vDSO: each read is a system call, 1–6 µs on this project's VM,
// and a round read it about 18 times.
struct Lap {
  explicit Lap(bool measure) : on(measure), start(measure ? ThreadCpuNs() : 0), last(start) {}
  bool on;
  uint64_t start;
  uint64_t last;
  uint64_t operator()() {
    if (!on) return 0;
    uint64_t now = ThreadCpuNs(), d = now - last;
    last = now;
    return d;
  }
  uint64_t total() const { return last - start; }
};

void Add(std::atomic<uint64_t>& to, uint64_t v) {
  if (v) to.fetch_add(v, std::memory_order_relaxed);
}

void AddVerify(Verifier::Costs& c, const attest::RoundCpu& cpu, uint64_t verify_ns) {
  Add(c.verify_ns, verify_ns);
  Add(c.quote_ns, cpu.quote_ns);
  Add(c.list_ns, cpu.list_ns);
  Add(c.policy_ns, cpu.policy_ns);
}

constexpr size_t kMaxImaRows = 1000;

// The loop's shortest time between two scans of the agents (Verifier::Loop).
constexpr std::chrono::milliseconds kScanGap{10};

bool IsFirmwareReason(attest::Reason r) {
  if (r == attest::Reason::kBootComponent || r == attest::Reason::kSecureBoot) return true;  // name firmware events
  return std::string_view(attest::ReasonName(r)).rfind("firmware-", 0) == 0;
}

// The rows of one round's evidence and the verdicts of its findings into the worker's table.
// Costs one more parse of the entries the round received (bounded by the tail's size).
void NoteRows(Verifier::Worker& w, const attest::Evidence& ev, const attest::RoundResult& r) {
  auto bank = HashAlgoByName(ev.list.list_bank);
  std::lock_guard<std::mutex> lk(w.rows_mu);
  if (r.reboot) {
    w.ima_rows.clear();
    w.boot_rows.clear();
    w.boot_verdicts.clear();
    w.boot_verified = false;
  }
  if (ev.event_log) {
    w.boot_rows.clear();
    w.boot_verdicts.clear();
    if (auto log = tcg::ParseEventLog(*ev.event_log); log.ok()) {
      w.boot_rows = tcg::EventLogTableRows(*log, bank.ok() && bank->tpm_alg ? bank->tpm_alg : 0x0004, 0);
    }
    w.boot_verified = r.state.firmware_checked && r.state.firmware_events.size() == w.boot_rows.size();
  }
  if (bank.ok() && (ev.list.byte_order == "little" || ev.list.byte_order == "big")) {
    ima::ListOptions lo;
    lo.bank = *bank;
    lo.byte_order = ev.list.byte_order == "big" ? ByteOrder::kBig : ByteOrder::kLittle;
    // Only the last kMaxImaRows entries of a long tail are kept: skip the others unrendered.
    uint64_t end = std::max(ev.list.total_entries, ev.list.first_index);
    uint64_t keep_from = end > kMaxImaRows ? end - kMaxImaRows : 0;
    if (auto reader = ima::ListReader::FromBytes(ev.list.records, lo, "list tail"); reader.ok()) {
      ima::Entry e;
      for (uint64_t i = ev.list.first_index;; ++i) {
        auto more = (*reader)->Next(&e);
        if (!more.ok() || !*more) break;
        if (i < keep_from) continue;
        Verifier::Worker::ImaRow& row = w.ima_rows[i];
        row.row = {static_cast<size_t>(i), e.pcr, 0, ToHex(e.digest), ima::TableEventData(e)};
      }
    }
  }
  for (const auto& f : r.findings) {
    if (!f.entry || !f.failure()) continue;
    if (IsFirmwareReason(f.reason)) {
      w.boot_verdicts.emplace(*f.entry, attest::ReasonName(f.reason));
    } else if (auto it = w.ima_rows.find(*f.entry); it != w.ima_rows.end() && it->second.verdict.empty()) {
      it->second.verdict = attest::ReasonName(f.reason);
    }
  }
  while (w.ima_rows.size() > kMaxImaRows) w.ima_rows.erase(w.ima_rows.begin());
  w.verified_entries = r.state.next_index;
}

// The integrated table (BIOS, boot loader, IMA rows with one running index), each row's
// verdict: a finding's reason, "ok", or "pending" (received, not yet covered by a quote) /
// "unverified" (a firmware log not accepted yet).
std::vector<EntryRow> EntryRows(Verifier::Worker& w) {
  std::lock_guard<std::mutex> lk(w.rows_mu);
  std::vector<EntryRow> rows;
  rows.reserve(w.boot_rows.size() + w.ima_rows.size());
  auto add = [&rows](const tcg::TableRow& t, size_t index, const char* source, const std::string& verdict) {
    rows.push_back({index, source, t.pcr, t.type, t.digest_hex, t.text, verdict});
  };
  for (const auto& t : w.boot_rows) {
    auto v = w.boot_verdicts.find(t.index);
    add(t, t.index, "firmware", v != w.boot_verdicts.end() ? v->second : w.boot_verified ? "ok" : "unverified");
  }
  size_t base = w.boot_rows.size();
  for (const auto& [i, r] : w.ima_rows) {
    std::string verdict = !r.verdict.empty() ? r.verdict : i < w.verified_entries ? "ok" : "pending";
    add(r.row, base + static_cast<size_t>(i), "ima", verdict);
  }
  return rows;
}

json EntriesJson(Verifier::Worker& w) {
  json rows = json::array();
  for (const auto& r : EntryRows(w)) {
    rows.push_back({{"index", r.index}, {"source", r.source}, {"pcr", r.pcr}, {"type", r.type},
                    {"digest", r.digest}, {"event", r.event}, {"verdict", r.verdict}});
  }
  return rows;
}

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The round thread's RoundSlot::waiting_since (null on other threads: REST handlers).
thread_local std::atomic<int64_t>* t_waiting_since = nullptr;

// While alive, the round thread counts as waiting for its agent (Verifier::Loop).
struct WaitingForAgent {
  WaitingForAgent() {
    if (t_waiting_since) t_waiting_since->store(SteadyNs(), std::memory_order_relaxed);
  }
  ~WaitingForAgent() {
    if (t_waiting_since) t_waiting_since->store(0, std::memory_order_relaxed);
  }
  WaitingForAgent(const WaitingForAgent&) = delete;
  WaitingForAgent& operator=(const WaitingForAgent&) = delete;
};

Result<std::string> Fetch(net::HttpsClient& c, const std::string& method, const std::string& target,
                          const std::string& body, const std::string& what) {
  WaitingForAgent waiting;
  auto r = c.Request(method, target, body);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Unavailable(what + ": HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300));
  }
  return std::move(r->body);
}

attest::AgentRecord NewRecord(const std::string& id, const std::string& policy, bool tofu) {
  attest::AgentRecord rec;
  rec.id = id;
  rec.tofu = tofu;
  rec.policy = policy;
  rec.status = attest::AgentStatus::kEnrolling;
  rec.updated = Now();
  return rec;
}

net::HttpResponse JsonOk(const json& doc) {
  net::HttpResponse r;
  r.body = doc.dump();
  return r;
}

json AgentJson(const attest::AgentRecord& a) {
  json j;
  j["id"] = a.id;
  j["address"] = a.address;
  j["status"] = attest::AgentStatusName(a.status);
  j["tofu"] = a.tofu;
  j["policy"] = a.policy;
  j["updated"] = a.updated;
  j["next_index"] = a.state.next_index;
  j["rounds"] = a.state.rounds;
  j["reboots"] = a.state.reboots;
  return j;
}

Result<json> ParseBody(const net::HttpRequest& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("request body: not a JSON object");
  return j;
}

Result<std::string> StringField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Status::InvalidArgument(std::string("request body: \"") + key + "\" must be a non-empty string");
  }
  return it->get<std::string>();
}

net::HttpResponse ErrorResponse(const Status& st) {
  int code = 400;
  if (st.code() == StatusCode::kNotFound) code = 404;
  if (st.code() == StatusCode::kUnavailable) code = 502;
  if (st.code() == StatusCode::kIoError || st.code() == StatusCode::kInternal) code = 500;
  return net::JsonError(code, st.message());
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || colon + 6 < text.size()) {
    return Status::InvalidArgument("expected HOST:PORT, got \"" + text + "\"");
  }
  int port = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return Status::InvalidArgument("expected HOST:PORT, got \"" + text + "\"");
    port = port * 10 + (text[i] - '0');
  }
  if (port < 1 || port > 65535) return Status::InvalidArgument("port out of range 1-65535 in \"" + text + "\"");
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<std::unique_ptr<Verifier>> Verifier::Create(std::unique_ptr<attest::Store> store, VerifierOptions options) {
  if (!store) return Status::InvalidArgument("verifier: no store");
  if (options.banks.empty()) options.banks = {TPM2_ALG_SHA256};
  if (!options.log) options.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (options.round_threads < 1 || options.round_threads > 64) {
    return Status::InvalidArgument("verifier: round threads must be 1-64, got " + std::to_string(options.round_threads));
  }
  if (options.max_stalled_rounds < 0 || options.max_stalled_rounds > 1024) {
    return Status::InvalidArgument("verifier: max stalled rounds must be 0-1024, got " +
                                   std::to_string(options.max_stalled_rounds));
  }
  if (options.push_silence.count() <= 0) options.push_silence = 3 * options.interval + options.agent_timeout;
  std::unique_ptr<Verifier> v(new Verifier);
  v->stall_after_ = std::clamp<std::chrono::nanoseconds>(options.interval / 2, std::chrono::milliseconds(100),
                                                         std::chrono::seconds(1));
  LIM_ASSIGN_OR_RETURN(v->client_tls_, net::MakeClientTls(options.tls));
  LIM_ASSIGN_OR_RETURN(auto server_tls, net::MakeServerTls(options.tls));
  LIM_ASSIGN_OR_RETURN(v->server_, net::HttpsServer::Create(server_tls, options.server));
  v->options_ = std::move(options);
  v->store_ = std::move(store);
  if (!v->options_.on_failure.empty()) {
    v->hook_ = std::make_unique<FailureHook>(v->options_.on_failure, v->options_.on_failure_timeout,
                                             v->options_.log);
  }
  if (!v->options_.webhook.empty()) {
    WebhookOptions wo;
    wo.url = v->options_.webhook;
    wo.tls = v->options_.tls;
    if (!v->options_.webhook_ca.empty()) wo.tls.ca_file = v->options_.webhook_ca;
    LIM_ASSIGN_OR_RETURN(v->webhook_, Webhook::Create(std::move(wo), v->options_.log));
  }
  if (v->options_.alert_syslog_facility >= 0) {
    v->syslog_ = std::make_unique<SyslogAlerts>(v->options_.alert_syslog_facility, v->options_.syslog_sink,
                                                v->options_.log);
  }
  v->RegisterRoutes();
  return v;
}

Verifier::~Verifier() { Stop(); }

std::vector<EntryRow> Verifier::Entries(const std::string& id) {
  std::shared_ptr<Worker> w;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end()) return {};
    w = it->second;
  }
  return EntryRows(*w);
}

void Verifier::Log(const std::string& line) { options_.log(line); }

Status Verifier::Start() {
  LIM_ASSIGN_OR_RETURN(auto ids, store_->ListAgents());
  for (const auto& id : ids) {
    LIM_ASSIGN_OR_RETURN(auto rec, store_->GetAgent(id));
    if (rec) AdoptWorker(*rec);
  }
  // Agents leased to us that another verifier enrolled get their worker here.
  leases_ = std::make_unique<attest::LeaseKeeper>(
      *store_, options_.lease_owner, options_.interval,
      [this](const std::vector<std::string>& acquired) {
        for (const auto& id : acquired) {
          auto rec = store_->GetAgent(id);
          // Never waits for a worker in use (a slow agent's round holds it for up to
          // agent_timeout): the renewals on this thread must not wait with it.
          if (rec.ok() && *rec) AdoptWorker(**rec, /*wait=*/false);
        }
      },
      options_.log);
  LIM_RETURN_IF_ERROR(leases_->Start());
  LIM_RETURN_IF_ERROR(server_->Start());
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int i = 0; i < options_.round_threads; ++i) {
      if (!AddRoundThreadLocked()) return Status::Unavailable("verifier: cannot start the round threads");
    }
  }
  loop_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Verifier::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  queue_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  // Only the loop (joined) and Start add round threads: this list is final.
  std::list<std::unique_ptr<RoundSlot>> slots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    slots.swap(round_slots_);
  }
  for (auto& s : slots) s->thread.join();
  // The server first: a push call after the leases were released would take one again.
  if (server_) server_->Stop();
  if (leases_) leases_->Stop();
}

uint16_t Verifier::port() const { return server_->port(); }

Result<std::unique_ptr<net::HttpsClient>> Verifier::Connect(const std::string& address) {
  LIM_ASSIGN_OR_RETURN(auto hp, ParseHostPort(address));
  net::ClientOptions o;
  o.host = hp.first;
  o.port = hp.second;
  o.connect_timeout = options_.agent_timeout;
  o.request_timeout = options_.agent_timeout;
  return net::HttpsClient::Create(client_tls_, o);
}

std::shared_ptr<Verifier::Worker> Verifier::AdoptWorker(const attest::AgentRecord& rec, bool wait) {
  auto w = WorkerFor(rec.id);
  w->status = static_cast<int>(rec.status);  // an atomic: set even when the worker is in use
  std::unique_lock<std::mutex> wl(w->mu, std::defer_lock);
  if (wait) {
    wl.lock();
  } else if (!wl.try_lock()) {
    return w;  // in use: set up already, by whoever uses it
  }
  w->push = rec.address.empty();
  w->push_enrolled = w->push && !rec.identity.ak_public.empty();
  w->last_push = std::chrono::steady_clock::now();  // a push agent gets its time to post again
  // A silence another verifier (or an earlier run) recorded is not recorded again.
  w->push_silent = w->push && rec.status == attest::AgentStatus::kUnreachable;
  return w;
}

std::shared_ptr<Verifier::Worker> Verifier::WorkerFor(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& w = workers_[id];
  if (!w) {
    w = std::make_shared<Worker>();
    w->id = id;
  }
  return w;
}

Result<attest::AgentRecord> Verifier::Enroll(const std::string& id, const std::string& address, bool allow_tofu,
                                             const std::string& policy) {
  if (id.empty() || id.size() > 255) return Status::InvalidArgument("agent id must be 1-255 characters");
  if (!policy.empty()) {
    LIM_ASSIGN_OR_RETURN(auto text, store_->GetPolicy(policy));
    if (!text) return Status::NotFound("no policy " + policy);
  }
  LIM_ASSIGN_OR_RETURN(auto existing, store_->GetAgent(id));
  if (existing) return Status::InvalidArgument("agent " + id + " is already enrolled (remove it first)");
  if (address == "push") {
    // Push mode: the agent enrolls itself over /v1/push/* with a client certificate whose CN
    // is its id; until then it is only allowed (no identity).
    attest::AgentRecord rec = NewRecord(id, policy, allow_tofu);  // tofu: allowed until enrolled
    LIM_RETURN_IF_ERROR(store_->PutAgent(rec));
    auto w = WorkerFor(id);
    std::lock_guard<std::mutex> wl(w->mu);
    w->push = true;
    w->status = static_cast<int>(rec.status);
    Log("lim-verifier: agent=" + id + " allowed to enroll in push mode" + (allow_tofu ? " tofu" : ""));
    return rec;
  }
  LIM_ASSIGN_OR_RETURN(auto client, Connect(address));
  LIM_ASSIGN_OR_RETURN(std::string id_body, Fetch(*client, "GET", "/v1/identity", "", "identity"));
  auto identity = attest::IdentityFromJson(id_body);
  if (!identity.ok()) return Status::Corrupt("identity from " + address + ": " + identity.status().message());
  if (identity->agent_id != id) {
    return Status::Mismatch("agent at " + address + " calls itself \"" + identity->agent_id + "\", not \"" + id + "\"");
  }
  attest::EnrollOptions eo;
  eo.ca_dir = options_.ek_ca_dir;
  eo.allow_tofu = allow_tofu;
  auto checked = attest::CheckIdentity(*identity, eo);
  if (!checked.ok()) return Status::Mismatch("enrollment of " + id + ": " + checked.status().message());
  Bytes secret;
  LIM_ASSIGN_OR_RETURN(auto challenge, attest::MakeChallenge(*checked, &secret));
  auto activated = Fetch(*client, "POST", "/v1/activate", attest::CredentialChallengeToJson(challenge), "activate");
  if (!activated.ok()) {
    return Status::Mismatch("enrollment of " + id + ": the AK was not activated: " + activated.status().message());
  }
  auto response = attest::CredentialResponseFromJson(*activated);
  if (!response.ok()) return Status::Corrupt("activate response from " + id + ": " + response.status().message());
  if (auto st = attest::CheckChallengeResponse(secret, *response); !st.ok()) {
    return Status::Mismatch("enrollment of " + id + ": the AK was not activated: " + st.message());
  }
  // An AK no key can be made of is refused before anything is stored (Prepare parses it for
  // the rounds).
  if (auto usable = tpm::PublicKey::FromTpmPublic(checked->ak); !usable.ok()) return usable.status();
  attest::AgentRecord rec = NewRecord(id, policy, checked->tofu);
  rec.address = address;
  rec.identity = *identity;
  LIM_RETURN_IF_ERROR(store_->PutAgent(rec));
  auto w = WorkerFor(id);
  {
    std::lock_guard<std::mutex> wl(w->mu);
    w->address = address;
    w->client = std::move(client);
    w->record.reset();
    w->ak.reset();  // Prepare parses the enrolled AK with the row it comes from
    w->next.reset();
    w->due = std::chrono::steady_clock::now();
    w->status = static_cast<int>(rec.status);
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    rescan_ = true;
  }
  cv_.notify_all();
  Log("lim-verifier: agent=" + id + " enrolled address=" + address + (rec.tofu ? " tofu" : "") + " ak=" +
      tpm::DescribePublic(checked->ak));
  return rec;
}

Status Verifier::Remove(const std::string& id) {
  LIM_ASSIGN_OR_RETURN(auto existing, store_->GetAgent(id));
  if (!existing) return Status::NotFound("no agent " + id);
  std::shared_ptr<Worker> w;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = workers_.find(id);
    if (it != workers_.end()) {
      w = it->second;
      workers_.erase(it);
    }
  }
  // Wait for a round in progress: it must not write the agent back after the removal.
  std::unique_lock<std::mutex> wl;
  if (w) wl = std::unique_lock<std::mutex>(w->mu);
  return store_->RemoveAgent(id);
}

Result<const attest::AgentRecord*> Verifier::LoadAgent(Worker& w) {
  if (w.stale.exchange(false)) w.record.reset();
  std::optional<int64_t> fence = leases_ ? leases_->Fence(w.id) : std::nullopt;
  // A shared store's row is kept only under the lease it was read under: this verifier
  // alone writes rounds then, and any other writer (an operator through another verifier, a
  // re-enrollment) moves the version the next round is written against, which refuses that
  // round and drops the row (Remember). A new lease: another verifier may have moved the
  // state on meanwhile.
  if (w.record && store_->Shared() && (!fence || fence != w.record_fence)) w.record.reset();
  if (!w.record) {
    // Every read of the store, pull or push (a kept row is no read).
    auto read_started = std::chrono::steady_clock::now();
    auto read = store_->GetAgent(w.id);
    store_read_seconds_.Observe(SecondsSince(read_started));
    LIM_ASSIGN_OR_RETURN(w.record, std::move(read));
    w.record_fence = fence;
  }
  return w.record ? &*w.record : nullptr;
}

bool Verifier::Remember(Worker& w, const Result<int64_t>& written, attest::AgentState&& state,
                        attest::AgentStatus status) {
  if (!written.ok() || !w.record) {
    w.record.reset();
    if (!written.ok()) w.next.reset();
    return written.ok();
  }
  w.record->state = std::move(state);
  if (w.record->status != attest::AgentStatus::kFailed) w.record->status = status;  // failed is sticky (store.h)
  w.record->updated = Now();
  w.record->version = *written;
  return true;
}

void Verifier::MarkStale(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = workers_.find(id); it != workers_.end()) it->second->stale = true;
}

Status Verifier::Prepare(Worker& w, const attest::AgentRecord& rec) {
  if (!w.ak || w.ak_public != rec.identity.ak_public) {
    w.ak.reset();
    LIM_ASSIGN_OR_RETURN(auto pub, tpm::ParsePublic(rec.identity.ak_public));
    LIM_ASSIGN_OR_RETURN(auto ak, tpm::PublicKey::FromTpmPublic(pub));
    w.ak = std::move(ak);
    w.ak_public = rec.identity.ak_public;
  }
  LIM_ASSIGN_OR_RETURN(w.policy, PolicyFor(rec.policy));
  return Status::Ok();
}

Result<std::shared_ptr<const attest::RuntimePolicy>> Verifier::PolicyFor(const std::string& name) {
  static const auto* none = new std::shared_ptr<const attest::RuntimePolicy>(std::make_shared<attest::RuntimePolicy>());
  if (name.empty()) return *none;
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lk(policies_mu_);
    auto it = policies_.find(name);
    if (it != policies_.end() && now - it->second.checked < options_.interval) return it->second.policy;
  }
  // Read (and parse) outside the lock: rounds of agents with a fresh policy do not wait.
  LIM_ASSIGN_OR_RETURN(auto text, store_->GetPolicy(name));
  if (!text) return *none;  // removed: every entry fails, as with no policy
  {
    std::lock_guard<std::mutex> lk(policies_mu_);
    auto it = policies_.find(name);
    if (it != policies_.end() && it->second.text == *text) {
      it->second.checked = now;
      return it->second.policy;
    }
  }
  LIM_ASSIGN_OR_RETURN(auto parsed, attest::RuntimePolicy::FromJson(*text));
  auto policy = std::make_shared<const attest::RuntimePolicy>(std::move(parsed));
  std::lock_guard<std::mutex> lk(policies_mu_);
  policies_[name] = {std::move(*text), policy, now};
  return policy;
}

Status Verifier::RunRound(const std::string& id) {
  std::shared_ptr<Worker> w;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end()) return Status::NotFound("no agent " + id);
    w = it->second;
  }
  std::lock_guard<std::mutex> wl(w->mu);
  const bool sampled = costs_.Sample(costs_.round_ticks);
  Lap lap(sampled);
  const auto started = std::chrono::steady_clock::now();
  w->due = started + options_.interval;
  // Any round that reaches the agent (or ends otherwise) puts it back on the normal lane.
  const int streak = std::exchange(w->unreachable_streak, 0);
  // The lease this round runs under; its verdict is written only while it is still current,
  // and balancing does not release it before the round ends.
  std::optional<int64_t> lease = leases_ ? leases_->BeginRound(id) : std::optional<int64_t>(0);
  if (!lease) return Status::NotFound("agent " + id + " is attested by another verifier");
  struct EndRound {
    attest::LeaseKeeper* k;
    const std::string& id;
    ~EndRound() {
      if (k) k->EndRound(id);
    }
  } end_round{leases_.get(), id};
  int64_t fence = *lease;
  if (fence != w->fence) w->next.reset();  // another verifier may have moved the state on
  w->fence = fence;
  LIM_ASSIGN_OR_RETURN(auto rec, LoadAgent(*w));
  if (!rec) return Status::NotFound("no agent " + id);
  // Any write below but the round's own verdict (which updates it) drops the cached row.
  struct DropRecord {
    Worker* w;
    bool keep = false;
    ~DropRecord() {
      if (!keep) w->record.reset();
    }
  } drop{w.get()};
  LIM_RETURN_IF_ERROR(Prepare(*w, *rec));
  Add(costs_.store_read_ns, lap());
  if (!w->client || w->address != rec->address) {
    LIM_ASSIGN_OR_RETURN(w->client, Connect(rec->address));
    w->address = rec->address;
  }

  struct CountAfter {
    Worker* w;
    ~CountAfter() {
      if (!w->client) return;
      net::ClientStats s = w->client->stats();
      w->handshakes = s.handshakes;
      w->requests = s.requests;
    }
  } count_after{w.get()};
  attest::AgentState state = rec->state;
  attest::EvidenceRequest req = w->next ? *w->next : attest::NextRequest(state, options_.banks);
  // Notices of an attempt asked again (a reboot) are stored with the round that follows, so
  // the history shows the new boot, not only the log.
  std::vector<attest::Finding> earlier;
  auto with_earlier = [&earlier](const std::vector<attest::Finding>& findings) {
    std::vector<attest::Finding> all = earlier;
    all.insert(all.end(), findings.begin(), findings.end());
    return all;
  };
  // A retry (the list must be read from entry 0, or the tail was cut) asks again at once.
  for (int attempt = 0; attempt < 4; ++attempt) {
    req.nonce.assign(32, 0);
    if (RAND_bytes(req.nonce.data(), static_cast<int>(req.nonce.size())) != 1) return Status::Internal("RAND_bytes failed");
    auto body = Fetch(*w->client, "POST", "/v1/evidence", attest::EvidenceRequestToJson(req), "evidence");
    Add(costs_.fetch_ns, lap());
    std::optional<attest::Evidence> ev;
    std::string why;
    if (!body.ok()) {
      why = body.status().message();
    } else if (auto parsed = attest::EvidenceFromJson(*body); parsed.ok()) {
      ev = std::move(parsed).value();
      Add(costs_.parse_ns, lap());
    } else {
      // Malformed evidence is the round's failure, not the network's: Verify says so.
      attest::Finding f;
      f.reason = attest::Reason::kEvidenceMalformed;
      f.detail = parsed.status().message();
      w->next.reset();
      return Record(*w, {fence, rec->version}, rec->status, state, attest::AgentStatus::kFailed, with_earlier({f}),
                    {"failed", started})
          .status();
    }
    if (!ev) {
      attest::Finding f;
      f.reason = attest::Reason::kUnreachable;
      f.detail = why;
      w->client->Close();
      w->unreachable_streak = streak + 1;
      // From the round's end: a round that waited out the timeout is not asked again at once.
      w->due = std::chrono::steady_clock::now() + UnreachableBackoff(options_.interval, w->unreachable_streak);
      return Record(*w, {fence, rec->version}, rec->status, state, attest::AgentStatus::kUnreachable,
                    with_earlier({f}), {"unreachable", started})
          .status();
    }
    attest::RoundCpu cpu;
    attest::VerifyOptions vo;
    vo.cpu = sampled ? &cpu : nullptr;
    attest::RoundResult r = attest::Verify(*w->ak, state, *ev, *w->policy, req.nonce, vo);
    AddVerify(costs_, cpu, lap());
    NoteRows(*w, *ev, r);
    Add(costs_.rows_ns, lap());
    w->next = r.next;
    if (r.retry) {
      // Nothing verified yet; the state may have moved to "start over" (a reboot).
      state = r.state;
      req = r.next;
      earlier.insert(earlier.end(), r.findings.begin(), r.findings.end());
      continue;
    }
    attest::AgentStatus status = r.attested ? attest::AgentStatus::kAttested : attest::AgentStatus::kFailed;
    auto written = Record(*w, {fence, rec->version}, rec->status, r.state, status, with_earlier(r.findings),
                          {r.attested ? "attested" : "failed", started});
    drop.keep = Remember(*w, written, std::move(r.state), status);
    Add(costs_.store_write_ns, lap());
    Add(costs_.round_ns, lap.total());
    Add(costs_.rounds, 1);
    Add(costs_.sampled_rounds, sampled ? 1 : 0);
    return written.status();
  }
  return Record(*w, {fence, rec->version}, rec->status, state, rec->status, earlier, {"retry", started}).status();
}

Result<int64_t> Verifier::Record(Worker& w, const attest::RoundBasis& basis, attest::AgentStatus before,
                                 const attest::AgentState& state, attest::AgentStatus status,
                                 const std::vector<attest::Finding>& findings, const RoundEnd& end) {
  const std::string& id = w.id;
  auto write_started = std::chrono::steady_clock::now();
  Result<int64_t> written = store_->WriteRound(id, basis, state, status, Now(), findings);
  store_write_seconds_.Observe(SecondsSince(write_started));
  if (end.verdict) {
    rounds_.Add(written.ok() ? end.verdict : "not-written");
    round_seconds_.Observe(SecondsSince(end.started));
  }
  LIM_RETURN_IF_ERROR(written.status());
  // Logged once stored: a round refused (a moved fence or row version) or not written
  // leaves no line for a finding the round that replaces it may not repeat.
  LogFindings(w, findings);
  for (const auto& f : findings) {
    if (f.failure()) failures_.Add(attest::ReasonName(f.reason));
  }
  // The store keeps failed until an operator's ack, whatever the round said.
  attest::AgentStatus now = before == attest::AgentStatus::kFailed ? before : status;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = workers_.find(id); it != workers_.end()) it->second->status = static_cast<int>(now);
  }
  if (now != before) Alert({id, before, now, findings, Now(), end.cause});
  // The agent turned failed (failed is sticky: later failing rounds do not run it again).
  if (hook_ && status == attest::AgentStatus::kFailed && before != attest::AgentStatus::kFailed) {
    std::vector<std::string> lines;
    std::string reason;
    for (const auto& f : findings) {
      if (!f.failure()) continue;
      if (reason.empty()) reason = attest::ReasonName(f.reason);
      lines.push_back(attest::FormatFinding(id, f));
    }
    hook_->Notify(id, reason, std::move(lines));
  }
  return *written;
}

void Verifier::Alert(StateChange change) {
  changes_.Add(attest::AgentStatusName(change.to));
  if (webhook_) webhook_->Notify(change);
  if (syslog_) syslog_->Notify(change);
}

bool Verifier::ReportsLocked(const std::string& id, const Worker& w) const {
  // The lease holder reports an agent (a push agent's lease follows its connection), so the
  // sum over verifiers sharing a store counts each agent once. Unshared: every agent.
  return w.status >= 0 && (!leases_ || leases_->Owns(id));
}

std::string Verifier::MetricsText() {
  static constexpr attest::AgentStatus kStates[] = {attest::AgentStatus::kEnrolling, attest::AgentStatus::kAttested,
                                                    attest::AgentStatus::kFailed, attest::AgentStatus::kUnreachable};
  uint64_t by_state[4] = {};
  uint64_t queued = 0, threads = 0, stalled = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& s : round_slots_) threads += s->done ? 0 : 1;
    stalled = threads - UnstalledLocked(SteadyNs());
    for (const auto& [id, w] : workers_) {
      if (ReportsLocked(id, *w)) {
        int st = w->status;
        if (st >= 0 && st < 4) ++by_state[st];
      }
    }
    queued = queue_.size() + slow_queue_.size();
  }
  ExpositionWriter out;
  out.Family("lim_verifier_agents", "gauge",
             "Agents this verifier attests (holds the lease of; all on an unshared store), by state.");
  for (auto st : kStates) out.Sample("lim_verifier_agents", {{"state", attest::AgentStatusName(st)}}, by_state[static_cast<int>(st)]);
  out.Family("lim_verifier_rounds_total", "counter",
             "Attestation rounds finished, by verdict (retry: asked again 4 times without a verdict; not-written: the "
             "store refused the verdict).");
  auto rounds = rounds_.Snapshot();
  for (const char* v : {"attested", "failed", "unreachable", "retry"}) rounds.emplace(v, 0);
  for (const auto& [v, n] : rounds) out.Sample("lim_verifier_rounds_total", {{"verdict", v}}, n);
  out.HistogramFamily("lim_verifier_round_duration_seconds",
                      "Time of one round: the agent's answer, the quote check, the replay, the store write.",
                      round_seconds_.Take());
  out.Family("lim_verifier_failures_total", "counter", "Failure findings written, by reason (docs/attestation.md).");
  for (const auto& [reason, n] : failures_.Snapshot()) out.Sample("lim_verifier_failures_total", {{"reason", reason}}, n);
  out.Family("lim_verifier_state_changes_total", "counter", "Changes of an agent's state (alerts), by the new state.");
  auto changes = changes_.Snapshot();
  for (auto st : kStates) changes.emplace(attest::AgentStatusName(st), 0);
  for (const auto& [st, n] : changes) out.Sample("lim_verifier_state_changes_total", {{"state", st}}, n);
  out.Family("lim_verifier_store_duration_seconds", "histogram",
             "Store latency: reading an agent at a round's start, writing a round's state and findings.");
  out.HistogramSeries("lim_verifier_store_duration_seconds", store_read_seconds_.Take(), {{"op", "read"}});
  out.HistogramSeries("lim_verifier_store_duration_seconds", store_write_seconds_.Take(), {{"op", "write"}});
  out.Family("lim_verifier_round_queue", "gauge", "Agents due, waiting for a round thread.");
  out.Sample("lim_verifier_round_queue", {}, queued);
  out.Family("lim_verifier_round_threads", "gauge",
             "Threads running rounds: --round-threads, and one more beside each round stalled on its agent.");
  out.Sample("lim_verifier_round_threads", {}, threads);
  out.Family("lim_verifier_stalled_rounds", "gauge",
             "Rounds waiting for their agent's answer longer than half an interval (100 ms-1 s).");
  out.Sample("lim_verifier_stalled_rounds", {}, stalled);
  out.Family("lim_verifier_spare_round_threads_total", "counter",
             "Round threads started beside stalled rounds (at most --max-stalled-rounds at once).");
  out.Sample("lim_verifier_spare_round_threads_total", {}, spare_threads_started_.load(std::memory_order_relaxed));
  WebhookStats ws = webhook_ ? webhook_->stats() : WebhookStats{};
  out.Family("lim_verifier_webhook_delivered_total", "counter", "State changes the --webhook receiver accepted.");
  out.Sample("lim_verifier_webhook_delivered_total", {}, ws.delivered);
  out.Family("lim_verifier_webhook_attempts_total", "counter", "POSTs tried, retries included.");
  out.Sample("lim_verifier_webhook_attempts_total", {}, ws.attempts);
  out.Family("lim_verifier_webhook_dropped_total", "counter",
             "State changes never delivered: the queue was full (the newest is dropped) or every attempt failed.");
  out.Sample("lim_verifier_webhook_dropped_total", {{"why", "queue-full"}}, ws.dropped_full);
  out.Sample("lim_verifier_webhook_dropped_total", {{"why", "attempts"}}, ws.dropped - ws.dropped_full);
  out.Family("lim_verifier_syslog_alerts_total", "counter", "State changes sent to syslog, or dropped (queue full).");
  out.Sample("lim_verifier_syslog_alerts_total", {{"result", "sent"}}, syslog_ ? syslog_->sent() : uint64_t{0});
  out.Sample("lim_verifier_syslog_alerts_total", {{"result", "dropped"}}, syslog_ ? syslog_->dropped() : uint64_t{0});
  return out.text();
}

void Verifier::LogFindings(Worker& w, const std::vector<attest::Finding>& findings) {
  std::set<std::string> lines;
  for (const auto& f : findings) {
    std::string line = attest::FormatFinding(w.id, f);
    if (!w.last_lines.count(line)) Log(line);
    lines.insert(std::move(line));
  }
  w.last_lines = std::move(lines);
}

void Verifier::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    rescan_ = false;
    auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::milliseconds(200);
    bool queued = false;
    for (auto& [id, w] : workers_) {
      if (w->busy) continue;
      std::unique_lock<std::mutex> wl(w->mu, std::try_to_lock);
      if (!wl.owns_lock()) continue;  // a push call or RunRound in progress
      if (leases_ && !leases_->Owns(id)) continue;  // another verifier attests it (or judges its silence)
      std::chrono::steady_clock::time_point due;
      bool slow = false;
      if (w->push) {
        if (!w->push_enrolled || w->push_silent) continue;  // nothing to wait for
        due = w->last_push + options_.push_silence;
      } else {
        due = w->due;
        slow = w->unreachable_streak > 0 && options_.max_stalled_rounds > 0;
      }
      if (due <= now) {
        w->busy = true;
        (slow ? slow_queue_ : queue_).push_back(w);
        queued = true;
      } else {
        wake = std::min(wake, due);
      }
    }
    if (queued) queue_cv_.notify_all();
    // Rounds waiting on agents that do not answer hold their threads; the agents due behind
    // them get threads of their own (each returns after a round once enough are free).
    ReapRoundThreadsLocked();
    if (!queue_.empty()) {
      const int64_t now_ns = SteadyNs();
      // Spares for fresh stalls beside the (at most max_stalled_rounds) rounds of unreachable
      // agents: at most round_threads + 2 x max_stalled_rounds threads in all.
      size_t bound = static_cast<size_t>(options_.round_threads + options_.max_stalled_rounds) + slow_running_;
      while (UnstalledLocked(now_ns) < static_cast<size_t>(options_.round_threads) && round_slots_.size() < bound) {
        if (!AddRoundThreadLocked()) break;
        spare_threads_started_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // A scan visits every agent: with thousands of pull agents due at spread times, waking
    // for each due time would scan thousands of times a second. Every agent due within the
    // next kScanGap waits for the next scan (a round at most kScanGap late).
    wake = std::max(wake, now + kScanGap);
    // Woken early only to stop or for an enrollment. A round's end does not wake it (that
    // was a futile wake per round): the agent's next round is planned at the next pass.
    cv_.wait_until(lk, wake, [this] { return stop_ || rescan_; });
  }
}

bool Verifier::AddRoundThreadLocked() {
  // The slot is in the list before its thread runs, and leaves it if the thread cannot be had.
  round_slots_.push_back(std::make_unique<RoundSlot>());
  RoundSlot* s = round_slots_.back().get();
  try {
    s->thread = std::thread([this, s] { RoundThread(s); });
  } catch (const std::system_error& e) {
    round_slots_.pop_back();
    Log(std::string("lim-verifier: cannot start a round thread: ") + e.what());
    return false;
  }
  return true;
}

size_t Verifier::UnstalledLocked(int64_t now_ns) const {
  size_t n = 0;
  for (const auto& s : round_slots_) {
    if (s->done || s->slow) continue;  // a round of an unreachable agent counts as stalled from its start
    int64_t since = s->waiting_since.load(std::memory_order_relaxed);
    if (since == 0 || now_ns - since < stall_after_.count()) ++n;
  }
  return n;
}

void Verifier::ReapRoundThreadsLocked() {
  for (auto it = round_slots_.begin(); it != round_slots_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();  // it set done under mu_ and returns without it
      it = round_slots_.erase(it);
    } else {
      ++it;
    }
  }
}

std::chrono::milliseconds UnreachableBackoff(std::chrono::milliseconds interval, int streak) {
  const std::chrono::milliseconds cap = std::max(interval, std::chrono::milliseconds(60000));
  std::chrono::milliseconds d = interval;
  for (int i = 1; i < streak && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

void Verifier::RoundThread(RoundSlot* slot) {
  t_waiting_since = &slot->waiting_since;
  std::unique_lock<std::mutex> lk(mu_);
  // Agents that answer first; an unreachable one when no agent that answers waits, or when
  // none of them runs (so the lane moves on a fleet that is never idle), and never more than
  // max_stalled_rounds at once: however many hosts are dark, their rounds take at most that
  // many threads, and the loop's spares keep round_threads for the others.
  auto slow_ready = [this] {
    return !slow_queue_.empty() && slow_running_ < static_cast<size_t>(options_.max_stalled_rounds) &&
           (queue_.empty() || slow_running_ == 0);
  };
  for (;;) {
    queue_cv_.wait(lk, [&] { return stop_ || !queue_.empty() || slow_ready(); });
    if (stop_) return;
    const bool slow = slow_ready();
    std::deque<std::shared_ptr<Worker>>& from = slow ? slow_queue_ : queue_;
    std::shared_ptr<Worker> w = std::move(from.front());
    from.pop_front();
    if (slow) slow_running_++;
    slot->slow = slow;
    lk.unlock();
    bool push;
    {
      std::lock_guard<std::mutex> wl(w->mu);
      push = w->push;
    }
    Status st;
    try {
      st = push ? MarkSilent(*w) : RunRound(w->id);
    } catch (const std::exception& e) {  // never out of the thread: busy and the lane's count must be undone
      st = Status::Internal(std::string("exception: ") + e.what());
    }
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      Log("lim-verifier: agent=" + w->id + " round error: " + st.message());
    }
    lk.lock();
    w->busy = false;
    slot->slow = false;
    if (slow) {
      slow_running_--;
      queue_cv_.notify_one();  // another unreachable agent may go
    }
    // A thread started beside stalled rounds: once they are over and nothing waits for a
    // thread, the pool shrinks back.
    if (queue_.empty() && UnstalledLocked(SteadyNs()) > static_cast<size_t>(options_.round_threads)) {
      slot->done = true;
      return;
    }
  }
}

Status Verifier::MarkSilent(Worker& w) {
  std::lock_guard<std::mutex> wl(w.mu);
  auto silent = std::chrono::steady_clock::now() - w.last_push;
  if (!w.push || !w.push_enrolled || w.push_silent || silent < options_.push_silence) return Status::Ok();
  // Only the lease holder judges a silence (and writes it under its fence): a push agent
  // posting to another verifier is silent only here.
  std::optional<int64_t> fence = leases_ ? leases_->BeginRound(w.id) : std::optional<int64_t>(0);
  if (!fence) return Status::Ok();
  struct EndRound {
    attest::LeaseKeeper* k;
    const std::string& id;
    ~EndRound() {
      if (k) k->EndRound(id);
    }
  } end_round{leases_.get(), w.id};
  LIM_ASSIGN_OR_RETURN(auto rec, store_->GetAgent(w.id));
  if (!rec) return Status::NotFound("no agent " + w.id);
  w.record.reset();
  attest::Finding f;
  f.reason = attest::Reason::kUnreachable;
  f.detail = "push agent posted no evidence for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) + " ms";
  w.push_silent = true;
  w.next.reset();
  RoundEnd end;
  end.cause = "silence";
  Status written =
      Record(w, {*fence, rec->version}, rec->status, rec->state, attest::AgentStatus::kUnreachable, {f}, end).status();
  // Not stored (the store failed, or refused a moved lease or row): neither logged nor
  // alerted, so the silence is judged again at the loop's next pass (at most every 200 ms).
  if (!written.ok()) w.push_silent = false;
  return written;
}

void Verifier::RegisterRoutes() {
  auto allowed = [this](const net::HttpRequest& r) {
    if (options_.operator_cn.empty()) return true;
    return std::find(options_.operator_cn.begin(), options_.operator_cn.end(), r.peer.common_name) !=
           options_.operator_cn.end();
  };
  // blocking: the handler talks to an agent (up to agent_timeout per request), so it runs
  // on the server's blocking pool and never holds the threads that serve push agents and
  // the other operators' calls.
  auto route = [this, allowed](const std::string& method, const std::string& path,
                               std::function<net::HttpResponse(const net::HttpRequest&)> h, bool blocking = false) {
    auto checked = [allowed, h](const net::HttpRequest& r) {
      if (!allowed(r)) return net::JsonError(403, "certificate " + r.peer.common_name + " is not an operator");
      return h(r);
    };
    if (blocking) {
      server_->RouteBlocking(method, path, checked);
    } else {
      server_->Route(method, path, checked);
    }
  };
  auto query = [](const net::HttpRequest& r, const char* key) -> Result<std::string> {
    auto it = r.query.find(key);
    if (it == r.query.end() || it->second.empty()) return Status::InvalidArgument(std::string("query: ?") + key + "= missing");
    return it->second;
  };

  route("GET", "/v1/agents", [this](const net::HttpRequest&) {
    auto ids = store_->ListAgents();
    if (!ids.ok()) return ErrorResponse(ids.status());
    json out = json::array();
    for (const auto& id : *ids) {
      auto a = store_->GetAgent(id);
      if (a.ok() && *a) out.push_back(AgentJson(**a));
    }
    return JsonOk(json{{"agents", out}});
  });
  route("POST", "/v1/agents", [this](const net::HttpRequest& r) {
    auto j = ParseBody(r);
    if (!j.ok()) return ErrorResponse(j.status());
    auto id = StringField(*j, "id");
    auto address = StringField(*j, "address");
    if (!id.ok()) return ErrorResponse(id.status());
    if (!address.ok()) return ErrorResponse(address.status());
    bool tofu = j->contains("tofu") && (*j)["tofu"].is_boolean() && (*j)["tofu"].get<bool>();
    std::string policy;
    if (auto it = j->find("policy"); it != j->end() && it->is_string()) policy = it->get<std::string>();
    auto rec = Enroll(*id, *address, tofu, policy);
    if (!rec.ok()) return ErrorResponse(rec.status());
    return JsonOk(AgentJson(*rec));
  }, /*blocking=*/true);
  route("GET", "/v1/agent", [this, query](const net::HttpRequest& r) {
    auto id = query(r, "id");
    if (!id.ok()) return ErrorResponse(id.status());
    auto a = store_->GetAgent(*id);
    if (!a.ok()) return ErrorResponse(a.status());
    if (!*a) return net::JsonError(404, "no agent " + *id);
    json out = AgentJson(**a);
    auto h = store_->History(*id, 50);
    json findings = json::array();
    if (h.ok()) {
      for (const auto& v : *h) {
        findings.push_back({{"time", v.time}, {"attested", v.attested}, {"reason", attest::ReasonName(v.finding.reason)},
                            {"line", attest::FormatFinding(*id, v.finding)}});
      }
    }
    out["findings"] = findings;
    std::shared_ptr<Worker> w;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = workers_.find(*id);
      if (it != workers_.end()) w = it->second;
    }
    if (w) out["connection"] = {{"handshakes", w->handshakes.load()}, {"requests", w->requests.load()}};
    if (auto e = r.query.find("entries"); e != r.query.end() && e->second != "0") {
      out["entries"] = w ? EntriesJson(*w) : json::array();
    }
    return JsonOk(out);
  });
  route("DELETE", "/v1/agent", [this, query](const net::HttpRequest& r) {
    auto id = query(r, "id");
    if (!id.ok()) return ErrorResponse(id.status());
    Status st = Remove(*id);
    if (!st.ok()) return ErrorResponse(st);
    return JsonOk(json{{"removed", *id}});
  });
  route("POST", "/v1/policies", [this](const net::HttpRequest& r) {
    auto j = ParseBody(r);
    if (!j.ok()) return ErrorResponse(j.status());
    auto name = StringField(*j, "name");
    if (!name.ok()) return ErrorResponse(name.status());
    auto it = j->find("policy");
    if (it == j->end() || !it->is_object()) return net::JsonError(400, "request body: \"policy\" must be a JSON object");
    auto policy = attest::RuntimePolicy::FromJson(it->dump());
    if (!policy.ok()) return net::JsonError(400, "policy " + *name + ": " + policy.status().message());
    Status st = store_->PutPolicy(*name, policy->ToNativeJson());
    if (!st.ok()) return ErrorResponse(st);
    {
      std::lock_guard<std::mutex> lk(policies_mu_);  // this verifier's next rounds use the new one
      policies_.erase(*name);
    }
    return JsonOk(json{{"name", *name}, {"paths", policy->paths()}, {"anywhere", policy->anywhere()}});
  });
  route("GET", "/v1/policies", [this](const net::HttpRequest&) {
    auto names = store_->ListPolicies();
    if (!names.ok()) return ErrorResponse(names.status());
    return JsonOk(json{{"policies", *names}});
  });
  route("GET", "/v1/policy", [this, query](const net::HttpRequest& r) {
    auto name = query(r, "name");
    if (!name.ok()) return ErrorResponse(name.status());
    auto p = store_->GetPolicy(*name);
    if (!p.ok()) return ErrorResponse(p.status());
    if (!*p) return net::JsonError(404, "no policy " + *name);
    net::HttpResponse out;
    out.body = **p;
    return out;
  });
  route("POST", "/v1/assign", [this](const net::HttpRequest& r) {
    auto j = ParseBody(r);
    if (!j.ok()) return ErrorResponse(j.status());
    auto agent = StringField(*j, "agent");
    auto policy = StringField(*j, "policy");
    if (!agent.ok()) return ErrorResponse(agent.status());
    if (!policy.ok()) return ErrorResponse(policy.status());
    Status st = store_->AssignPolicy(*agent, *policy);
    if (!st.ok()) return ErrorResponse(st);
    MarkStale(*agent);
    return JsonOk(json{{"agent", *agent}, {"policy", *policy}});
  });
  route("POST", "/v1/ack", [this](const net::HttpRequest& r) {
    auto j = ParseBody(r);
    if (!j.ok()) return ErrorResponse(j.status());
    auto agent = StringField(*j, "agent");
    if (!agent.ok()) return ErrorResponse(agent.status());
    Status st = store_->Acknowledge(*agent);
    if (!st.ok()) return ErrorResponse(st);
    MarkStale(*agent);
    Log("lim-verifier: agent=" + *agent + " acknowledged");
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (auto it = workers_.find(*agent); it != workers_.end()) {
        it->second->status = static_cast<int>(attest::AgentStatus::kAttested);
      }
    }
    Alert({*agent, attest::AgentStatus::kFailed, attest::AgentStatus::kAttested, {}, Now(), "ack"});
    return JsonOk(json{{"agent", *agent}, {"acknowledged", true}});
  });
  route("GET", "/v1/health", [](const net::HttpRequest&) { return JsonOk(json{{"ok", true}}); });
  // Prometheus: the operators, or a scraper's certificate named in --metrics-cn (no other rights).
  server_->Route("GET", "/metrics", [this, allowed](const net::HttpRequest& r) {
    bool scraper = std::find(options_.metrics_cn.begin(), options_.metrics_cn.end(), r.peer.common_name) !=
                   options_.metrics_cn.end();
    if (!scraper && !allowed(r)) return net::JsonError(403, "certificate " + r.peer.common_name + " may not read metrics");
    net::HttpResponse out;
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = MetricsText();
    return out;
  });
  route("GET", "/v1/stats", [this](const net::HttpRequest&) {
    auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& t) { return static_cast<uint64_t>(t.tv_sec) * 1000000u + static_cast<uint64_t>(t.tv_usec); };
    size_t agents;
    {
      std::lock_guard<std::mutex> lk(mu_);
      agents = workers_.size();
    }
    const Costs& c = costs_;
    // The parts are measured on every kCostSample-th round (Costs::Sample) and scaled to all.
    const uint64_t rounds = get(c.rounds), sampled = get(c.sampled_rounds);
    const uint64_t requests = get(c.requests), sampled_requests = get(c.sampled_requests);
    auto scaled = [](uint64_t ns, uint64_t all, uint64_t measured) {
      return measured ? static_cast<uint64_t>(static_cast<double>(ns) * static_cast<double>(all) / static_cast<double>(measured))
                      : ns;
    };
    auto part = [&](const std::atomic<uint64_t>& ns) { return scaled(get(ns), rounds, sampled); };
    return JsonOk(json{{"agents", agents},
                       {"rounds", rounds},
                       {"push_requests", requests},
                       {"cpu_sampled", {{"rounds", sampled}, {"push_requests", sampled_requests}}},
                       {"cpu_ns", {{"round", part(c.round_ns)}, {"store_read", part(c.store_read_ns)},
                                   {"fetch", part(c.fetch_ns)}, {"parse", part(c.parse_ns)},
                                   {"verify", part(c.verify_ns)}, {"quote", part(c.quote_ns)},
                                   {"list", part(c.list_ns)}, {"policy", part(c.policy_ns)},
                                   {"rows", part(c.rows_ns)}, {"store_write", part(c.store_write_ns)},
                                   {"push_request", scaled(get(c.request_ns), requests, sampled_requests)}}},
                       {"process", {{"user_us", us(ru.ru_utime)}, {"sys_us", us(ru.ru_stime)},
                                    {"max_rss_kib", ru.ru_maxrss}}}});
  });
  RegisterPushRoutes();
}

// Push mode: the agent is known by its client certificate's CN, which must be an agent the
// operator allowed (`add ID push`). Every call for one agent runs under its worker's mutex.
void Verifier::RegisterPushRoutes() {
  auto worker = [this](const net::HttpRequest& r) -> std::shared_ptr<Worker> {
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = workers_.find(r.peer.common_name);
      if (it != workers_.end()) return it->second->push ? it->second : nullptr;
    }
    // Allowed through another verifier on the shared store after this one started.
    auto rec = store_->GetAgent(r.peer.common_name);
    if (!rec.ok() || !*rec || !(*rec)->address.empty()) return nullptr;
    return AdoptWorker(**rec);
  };
  auto refuse = [](const net::HttpRequest& r) {
    return net::JsonError(403, "certificate " + r.peer.common_name + " is not an agent allowed in push mode");
  };
  server_->Route("POST", "/v1/push/enroll", [this, worker, refuse](const net::HttpRequest& r) {
    auto w = worker(r);
    if (!w) return refuse(r);
    std::lock_guard<std::mutex> wl(w->mu);
    auto id = attest::IdentityFromJson(r.body);
    if (!id.ok()) return net::JsonError(400, id.status().message());
    if (id->agent_id != w->id) return net::JsonError(403, "identity names " + id->agent_id + ", certificate " + w->id);
    auto rec = store_->GetAgent(w->id);
    if (!rec.ok() || !*rec) return net::JsonError(404, "no agent " + w->id);
    if (!(*rec)->identity.ak_public.empty()) {
      if ((*rec)->identity.ak_public == id->ak_public && (*rec)->identity.ek_public == id->ek_public) {
        return net::HttpResponse{204, "application/json", ""};
      }
      return net::JsonError(409, "agent " + w->id + " is enrolled with another EK or AK (remove it first)");
    }
    attest::EnrollOptions eo;
    eo.ca_dir = options_.ek_ca_dir;
    eo.allow_tofu = (*rec)->tofu;
    auto checked = attest::CheckIdentity(*id, eo);
    if (!checked.ok()) return net::JsonError(400, "enrollment of " + w->id + ": " + checked.status().message());
    auto challenge = attest::MakeChallenge(*checked, &w->push_secret);
    if (!challenge.ok()) return ErrorResponse(challenge.status());
    w->push_identity = *id;
    w->push_tofu = checked->tofu;
    net::HttpResponse out;
    out.body = attest::CredentialChallengeToJson(*challenge);
    return out;
  });
  server_->Route("POST", "/v1/push/activate", [this, worker, refuse](const net::HttpRequest& r) {
    auto w = worker(r);
    if (!w) return refuse(r);
    std::lock_guard<std::mutex> wl(w->mu);
    if (!w->push_identity) return net::JsonError(409, "no enrollment in progress for " + w->id);
    auto cred = attest::CredentialResponseFromJson(r.body);
    if (!cred.ok()) return net::JsonError(400, cred.status().message());
    Status st = attest::CheckChallengeResponse(w->push_secret, *cred);
    attest::Identity identity = std::move(*w->push_identity);
    w->push_identity.reset();
    w->push_secret.clear();
    if (!st.ok()) {
      Log("lim-verifier: agent=" + w->id + " push enrollment refused: the AK was not activated");
      return net::JsonError(400, "enrollment of " + w->id + ": the AK was not activated: " + st.message());
    }
    auto rec = store_->GetAgent(w->id);
    if (!rec.ok() || !*rec) return net::JsonError(404, "no agent " + w->id);
    (*rec)->identity = std::move(identity);
    (*rec)->tofu = w->push_tofu;
    (*rec)->updated = Now();
    w->record.reset();
    if (Status put = store_->PutAgent(**rec); !put.ok()) return ErrorResponse(put);
    w->ak.reset();
    w->next.reset();
    w->push_enrolled = true;
    w->push_silent = false;
    w->last_push = std::chrono::steady_clock::now();
    Log("lim-verifier: agent=" + w->id + " enrolled push" + (w->push_tofu ? " tofu" : ""));
    return JsonOk(json{{"enrolled", w->id}});
  });
  server_->Route("POST", "/v1/push/request", [this, worker, refuse](const net::HttpRequest& r) {
    auto w = worker(r);
    if (!w) return refuse(r);
    std::lock_guard<std::mutex> wl(w->mu);
    const bool sampled = costs_.Sample(costs_.request_ticks);
    Lap lap(sampled);
    auto rec = LoadAgent(*w);
    if (!rec.ok() || !*rec) return net::JsonError(404, "no agent " + w->id);
    if ((*rec)->identity.ak_public.empty()) return net::JsonError(409, "agent " + w->id + " is not enrolled");
    // The lease follows the push agent's connection: this verifier takes it (the fence moves
    // when another verifier held it, so that one can no longer write a verdict for it).
    std::optional<int64_t> fence = leases_->Chosen(w->id);
    if (!fence) {
      auto taken = leases_->Take(w->id);
      if (!taken.ok()) return ErrorResponse(taken.status());
      fence = *taken;
      Log("lim-verifier: agent=" + w->id + " pushes here: lease taken (fence " + std::to_string(*fence) + ")");
    }
    if (*fence != w->fence) w->next.reset();  // another verifier may have moved the state on
    w->fence = *fence;
    attest::EvidenceRequest req = w->next ? *w->next : attest::NextRequest((*rec)->state, options_.banks);
    req.nonce.assign(32, 0);
    if (RAND_bytes(req.nonce.data(), static_cast<int>(req.nonce.size())) != 1) return net::JsonError(500, "RAND_bytes failed");
    w->push_nonce = req.nonce;
    net::HttpResponse out;
    out.body = attest::EvidenceRequestToJson(req);
    Add(costs_.request_ns, lap());
    Add(costs_.requests, 1);
    Add(costs_.sampled_requests, sampled ? 1 : 0);
    return out;
  });
  server_->Route("POST", "/v1/push/evidence", [this, worker, refuse](const net::HttpRequest& r) {
    auto w = worker(r);
    if (!w) return refuse(r);
    std::lock_guard<std::mutex> wl(w->mu);
    const bool sampled = costs_.Sample(costs_.round_ticks);
    Lap lap(sampled);
    if (w->push_nonce.empty()) return net::JsonError(409, "no evidence request outstanding for " + w->id);
    Bytes nonce = std::move(w->push_nonce);
    w->push_nonce.clear();
    const auto started = std::chrono::steady_clock::now();
    w->last_push = started;
    w->push_silent = false;
    auto rec = LoadAgent(*w);
    if (!rec.ok() || !*rec) return net::JsonError(404, "no agent " + w->id);
    if (Status st = Prepare(*w, **rec); !st.ok()) return ErrorResponse(st);
    Add(costs_.store_read_ns, lap());
    auto ev = attest::EvidenceFromJson(r.body);
    Add(costs_.parse_ns, lap());
    attest::RoundResult res;
    if (!ev.ok()) {
      attest::Finding f;
      f.reason = attest::Reason::kEvidenceMalformed;
      f.detail = ev.status().message();
      res.state = (*rec)->state;
      res.findings.push_back(f);
    } else {
      attest::RoundCpu cpu;
      attest::VerifyOptions vo;
      vo.cpu = sampled ? &cpu : nullptr;
      res = attest::Verify(*w->ak, (*rec)->state, *ev, *w->policy, nonce, vo);
      AddVerify(costs_, cpu, lap());
      NoteRows(*w, *ev, res);
      w->next = res.next;
    }
    Add(costs_.rows_ns, lap());
    attest::AgentStatus status = res.retry      ? (*rec)->status
                                 : res.attested ? attest::AgentStatus::kAttested
                                                : attest::AgentStatus::kFailed;
    const char* verdict = res.retry ? "retry" : res.attested ? "attested" : "failed";
    auto written = Record(*w, {w->fence, (*rec)->version}, (*rec)->status, res.state, status, res.findings,
                          {verdict, started});
    if (!Remember(*w, written, std::move(res.state), status)) {
      const Status& st = written.status();
      if (st.code() == StatusCode::kMismatch) {
        // The agent posts to another verifier too, which holds the lease now, or the row
        // changed (an operator): the next round starts from the row as stored.
        Log("lim-verifier: agent=" + w->id + " push round not written: " + st.message());
        return net::JsonError(409, st.message());
      }
      return ErrorResponse(st);
    }
    Add(costs_.store_write_ns, lap());
    Add(costs_.round_ns, lap.total());
    Add(costs_.rounds, 1);
    Add(costs_.sampled_rounds, sampled ? 1 : 0);
    return JsonOk(json{{"verdict", res.retry ? "retry" : res.attested ? "attested" : "failed"},
                       {"findings", res.findings.size()}});
  });
}

}  // namespace lim::verifier
