#include "attest/round.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/cpu_time.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "ima/digest_field.h"
#include "ima/list_reader.h"
#include "ima/replay.h"
#include "tcg/event_log.h"
#include "tcg/replay.h"
#include "tpm/quote.h"

namespace lim::attest {
namespace {

constexpr int kImaPcr = 10;

Reason QuoteReason(tpm::QuoteFailure f) {
  switch (f) {
    case tpm::QuoteFailure::kSignature: return Reason::kQuoteSignature;
    case tpm::QuoteFailure::kMagic:
    case tpm::QuoteFailure::kType: return Reason::kQuoteMagic;
    case tpm::QuoteFailure::kNonce: return Reason::kNonce;
    case tpm::QuoteFailure::kPcrSelect: return Reason::kPcrSelection;
    case tpm::QuoteFailure::kPcrDigest: return Reason::kPcrDigest;
    default: return Reason::kEvidenceMalformed;
  }
}

Finding Simple(Reason r, std::string detail) {
  Finding f;
  f.reason = r;
  f.detail = std::move(detail);
  return f;
}

// One bank's running PCR 10 during the incremental replay.
struct BankRun {
  uint16_t alg = 0;
  HashAlgo algo{};
  std::optional<ima::BankDigester> digester;
  std::optional<Hasher> hasher;
  Bytes value;
  const Bytes* quoted = nullptr;
  Bytes scratch;

