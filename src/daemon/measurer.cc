#include "daemon/measurer.h"

#include <algorithm>
#include <cstring>

#include "crypto/digest.h"
#include "ima/ima_xattr.h"

namespace lim::daemon {

Measurer::Measurer(const MeasurerConfig& config, const ima::PolicyMatcher* matcher, MeasurementList* list, Env* env,
                   AuditLog audit)
    : config_(config), list_(list), env_(env), audit_(std::move(audit)) {
  Publish(matcher);
}

void Measurer::Publish(const ima::PolicyMatcher* matcher) {
  auto v = std::make_unique<PolicyView>();
  v->matcher = matcher;
  // Conservative: a rule counts if its func and mask conditions can match, whatever its
  // other conditions and whether an earlier rule decides first.
  using namespace ima::rule_flag;
  v->pcrs = 1ull << config_.pcr;
  for (size_t i = 0; matcher && i < matcher->size(); ++i) {
    const ima::PolicyRule& r = matcher->rule(i);
    if ((r.flags & kPcr) && r.pcr >= 0 && r.pcr < 64) v->pcrs |= 1ull << r.pcr;
    if (!(r.flags & (kUid | kEuid | kGid | kEgid))) continue;
    for (int f = 0; f < ima::kImaHookCount; ++f) {
      if ((r.flags & kFunc) && static_cast<int>(r.func) != f) continue;
      for (uint32_t m = 0; m < 16; ++m) {
        if ((r.flags & kMask) && r.mask != m) continue;
        if ((r.flags & kInmask) && !(r.mask & m)) continue;
        v->creds_matter[static_cast<size_t>(f)] |= static_cast<uint16_t>(1u << m);
      }
    }
  }
  std::lock_guard<std::mutex> lk(views_mu_);
  views_.push_back(std::move(v));
  view_.store(views_.back().get(), std::memory_order_release);
}

std::shared_ptr<Measurer::InodeState> Measurer::Get(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(table_mu_);
  return SlotLocked(key);
}

const std::shared_ptr<Measurer::InodeState>& Measurer::SlotLocked(const InodeKey& key) {
  auto it = table_.find(key);
  if (it != table_.end()) {
    InodeState* st = it->second.get();
    if (st != lru_newest_) {
      LruUnlinkLocked(st);
      LruPushLocked(st);
    }
    return it->second;
  }
  if (table_.size() >= config_.max_inodes) EvictLocked();  // before the new one: never dropped
  auto p = std::make_shared<InodeState>();
  p->key = key;
  LruPushLocked(p.get());
  return table_.emplace(key, std::move(p)).first->second;
}

void Measurer::LruUnlinkLocked(InodeState* st) {
  (st->newer ? st->newer->older : lru_newest_) = st->older;
  (st->older ? st->older->newer : lru_oldest_) = st->newer;
  st->newer = st->older = nullptr;
}

void Measurer::LruPushLocked(InodeState* st) {
  st->older = lru_newest_;
  st->newer = nullptr;
  (lru_newest_ ? lru_newest_->newer : lru_oldest_) = st;
  lru_newest_ = st;
}

void Measurer::EvictLocked() {
  InodeState* st = lru_oldest_;
  int suspects = 0;
  for (int looked = 0; st && looked < kEvictScan && table_.size() >= config_.max_inodes; ++looked) {
    InodeState* next = st->newer;
    auto it = table_.find(st->key);
    // Idle: nobody has it open (as far as the counts know), no step holds the state (only
    // the table owns it, and table_mu_ keeps it so), and every ticket handed out was served.
    // The lock only orders the read of serving after the last turn's release.
    bool idle = st->writers == 0 && st->readers == 0 && it->second.use_count() == 1;
    if (idle) {
      std::unique_lock<std::mutex> lk(st->mu, std::try_to_lock);
      idle = lk.owns_lock() && st->serving == st->next_ticket;
    }
    LruUnlinkLocked(st);
    if (idle) {
      table_.erase(it);
      evictions_++;
    } else {
      LruPushLocked(st);  // in use: looked at again after every other
      // Kept only for its counts: maybe closes merged into one (open_count_probe.h).
      if (open_suspect_ && (st->writers || st->readers) && it->second.use_count() == 1 &&
          suspects++ < kSuspectsPerEvict) {
        open_suspect_(st->key);
      }
    }
    st = next;
  }
}

void Measurer::SetOpenSuspect(std::function<void(const InodeKey&)> suspect) {
  std::lock_guard<std::mutex> lk(table_mu_);
  open_suspect_ = std::move(suspect);
}

std::optional<Measurer::CountsSnapshot> Measurer::SnapshotCounts(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  if (it == table_.end() || (it->second->writers == 0 && it->second->readers == 0)) return std::nullopt;
  const InodeState& s = *it->second;
  return CountsSnapshot{it->second, s.next_ticket, s.writers, s.readers};
}

bool Measurer::ResetCounts(const InodeKey& key, const CountsSnapshot& snap, std::optional<CloseNote>* last_writer) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  // Every open and close takes a ticket (reader closes read in batches excepted: they only
  // lower the count, and the probe saw the kernel's count after them).
  if (it == table_.end() || it->second.get() != snap.pin.get() || it->second->next_ticket != snap.events) return false;
  InodeState* st = it->second.get();
  st->readers = 0;
  if (st->writers > 0) {
    st->writers = 0;
    *last_writer = CloseNote{true, st->next_ticket++};
  }
  LruUnlinkLocked(st);  // oldest: the next eviction takes it once its ticket is served
  st->older = nullptr;
  st->newer = lru_oldest_;
  (lru_oldest_ ? lru_oldest_->older : lru_newest_) = st;
  lru_oldest_ = st;
  return true;
}

