// lim_fleet_load: a fleet of simulated agents against real lim-verifier processes (issue 15,
// docs/performance.md "Fleet load"). Each agent has lim's in-memory software TPM (tpm.h) with
// an ECC P-256 attestation key, so every round carries a real TPMS_ATTEST quote over the
// verifier's fresh nonce, signed by that agent's key, and a measurement list that grows by a
// few entries per round (a few of them files the policy does not allow: those agents turn
// failed and stay attested round after round as failed, like a real fleet's). Agents are
// push (connect to a verifier with their own client certificate, CN = agent id, one kept
// connection each: POST /v1/push/request then /v1/push/evidence) or pull (an HTTPS server
// per agent that the verifier's round threads ask).
//
// The generator enrolls nobody over the wire: a software AK is refused by enrollment (it is
// not fixedTPM), so the agents are written into the store before the verifiers start, each
// with the state of a first verified round (its list verified up to --list-length entries:
// the verifier keeps PCR 10 at the last verified entry and never reads the list before it,
// so a 1,000,000-entry host costs a round what a 1,000-entry one does, which the run shows).
//
// It starts --verifiers lim-verifier processes on one --store, waits until every agent has
// had a round and the generator's threads are on schedule (warm-up: the TLS handshakes and
// the backlog they leave), then measures for --duration-s: round latency (push: from the
// round's scheduled time to the verdict, with the generator's own part — how late its thread
// began the round — reported apart; pull: how late each request came
// after the previous one plus the interval), rounds per agent (starvation), the verifiers'
// CPU (/proc/PID/stat) and its split by part (GET /v1/stats), the generator's own CPU
// (getrusage), memory (VmRSS) and the load average. Output: a report on stdout and, with
// --json, one JSON document.
//
// Threading: push agents are split over --threads generator threads (each serves its agents
// in phase order, one synchronous round at a time); pull agents are served by their own
// server's thread. An agent's list and TPM are used under its mutex.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attest/evidence_json.h"
#include "attest/round.h"
#include "attest/runtime_policy.h"
#include "attest/store.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "ima/list_writer.h"
#include "net/https_client.h"
#include "net/https_server.h"
#include "tpm/key.h"
#include "tpm/tpm.h"

namespace {

using namespace lim;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The processes the main process started (generators, verifiers): Die kills them. exit()
// is not used there: with the generator's threads still running it could hang in a static
// destructor, and a verifier that refused to start left the run waiting for good.
pid_t g_main_pid = ::getpid();
std::vector<pid_t> g_children;

// A child waited for: Die must not signal its pid (it may be another process's by then).
void Reaped(pid_t pid) { std::erase(g_children, pid); }

[[noreturn]] void Die(const std::string& m) {
  std::fprintf(stderr, "lim_fleet_load: %s\n", m.c_str());
  if (::getpid() == g_main_pid) {
    for (pid_t c : g_children) ::kill(c, SIGKILL);
    for (pid_t c : g_children) ::waitpid(c, nullptr, 0);
  }
  std::fflush(nullptr);
  ::_exit(1);
}

struct Options {
  std::string verifier = "build/src/verifier/lim-verifier";
  std::string store;  // default sqlite:DIR/verifier.db
  std::string dir;    // default a fresh /tmp directory
  int agents = 1000;
  int pull = 0;       // of them pull agents
  int verifiers = 1;
  int interval_ms = 2000;
  int warmup_s = 60;  // at most: measuring starts when every agent has had a round
  int duration_s = 30;
  int new_entries = 3;
  int fail_per_mille = 2;  // new entries that are files the policy does not allow
  int policy_paths = 10000;
  uint64_t list_length = 1000;
  int threads = 8;
  int agents_per_process = 2500;  // push agents per generator process (descriptor limit)
  int verifier_threads = 2;
  int round_threads = 8;
  std::string json_out;
};

// --- PKI: a CA and P-256 leaf certificates, made in process (10,000 agents: ~1 s). ---

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) Die(std::string("certificate extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

CertPtr MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, long serial) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2 * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (!issuer) {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0) Die("X509_sign " + cn);
  return cert;
}

void WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) Die("cannot write " + path);
  bool ok = cert ? PEM_write_X509(f, cert) == 1 : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (std::fclose(f) != 0 || !ok) Die("cannot write " + path);
}

struct Pki {
  std::string dir;
  KeyPtr ca_key{nullptr, EVP_PKEY_free};
  CertPtr ca{nullptr, X509_free};
  long serial = 1;
  std::string ca_file;

  explicit Pki(std::string d) : dir(std::move(d)) {
    ca_key.reset(EVP_EC_gen("P-256"));
    ca = MakeCert(ca_key.get(), "fleet-ca", nullptr, nullptr, serial++);
    ca_file = dir + "/ca.pem";
    WritePem(ca_file, ca.get(), nullptr);
  }
  // name.pem and name.key with CN cn; returns the TlsConfig.
  net::TlsConfig Leaf(const std::string& name, const std::string& cn) {
    KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    CertPtr cert = MakeCert(key.get(), cn, ca.get(), ca_key.get(), serial++);
    net::TlsConfig t{dir + "/" + name + ".pem", dir + "/" + name + ".key", ca_file};
    WritePem(t.cert_file, cert.get(), nullptr);
    WritePem(t.key_file, nullptr, key.get());
    return t;
  }
};