  void Extend(const ima::Entry& e) {
    scratch.resize(algo.size);
    digester->Compute(e, scratch.data());
    hasher->Reset();
    hasher->Update(value);
    hasher->Update(scratch);
    hasher->Final(value.data());
  }
};

bool AllMatch(const std::vector<BankRun>& runs) {
  for (const auto& r : runs) {
    if (r.value != *r.quoted) return false;
  }
  return true;
}

Bytes EventFingerprint(const tcg::Event& e) {
  auto h = Hasher::Create(Sha256Algo());
  uint8_t head[8];
  for (int i = 0; i < 4; ++i) {
    head[i] = static_cast<uint8_t>(e.pcr >> (24 - 8 * i));
    head[4 + i] = static_cast<uint8_t>(e.type >> (24 - 8 * i));
  }
  h->Update(ByteView(head, 8));
  for (const auto& d : e.digests) {
    uint8_t a[2] = {static_cast<uint8_t>(d.alg >> 8), static_cast<uint8_t>(d.alg)};
    h->Update(ByteView(a, 2));
    h->Update(d.digest);
  }
  h->Update(e.data);
  return h->Final();
}

// The firmware event log against the quoted PCRs 0–7 and the log accepted earlier.
void CheckFirmwareLog(ByteView data, const std::map<uint16_t, std::map<int, Bytes>>& quoted, const RuntimePolicy& policy,
                      AgentState* st, std::vector<Finding>* out) {
  auto log = tcg::ParseEventLog(data);
  if (!log.ok()) {
    out->push_back(Simple(Reason::kFirmwareLogMalformed, log.status().message()));
    return;
  }
  std::vector<Bytes> prints;
  prints.reserve(log->events.size());
  for (const auto& e : log->events) prints.push_back(EventFingerprint(e));
  size_t before = out->size();
  if (!st->firmware_events.empty()) {
    size_t n = std::min(prints.size(), st->firmware_events.size());
    for (size_t i = 0; i < n; ++i) {
      if (prints[i] != st->firmware_events[i]) {
        Finding f = Simple(Reason::kFirmwareEventDiffers, "event differs from the log accepted earlier this boot");
        f.entry = i;
        f.pcr = static_cast<int>(log->events[i].pcr);
        f.reference = "accepted event fingerprint " + ToHex(st->firmware_events[i]).substr(0, 16);
        out->push_back(std::move(f));
        break;
      }
    }
    if (out->size() == before && prints.size() != st->firmware_events.size()) {
      Finding f = Simple(Reason::kFirmwareEventDiffers, "log has " + std::to_string(prints.size()) +
                                                            " events, the accepted one " +
                                                            std::to_string(st->firmware_events.size()));
      f.entry = n;
      out->push_back(std::move(f));
    }
  }
  tcg::ReplayResult r = tcg::Replay(*log);
  for (size_t i = 0; i < r.checks.size() && i < log->events.size(); ++i) {
    if (r.checks[i] != tcg::DigestCheck::kMismatch) continue;
    Finding f = Simple(Reason::kFirmwareEventDiffers, "event digest is not the hash of its data");
    f.entry = i;
    f.pcr = static_cast<int>(log->events[i].pcr);
    out->push_back(std::move(f));
    break;
  }
  bool common = false;
  for (const auto& [alg, pcrs] : quoted) {
    const tcg::PcrBank* bank = r.pcrs.FindAlg(alg);
    if (!bank) continue;
    common = true;
    for (int p = 0; p <= 7; ++p) {
      auto q = pcrs.find(p);
      if (q == pcrs.end()) continue;
      if (bank->pcrs[static_cast<size_t>(p)] == q->second) continue;
      Finding f = Simple(Reason::kFirmwareLogDiffers, "the firmware log does not replay to the quoted value");
      f.pcr = p;
      f.bank = TpmBankName(alg);
      f.digest = ToHex(bank->pcrs[static_cast<size_t>(p)]);
      f.reference = "quote: " + ToHex(q->second);
      // Name the last event of that PCR: the change is in it or before it.
      for (size_t i = log->events.size(); i-- > 0;) {
        if (log->events[i].pcr == static_cast<uint32_t>(p)) {
          f.entry = i;
          break;
        }
      }
      out->push_back(std::move(f));
    }
  }
  if (!common) out->push_back(Simple(Reason::kFirmwareLogDiffers, "the firmware log has none of the quoted banks"));
  if (out->size() != before) return;
  // The log is the one the TPM quoted: now its boot components against the references. A
  // log that fails them is kept (later logs must equal it) but not marked checked, so every
  // round asks for it again and fails again until the host boots what the policy allows.
  st->firmware_events = std::move(prints);
  if (const BootPolicy* boot = policy.boot()) {
    std::vector<Finding> refs = boot->Check(*log);
    if (!refs.empty()) {
      for (auto& f : refs) out->push_back(std::move(f));
      return;
    }
  }
  st->firmware_checked = true;
}

// boot_aggregate (entry 0) against the quoted PCRs 0–9 (0–7 for sha1 and pre-5.8 kernels).
std::optional<Finding> CheckBootAggregate(const ima::Entry& e, const std::map<uint16_t, std::map<int, Bytes>>& quoted) {
  Finding f;
  f.reason = Reason::kBootAggregate;
  f.entry = 0;
  f.pcr = static_cast<int>(e.pcr);
  f.tmpl = std::string(e.template_name);
  f.path = std::string(e.name());
  if (e.name() != "boot_aggregate") {
    f.detail = "entry 0 is not boot_aggregate";
    return f;
  }
  ByteView digest;
  std::string algo_name = "sha1";
  if (e.HasField(ima::FieldId::kDNg)) {
    auto df = ima::ParseDigestField(e.FieldById(ima::FieldId::kDNg), false);
    if (!df.ok()) {
      f.detail = df.status().message();
      return f;
    }
    digest = df->digest;
    algo_name = std::string(df->algo_name);
  } else {
    digest = e.FieldById(ima::FieldId::kD);
  }
  f.digest = algo_name + ":" + ToHex(digest);
  auto algo = HashAlgoByName(algo_name);
  if (!algo.ok() || !algo->tpm_alg || !HashAlgoAvailable(*algo)) {
    f.detail = "boot_aggregate of algorithm " + algo_name + " cannot be computed";
    return f;
  }
  auto bank = quoted.find(algo->tpm_alg);
  if (bank == quoted.end()) {
    f.detail = "the quote does not cover the " + std::string(algo->tpm_name) + " bank";
    return f;
  }
  std::string tried;
  for (int last : {9, 7}) {
    auto h = Hasher::Create(*algo);
    bool complete = true;
    for (int i = 0; i <= last; ++i) {
      auto v = bank->second.find(i);
      if (v == bank->second.end()) {
        complete = false;
        break;
      }
      h->Update(v->second);
    }
    if (!complete) continue;
    Bytes want = h->Final();
    if (ToHex(want) == ToHex(digest)) return std::nullopt;
    if (!tried.empty()) tried += " or ";
    tried += "PCR 0-" + std::to_string(last) + ": " + ToHex(want);
  }
  f.reference = tried.empty() ? "quote: PCRs 0-7 not all quoted" : "quote: " + tried;
  return f;
}

void AddFinding(std::vector<Finding>* out, Finding f, size_t max, size_t* dropped) {
  if (out->size() >= max) {
    ++*dropped;
    return;
  }
  out->push_back(std::move(f));
}

}  // namespace

RoundResult Verify(const tpm::PublicKey& ak, const AgentState& old, const Evidence& ev, const RuntimePolicy& policy,
                   ByteView nonce, const VerifyOptions& options) {
  RoundResult res;
  res.state = old;
  auto finish = [&](RoundResult& r) -> RoundResult {
    r.attested = std::none_of(r.findings.begin(), r.findings.end(), [](const Finding& f) { return f.failure(); });
    std::vector<uint16_t> banks;
    for (const auto& [alg, v] : ev.pcrs) banks.push_back(alg);
    r.next = NextRequest(r.state, banks);
    return std::move(r);
  };

  // 1. The quote.
  const uint64_t quote_t0 = options.cpu ? ThreadCpuNs() : 0;
  auto info = tpm::ParseAttest(ev.quote);
  if (!info.ok()) {
    res.findings.push_back(Simple(Reason::kEvidenceMalformed, "quote: " + info.status().message()));
    return finish(res);
  }
  tpm::PcrValues quoted;
  for (const auto& b : info->selection) {
    auto have = ev.pcrs.find(b.alg);
    for (int p : b.pcrs) {
      if (have == ev.pcrs.end() || !have->second.count(p)) continue;
      quoted[b.alg][p] = have->second.at(p);
    }
  }
  tpm::QuoteFailure qf = tpm::QuoteFailure::kNone;
  auto q = tpm::CheckQuote(ak, ev.quote, ev.signature, nonce, info->selection, quoted, &qf);
  if (options.cpu) options.cpu->quote_ns += ThreadCpuNs() - quote_t0;
  if (!q.ok()) {
    Finding f = Simple(QuoteReason(qf), q.status().message());
    if (qf == tpm::QuoteFailure::kNonce) {
      f.digest = ToHex(info->extra_data);
      f.reference = "nonce sent: " + ToHex(nonce);
    }
    res.findings.push_back(std::move(f));
    return finish(res);
  }
  struct BankQuoted {
    uint16_t alg;
    HashAlgo algo;
    const Bytes* quoted;
  };
  std::vector<BankQuoted> runs;
  for (const auto& [alg, pcrs] : quoted) {
    if (!pcrs.count(kImaPcr)) continue;
    auto algo = HashAlgoByTpmAlg(alg);
    if (!algo.ok() || !HashAlgoAvailable(*algo)) continue;
    runs.push_back({alg, *algo, &pcrs.at(kImaPcr)});
  }
  if (runs.empty()) {
    Finding f = Simple(Reason::kPcrSelection, "the quote covers PCR 10 in no bank lim can replay");
    f.pcr = kImaPcr;
    res.findings.push_back(std::move(f));
    return finish(res);
  }

  // boot_id is a UUID the agent reads from /proc; anything else is refused before it is
  // compared or stored.
  if (ev.boot_id.size() > 64 || std::any_of(ev.boot_id.begin(), ev.boot_id.end(), [](char c) {
        return c < 0x21 || c > 0x7e;
      })) {
    res.findings.push_back(Simple(Reason::kEvidenceMalformed, "boot_id is not a short printable string"));
    return finish(res);
  }

  // 2. Counters: a reboot starts over, a counter that went back fails.
  const tpm::ClockInfo& clock = q->clock;
  AgentState& st = res.state;
  if (old.started) {
    if (clock.reset_count < old.reset_count) {
      Finding f = Simple(Reason::kResetCount, "the TPM's reset count went back");
      f.digest = std::to_string(clock.reset_count);
      f.reference = "last seen: " + std::to_string(old.reset_count);
      res.findings.push_back(std::move(f));
      return finish(res);
    }
    bool new_boot = clock.reset_count > old.reset_count || (!ev.boot_id.empty() && ev.boot_id != old.boot_id);
    if (new_boot) {
      Finding f = Simple(Reason::kReboot, "verification starts over from entry 0");
      f.digest = "reset_count=" + std::to_string(clock.reset_count) + " boot_id=" + ev.boot_id;
      f.reference = "last: reset_count=" + std::to_string(old.reset_count) + " boot_id=" + old.boot_id;
      res.findings.push_back(std::move(f));
      res.reboot = true;
      AgentState fresh;
      fresh.reboots = old.reboots + 1;
      fresh.list_source = old.list_source;
      st = std::move(fresh);
    } else {
      if (clock.restart_count < old.restart_count || clock.clock < old.clock) {
        Finding f = Simple(Reason::kClock, "the TPM clock or restart count went back within one boot");
        f.digest = "clock=" + std::to_string(clock.clock) + " restart_count=" + std::to_string(clock.restart_count);
        f.reference = "last: clock=" + std::to_string(old.clock) + " restart_count=" + std::to_string(old.restart_count);
        res.findings.push_back(std::move(f));
        return finish(res);
      }
    }
  }
  if (!st.started && ev.list.first_index != 0) {
    // A new boot (or the first round) must be verified from entry 0: ask again.
    st.reset_count = clock.reset_count;
    st.restart_count = clock.restart_count;
    st.clock = clock.clock;
    st.boot_id = ev.boot_id;
    res.retry = true;
    RoundResult out = finish(res);
    out.attested = false;
    return out;
  }

  // 3. PCRs 0–9 within a boot, measured-boot expectations.
  std::map<uint16_t, std::map<int, Bytes>> boot_now;
  for (const auto& [alg, pcrs] : quoted) {
    for (const auto& [p, v] : pcrs) {
      if (p <= 9) boot_now[alg][p] = v;
    }
  }
  if (st.started) {
    for (const auto& [alg, pcrs] : st.boot_pcrs) {
      for (const auto& [p, v] : pcrs) {
        auto b = boot_now.find(alg);
        if (b == boot_now.end() || !b->second.count(p) || b->second.at(p) == v) continue;
        Finding f = Simple(Reason::kBootPcrChanged, "PCR changed within one boot");
        f.pcr = p;
        f.bank = TpmBankName(alg);
        f.digest = ToHex(b->second.at(p));
        f.reference = "earlier this boot: " + ToHex(v);
        res.findings.push_back(std::move(f));
      }
    }
  }
  for (auto& f : policy.CheckBootPcrs(boot_now)) res.findings.push_back(std::move(f));

  // 4. The firmware log.
  if (ev.event_log) {
    if (ev.event_log->size() > options.max_event_log_bytes) {
      res.findings.push_back(Simple(Reason::kFirmwareLogMalformed, "firmware log of " +
                                                                       std::to_string(ev.event_log->size()) +
                                                                       " bytes is over the limit"));
    } else {
      CheckFirmwareLog(*ev.event_log, boot_now, policy, &st, &res.findings);
    }
  } else if (policy.boot() && !st.firmware_checked) {
    Finding f = Simple(Reason::kBootComponent, "the policy has boot references and the agent sent no firmware event log");
    f.reference = "policy boot";
    res.findings.push_back(std::move(f));
  }

  // 5. The measurement list from the first entry not verified yet.
  const uint64_t expected_from = st.next_index + st.pending_entries;
  const ListTail& tail = ev.list;
  if (st.started && tail.total_entries < st.next_index) {
    Finding f = Simple(Reason::kListRewound, "the list is shorter than the part already verified");
    f.entry = tail.total_entries;
    f.reference = "verified: " + std::to_string(st.next_index) + " entries";
    res.findings.push_back(std::move(f));
    return finish(res);
  }
  if (tail.records.size() > options.max_list_bytes) {
    res.findings.push_back(Simple(Reason::kEvidenceMalformed, "list tail of " + std::to_string(tail.records.size()) +
                                                                  " bytes is over the limit of " +
                                                                  std::to_string(options.max_list_bytes)));
    return finish(res);
  }
  bool use_pending = tail.first_index == expected_from && st.pending_entries > 0;
  if (tail.first_index != expected_from && tail.first_index != st.next_index) {
    Finding f = Simple(tail.first_index < st.next_index ? Reason::kListRewound : Reason::kListGap,
                       "the list tail does not start where the verifier asked");
    f.entry = tail.first_index;
    f.reference = "asked from entry " + std::to_string(expected_from);
    res.findings.push_back(std::move(f));
    return finish(res);
  }
  Bytes joined;
  ByteView records = tail.records;
  if (use_pending) {
    joined.reserve(st.pending.size() + tail.records.size());
    joined = st.pending;
    joined.insert(joined.end(), tail.records.begin(), tail.records.end());
    records = joined;
  }
  auto list_bank = HashAlgoByName(tail.list_bank);
  if (!list_bank.ok() || (!st.list_bank.empty() && st.list_bank != list_bank->kernel_name)) {
    res.findings.push_back(Simple(Reason::kEvidenceMalformed, "list bank \"" + tail.list_bank + "\" " +
                                                                 (list_bank.ok() ? "changed from " + st.list_bank
                                                                                 : "is not a hash algorithm")));
    return finish(res);
  }
  if (tail.byte_order != "little" && tail.byte_order != "big") {
    res.findings.push_back(Simple(Reason::kEvidenceMalformed, "list byte order \"" + tail.byte_order + "\""));
    return finish(res);
  }
  ima::ListOptions lo;
  lo.bank = *list_bank;
  lo.byte_order = tail.byte_order == "big" ? ByteOrder::kBig : ByteOrder::kLittle;

  std::vector<ima::ReplayMode> modes;
  if (st.replay_mode == "sha1-padded") {
    modes = {ima::ReplayMode::kPaddedSha1};
  } else if (st.replay_mode == "per-bank" || st.next_index > 0) {
    modes = {ima::ReplayMode::kPerBank};
  } else {
    modes = {ima::ReplayMode::kPerBank, ima::ReplayMode::kPaddedSha1};
  }
  const uint64_t base = st.next_index;
  struct Outcome {
    bool matched = false;
    uint64_t covered = 0;       // new entries the quote covers
    uint64_t rest_offset = 0;   // byte offset in records of the first uncovered entry
    uint64_t parsed = 0;
    std::vector<Finding> findings;   // template digests, boot_aggregate, policy (covered entries)
    std::vector<Finding> hints;      // template digests of entries past the last match try
    LearnedKeys learned;
    DmState dm;
    std::vector<BankRun> runs;
    std::optional<Finding> error;
  };
  LearnedKeys known;
  for (const auto& der : st.learned_certificates) {
    auto k = PublicKey::FromDer(der, "learned key");
    if (k.ok()) {
      known.certificates.push_back(der);
      known.keys.push_back(std::move(k).value());
    }
  }
  auto replay = [&](ima::ReplayMode mode) {
    Outcome o;
    o.dm = st.dm;  // also when nothing new is replayed: the state carries over
    for (const auto& b : runs) {
      o.runs.emplace_back();
      o.runs.back().alg = b.alg;
      o.runs.back().algo = b.algo;
      o.runs.back().quoted = b.quoted;
    }
    for (auto& r : o.runs) {
      auto d = ima::BankDigester::Create(r.algo, *list_bank, mode);
      if (!d.ok()) {
        o.error = Simple(Reason::kEvidenceMalformed, d.status().message());
        return o;
      }
      r.digester.emplace(std::move(d).value());
      auto h = Hasher::Create(r.algo);
      r.hasher.emplace(std::move(h).value());
      auto saved = st.pcr10.find(r.alg);
      r.value = saved != st.pcr10.end() ? saved->second : Bytes(r.algo.size, 0);
    }
    if (AllMatch(o.runs)) {
      o.matched = true;
      return o;
    }
    auto reader = ima::ListReader::FromBytes(records, lo, "list tail");
    if (!reader.ok()) {
      o.error = Simple(Reason::kListMalformed, reader.status().message());
      return o;
    }
    auto tdc = ima::TemplateDigestChecker::Create(*list_bank);
    LearnedKeys learned_all = known;
    ima::Entry e;
    Bytes computed;
    for (;;) {
      auto more = (*reader)->Next(&e);
      if (!more.ok()) {
        Finding f = Simple(Reason::kListMalformed, more.status().message() + " (in the tail that starts at entry " +
                                                       std::to_string(base) + ")");
        f.entry = base + (*reader)->entries_read();
        o.error = std::move(f);
        return o;
      }
      if (!*more) break;
      const uint64_t index = base + e.index;
      ++o.parsed;
      std::vector<Finding>& sink = o.findings;
      if (!e.violation && !tdc->Check(e, &computed)) {
        Finding f = Simple(Reason::kTemplateDigest, "stored template digest is not the hash of the entry");
        f.entry = index;
        f.pcr = static_cast<int>(e.pcr);
        f.tmpl = std::string(e.template_name);
        f.path = std::string(e.name());
        f.digest = ToHex(e.digest);
        f.reference = "computed: " + ToHex(computed);
        sink.push_back(std::move(f));
      }
      if (e.pcr == static_cast<uint32_t>(kImaPcr)) {
        for (auto& r : o.runs) r.Extend(e);
      }
      e.index = index;
      if (index == 0) {
        if (auto f = CheckBootAggregate(e, quoted)) sink.push_back(std::move(*f));
      } else if (e.pcr != static_cast<uint32_t>(kImaPcr)) {
        Finding f = Simple(Reason::kListMalformed, "entry extends a PCR other than 10, which the quote does not cover");
        f.entry = index;
        f.pcr = static_cast<int>(e.pcr);
        f.path = std::string(e.name());
        sink.push_back(std::move(f));
      } else {
        LearnedKeys fresh;
        const uint64_t policy_t0 = options.cpu ? ThreadCpuNs() : 0;
        if (auto f = policy.Check(e, learned_all, &fresh, &o.dm)) sink.push_back(std::move(*f));
        if (options.cpu) options.cpu->policy_ns += ThreadCpuNs() - policy_t0;
        for (size_t i = 0; i < fresh.keys.size(); ++i) {
          learned_all.certificates.push_back(fresh.certificates[i]);
          learned_all.keys.push_back(fresh.keys[i]);
          o.learned.certificates.push_back(fresh.certificates[i]);
          o.learned.keys.push_back(fresh.keys[i]);
        }
      }
      if (AllMatch(o.runs)) {
        o.matched = true;
        o.covered = e.index - base + 1;
        o.rest_offset = (*reader)->next_offset();
        return o;
      }
    }
    return o;
  };
  Outcome out;
  ima::ReplayMode used = modes.front();
  const uint64_t list_t0 = options.cpu ? ThreadCpuNs() : 0;
  for (auto mode : modes) {
    out = replay(mode);
    used = mode;
    if (out.matched || out.error) break;
  }
  if (options.cpu) options.cpu->list_ns += ThreadCpuNs() - list_t0;
  if (out.error) {
    res.findings.push_back(std::move(*out.error));
    return finish(res);
  }
  if (!out.matched && tail.total_entries > base + out.parsed &&
      !std::any_of(out.findings.begin(), out.findings.end(),
                   [](const Finding& f) { return f.reason == Reason::kTemplateDigest; })) {
    // The agent cut the tail (max_list_bytes) before the entries the quote covers: nothing
    // can be verified from it. Ask again with the largest tail allowed; not a failure, not
    // attested.
    Finding f = Simple(Reason::kListIncomplete, "the tail ends at entry " + std::to_string(base + out.parsed) +
                                                    " of " + std::to_string(tail.total_entries) +
                                                    " before the quoted entries; asking for more");
    f.entry = base + out.parsed;
    res.findings.push_back(std::move(f));
    res.retry = true;
    RoundResult r = finish(res);
    r.attested = false;
    r.next.max_list_bytes = options.max_list_bytes;
    return r;
  }
  if (!out.matched) {
    // Template digests name an edited entry; nothing else about unverified entries counts.
    for (auto& f : out.findings) {
      if (f.reason == Reason::kTemplateDigest) res.findings.push_back(std::move(f));
    }
    for (const auto& r : out.runs) {
      Finding f = Simple(Reason::kListDoesNotReplay,
                         "no prefix of entries " + std::to_string(base) + ".." +
                             std::to_string(base + out.parsed) + " replays to the quoted PCR 10 (entries changed, "
                             "removed, reordered, or PCR 10 extended behind the list)");
      f.entry = base;
      f.pcr = kImaPcr;
      f.bank = TpmBankName(r.alg);
      f.digest = ToHex(r.value);
      f.reference = "quote: " + ToHex(*r.quoted);
      res.findings.push_back(std::move(f));
    }
    return finish(res);
  }
  size_t dropped = 0;
  if (policy.dm() && out.covered > 0) {
    for (auto& f : policy.dm()->CheckRequired(out.dm)) out.findings.push_back(std::move(f));
  }
  for (auto& f : out.findings) AddFinding(&res.findings, std::move(f), options.max_findings, &dropped);
  if (dropped) {
    res.findings.push_back(Simple(Reason::kUnknownFile, std::to_string(dropped) + " more findings in this round"));
  }

  // 6. limd.
  // Only when limd keeps the list: a host whose kernel measures (lim-agent --kernel-list)
  // needs no limd — if it said so from its first verified round on (AgentState::list_source).
  bool kernel_host = ev.list.source == "kernel" && (st.list_source.empty() || st.list_source == "kernel");
  if (!ev.limd.running && !kernel_host) {
    res.findings.push_back(Simple(Reason::kLimdNotRunning, ev.limd.detail));
  }

  // The new state.
  st.started = true;
  if (st.list_source.empty()) st.list_source = ev.list.source;
  st.next_index = base + out.covered;
  for (const auto& r : out.runs) st.pcr10[r.alg] = r.value;
  st.replay_mode = used == ima::ReplayMode::kPerBank ? "per-bank" : "sha1-padded";
  st.list_bank = list_bank->kernel_name;
  st.boot_id = ev.boot_id;
  st.reset_count = clock.reset_count;
  st.restart_count = clock.restart_count;
  st.clock = clock.clock;
  if (st.boot_pcrs.empty()) st.boot_pcrs = boot_now;
  for (auto& c : out.learned.certificates) st.learned_certificates.push_back(std::move(c));
  st.dm = std::move(out.dm);
  // Everything after the covered prefix waits for the next quote.
  uint64_t rest_from = out.covered == 0 ? 0 : out.rest_offset;
  st.pending.clear();
  st.pending_entries = 0;
  if (rest_from < records.size() && records.size() - rest_from <= options.max_pending_bytes) {
    st.pending.assign(records.begin() + static_cast<ptrdiff_t>(rest_from), records.end());
    auto reader = ima::ListReader::FromBytes(st.pending, lo, "pending");
    ima::Entry e;
    uint64_t n = 0;
    bool good = reader.ok();
    while (good) {
      auto more = (*reader)->Next(&e);
      if (!more.ok()) good = false;
      else if (!*more) break;
      else ++n;
    }
    if (good) {
      st.pending_entries = n;
    } else {
      st.pending.clear();  // a torn record at the end: ask again from next_index
    }
  }
  ++st.rounds;
  res.verified_entries = out.covered;
  return finish(res);
}

EvidenceRequest NextRequest(const AgentState& state, const std::vector<uint16_t>& banks) {
  EvidenceRequest r;
  for (uint16_t alg : banks) {
    PcrBankRequest b;
    b.alg = alg;
    for (int i = 0; i <= kImaPcr; ++i) b.pcrs.push_back(i);
    r.pcrs.push_back(std::move(b));
  }
  r.list_from = state.started ? state.next_index + state.pending_entries : 0;
  r.want_event_log = !state.firmware_checked;
  return r;
}

// ---- state as JSON ----

namespace {
using nlohmann::json;

Result<uint64_t> U64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    if (it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<uint64_t>();
    return Status::Corrupt(std::string("agent state: ") + key + ": expected a non-negative integer");
  }
  return it->get<uint64_t>();
}

Result<std::string> Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return Status::Corrupt(std::string("agent state: ") + key + ": expected a string");
  return it->get<std::string>();
}