int Measurer::Writers(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  return it == table_.end() ? 0 : it->second->writers;
}

size_t Measurer::tracked_inodes() {
  std::lock_guard<std::mutex> lk(table_mu_);
  return table_.size();
}

Measurer::Turn::Turn(InodeState* st, uint64_t ticket) : st_(st), ticket_(ticket), lock_(st->mu) {
  if (ticket_ != OpenCounts::kNoTicket) st_->cv.wait(lock_, [&] { return st_->serving == ticket_; });
}

Measurer::Turn::~Turn() {
  if (ticket_ != OpenCounts::kNoTicket) PassTurn(st_);
}

OpenCounts Measurer::NoteOpen(const InodeKey& key, bool write, bool read_only) {
  // limd's own opens never get here (the reader answers them at once): a write-open is
  // someone else's, and the inode's content no longer only limd's.
  if (write && config_.own_files) config_.own_files->Revoke(key.dev, key.ino);
  std::lock_guard<std::mutex> lk(table_mu_);
  InodeState& s = *SlotLocked(key);
  OpenCounts c{s.writers, s.readers, s.next_ticket++};
  if (write) s.writers++;
  if (read_only) s.readers++;
  return c;
}

CloseNote Measurer::NoteClose(const InodeKey& key, bool was_write) {
  std::lock_guard<std::mutex> lk(table_mu_);
  InodeState& s = *SlotLocked(key);
  CloseNote n;
  n.ticket = s.next_ticket++;
  if (was_write) {
    // A close without a seen open (opened before the marks) still ends the episode.
    if (s.writers > 0) s.writers--;
    n.last_writer = s.writers == 0;
  } else if (s.readers > 0) {
    s.readers--;
  }
  return n;
}

void Measurer::NoteReaderClose(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  if (it != table_.end() && it->second->readers > 0) it->second->readers--;
}

int Measurer::Readers(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  return it == table_.end() ? 0 : it->second->readers;
}

void Measurer::ApplyClose(const InodeKey& key, const CloseNote& note, const FileFacts& now) {
  auto st = Get(key);
  Turn turn(st.get(), note.ticket);
  CloseLocked(st.get(), note.last_writer, now);
}

void Measurer::CloseLocked(InodeState* st, bool last_writer, const FileFacts& now) {
  ApplyFlush(st);
  if (!last_writer) return;
  st->emitted_open_writers = false;  // 6.15: one open_writers per writer episode
  if (st->collected && !st->facts.SameContentAs(now)) {
    st->collected = false;
    st->measured_pcrs = 0;
  }
}

