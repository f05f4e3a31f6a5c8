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
  v->appraise = matcher && config_.appraiser && config_.appraiser->mode() != AppraiseMode::kOff &&
                (matcher->policy_actions() & ima::action::kAppraise);
  for (size_t i = 0; matcher && i < matcher->size(); ++i) {
    const ima::PolicyRule& r = matcher->rule(i);
    if ((r.flags & kPcr) && r.pcr >= 0 && r.pcr < 64) v->pcrs |= 1ull << r.pcr;
    if ((r.action & (ima::action::kAppraise | ima::action::kDontAppraise)) && (r.flags & (kUid | kEuid | kGid | kEgid))) {
      v->appraise_creds = true;
    }
    if (v->appraise && (r.action & ima::action::kAppraise) &&
        (!(r.flags & kFunc) || r.func == ima::ImaHook::kMmapCheck || r.func == ima::ImaHook::kMmapCheckReqprot)) {
      v->appraise_mmap = true;
    }
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
  if (publish_hook_) publish_hook_();
}

void Measurer::SetPublishHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lk(views_mu_);
  publish_hook_ = std::move(hook);
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

void Measurer::ApplyClose(const InodeKey& key, const CloseNote& note, const FileFacts& now, int fd) {
  auto st = Get(key);
  Turn turn(st.get(), note.ticket);
  CloseLocked(st.get(), note.last_writer, now, fd);
}

void Measurer::UndoOpen(const InodeKey& key, bool write, bool read_only) {
  std::lock_guard<std::mutex> lk(table_mu_);
  auto it = table_.find(key);
  if (it == table_.end()) return;
  if (write && it->second->writers > 0) it->second->writers--;
  if (read_only && it->second->readers > 0) it->second->readers--;
}

bool Measurer::Appraising() const { return view_.load(std::memory_order_acquire)->appraise; }

bool Measurer::AppraisalEnforced() const { return Appraising() && config_.appraiser->enforce(); }

bool Measurer::AppraisesMmap() const { return view_.load(std::memory_order_acquire)->appraise_mmap; }