// --- One simulated host. ---

Bytes Digest256(const std::string& s) {
  auto h = Hasher::Create(Sha256Algo());
  h->Update(AsBytes(s));
  return h->Final();
}

// Per window round: latency_us and start_us feed the report (round latency, the generator's
// own lag). sched_ms, agent and req_us are for diagnosis only: each generator writes them
// in DIR/gen-PROC.json (--dir keeps it), to tell which agents fall behind, when, and whether the
// verifier's nonce request or the evidence was slow (they found the generator's lag).
struct Stats {
  std::vector<uint32_t> latency_us;  // rounds in the window
  std::vector<uint32_t> sched_ms;    // each one's scheduled time, ms since t0 (when latency grows)
  std::vector<uint32_t> agent;       // and its agent (which ones are late)
  std::vector<uint32_t> start_us;    // and how late its thread began it (the generator's own lag)
  std::vector<uint32_t> req_us;      // and the nonce request's wall time
  uint64_t rounds = 0, errors = 0, failed_verdicts = 0, skipped = 0;
};

struct SimAgent {
  int n = 0;
  std::string id;
  bool pull = false;
  int verifier = 0;  // push: which verifier it connects to
  std::mutex mu;
  std::unique_ptr<tpm::Tpm> tpm;
  std::vector<uint16_t> banks;
  tpm::AkKey ak;
  uint64_t first = 0;  // list index of offsets[0]
  Bytes list;
  std::vector<size_t> offsets;
  uint64_t files = 0;
  std::mt19937_64 rng;
  std::unique_ptr<net::HttpsClient> client;  // push
  std::unique_ptr<net::HttpsServer> server;  // pull
  Clock::time_point due{};                   // push: next round; pull: last request
  std::atomic<uint64_t>* rounds_total = nullptr;  // in the memory shared with the generator processes
  uint64_t window_rounds = 0;
  std::string first_error;

  void Append(const ima::Record& r) {
    offsets.push_back(list.size());
    if (!ima::ListWriter(Sha1Algo(), ByteOrder::kLittle).Append(r, &list).ok()) Die("list writer");
    std::map<uint16_t, Bytes> d;
    for (uint16_t alg : banks) d[alg] = *ima::TemplateDigestOf(r, *HashAlgoByTpmAlg(alg), ByteOrder::kLittle);
    if (!tpm->Extend(10, d).ok()) Die("extend");
  }
  void AppendFiles(int k, int policy_paths, int fail_per_mille) {
    for (int i = 0; i < k; ++i) {
      uint64_t f = files++;
      if (static_cast<int>(rng() % 1000) < fail_per_mille) {
        Append(ima::ImaNgRecord(Sha256Algo(), Digest256("rogue " + std::to_string(f)), "/usr/bin/rogue" + std::to_string(f)));
      } else {
        uint64_t p = rng() % static_cast<uint64_t>(policy_paths);
        Append(ima::ImaNgRecord(Sha256Algo(), Digest256("content " + std::to_string(p)), "/usr/bin/tool" + std::to_string(p)));
      }
    }
  }
  // The evidence for req: the quote first, then the list from req.list_from. Every entry
  // since the set-up is kept, as a real agent keeps its whole list: a verifier that takes
  // the agent over from the stored state may ask again from an entry another verifier had
  // already been given (dropping those made takeovers look like a rewound list).
  Result<attest::Evidence> Gather(const attest::EvidenceRequest& req) {
    if (req.list_from < first) return Status::Unavailable("asked from entry " + std::to_string(req.list_from) + ", before the set-up's state");
    tpm::PcrSelection sel;
    for (const auto& b : req.pcrs) sel.push_back({b.alg, std::set<int>(b.pcrs.begin(), b.pcrs.end())});
    LIM_ASSIGN_OR_RETURN(auto q, tpm->MakeQuote(ak, sel, req.nonce));
    attest::Evidence ev;
    ev.quote = std::move(q.msg);
    ev.signature = std::move(q.sig);
    ev.pcrs = std::move(q.values);
    ev.nonce = req.nonce;
    ev.list.first_index = req.list_from;
    ev.list.total_entries = first + offsets.size();
    uint64_t at = req.list_from - first;
    if (at < offsets.size()) ev.list.records.assign(list.begin() + static_cast<ptrdiff_t>(offsets[at]), list.end());
    ev.boot_id = "fleet-load";
    ev.limd.running = true;
    ev.limd.detail = "simulated";
    return ev;
  }
};

attest::RuntimePolicy FleetPolicy(int paths) {
  attest::RuntimePolicy p;
  for (int i = 0; i < paths; ++i) p.AllowPath("/usr/bin/tool" + std::to_string(i), Digest256("content " + std::to_string(i)));
  (void)p.AddExclude("/tmp/.*");
  return p;
}