void Measurer::Flush() {
  // Verdicts are dropped lazily (each inode at its next step, under its own lock), so a
  // flush never waits for a hash in progress; counts are reset at once.
  std::lock_guard<std::mutex> lk(table_mu_);
  flush_generation_++;
  for (auto& [k, st] : table_) {
    st->writers = 0;
    st->readers = 0;
  }
}

void Measurer::ApplyFlush(InodeState* st) {
  uint64_t g = flush_generation_.load();
  if (st->generation == g) return;
  st->generation = g;
  st->collected = false;
  st->measured_pcrs = 0;
  st->may_emit_tomtou = false;
  st->emitted_open_writers = false;
}

Result<HashAlgo> Measurer::AlgoFor(const std::optional<Bytes>& xattr) const {
  if (xattr) {
    auto id = ima::XattrHashAlgoId(*xattr);
    if (id) {
      auto a = HashAlgoByKernelId(*id);
      if (a.ok() && HashAlgoAvailable(*a)) return *a;
    }
  }
  return config_.hash;
}

Status Measurer::Collect(const Access& a, const FileFacts& facts, const std::optional<Bytes>& xattr, InodeState* st) {
  LIM_ASSIGN_OR_RETURN(HashAlgo algo, AlgoFor(xattr));
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(algo));
  // Not zero-filled: only the pages reads have filled are resident (one small file costs a
  // page of the 1 MiB, not all of it, in every hashing thread).
  thread_local std::unique_ptr<uint8_t[]> buf;
  thread_local size_t buf_size = 0;
  if (buf_size != config_.read_block) {
    buf.reset(new uint8_t[config_.read_block]);
    buf_size = config_.read_block;
  }
  uint64_t off = 0;
  for (;;) {
    LIM_ASSIGN_OR_RETURN(size_t n, env_->Pread(a.fd, buf.get(), buf_size, off));
    if (n == 0) break;
    h.Update({buf.get(), n});
    off += n;
  }
  bytes_hashed_ += off;
  hashes_++;
  Bytes digest = h.Final();
  const HashAlgo* stable = nullptr;  // the state keeps a pointer, not a copy
  for (const HashAlgo& x : AllHashAlgos()) {
    if (x == algo) {
      stable = &x;
      break;
    }
  }
  if (!stable || digest.size() != algo.size || digest.size() > kMaxDigest) {
    return Status::Internal(std::string("cannot keep a ") + algo.kernel_name + " digest");
  }
  std::copy(digest.begin(), digest.end(), st->digest.begin());
  st->algo = stable;
  st->facts = ContentTuple(facts);
  st->collected = true;
  return Status::Ok();
}

void Measurer::Violation(const Access& a, const char* cause, const FileFacts& f) {
  Status s = list_->AppendViolation(a.path);
  if (audit_) {
    // The kernel's field order (integrity_audit_message), without auid/ses/subj/dev.
    audit_("pid=" + std::to_string(a.pid) + " uid=" + std::to_string(a.uid) + " op=invalid_pcr cause=" +
           std::string(cause) + " comm=\"" + a.comm + "\" name=\"" + a.path + "\" ino=" + std::to_string(f.ino) +
           " res=1 errno=0" + (s.ok() ? "" : " lim_error=\"" + s.message() + "\""));
  }
}

Verdict Measurer::Process(const Access& a) {
  Verdict v;
  auto facts_r = env_->Facts(a.fd);
  if (!facts_r.ok()) v.status = facts_r.status();
  InodeKey key = a.counts.ticket != OpenCounts::kNoTicket ? a.key
                 : facts_r.ok()                          ? InodeKey{facts_r->dev, facts_r->ino}
                                                         : InodeKey{};
  auto st = Get(key);
  Turn turn(st.get(), a.counts.ticket);
  if (!facts_r.ok() || !facts_r->regular) return v;  // only regular files (kernel)
  return ProcessLocked(a, *facts_r, st.get(), *view_.load(std::memory_order_acquire));
}

std::unique_lock<std::mutex> Measurer::TryTurn(InodeState* st, uint64_t ticket) {
  std::unique_lock<std::mutex> lk(st->mu, std::try_to_lock);
  if (lk.owns_lock() && (ticket == OpenCounts::kNoTicket || st->serving != ticket)) lk.unlock();  // a worker is ahead
  return lk;
}

void Measurer::PassTurn(InodeState* st) {
  st->serving++;
  st->cv.notify_all();
}