void Measurer::CloseLocked(InodeState* st, bool last_writer, const FileFacts& now, int fd) {
  ApplyFlush(st);
  if (!last_writer) return;
  st->emitted_open_writers = false;  // 6.15: one open_writers per writer episode
  // ima_check_last_writer: a new file, or one whose content changed, is looked at anew;
  // an appraised one that passed gets security.ima rewritten (IMA_UPDATE_XATTR).
  bool update = st->update_xattr;
  st->update_xattr = false;
  bool new_file = st->appraisal && st->appraisal->new_file;
  bool changed = new_file || (st->collected && !st->facts.SameContentAs(now)) || (update && !st->collected);
  if (!changed) return;
  bool passed = st->appraisal && st->appraisal->pass;
  st->collected = false;
  st->measured_pcrs = 0;
  st->appraisal.reset();
  if (!update || !passed || fd < 0 || !config_.appraiser) return;
  auto wrote = config_.appraiser->UpdateXattr(fd, now, "security.ima update", [&](const HashAlgo& algo) {
    return HashFd(fd, algo);
  });
  if (!wrote.ok()) {
    appraise_counts_.update_errors++;
    if (config_.appraise_audit) config_.appraise_audit("op=update_xattr lim_error=\"" + wrote.status().message() + "\"");
  } else if (*wrote) {
    appraise_counts_.xattr_updates++;
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
  st->appraisal.reset();
  st->update_xattr = false;  // the writers it was for are forgotten too
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

Result<Bytes> Measurer::HashFd(int fd, const HashAlgo& algo) {
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
    LIM_ASSIGN_OR_RETURN(size_t n, env_->Pread(fd, buf.get(), buf_size, off));
    if (n == 0) break;
    h.Update({buf.get(), n});
    off += n;
  }
  bytes_hashed_ += off;
  hashes_++;
  return h.Final();
}

Status Measurer::Collect(int fd, const FileFacts& facts, const HashAlgo& algo, InodeState* st) {
  LIM_ASSIGN_OR_RETURN(Bytes digest, HashFd(fd, algo));
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

Result<Bytes> Measurer::ContentDigest(int fd, const FileFacts& facts, const HashAlgo& algo, const HashAlgo& measure_algo,
                                      InodeState* st) {
  if (!st->collected && algo == measure_algo) LIM_RETURN_IF_ERROR(Collect(fd, facts, algo, st));
  if (st->collected && st->algo && *st->algo == algo) {
    return Bytes(st->digest.begin(), st->digest.begin() + static_cast<std::ptrdiff_t>(algo.size));
  }
  return HashFd(fd, algo);  // another algorithm (the denylist's): not kept
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
    Verdict r;
    if (view.appraise) {
      // No appraise rule looks at the credentials (SameForAnyCreds): the appraise side of
      // a decision without them is exact; only a cached outcome is answered here.
      Decision d = Decide(a, facts, *st, view);
      if (d.appraise && !d.appraise_cached) return Fast::kNeedsWorker;
      if (d.appraise) AnswerAppraisal(a, st.get(), d, &r);
    }
    if (v) *v = r;
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
  // An appraise rule with uid/gid conditions may deny or not: ask with the credentials.
  if (view.appraise && view.appraise_creds) return false;
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
  if (note.last_writer && st->update_xattr) return false;  // may hash and write security.ima: a worker's
  FileFacts now;
  if (note.last_writer) {
    auto facts = env_->Facts(fd);
    if (facts.ok()) now = *facts;
  }
  CloseLocked(st.get(), note.last_writer, now, -1);
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
  const bool appraising = a.answerable && config_.appraiser && config_.appraiser->mode() != AppraiseMode::kOff;
  ima::PolicyDecision pd = matcher->Decide(pa, ima::action::kMeasure | (appraising ? ima::action::kAppraise : 0));
  d.measure_rule = pd.of(ima::ActionClass::kMeasure).yes;
  d.appraise = appraising && pd.of(ima::ActionClass::kAppraise).yes;
  if (d.appraise) {
    d.req.signature_required = pd.action & ima::rule_flag::kDigsigRequired;
    d.req.verity_required = pd.action & ima::rule_flag::kVerityRequired;
    d.req.allowed_algos = pd.allowed_algos;
  }
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
  if (!d.measure_rule && !d.appraise) return d;
  // remeasure: as process_measurement() clears IMA_DONE_MASK and measured_pcrs before
  // every access of such a filesystem. Otherwise, while writers are open the verdict stands
  // (kernel semantics); with none, a changed tuple means a change limd did not see close
  // (e.g. before it started): measure again. Appraisal outcomes follow the same rule.
  d.forget = a.remeasure || (st.collected && a.counts.writers == 0 && !st.facts.SameContentAs(facts)) ||
             (st.appraisal && a.counts.writers == 0 && !st.appraised_facts.SameContentAs(facts));
  if (d.measure_rule) {
    d.pcr = pd.pcr >= 0 ? pd.pcr : config_.pcr;
    d.template_name = pd.template_name ? *pd.template_name : config_.template_name;
    d.cached = !d.forget && (st.measured_pcrs & (1ull << d.pcr));
  }
  if (d.appraise) {
    const ima::AppraiseRequirements& r = st.appraisal_req;
    d.appraise_cached = !d.forget && st.appraisal && r.signature_required == d.req.signature_required &&
                        r.verity_required == d.req.verity_required && r.allowed_algos == d.req.allowed_algos;
    if (d.appraise_cached) AnswerFromAppraisal(a, st, &d);
  }
  return d;
}

void Measurer::AnswerFromAppraisal(const Access& a, const InodeState& st, Decision* d) const {
  if (!config_.appraiser->enforce()) return;  // log, fix: record and allow
  const AppraiseOutcome& o = *st.appraisal;
  // process_measurement: a failed appraisal, and a write-open of a file whose security.ima
  // is a signature (signed files are immutable) unless it is new.
  bool write_to_signed = (a.mask & ima::may::kWrite) && o.signature && !o.new_file;
  if (!o.pass || write_to_signed) d->answer = Decision::Answer::kDeny;
}

void Measurer::AnswerAppraisal(const Access& a, InodeState* st, const Decision& d, Verdict* v) {
  Decision answer = d;
  answer.answer = Decision::Answer::kAllow;
  AnswerFromAppraisal(a, *st, &answer);
  v->appraise_rule = true;
  v->allow = answer.answer == Decision::Answer::kAllow;
  v->appraisal = st->appraisal;
  v->write_denied = !v->allow && st->appraisal->pass;
  if (!v->allow) {
    appraise_counts_.denied++;
    if (v->write_denied) appraise_counts_.write_denied++;
  }
  // IMA_UPDATE_XATTR: an appraised file opened for write (and not refused) gets its
  // digest rewritten at the last writer's close.
  if (v->allow && a.open_for_write) st->update_xattr = true;
}

void Measurer::AppraiseNow(const Access& a, const FileFacts& facts, InodeState* st, const Decision& d,
                           const std::optional<Bytes>& ima_xattr, const Status& ima_status) {
  const Appraiser& ap = *config_.appraiser;
  FileXattrs fx;
  fx.ima = ima_xattr;
  fx.ima_status = ima_status;
  if (ap.evm() && ap.evm()->enabled()) {
    auto e = ima::ReadXattr(a.fd, ima::kEvmXattrName, ima::kMaxImaXattrSize, a.path);
    if (e.ok()) {
      fx.evm = std::move(*e);
    } else {
      fx.evm_status = e.status();
    }
  }
  HashAlgo measure_algo = config_.hash;
  if (ima_status.ok()) {
    auto al = AlgoFor(ima_xattr);
    if (al.ok()) measure_algo = *al;
  }
  auto o = std::make_shared<AppraiseOutcome>(
      ap.Appraise(a.fd, facts, a.path, d.req, fx, a.created && facts.size == 0,
                  [&](const HashAlgo& algo) { return ContentDigest(a.fd, facts, algo, measure_algo, st); }));
  appraise_counts_.appraised++;
  if (!o->pass) appraise_counts_.failures++;
  if (o->fixed) {
    appraise_counts_.fixed++;
    // The setxattr moved ctime: the digest just collected still describes the content.
    auto now = env_->Facts(a.fd);
    if (now.ok() && st->collected) st->facts = ContentTuple(*now);
    if (now.ok()) st->appraised_facts = ContentTuple(*now);
  } else {
    st->appraised_facts = ContentTuple(facts);
  }
  if ((!o->pass || o->fixed) && config_.appraise_audit) {
    config_.appraise_audit(AppraiseAuditLine(a.pid, a.uid, a.comm, a.path, facts.ino, *o));
  }
  st->appraisal = std::move(o);
  st->appraisal_req = d.req;
}

Verdict Measurer::Execute(const Access& a, const FileFacts& facts, InodeState* st, const Decision& d) {
  Verdict v;
  v.allow = d.answer == Decision::Answer::kAllow;
  v.measure_rule = d.measure_rule;
  v.appraise_rule = d.appraise;
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
  if (!d.measure_rule && !d.appraise) return v;
  if (d.forget) {
    st->collected = false;
    st->measured_pcrs = 0;
    st->appraisal.reset();
  }
  // security.ima, read once: what the appraisal checks is what an ima-sig entry carries.
  std::optional<Bytes> x;
  Status x_status;
  bool x_read = false;
  auto read_xattr = [&] {
    if (x_read) return;
    x_read = true;
    auto r = env_->ImaXattr(a.fd);
    if (r.ok()) {
      x = std::move(*r);
    } else {
      x_status = r.status();
    }
  };
  if (d.appraise) {
    if (!d.appraise_cached) {
      read_xattr();
      AppraiseNow(a, facts, st, d, x, x_status);
      v.appraised = true;
      if (st->appraisal->fixed) x = st->appraisal->ima_xattr;
    }
    AnswerAppraisal(a, st, d, &v);
  }
  if (!d.measure_rule) return v;
  if (d.cached) {
    v.cached = true;
    cache_hits_++;
    if (st->collected && st->algo) {
      v.algo = *st->algo;
      v.digest.assign(st->digest.begin(), st->digest.begin() + static_cast<std::ptrdiff_t>(st->algo->size));
    }
    return v;
  }
  read_xattr();
  HashAlgo algo = config_.hash;
  Bytes digest;
  if (a.direct_io) {
    // O_DIRECT: the kernel records a zero digest and does not mark the file measured.
    auto al = AlgoFor(x);
    if (al.ok()) algo = *al;
    digest.assign(algo.size, 0);
  } else {
    if (!st->collected) {
      auto al = AlgoFor(x);
      Status s = al.ok() ? Collect(a.fd, facts, *al, st) : al.status();
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
