// Measurer: the measurement core of limd, without fanotify — what the kernel's
// process_measurement() and ima_rdwr_violation_check() do for one access, in user space:
// access context → policy decision (PolicyMatcher) → per-inode cache (dev, ino; the change
// tuple ctime, mtime, size, generation) → file hash through the given fd (pread in 1 MiB
// blocks, OpenSSL; algorithm from security.ima as the kernel picks it) → template entry →
// MeasurementList::Append (list, then PCR in every bank) → verdict. Violations (open_writers,
// ToMToU) follow the kernel's 6.15 once-per-episode rules.
//
// Open/close bookkeeping must see events in the kernel's order: the fanotify reader thread
// calls NoteOpen()/NoteClose() as it reads events (cheap, no I/O) and hands the snapshot in
// Access to a worker, which calls Process(). Writers are tracked exactly from the open flags
// and FAN_CLOSE_WRITE; readers (i_readcount) from O_RDONLY opens and FAN_CLOSE_NOWRITE.
//
// Memory: the per-inode state (the kernel's iint) of an inode nobody holds open and no step
// waits for is dropped, least recently used first, once more than MeasurerConfig::max_inodes
// inodes are tracked (the kernel frees an iint with its inode). That costs only a hash:
// the next access finds no verdict and hashes again, and MeasurementList's duplicate table
// (exact template digests) adds no entry when path and content are the same. Open inodes
// (writers or readers counted) and inodes with a ticket outstanding are never dropped, so
// their counts and event order stay exact; only they can take the table past the bound.
//
// Threading: all methods are thread-safe. Process() holds a per-inode lock while hashing,
// so concurrent opens of one file wait for one hash (as the kernel's iint mutex does);
// different files hash in parallel.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/appraiser.h"
#include "daemon/env.h"
#include "daemon/measurement_list.h"
#include "daemon/own_files.h"
#include "ima/policy_match.h"

namespace lim::daemon {

struct InodeKey {
  uint64_t dev = 0, ino = 0;
  bool operator==(const InodeKey&) const = default;
};
struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const { return k.ino * 1000003u ^ k.dev; }
};

// Open counts at the moment of an open, before that open is counted (kernel: i_writecount
// and i_readcount as ima_rdwr_violation_check sees them, minus the opener itself).
struct OpenCounts {
  int writers = 0;
  int readers = 0;
  // The event's turn on this inode: Process()/ApplyClose() run in event order per inode
  // even when workers pick events up in parallel.
  uint64_t ticket = kNoTicket;
  static constexpr uint64_t kNoTicket = ~0ull;
};

struct CloseNote {
  bool last_writer = false;
  uint64_t ticket = OpenCounts::kNoTicket;
};

struct Access {
  int fd = -1;  // the event's fd: hashing preads through it, never a reopen by path
  pid_t pid = 0;
  std::string comm;
  ima::ImaHook func = ima::ImaHook::kFileCheck;
  uint32_t mask = 0;          // MAY_* as the kernel computes it for the hook
  bool open_for_write = false;  // FMODE_WRITE
  bool direct_io = false;       // O_DIRECT: zero digest, not cached (kernel)
  // A permission event: the opener waits for this answer. Only such accesses are appraised
  // (what already ran — the startup scan, late and memfd execs — cannot be refused).
  bool answerable = false;
  // O_CREAT / O_TMPFILE: the opener may have created the file. An empty file without
  // security.ima opened so counts as the kernel's IMA_NEW_FILE (FMODE_CREATED, which
  // fanotify does not report).
  bool created = false;
  // The filesystem's change detection is not trusted (FUSE from a trusted mounter: the
  // kernel's SB_I_IMA_UNVERIFIABLE_SIGNATURE without SB_I_UNTRUSTED_MOUNTER): every access
  // hashes again; the list's duplicate table keeps an unchanged file to one entry.
  bool remeasure = false;
  uint32_t uid = 0, euid = 0, suid = 0, gid = 0, egid = 0, sgid = 0;
  bool cap_setuid = false, cap_setgid = false;
  std::string path;
  std::string fsname;  // the superblock's type name (fsname= rules): "ext4", "tmpfs"
  InodeKey key;       // with counts.ticket: the inode NoteOpen() saw
  OpenCounts counts;  // from NoteOpen() for FILE_CHECK/MMAP_CHECK opens
};