Measurer::Fast Measurer::TryProcessCached(const Access& a, const FileFacts& facts, bool creds_known, Verdict* v) {
  if (!facts.regular) return Fast::kNeedsWorker;
  if (OwnStateFile(a, facts)) {
    if (!TrySkip(a.key, a.counts.ticket)) return Fast::kNeedsWorker;
    if (v) *v = Verdict{};
    return Fast::kDone;
  }
  const PolicyView& view = *view_.load(std::memory_order_acquire);  // one policy per step
  auto st = Get(a.key);
  auto lk = TryTurn(st.get(), a.counts.ticket);
  if (!lk.owns_lock()) return Fast::kNeedsWorker;
  if (!creds_known && view.CredsMatter(a.func, a.mask)) {
    if (!SameForAnyCreds(a, facts, st.get(), view)) return Fast::kNeedsCreds;
    if (v) *v = Verdict{};
  } else {
    ApplyFlush(st.get());
    Decision d = Decide(a, facts, *st, view);
    if (d.NeedsIo()) return Fast::kNeedsWorker;  // the ticket stays unserved: a worker runs the step
    Verdict r = Execute(a, facts, st.get(), d);   // no I/O
    if (v) *v = r;
  }
  PassTurn(st.get());
  return Fast::kDone;
}

bool Measurer::SameForAnyCreds(const Access& a, const FileFacts& facts, InodeState* st, const PolicyView& view) {
  ApplyFlush(st);
  // ProcessLocked() with must_measure true or false alike: allow, no entry, no state change.
  bool violation_check = (a.func == ima::ImaHook::kFileCheck || a.func == ima::ImaHook::kMmapCheck ||
                          a.func == ima::ImaHook::kMmapCheckReqprot) &&
                         (view.matcher->policy_actions() & ima::action::kMeasure);
  if (violation_check) {
    if (a.open_for_write) {
      if (a.counts.readers > 0 && st->may_emit_tomtou) return false;  // ToMToU
    } else if (!st->may_emit_tomtou || (a.counts.writers > 0 && !st->emitted_open_writers)) {
      return false;  // a measure rule would set may_emit_tomtou, or emit open_writers
    }
  }
  bool unchanged = st->collected && !a.remeasure && (a.counts.writers > 0 || st->facts.SameContentAs(facts));
  return !a.direct_io && unchanged && (st->measured_pcrs & view.pcrs) == view.pcrs;
}

bool Measurer::TrySkip(const InodeKey& key, uint64_t ticket) {
  auto st = Get(key);
  auto lk = TryTurn(st.get(), ticket);
  if (!lk.owns_lock()) return false;
  PassTurn(st.get());
  return true;
}

bool Measurer::TryApplyClose(const InodeKey& key, const CloseNote& note, int fd) {
  auto st = Get(key);
  auto lk = TryTurn(st.get(), note.ticket);
  if (!lk.owns_lock()) return false;
  FileFacts now;
  if (note.last_writer) {
    auto facts = env_->Facts(fd);
    if (facts.ok()) now = *facts;
  }
  CloseLocked(st.get(), note.last_writer, now);
  PassTurn(st.get());
  return true;
}

void Measurer::Skip(const InodeKey& key, uint64_t ticket) {
  auto st = Get(key);
  Turn turn(st.get(), ticket);
}

Verdict Measurer::ProcessLocked(const Access& a, const FileFacts& facts, InodeState* st, const PolicyView& view) {
  ApplyFlush(st);
  return Execute(a, facts, st, Decide(a, facts, *st, view));
}