Result<Bytes> HexField(const json& j, const char* key) {
  LIM_ASSIGN_OR_RETURN(std::string s, Str(j, key));
  auto b = FromHex(s);
  if (!b.ok()) return Status::Corrupt(std::string("agent state: ") + key + ": not hex");
  return b;
}

Result<std::vector<Bytes>> HexArray(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return Status::Corrupt(std::string("agent state: ") + key + ": expected a list");
  std::vector<Bytes> out;
  for (const auto& e : *it) {
    auto v = e.is_string() ? FromHex(e.get<std::string>()) : Result<Bytes>(Status::Corrupt("not a string"));
    if (!v.ok()) return Status::Corrupt(std::string("agent state: ") + key + ": expected hex strings");
    out.push_back(std::move(v).value());
  }
  return out;
}

Result<uint16_t> AlgKey(const std::string& k) {
  if (k.empty() || k.size() > 5 || !std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::Corrupt("agent state: bank \"" + k + "\"");
  }
  unsigned long v = std::stoul(k);
  if (v > 0xffff) return Status::Corrupt("agent state: bank \"" + k + "\"");
  return static_cast<uint16_t>(v);
}

Result<std::map<uint16_t, std::map<int, Bytes>>> PcrMapFrom(const json& j, const char* key) {
  std::map<uint16_t, std::map<int, Bytes>> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return Status::Corrupt(std::string("agent state: ") + key + ": expected an object");
  for (auto b = it->begin(); b != it->end(); ++b) {
    LIM_ASSIGN_OR_RETURN(uint16_t alg, AlgKey(b.key()));
    if (!b->is_object()) return Status::Corrupt(std::string("agent state: ") + key + ": bad bank");
    for (auto p = b->begin(); p != b->end(); ++p) {
      LIM_ASSIGN_OR_RETURN(uint16_t idx, AlgKey(p.key()));
      if (idx > 23 || !p->is_string()) return Status::Corrupt(std::string("agent state: ") + key + ": bad PCR");
      auto v = FromHex(p->get<std::string>());
      if (!v.ok()) return Status::Corrupt(std::string("agent state: ") + key + ": not hex");
      out[alg][idx] = std::move(v).value();
    }
  }
  return out;
}

}  // namespace