struct Verdict {
  bool allow = true;
  bool measure_rule = false;  // a measure rule matched
  bool measured = false;      // a new entry was appended
  bool cached = false;        // already measured into this PCR, unchanged
  bool duplicate = false;     // hashed, but the kernel's duplicate table suppressed the entry
  int violations = 0;
  Status status;              // why the measurement failed, if it did (the access is still answered)
  // Appraisal (MeasurerConfig::appraiser): an appraise rule matched, and what it found
  // (null when not appraised). allow is false when enforce denies the access.
  bool appraise_rule = false;
  bool appraised = false;  // appraised now (not from the cache)
  std::shared_ptr<const AppraiseOutcome> appraisal;
  bool write_denied = false;  // a write-open of a signed file (enforce)
  // The file's digest when measured, duplicate or cached (not for O_DIRECT): late-exec
  // entries repeat it (docs/limd.md "New superblocks and late execs"); empty otherwise.
  HashAlgo algo{};
  Bytes digest;
};

struct MeasurerConfig {
  std::string template_name = "ima-ng";
  HashAlgo hash = Sha256Algo();
  int pcr = 10;
  size_t read_block = 1 << 20;
  // Inodes tracked before idle ones are dropped (limd --inode-cache). About 360 bytes each with its table slot.
  size_t max_inodes = kDefaultMaxInodes;
  static constexpr size_t kDefaultMaxInodes = 16384;
  static constexpr size_t kMinInodes = 64, kMaxInodes = size_t{1} << 24;
  // limd's own state files (OwnFiles): FILE_CHECK of them is never measured, and a
  // write-open by anyone else (NoteOpen) takes an inode out. May be null.
  OwnFiles* own_files = nullptr;
  // Appraisal (docs/appraisal.md "limd"): null or mode off: measure only.
  const Appraiser* appraiser = nullptr;
  // Appraisal failures' audit fields (limd: type=INTEGRITY_DATA records in its log).
  std::function<void(const std::string& fields)> appraise_audit;
};

// Appraisal counters (lim status).
struct AppraiseCounts {
  std::atomic<uint64_t> appraised{0}, failures{0}, denied{0}, fixed{0}, write_denied{0}, xattr_updates{0},
      update_errors{0};
};

// Audit record fields sink ("pid=1 uid=0 op=invalid_pcr cause=open_writers … name=\"/p\" …").
using AuditLog = std::function<void(const std::string& line)>;

class Measurer {
 public:
  Measurer(const MeasurerConfig& config, const ima::PolicyMatcher* matcher, MeasurementList* list, Env* env,
           AuditLog audit = {});

  // Reader thread, in event order. Returns the counts before this open.
  OpenCounts NoteOpen(const InodeKey& key, bool write, bool read_only);
  // Reader thread, in event order (FAN_CLOSE_WRITE / FAN_CLOSE_NOWRITE). Then call
  // ApplyClose() with the note (from any thread).
  CloseNote NoteClose(const InodeKey& key, bool was_write);
  // A reader's last close read later, in a batch (ReaderCloseGroup): only the count drops.
  // A reader's close changes no verdict, so it needs no turn; what must see it (a
  // write-open) is noted after it.
  void NoteReaderClose(const InodeKey& key);
  int Readers(const InodeKey& key);
  // In the inode's event order: after the last writer closed, the change tuple decides
  // whether the next access measures again, and the open_writers episode ends.
  void ApplyClose(const InodeKey& key, const CloseNote& note, const FileFacts& now) { ApplyClose(key, note, now, -1); }
  // fd: the close event's fd, for the security.ima rewrite of an appraised file
  // (IMA_UPDATE_XATTR); -1: none (the rewrite is skipped).
  void ApplyClose(const InodeKey& key, const CloseNote& note, const FileFacts& now, int fd);
  // Untracked form (tests, and closes without a ticket).
  void LastWriterClosed(const InodeKey& key, const FileFacts& now) { ApplyClose(key, {true, OpenCounts::kNoTicket}, now); }
  // An open that was denied never reaches the kernel's counts, and no close follows: the
  // counts NoteOpen() added for it are taken back.
  void UndoOpen(const InodeKey& key, bool write, bool read_only);
  // Whether appraisal is on and the policy in force has appraise rules.
  bool Appraising() const;
  // Whether appraisal is enforced and the policy in force has appraise rules (a decision
  // that times out is then denied).
  bool AppraisalEnforced() const;
  // Whether appraisal is on and an appraise rule of the policy in force may match a
  // PROT_EXEC mmap (MMAP_CHECK or MMAP_CHECK_REQPROT, or no func=). Without one, the
  // pre-content event of such a mmap only measures, so a measured inode's pre-content
  // events may be ignored while appraising too (FanotifyDaemon::DoPerm).
  bool AppraisesMmap() const;
  // Called after every policy change (SetMatcher), under the lock that orders them, with no
  // other Measurer lock held; nullptr removes it. The fanotify daemon drops its pre-content
  // ignore marks when the new policy appraises mmaps.
  void SetPublishHook(std::function<void()> hook);
  const AppraiseCounts& appraise_counts() const { return appraise_counts_; }