Measurer::Decision Measurer::Decide(const Access& a, const FileFacts& facts, const InodeState& st,
                                    const PolicyView& view) {
  Decision d;
  if (OwnStateFile(a, facts)) return d;  // limd's securityfs: never measured, no violation

  ima::PolicyAccess pa;
  pa.func = a.func;
  pa.mask = a.mask;
  pa.uid = a.uid;
  pa.euid = a.euid;
  pa.suid = a.suid;
  pa.gid = a.gid;
  pa.egid = a.egid;
  pa.sgid = a.sgid;
  pa.cap_setuid = a.cap_setuid;
  pa.cap_setgid = a.cap_setgid;
  pa.fowner = facts.uid;
  pa.fgroup = facts.gid;
  pa.fsmagic = facts.fsmagic;
  pa.fsuuid = facts.fsuuid;
  pa.fsname = a.fsname;
  const ima::PolicyMatcher* matcher = view.matcher;  // one policy per access
  ima::PolicyDecision pd = matcher->Decide(pa, ima::action::kMeasure);
  d.measure_rule = pd.of(ima::ActionClass::kMeasure).yes;
  bool violation_check = (a.func == ima::ImaHook::kFileCheck || a.func == ima::ImaHook::kMmapCheck ||
                          a.func == ima::ImaHook::kMmapCheckReqprot) &&
                         (matcher->policy_actions() & ima::action::kMeasure);
  if (violation_check) {
    // ima_rdwr_violation_check, 6.15 rules.
    if (a.open_for_write) {
      d.tomtou = a.counts.readers > 0 && st.may_emit_tomtou;
    } else if (d.measure_rule) {
      d.note_read = true;
      d.open_writers = a.counts.writers > 0 && !st.emitted_open_writers;
    }
  }
  if (!d.measure_rule) return d;
  d.pcr = pd.pcr >= 0 ? pd.pcr : config_.pcr;
  d.template_name = pd.template_name ? *pd.template_name : config_.template_name;
  // remeasure: as process_measurement() clears IMA_DONE_MASK and measured_pcrs before
  // every access of such a filesystem. Otherwise, while writers are open the verdict stands
  // (kernel semantics); with none, a changed tuple means a change limd did not see close
  // (e.g. before it started): measure again.
  d.forget = a.remeasure || (st.collected && a.counts.writers == 0 && !st.facts.SameContentAs(facts));
  d.cached = !d.forget && (st.measured_pcrs & (1ull << d.pcr));
  return d;
}

Verdict Measurer::Execute(const Access& a, const FileFacts& facts, InodeState* st, const Decision& d) {
  Verdict v;
  v.allow = d.answer == Decision::Answer::kAllow;
  v.measure_rule = d.measure_rule;
  if (d.tomtou) {
    st->may_emit_tomtou = false;
    Violation(a, "ToMToU", facts);
    v.violations++;
  }
  if (d.note_read) st->may_emit_tomtou = true;
  if (d.open_writers) {
    st->emitted_open_writers = true;
    Violation(a, "open_writers", facts);
    v.violations++;
  }
  if (!d.measure_rule) return v;
  if (d.forget) {
    st->collected = false;
    st->measured_pcrs = 0;
  }
  if (d.cached) {
    v.cached = true;
    cache_hits_++;
    if (st->collected && st->algo) {
      v.algo = *st->algo;
      v.digest.assign(st->digest.begin(), st->digest.begin() + static_cast<std::ptrdiff_t>(st->algo->size));
    }
    return v;
  }
  auto xattr = env_->ImaXattr(a.fd);
  std::optional<Bytes> x = xattr.ok() ? *xattr : std::nullopt;
  HashAlgo algo = config_.hash;
  Bytes digest;
  if (a.direct_io) {
    // O_DIRECT: the kernel records a zero digest and does not mark the file measured.
    auto al = AlgoFor(x);
    if (al.ok()) algo = *al;
    digest.assign(algo.size, 0);
  } else {
    if (!st->collected) {
      Status s = Collect(a, facts, x, st);
      if (!s.ok()) {
        v.status = s.WithPrefix(a.path);
        return v;
      }
    }
    algo = *st->algo;
    digest.assign(st->digest.begin(), st->digest.begin() + static_cast<std::ptrdiff_t>(algo.size));
  }
  auto rec = FileRecord(d.template_name, algo, digest, a.path, x ? ByteView(*x) : ByteView(),
                        static_cast<uint32_t>(d.pcr));
  if (!rec.ok()) {
    v.status = rec.status();
    return v;
  }
  auto added = list_->Append(*rec);
  if (!added.ok()) {
    v.status = added.status();
    return v;
  }
  v.measured = *added;
  v.duplicate = !*added;
  if (!a.direct_io) v.algo = algo, v.digest = digest;
  if (!a.direct_io) st->measured_pcrs |= 1ull << d.pcr;
  return v;
}

}  // namespace lim::daemon