// Written straight into one string: every round stores it, and building the nlohmann DOM
// first (a map node per key, a string per digest) cost ~23 µs a round (attest_bench
// BM_AgentStateToJson). The output is what that DOM's dump gave, byte for byte: keys in
// byte order at every level (the PCR maps' numeric keys as strings, so "11" before "4"),
// no spaces, free-text strings escaped by nlohmann with invalid UTF-8 replaced
// (round_test.cc checks that a dump of the parsed output gives it back unchanged).
namespace {

void AppendJsonString(const std::string& v, std::string* out) {
  *out += json(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

void AppendHexString(ByteView v, std::string* out) {
  out->push_back('"');
  AppendHex(v, out);
  out->push_back('"');
}

// {"key":value,…}: the map's numeric keys in the order of their decimal strings (as the
// DOM's std::map<std::string> had them), each value written by append_value.
template <typename Key, typename Value, typename AppendValue>
void AppendSortedMap(const std::map<Key, Value>& m, AppendValue append_value, std::string* out) {
  std::vector<std::pair<std::string, const Value*>> keyed;
  keyed.reserve(m.size());
  for (const auto& [k, v] : m) keyed.emplace_back(std::to_string(k), &v);
  std::sort(keyed.begin(), keyed.end());
  out->push_back('{');
  for (size_t i = 0; i < keyed.size(); ++i) {
    if (i) out->push_back(',');
    *out += '"' + keyed[i].first + "\":";
    append_value(*keyed[i].second, out);
  }
  out->push_back('}');
}

template <typename Key>
void AppendHexMap(const std::map<Key, Bytes>& m, std::string* out) {
  AppendSortedMap(m, [](const Bytes& v, std::string* o) { AppendHexString(v, o); }, out);
}

void AppendHexArray(const std::vector<Bytes>& v, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    AppendHexString(v[i], out);
  }
  out->push_back(']');
}

}  // namespace

std::string AgentStateToJson(const AgentState& s) {
  std::string out;
  out.reserve(512 + 80 * (s.boot_pcrs.size() * 10 + s.firmware_events.size()) + 2 * s.pending.size());
  auto key = [&out](const char* k) {
    out += out.empty() ? "{\"" : ",\"";
    out += k;
    out += "\":";
  };
  auto number = [&](const char* k, uint64_t v) {
    key(k);
    out += std::to_string(v);
  };
  auto boolean = [&](const char* k, bool v) {
    key(k);
    out += v ? "true" : "false";
  };
  auto text = [&](const char* k, const std::string& v) {
    key(k);
    AppendJsonString(v, &out);
  };
  auto hex_array = [&](const char* k, const std::vector<Bytes>& v) {
    key(k);
    AppendHexArray(v, &out);
  };
  text("boot_id", s.boot_id);
  key("boot_pcrs");
  AppendSortedMap(s.boot_pcrs, [](const std::map<int, Bytes>& pcrs, std::string* o) { AppendHexMap(pcrs, o); }, &out);
  number("clock", s.clock);
  if (!s.dm.devices.empty()) {
    key("dm_devices");
    out += json::parse(s.dm.ToJson()).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  boolean("firmware_checked", s.firmware_checked);
  hex_array("firmware_events", s.firmware_events);
  hex_array("learned_certificates", s.learned_certificates);
  text("list_bank", s.list_bank);
  if (!s.list_source.empty()) text("list_source", s.list_source);
  number("next_index", s.next_index);
  key("pcr10");
  AppendHexMap(s.pcr10, &out);
  key("pending");
  AppendHexString(s.pending, &out);
  number("pending_entries", s.pending_entries);
  number("reboots", s.reboots);
  text("replay_mode", s.replay_mode);
  number("reset_count", s.reset_count);
  number("restart_count", s.restart_count);
  number("rounds", s.rounds);
  boolean("started", s.started);
  out.push_back('}');
  return out;
}

Result<AgentState> AgentStateFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt("agent state: not a JSON object");
  AgentState s;
  if (!j.contains("started") || !j["started"].is_boolean()) return Status::Corrupt("agent state: started");
  s.started = j["started"].get<bool>();
  LIM_ASSIGN_OR_RETURN(s.next_index, U64(j, "next_index"));
  if (!j.contains("pcr10") || !j["pcr10"].is_object()) return Status::Corrupt("agent state: pcr10");
  for (auto it = j["pcr10"].begin(); it != j["pcr10"].end(); ++it) {
    LIM_ASSIGN_OR_RETURN(uint16_t alg, AlgKey(it.key()));
    if (!it->is_string()) return Status::Corrupt("agent state: pcr10");
    auto v = FromHex(it->get<std::string>());
    if (!v.ok()) return Status::Corrupt("agent state: pcr10: not hex");
    s.pcr10[alg] = std::move(v).value();
  }
  LIM_ASSIGN_OR_RETURN(s.replay_mode, Str(j, "replay_mode"));
  LIM_ASSIGN_OR_RETURN(s.list_bank, Str(j, "list_bank"));
  LIM_ASSIGN_OR_RETURN(s.boot_id, Str(j, "boot_id"));
  LIM_ASSIGN_OR_RETURN(uint64_t rc, U64(j, "reset_count"));
  LIM_ASSIGN_OR_RETURN(uint64_t rs, U64(j, "restart_count"));
  if (rc > 0xffffffffu || rs > 0xffffffffu) return Status::Corrupt("agent state: counters out of range");
  s.reset_count = static_cast<uint32_t>(rc);
  s.restart_count = static_cast<uint32_t>(rs);
  LIM_ASSIGN_OR_RETURN(s.clock, U64(j, "clock"));
  LIM_ASSIGN_OR_RETURN(s.boot_pcrs, PcrMapFrom(j, "boot_pcrs"));
  LIM_ASSIGN_OR_RETURN(s.firmware_events, HexArray(j, "firmware_events"));
  if (!j.contains("firmware_checked") || !j["firmware_checked"].is_boolean()) {
    return Status::Corrupt("agent state: firmware_checked");
  }
  s.firmware_checked = j["firmware_checked"].get<bool>();
  LIM_ASSIGN_OR_RETURN(s.pending, HexField(j, "pending"));
  LIM_ASSIGN_OR_RETURN(s.pending_entries, U64(j, "pending_entries"));
  LIM_ASSIGN_OR_RETURN(s.learned_certificates, HexArray(j, "learned_certificates"));
  if (j.contains("dm_devices")) {  // absent in states written before dm_policy was evaluated
    LIM_ASSIGN_OR_RETURN(s.dm, DmState::FromJson(j["dm_devices"].dump()));
  }
  LIM_ASSIGN_OR_RETURN(s.rounds, U64(j, "rounds"));
  LIM_ASSIGN_OR_RETURN(s.reboots, U64(j, "reboots"));
  if (j.contains("list_source")) {  // absent in states written before it was kept
    LIM_ASSIGN_OR_RETURN(s.list_source, Str(j, "list_source"));
  }
  return s;
}

}  // namespace lim::attest