  Verdict Process(const Access& access);
  // Replaces the policy for accesses decided from now on (a policy write to the securityfs
  // view). The caller keeps every matcher it ever passed alive as long as the Measurer: a
  // worker may still be deciding with the previous one.
  void SetMatcher(const ima::PolicyMatcher* matcher) { Publish(matcher); }
  // The reader thread's fast path (no thread hop for the common case): runs the step only
  // if it is the ticket's turn right now (never waits) and the step completes without I/O
  // — no measure rule, or a verdict already cached for this content, and no violation.
  // facts: Env::Facts() of access.fd. creds_known: the access carries the opener's
  // uid/gid; without them a step whose rules look at them is done only when the outcome
  // is the same whether or not such a rule matches (measured into every PCR a rule can
  // name, unchanged, no violation state to change), else kNeedsCreds. kNeedsCreds and
  // kNeedsWorker change nothing the step's later run would see differently.
  enum class Fast { kDone, kNeedsCreds, kNeedsWorker };
  Fast TryProcessCached(const Access& access, const FileFacts& facts, bool creds_known, Verdict* verdict = nullptr);
  // ApplyClose() on the reader thread when it is the note's turn now; the last writer's
  // close reads Env::Facts(fd). False: not done, call ApplyClose() later.
  bool TryApplyClose(const InodeKey& key, const CloseNote& note, int fd);
  // Skip() on the reader thread when it is the ticket's turn now; false: call Skip() later.
  bool TrySkip(const InodeKey& key, uint64_t ticket);
  // Whether a rule of the current policy that can match (func, mask) looks at the opener's
  // uid/gid (uid=, euid=, gid=, egid=).
  bool CredsMatter(ima::ImaHook func, uint32_t mask) const {
    return view_.load(std::memory_order_acquire)->CredsMatter(func, mask);
  }
  // The current policy's decision for an access without a file (KEY_CHECK: keyring name in
  // func_data): for measurements of buffers (daemon/key_watch.h).
  ima::PolicyDecision DecideBuffer(const ima::PolicyAccess& access) const {
    return view_.load(std::memory_order_acquire)->matcher->Decide(access, ima::action::kMeasure);
  }
  // Gives up a ticket from NoteOpen() without processing (the step did not apply).
  void Skip(const InodeKey& key, uint64_t ticket);

  // Queue overflow: events were lost, forget every verdict and count (kernel-unseen opens).
  void Flush();

  uint64_t hashes() const { return hashes_.load(); }
  uint64_t cache_hits() const { return cache_hits_.load(); }
  uint64_t bytes_hashed() const { return bytes_hashed_.load(); }
  size_t tracked_inodes();
  // Idle inode states dropped to stay within max_inodes.
  uint64_t evictions() const { return evictions_.load(); }

  // Correcting counts that merged closes left too high (daemon/open_count_probe.h).
  // suspect(key) is called, under the table lock (it must not call back), for inodes the
  // eviction keeps only because their counts say open, at most kSuspectsPerEvict a time.
  void SetOpenSuspect(std::function<void(const InodeKey&)> suspect);
  static constexpr int kSuspectsPerEvict = 2;
  struct CountsSnapshot {
    std::shared_ptr<const void> pin;  // the inode's state: tracked (not evicted) meanwhile
    uint64_t events = 0;              // opens and closes noted on it so far
    int writers = 0, readers = 0;
  };
  // nullopt: the inode is not tracked or nothing is counted.
  std::optional<CountsSnapshot> SnapshotCounts(const InodeKey& key);
  // When no open or close was noted on the pinned state since the snapshot: both counts
  // to zero, the state first in line for eviction, true; *last_writer is set to the note
  // to ApplyClose() when writers were counted (the writer episode ends). Else false.
  bool ResetCounts(const InodeKey& key, const CountsSnapshot& snap, std::optional<CloseNote>* last_writer);
  int Writers(const InodeKey& key);