// The agent with a verified first round: its state says entries [0, list_length) are
// verified, PCR 10 at that point, this boot's PCRs and clock.
attest::AgentState SetUp(SimAgent& a, const attest::RuntimePolicy& policy, const Options& o) {
  a.tpm = tpm::OpenSoftwareTpm();
  a.banks = *a.tpm->AllocatedBanks();
  auto ak = a.tpm->CreateAk(tpm::EkType::kEcc, tpm::AkAlg::kEccP256);
  if (!ak.ok()) Die(ak.status().message());
  a.ak = std::move(*ak);
  a.rng.seed(static_cast<uint64_t>(a.n) * 7919u + 17u);
  auto v = a.tpm->ReadPcrs({{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}});
  auto h = Hasher::Create(Sha256Algo());
  for (int i = 0; i <= 9; ++i) h->Update((*v)[TPM2_ALG_SHA256][i]);
  a.Append(ima::ImaNgRecord(Sha256Algo(), h->Final(), "boot_aggregate"));
  a.AppendFiles(9, o.policy_paths, 0);
  attest::EvidenceRequest req = attest::NextRequest(attest::AgentState{}, a.banks);
  req.nonce.assign(20, 1);
  auto ev = a.Gather(req);
  auto pub = tpm::PublicKey::FromTpmPublic(a.ak.pub);
  if (!ev.ok() || !pub.ok()) Die("first evidence of " + a.id);
  attest::RoundResult r = attest::Verify(*pub, attest::AgentState{}, *ev, policy, req.nonce);
  if (!r.attested || r.state.next_index != 10) Die("first round of " + a.id + " did not attest");
  // Entries 10 … list_length-1 are taken as verified: the state (PCR 10 after them) is all
  // the verifier keeps of them, and all the agent needs to keep is what comes after.
  if (o.list_length > 10) r.state.next_index = o.list_length;
  a.list.clear();
  a.offsets.clear();
  a.first = r.state.next_index;
  return r.state;
}

// --- Processes ---

int FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    Die("no free port");
  }
  int port = ntohs(sa.sin_port);
  ::close(s);
  return port;
}

struct VerifierProc {
  pid_t pid = -1;
  int port = 0;
  std::unique_ptr<net::HttpsClient> op;  // the operator's REST client
};

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  g_children.push_back(pid);
  return pid;
}

// utime + stime of a process, in µs.
uint64_t ProcCpuUs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return (utime + stime) * 1000000u / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
}

uint64_t ProcRssKib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

uint64_t SelfCpuUs() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         static_cast<uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

std::string LoadAvg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Busy and total jiffies of the whole machine (/proc/stat "cpu").
std::pair<uint64_t, uint64_t> MachineJiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  uint64_t v, total = 0, idle = 0;
  for (int i = 0; i < 8 && f >> v; ++i) {
    total += v;
    if (i == 3 || i == 4) idle += v;
  }
  return {total - idle, total};
}

json GetStats(VerifierProc& v) {
  auto r = v.op->Request("GET", "/v1/stats");
  if (!r.ok() || r->status != 200) return json::object();
  return json::parse(r->body, nullptr, false);
}

// What the generator processes share (an anonymous shared mapping made before they fork):
// the phase flags, the verifiers' ports and every agent's round counter.
struct Shared {
  std::atomic<int> go{0}, window{0}, stop{0};
  std::atomic<int> ports[64];
  // When a generator thread last began a round more than a quarter interval late (ms since
  // t0): the warm-up lasts until the generators are on schedule, not only until every agent
  // had a round (the handshakes leave a backlog that takes seconds to drain).
  std::atomic<int64_t> last_late_ms{0};
  // One counter per agent follows the struct (the mapping is sized for them).
  std::atomic<uint64_t>* rounds() { return reinterpret_cast<std::atomic<uint64_t>*>(this + 1); }
};

Shared* MapShared(int agents) {
  size_t size = sizeof(Shared) + sizeof(std::atomic<uint64_t>) * static_cast<size_t>(agents);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Die("mmap");
  return new (p) Shared();  // zero-filled: every counter starts at 0
}

uint64_t Pct(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(i), v.end());
  return v[i];
}