 private:
  static constexpr size_t kMaxDigest = 64;  // sha512, sha3-512, streebog512
  struct InodeState {
    std::mutex mu;
    // Under mu:
    uint64_t measured_pcrs = 0;
    ContentTuple facts;  // at hash time
    const HashAlgo* algo = nullptr;  // of digest: an element of AllHashAlgos()
    std::array<uint8_t, kMaxDigest> digest{};  // algo->size bytes
    bool collected = false;
    // Appraisal, the kernel's IMA_*_APPRAISED + ima_file_status: the outcome for the
    // requirements it was checked against; dropped with the measurement (same
    // invalidation). A failure stays a failure: a denied access is never cached as allowed.
    std::shared_ptr<const AppraiseOutcome> appraisal;
    ima::AppraiseRequirements appraisal_req;
    ContentTuple appraised_facts;  // the change tuple the outcome belongs to
    bool update_xattr = false;  // IMA_UPDATE_XATTR: an appraised file was opened for write
    bool may_emit_tomtou = false;
    bool emitted_open_writers = false;
    uint64_t serving = 0;  // next ticket allowed to run
    uint64_t generation = 0;  // flush generation the verdict belongs to
    std::condition_variable cv;
    // Under table_mu_ (next_ticket too) (reader thread order):
    int writers = 0;
    int readers = 0;
    uint64_t next_ticket = 0;
    InodeKey key;
    InodeState* newer = nullptr;  // recency list: lru_newest_ … lru_oldest_
    InodeState* older = nullptr;
  };
  // Holds the inode's lock for one ticketed step and passes the turn on at scope exit.
  class Turn {
   public:
    Turn(InodeState* st, uint64_t ticket);
    ~Turn();
   private:
    InodeState* st_;
    uint64_t ticket_;
    std::unique_lock<std::mutex> lock_;
  };
  // The inode's lock if it is `ticket`'s turn right now (never waits); not owning otherwise.
  static std::unique_lock<std::mutex> TryTurn(InodeState* st, uint64_t ticket);
  static void PassTurn(InodeState* st);  // under st->mu: the next ticket's turn
  void ApplyFlush(InodeState* st);  // under st->mu
  void CloseLocked(InodeState* st, bool last_writer, const FileFacts& now, int fd);  // under st->mu
  // Under st->mu: the file's content digest in algo (the collected one when it matches).
  // measure_algo: the algorithm the measurement takes (AlgoFor the file's security.ima):
  // a digest in it is kept as the collected one.
  Result<Bytes> ContentDigest(int fd, const FileFacts& facts, const HashAlgo& algo, const HashAlgo& measure_algo,
                              InodeState* st);
  // A matcher with what the fast path derives from its rules, published together so one
  // access sees one policy.
  struct PolicyView {
    const ima::PolicyMatcher* matcher = nullptr;
    std::array<uint16_t, ima::kImaHookCount> creds_matter{};  // func → bit per MAY_* mask
    uint64_t pcrs = 0;  // the default PCR and every pcr= of a rule, as bits
    bool appraise = false;        // appraisal on, and the policy has appraise rules
    bool appraise_creds = false;  // an appraise/dont_appraise rule looks at uid/gid
    bool appraise_mmap = false;   // appraising, and an appraise rule may match MMAP_CHECK(_REQPROT)
    bool CredsMatter(ima::ImaHook func, uint32_t mask) const {
      return creds_matter[static_cast<size_t>(func)] & (1u << (mask & 15));
    }
  };
  void Publish(const ima::PolicyMatcher* matcher);
  // What one access needs, from the policy and the inode's state alone (Decide): no I/O and
  // no state change, so the reader's fast path can ask and leave the rest to a worker.
  struct Decision {
    bool measure_rule = false;  // a measure rule matched
    bool note_read = false;     // a measured read-open: a later write-open is ToMToU
    bool tomtou = false;        // violations to record (entries: I/O)
    bool open_writers = false;
    bool forget = false;        // the inode's verdicts no longer hold (remeasure, or changed unseen)
    bool cached = false;        // already measured into pcr, unchanged
    int pcr = 0;
    std::string template_name;
    // Appraisal: an appraise rule matched, with what it demands; appraise_cached: the
    // inode's outcome for req still holds.
    bool appraise = false;
    bool appraise_cached = false;
    ima::AppraiseRequirements req;
    // The answer to the access. Measure mode always allows; appraisal adds a deny outcome.
    enum class Answer : uint8_t { kAllow, kDeny } answer = Answer::kAllow;
    bool NeedsIo() const { return tomtou || open_writers || (measure_rule && !cached) || (appraise && !appraise_cached); }
  };
  // Under st->mu: the answer from the inode's appraisal outcome (enforce denies failures
  // and write-opens of signed files).
  void AnswerFromAppraisal(const Access& a, const InodeState& st, Decision* d) const;
  // Under st->mu: the answer to d from the inode's appraisal outcome into *v, counted;
  // marks an allowed write-open for the digest rewrite at its last close.
  void AnswerAppraisal(const Access& a, InodeState* st, const Decision& d, Verdict* v);
  // Under st->mu: appraises the file now (reads xattrs, hashes if not collected), logs and
  // counts a failure, keeps the outcome.
  void AppraiseNow(const Access& a, const FileFacts& facts, InodeState* st, const Decision& d,
                   const std::optional<Bytes>& ima_xattr, const Status& ima_status);
  // Under st->mu, after ApplyFlush. view: the policy to decide with.
  Decision Decide(const Access& access, const FileFacts& facts, const InodeState& st, const PolicyView& view);
  // Under st->mu: applies d to the inode and does its I/O (violation entries, hash, append) —
  // none when !d.NeedsIo().
  Verdict Execute(const Access& access, const FileFacts& facts, InodeState* st, const Decision& d);
  // Decide, then Execute (a worker's step).
  Verdict ProcessLocked(const Access& access, const FileFacts& facts, InodeState* st, const PolicyView& view);
  // Under st->mu: whether the step ends the same, without I/O, whether or not a rule with
  // uid/gid conditions matches.
  bool SameForAnyCreds(const Access& a, const FileFacts& facts, InodeState* st, const PolicyView& view);
  std::shared_ptr<InodeState> Get(const InodeKey& key);
  // Under table_mu_: the inode's state (created if missing), now the most recently used.
  const std::shared_ptr<InodeState>& SlotLocked(const InodeKey& key);
  // Under table_mu_: drops idle states, oldest first, until fewer than max_inodes remain
  // (looking at no more than kEvictScan states per call: bounded work on the reader thread).
  void EvictLocked();
  static constexpr int kEvictScan = 32;
  void LruUnlinkLocked(InodeState* st);
  void LruPushLocked(InodeState* st);
  Result<HashAlgo> AlgoFor(const std::optional<Bytes>& xattr) const;
  Status Collect(int fd, const FileFacts& facts, const HashAlgo& algo, InodeState* st);
  Result<Bytes> HashFd(int fd, const HashAlgo& algo);
  void Violation(const Access& a, const char* cause, const FileFacts& f);
  // FILE_CHECK of one of limd's own state files: nothing to decide (OwnFiles).
  bool OwnStateFile(const Access& a, const FileFacts& facts) const {
    return a.func == ima::ImaHook::kFileCheck && config_.own_files && config_.own_files->Contains(facts.dev, facts.ino);
  }

  MeasurerConfig config_;
  std::atomic<const PolicyView*> view_{nullptr};
  std::mutex views_mu_;
  std::function<void()> publish_hook_;  // under views_mu_
  std::vector<std::unique_ptr<PolicyView>> views_;  // every view published: workers may hold an old one
  MeasurementList* list_;
  Env* env_;
  AuditLog audit_;
  std::mutex table_mu_;
  std::unordered_map<InodeKey, std::shared_ptr<InodeState>, InodeKeyHash> table_;
  InodeState* lru_newest_ = nullptr;  // under table_mu_
  InodeState* lru_oldest_ = nullptr;
  std::atomic<uint64_t> evictions_{0};
  std::function<void(const InodeKey&)> open_suspect_;  // under table_mu_
  std::atomic<uint64_t> flush_generation_{0};
  std::atomic<uint64_t> hashes_{0}, cache_hits_{0}, bytes_hashed_{0};
  AppraiseCounts appraise_counts_;
};

}  // namespace lim::daemon