// One generator process: its share of the push agents (every procs-th from proc), their
// clients and threads, until the parent says stop; then its results into DIR/gen-PROC.json.
// Runs in a forked child (the agents were set up before the fork), ends with _exit.
[[noreturn]] void RunPushProcess(int proc, int procs, const Options& o, Pki& pki, Shared* shared,
                                 std::vector<std::unique_ptr<SimAgent>>& agents, Clock::time_point t0) {
  // Push agents: their clients, then the generator threads.
  auto interval = std::chrono::milliseconds(o.interval_ms);
  std::vector<std::vector<SimAgent*>> slices(static_cast<size_t>(o.threads));
  size_t mine_count = 0;
  for (auto& a : agents) {
    if (a->pull || (a->n - o.pull) % procs != proc) continue;
    auto ctx = net::MakeClientTls(pki.Leaf("agent-" + std::to_string(a->n), a->id));
    if (!ctx.ok()) Die(ctx.status().message());
    net::ClientOptions co;
    co.port = static_cast<uint16_t>(shared->ports[a->verifier].load());
    auto c = net::HttpsClient::Create(*ctx, co);
    if (!c.ok()) Die(c.status().message());
    a->client = std::move(*c);
    a->due = t0 + interval * a->n / o.agents;
    // By position among this process's agents (by a->n, a process of two would fill only the
    // threads of its parity).
    slices[mine_count++ % slices.size()].push_back(a.get());
  }
  std::atomic<int>& stop = shared->stop;
  std::atomic<int>& window = shared->window;
  std::vector<Stats> stats(slices.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < slices.size(); ++t) {
    threads.emplace_back([&, t] {
     try {
      auto& mine = slices[t];
      Stats& s = stats[t];
      // The agent due first, not the next in a fixed order: once a skip has moved some due
      // times, a fixed order would leave an agent waiting behind one due after it, up to an
      // interval late in every round (the generator's own lag, counted as latency).
      while (!mine.empty() && !stop.load()) {
        SimAgent& a = **std::min_element(mine.begin(), mine.end(), [](const SimAgent* x, const SimAgent* y) { return x->due < y->due; });
        auto sched = a.due;
        std::this_thread::sleep_until(sched);
        if (stop.load()) break;
        auto began = Clock::now();
        if (began - sched > interval / 4) {
          shared->last_late_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(began - t0).count());
        }
        a.AppendFiles(o.new_entries, o.policy_paths, o.fail_per_mille);
        bool in_window = window.load();
        std::string err;
        auto r1 = a.client->Request("POST", "/v1/push/request", "{}");
        const Clock::time_point got_req = Clock::now();
        if (!r1.ok() || r1->status != 200) {
          err = r1.ok() ? "request: HTTP " + std::to_string(r1->status) + " " + r1->body : r1.status().message();
        } else if (auto req = attest::EvidenceRequestFromJson(r1->body); !req.ok()) {
          err = "request: " + req.status().message();
        } else if (auto ev = a.Gather(*req); !ev.ok()) {
          err = "gather: " + ev.status().message();
        } else {
          auto r2 = a.client->Request("POST", "/v1/push/evidence", attest::EvidenceToJson(*ev));
          if (!r2.ok() || r2->status != 200) {
            err = r2.ok() ? "evidence: HTTP " + std::to_string(r2->status) + " " + r2->body : r2.status().message();
          } else if (in_window && r2->body.find("\"failed\"") != std::string::npos) {
            ++s.failed_verdicts;
          }
        }
        auto done = Clock::now();
        if (!err.empty()) {
          if (a.first_error.empty()) a.first_error = err;
          if (in_window) ++s.errors;
        } else {
          a.rounds_total->fetch_add(1);
          if (in_window) {
            ++a.window_rounds;
            ++s.rounds;
            s.latency_us.push_back(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(done - sched).count()));
            s.sched_ms.push_back(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(sched - t0).count()));
            s.agent.push_back(static_cast<uint32_t>(a.n));
            s.start_us.push_back(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(began - sched).count()));
            s.req_us.push_back(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(got_req - began).count()));
          }
        }
        a.due = sched + interval;
        if (a.due + interval < done) {  // more than an interval behind: skip, do not pile up
          a.due = done;
          if (in_window) ++s.skipped;
        }
      }
     } catch (const std::exception& e) {
      Die(std::string("generator thread: ") + e.what());
     }
    });
  }

  // The window's CPU: sampled when the parent flips the flag.
  uint64_t cpu0 = 0, cpu1 = 0;
  while (!window.load() && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  cpu0 = SelfCpuUs();
  while (window.load() && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  cpu1 = SelfCpuUs();
  for (auto& t : threads) t.join();
  json out = {{"cpu_us", cpu1 - cpu0}};
  std::vector<uint32_t> lat, at, who, st0, rq;
  uint64_t rounds = 0, errors = 0, skipped = 0, failed = 0;
  for (auto& st : stats) {
    rounds += st.rounds;
    errors += st.errors;
    skipped += st.skipped;
    failed += st.failed_verdicts;
    lat.insert(lat.end(), st.latency_us.begin(), st.latency_us.end());
    at.insert(at.end(), st.sched_ms.begin(), st.sched_ms.end());
    who.insert(who.end(), st.agent.begin(), st.agent.end());
    st0.insert(st0.end(), st.start_us.begin(), st.start_us.end());
    rq.insert(rq.end(), st.req_us.begin(), st.req_us.end());
  }
  json per_agent = json::array();
  std::string first_error;
  for (auto& sl : slices) {
    for (SimAgent* a : sl) {
      per_agent.push_back({a->n, a->window_rounds});
      if (first_error.empty() && !a->first_error.empty()) first_error = a->id + ": " + a->first_error;
    }
  }
  out["latency_us"] = lat;
  out["sched_ms"] = at;
  out["agent"] = who;
  out["start_us"] = st0;
  out["req_us"] = rq;
  out["rounds"] = rounds;
  out["errors"] = errors;
  out["skipped"] = skipped;
  out["failed_verdicts"] = failed;
  out["window_rounds"] = per_agent;
  out["first_error"] = first_error;
  std::ofstream f(o.dir + "/gen-" + std::to_string(proc) + ".json");
  f << out.dump() << "\n";
  f.close();
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"lim_fleet_load: simulated agents (software TPM, real quotes) against lim-verifier processes"};
  app.add_option("--verifier", o.verifier, "lim-verifier binary")->capture_default_str();
  app.add_option("--store", o.store, "the verifiers' --store (default sqlite:DIR/verifier.db)");
  app.add_option("--dir", o.dir, "work directory (certificates, store, logs); default a new one in /tmp");
  app.add_option("--agents", o.agents, "simulated agents")->capture_default_str();
  app.add_option("--pull", o.pull, "how many of them are pull agents (the rest push)")->capture_default_str();
  app.add_option("--verifiers", o.verifiers, "lim-verifier processes (push agents split between them)")->capture_default_str();
  app.add_option("--interval-ms", o.interval_ms, "round interval")->capture_default_str();
  app.add_option("--warmup-s", o.warmup_s, "longest warm-up (until every agent had a round)")->capture_default_str();
  app.add_option("--duration-s", o.duration_s, "measured time")->capture_default_str();
  app.add_option("--new-entries", o.new_entries, "list entries each agent adds per round")->capture_default_str();
  app.add_option("--fail-per-mille", o.fail_per_mille, "new entries the policy does not allow, per 1000")->capture_default_str();
  app.add_option("--policy-paths", o.policy_paths, "paths in the runtime policy")->capture_default_str();
  app.add_option("--list-length", o.list_length, "entries each agent's list starts with (verified)")->capture_default_str();
  app.add_option("--threads", o.threads, "generator threads for push agents (per process)")->capture_default_str();
  app.add_option("--agents-per-process", o.agents_per_process,
                 "push agents per generator process (each client holds 3-4 descriptors)")->capture_default_str();
  app.add_option("--verifier-threads", o.verifier_threads, "lim-verifier --threads")->capture_default_str();
  app.add_option("--round-threads", o.round_threads, "lim-verifier --round-threads")->capture_default_str();
  app.add_option("--json", o.json_out, "write the results as JSON here");
  CLI11_PARSE(app, argc, argv);
  if (o.agents < 1 || o.pull < 0 || o.pull > o.agents || o.verifiers < 1 || o.verifiers > 64 || o.threads < 1 ||
      o.agents_per_process < 1) {
    Die("bad counts");
  }
  Shared* shared = MapShared(o.agents);
  ::setenv("TSS2_LOG", "all+none", 0);
  ::signal(SIGPIPE, SIG_IGN);
  std::set_terminate([] {
    try {
      if (auto e = std::current_exception()) std::rethrow_exception(e);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lim_fleet_load: uncaught: %s\n", e.what());
    } catch (...) {
    }
    std::_Exit(3);
  });
  // Every push agent's client holds a socket and its io_context's eventfd and epoll
  // descriptors: 10,000 agents need ~30,000 (root may raise the hard limit).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rlimit want{1 << 18, 1 << 18};
  if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);  // inherited by the verifiers
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  int per_process = std::min(o.agents - o.pull, o.agents_per_process);
  if (rl.rlim_cur < static_cast<rlim_t>(per_process) * 4 + static_cast<rlim_t>(o.pull) * 5 + 1000) {
    std::fprintf(stderr, "lim_fleet_load: warning: %llu open files allowed, fewer than %d push agents per process need\n",
                 static_cast<unsigned long long>(rl.rlim_cur), per_process);
  }

  if (o.dir.empty()) {
    char tmpl[] = "/tmp/lim_fleet_load.XXXXXX";
    if (!::mkdtemp(tmpl)) Die("mkdtemp");
    o.dir = tmpl;
  }
  std::filesystem::create_directories(o.dir + "/pki");
  if (o.store.empty()) o.store = "sqlite:" + o.dir + "/verifier.db";
  std::printf("fleet: %d agents (%d pull), %d verifier(s), interval %d ms, store %s, dir %s\n", o.agents, o.pull,
              o.verifiers, o.interval_ms, o.store.c_str(), o.dir.c_str());
  std::fflush(stdout);

  // Certificates, agents, the store.
  auto t_setup = Clock::now();
  Pki pki(o.dir + "/pki");
  net::TlsConfig server_tls = pki.Leaf("verifier", "lim-verifier");
  net::TlsConfig op_tls = pki.Leaf("operator", "fleet-operator");
  net::TlsConfig agent_server_tls = pki.Leaf("agent-server", "fleet-agent-server");
  attest::RuntimePolicy policy = FleetPolicy(o.policy_paths);
  std::vector<std::unique_ptr<SimAgent>> agents;
  {
    auto store = attest::OpenStore(o.store);
    if (!store.ok()) Die("store: " + store.status().message());
    if (auto st = (*store)->PutPolicy("fleet", policy.ToNativeJson()); !st.ok()) Die(st.message());
    auto pull_tls = net::MakeServerTls(agent_server_tls);
    if (!pull_tls.ok()) Die(pull_tls.status().message());
    for (int i = 0; i < o.agents; ++i) {
      auto a = std::make_unique<SimAgent>();
      a->n = i;
      char name[32];
      std::snprintf(name, sizeof name, "agent-%05d", i);
      a->id = name;
      a->pull = i < o.pull;
      a->verifier = i % o.verifiers;
      a->rounds_total = &shared->rounds()[i];
      attest::AgentRecord rec;
      rec.id = a->id;
      rec.tofu = true;
      rec.policy = "fleet";
      rec.status = attest::AgentStatus::kAttested;
      rec.state = SetUp(*a, policy, o);
      rec.identity.agent_id = a->id;
      rec.identity.ak_public = tpm::MarshalPublic2B(a->ak.pub);
      rec.updated = static_cast<int64_t>(std::time(nullptr));
      if (a->pull) {
        net::ServerOptions so;
        so.threads = 1;
        auto s = net::HttpsServer::Create(*pull_tls, so);
        if (!s.ok()) Die(s.status().message());
        a->server = std::move(*s);
        SimAgent* ap = a.get();
        int interval_ms = o.interval_ms, k = o.new_entries, paths = o.policy_paths, fail = o.fail_per_mille;
        a->server->Route("POST", "/v1/evidence", [ap, interval_ms, k, paths, fail](const net::HttpRequest& r) {
          std::lock_guard<std::mutex> lk(ap->mu);
          auto now = Clock::now();
          auto req = attest::EvidenceRequestFromJson(r.body);
          if (!req.ok()) return net::JsonError(400, req.status().message());
          ap->AppendFiles(k, paths, fail);
          auto ev = ap->Gather(*req);
          if (!ev.ok()) return net::JsonError(503, ev.status().message());
          net::HttpResponse out;
          out.body = attest::EvidenceToJson(*ev);
          (void)interval_ms;
          ap->due = now;
          ap->rounds_total->fetch_add(1);
          return out;
        });
        if (auto st = a->server->Start(); !st.ok()) Die(st.message());
        rec.address = "127.0.0.1:" + std::to_string(a->server->port());
      }
      if (auto st = (*store)->PutAgent(rec); !st.ok()) Die(st.message());
      agents.push_back(std::move(a));
    }
  }
  double setup_s = std::chrono::duration<double>(Clock::now() - t_setup).count();
  std::printf("setup: %d agents, certificates and store in %.1f s\n", o.agents, setup_s);
  std::fflush(stdout);

  // The generator processes for the push agents (before any verifier or client exists);
  // they wait for the verifiers' ports.
  int push_agents = o.agents - o.pull;
  int procs = push_agents == 0 ? 0 : (push_agents + o.agents_per_process - 1) / o.agents_per_process;
  std::fflush(nullptr);
  std::vector<pid_t> gens;
  for (int k = 0; k < procs; ++k) {
    pid_t pid = ::fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      while (!shared->go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      RunPushProcess(k, procs, o, pki, shared, agents, Clock::now() + std::chrono::milliseconds(200));
    }
    gens.push_back(pid);
    g_children.push_back(pid);
  }

  // The verifiers.
  std::vector<VerifierProc> verifiers(static_cast<size_t>(o.verifiers));
  auto op_ctx = net::MakeClientTls(op_tls);
  if (!op_ctx.ok()) Die(op_ctx.status().message());
  for (int k = 0; k < o.verifiers; ++k) {
    VerifierProc& v = verifiers[static_cast<size_t>(k)];
    v.port = FreePort();
    std::vector<std::string> args = {o.verifier, "--store", o.store, "--listen", "127.0.0.1:" + std::to_string(v.port),
                                     "--cert", server_tls.cert_file, "--key", server_tls.key_file, "--ca", pki.ca_file,
                                     "--interval-ms", std::to_string(o.interval_ms), "--threads",
                                     std::to_string(o.verifier_threads), "--round-threads", std::to_string(o.round_threads)};
    v.pid = Spawn(args, o.dir + "/verifier-" + std::to_string(k) + ".log");
    net::ClientOptions co;
    co.port = static_cast<uint16_t>(v.port);
    co.connect_timeout = std::chrono::milliseconds(1000);
    auto c = net::HttpsClient::Create(*op_ctx, co);
    if (!c.ok()) Die(c.status().message());
    v.op = std::move(*c);
    for (int tries = 0;; ++tries) {
      auto r = v.op->Request("GET", "/v1/health");
      if (r.ok() && r->status == 200) break;
      int status = 0;
      if (::waitpid(v.pid, &status, WNOHANG) == v.pid) {
        Reaped(v.pid);
        Die("verifier " + std::to_string(k) + " exited at start (see its log)");
      }
      if (tries > 300) Die("verifier " + std::to_string(k) + " did not start (see its log)");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::vector<uint64_t> rss_ready;
  for (auto& v : verifiers) rss_ready.push_back(ProcRssKib(v.pid));
  for (int k = 0; k < o.verifiers; ++k) shared->ports[k] = verifiers[static_cast<size_t>(k)].port;
  auto interval = std::chrono::milliseconds(o.interval_ms);
  auto t0 = Clock::now();
  shared->go = 1;

  // Warm-up: every agent has had a round (handshakes done) and no generator thread began a
  // round more than a quarter interval late for two intervals — or the warm-up time is over
  // (a load the verifier does not carry never gets on schedule).
  auto warm_end = Clock::now() + std::chrono::seconds(o.warmup_s);
  size_t behind = 0;
  bool on_schedule = false;
  while (Clock::now() < warm_end) {
    behind = 0;
    for (auto& a : agents) behind += a->rounds_total->load() == 0;
    auto since_late = Clock::now() - (t0 + std::chrono::milliseconds(shared->last_late_ms.load()));
    on_schedule = since_late > 2 * interval;
    if (behind == 0 && on_schedule) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  double warm_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("warm-up: %.1f s, %zu agents without a round yet, generators %s\n", warm_s, behind,
              on_schedule ? "on schedule" : "still behind");
  std::fflush(stdout);
  // One more interval so that the handshakes' backlog is worked off before measuring.
  std::this_thread::sleep_for(interval);

  // The window.
  std::vector<uint64_t> pull_start(agents.size());
  for (size_t i = 0; i < agents.size(); ++i) pull_start[i] = agents[i]->rounds_total->load();
  std::vector<json> vs0;
  std::vector<uint64_t> vcpu0;
  for (auto& v : verifiers) {
    vs0.push_back(GetStats(v));
    vcpu0.push_back(ProcCpuUs(v.pid));
  }
  uint64_t gen0 = SelfCpuUs();
  auto mach0 = MachineJiffies();
  std::string load0 = LoadAvg();
  auto w0 = Clock::now();
  shared->window = 1;
  std::this_thread::sleep_for(std::chrono::seconds(o.duration_s));
  shared->window = 0;
  double wall = std::chrono::duration<double>(Clock::now() - w0).count();
  uint64_t gen_us = SelfCpuUs() - gen0;
  auto mach1 = MachineJiffies();
  std::string load1 = LoadAvg();
  std::vector<json> vs1;
  std::vector<uint64_t> vcpu;
  std::vector<uint64_t> rss_end;
  for (size_t k = 0; k < verifiers.size(); ++k) {
    vcpu.push_back(ProcCpuUs(verifiers[k].pid) - vcpu0[k]);
    vs1.push_back(GetStats(verifiers[k]));
    rss_end.push_back(ProcRssKib(verifiers[k].pid));
  }
  std::vector<uint64_t> pull_rounds(agents.size());
  for (size_t i = 0; i < agents.size(); ++i) pull_rounds[i] = agents[i]->rounds_total->load() - pull_start[i];
  shared->stop = 1;
  Stats all;
  std::vector<uint64_t> push_rounds(agents.size());
  for (size_t k = 0; k < gens.size(); ++k) {
    int status = 0;
    ::waitpid(gens[k], &status, 0);
    Reaped(gens[k]);
    std::ifstream f(o.dir + "/gen-" + std::to_string(k) + ".json");
    json g = json::parse(f, nullptr, false);
    if (g.is_discarded()) Die("generator process " + std::to_string(k) + " left no results (status " + std::to_string(status) + ")");
    gen_us += g["cpu_us"].get<uint64_t>();
    all.rounds += g["rounds"].get<uint64_t>();
    all.errors += g["errors"].get<uint64_t>();
    all.skipped += g["skipped"].get<uint64_t>();
    all.failed_verdicts += g["failed_verdicts"].get<uint64_t>();
    for (auto& v : g["latency_us"]) all.latency_us.push_back(v.get<uint32_t>());
    for (auto& v : g["start_us"]) all.start_us.push_back(v.get<uint32_t>());
    for (auto& p : g["window_rounds"]) push_rounds[p[0].get<size_t>()] = p[1].get<uint64_t>();
    if (auto e = g["first_error"].get<std::string>(); !e.empty()) {
      for (auto& a : agents) {
        if (a->first_error.empty() && e.rfind(a->id + ":", 0) == 0) a->first_error = e.substr(a->id.size() + 2);
      }
    }
  }
  for (auto& v : verifiers) {
    ::kill(v.pid, SIGTERM);
    int status = 0;
    ::waitpid(v.pid, &status, 0);
    Reaped(v.pid);
  }
  for (auto& a : agents) {
    if (a->server) a->server->Stop();
  }

  // Results.
  double expected = wall * 1000.0 / o.interval_ms;  // rounds per agent in the window
  uint64_t min_rounds = UINT64_MAX, max_rounds = 0, pull_total = 0;
  size_t starved = 0;
  std::string an_error;
  for (size_t i = 0; i < agents.size(); ++i) {
    uint64_t n = agents[i]->pull ? pull_rounds[i] : push_rounds[i];
    if (agents[i]->pull) pull_total += n;
    min_rounds = std::min(min_rounds, n);
    max_rounds = std::max(max_rounds, n);
    if (static_cast<double>(n) < expected * 0.5) ++starved;
    if (an_error.empty() && !agents[i]->first_error.empty()) an_error = agents[i]->id + ": " + agents[i]->first_error;
  }
  uint64_t p50 = Pct(all.latency_us, 0.5), p90 = Pct(all.latency_us, 0.9), p99 = Pct(all.latency_us, 0.99),
           pmax = all.latency_us.empty() ? 0 : *std::max_element(all.latency_us.begin(), all.latency_us.end());
  uint64_t lag50 = Pct(all.start_us, 0.5), lag99 = Pct(all.start_us, 0.99);
  uint64_t ver_rounds = 0, ver_cpu = 0;
  json parts = json::object();
  for (size_t k = 0; k < verifiers.size(); ++k) {
    ver_cpu += vcpu[k];
    if (!vs1[k].contains("rounds") || !vs0[k].contains("rounds")) continue;
    ver_rounds += vs1[k]["rounds"].get<uint64_t>() - vs0[k]["rounds"].get<uint64_t>();
    for (auto it = vs1[k]["cpu_ns"].begin(); it != vs1[k]["cpu_ns"].end(); ++it) {
      uint64_t d = it->get<uint64_t>() - vs0[k]["cpu_ns"][it.key()].get<uint64_t>();
      parts[it.key()] = parts.value(it.key(), uint64_t{0}) + d;
    }
  }
  double rounds_per_s = static_cast<double>(ver_rounds) / wall;
  double cpu_per_round_us = ver_rounds ? static_cast<double>(ver_cpu) / static_cast<double>(ver_rounds) : 0;
  double gen_per_round_us = ver_rounds ? static_cast<double>(gen_us) / static_cast<double>(ver_rounds) : 0;
  double machine_busy = static_cast<double>(mach1.first - mach0.first) / static_cast<double>(mach1.second - mach0.second);
  uint64_t rss_total = 0, rss_ready_total = 0;
  for (auto r : rss_end) rss_total += r;
  for (auto r : rss_ready) rss_ready_total += r;

  json out = {{"agents", o.agents}, {"pull", o.pull}, {"verifiers", o.verifiers}, {"interval_ms", o.interval_ms},
              {"store", o.store.rfind("sqlite:", 0) == 0 ? "sqlite" : "postgresql"}, {"list_length", o.list_length},
              {"new_entries", o.new_entries}, {"policy_paths", o.policy_paths}, {"window_s", wall},
              {"rounds", ver_rounds}, {"rounds_per_s", rounds_per_s}, {"target_rounds_per_s", o.agents * 1000.0 / o.interval_ms},
              {"push_latency_us", {{"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", pmax}, {"n", all.latency_us.size()}}},
              {"generator_lag_us", {{"p50", lag50}, {"p99", lag99}}},
              {"rounds_per_agent", {{"expected", expected}, {"min", min_rounds}, {"max", max_rounds}, {"starved", starved}}},
              {"errors", all.errors}, {"skipped", all.skipped}, {"failed_verdicts", all.failed_verdicts},
              {"verifier_cpu_us_per_round", cpu_per_round_us}, {"verifier_cores", static_cast<double>(ver_cpu) / 1e6 / wall},
              {"generator_cpu_us_per_round", gen_per_round_us}, {"generator_cores", static_cast<double>(gen_us) / 1e6 / wall},
              {"machine_busy_cores", machine_busy * static_cast<double>(std::thread::hardware_concurrency())},
              {"verifier_rss_kib", rss_total}, {"verifier_rss_ready_kib", rss_ready_total},
              {"load_before", load0}, {"load_after", load1}, {"first_error", an_error}};
  json per_round = json::object();
  for (auto it = parts.begin(); it != parts.end(); ++it) {
    per_round[it.key()] = ver_rounds ? static_cast<double>(it->get<uint64_t>()) / 1000.0 / static_cast<double>(ver_rounds) : 0;
  }
  out["verifier_cpu_us_per_round_by_part"] = per_round;

  std::printf("window %.1f s: %llu rounds, %.0f rounds/s (target %.0f); errors %llu, skipped %llu, failed verdicts %llu\n",
              wall, static_cast<unsigned long long>(ver_rounds), rounds_per_s, o.agents * 1000.0 / o.interval_ms,
              static_cast<unsigned long long>(all.errors), static_cast<unsigned long long>(all.skipped),
              static_cast<unsigned long long>(all.failed_verdicts));
  std::printf("push round latency (scheduled → verdict) µs: p50 %llu p90 %llu p99 %llu max %llu (n=%zu)\n",
              static_cast<unsigned long long>(p50), static_cast<unsigned long long>(p90), static_cast<unsigned long long>(p99),
              static_cast<unsigned long long>(pmax), all.latency_us.size());
  std::printf("  of which the generator's own lag (scheduled → round begun) µs: p50 %llu p99 %llu\n",
              static_cast<unsigned long long>(lag50), static_cast<unsigned long long>(lag99));
  std::printf("rounds per agent: expected %.1f, min %llu, max %llu, starved (<half) %zu; pull rounds %llu\n", expected,
              static_cast<unsigned long long>(min_rounds), static_cast<unsigned long long>(max_rounds), starved,
              static_cast<unsigned long long>(pull_total));
  std::printf("CPU: verifier(s) %.2f cores = %.1f µs/round; generator %.2f cores = %.1f µs/round; machine busy %.2f cores\n",
              out["verifier_cores"].get<double>(), cpu_per_round_us, out["generator_cores"].get<double>(), gen_per_round_us,
              out["machine_busy_cores"].get<double>());
  std::printf("verifier µs/round by part (thread CPU):");
  for (auto it = per_round.begin(); it != per_round.end(); ++it) std::printf(" %s %.1f", it.key().c_str(), it->get<double>());
  std::printf("\nverifier RSS: %llu KiB at start, %llu KiB at end = %.1f KiB/agent (%.1f KiB/agent growth)\n",
              static_cast<unsigned long long>(rss_ready_total), static_cast<unsigned long long>(rss_total),
              static_cast<double>(rss_total) / o.agents, static_cast<double>(rss_total - rss_ready_total) / o.agents);
  std::printf("load average: before %s, after %s\n", load0.c_str(), load1.c_str());
  if (!an_error.empty()) std::printf("an error: %s\n", an_error.c_str());
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    f << out.dump(2) << "\n";
  }
  return 0;
}
