// MeasurementList: limd's one writer of the measurement list and of the PCR it mirrors
// (design.md invariants 1–3). It owns STATE/binary_runtime_measurements (the kernel's binary
// format, native byte order, SHA1 template digests — what the kernel's
// binary_runtime_measurements shows), STATE/chain.json (boot_id, TPM resetCount, PCR), an
// exclusive flock on STATE/lock so one limd runs per state directory, and the kernel's
// duplicate table (same template digest in the --hash bank and same PCR: no entry).
//
// Append() writes the record with one write(2) and only then extends the PCR in every
// allocated bank; it returns when both are done, so a caller that answers an access after
// Append() returns has its entry in the list *and* the TPM. A crash between the write and the
// extend leaves a list entry the TPM lacks: Open() finds the longest prefix of the list that
// replays to the TPM in every bank and re-extends the rest (a record never appears in the TPM
// without being in the list first). A torn last record is cut. A different boot_id or TPM
// resetCount archives the old list under STATE/archive/ and starts a new chain with a
// boot_aggregate. Entries limd writes about itself are documented in docs/limd.md.
//
// Threading: every public method is thread-safe; appends are serialised by one mutex, so
// list order is extend order (invariant 2).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/hash_algo.h"
#include "daemon/env.h"
#include "daemon/own_files.h"
#include "daemon/template_digest_table.h"
#include "ima/list_writer.h"
#include "tpm/tpm.h"

namespace lim::daemon {

struct ListConfig {
  std::string state_dir;
  int pcr = 10;               // the default PCR (violations always extend this one)
  bool pcr_explicit = false;  // --pcr given: allowed to coexist with a kernel IMA on 10
  HashAlgo hash = Sha256Algo();  // ima_hash: duplicate table, ima-buf and violation digests
  std::string template_name = "ima-ng";  // default template (boot_aggregate, violations)
  std::string version = "0.1.0";
  // Where the kernel's IMA count lives; a non-zero count means the kernel owns PCR 10.
  std::string kernel_ima_count = "/sys/kernel/security/ima/runtime_measurements_count";
  // Where the list, lock, chain.json and software_pcrs.json inodes are registered as limd's
  // own (never measured at FILE_CHECK); may be null.
  OwnFiles* own_files = nullptr;
  // Where the list's notes go (a new chain, a cut torn record, a recovery): limd's Logger.
  // Null: nowhere.
  std::function<void(const std::string&)> log;
};

// What Open() found and did, for the log, `lim status` and the lim-start entry.
struct StartReport {
  bool new_chain = false;
  std::string new_chain_reason;  // "first start", "boot_id changed", "TPM resetCount changed", …
  std::string archived_to;       // path of the archived list, if one was archived
  uint64_t previous_entries = 0;  // entries in the list found at start (after cutting)
  uint64_t cut_bytes = 0;         // torn tail removed
  uint64_t replayed_prefix = 0;   // entries the TPM already held
  uint64_t reextended = 0;        // entries extended again at start
  int64_t downtime_seconds = -1;  // since the last append of the previous run; -1 unknown
};

class MeasurementList {
 public:
  static constexpr const char* kListName = "binary_runtime_measurements";

  // Takes the lock, recovers or starts the chain (writing boot_aggregate for a new one and
  // lim-recovered after a repair). tpm and env must outlive the list.
  static Result<std::unique_ptr<MeasurementList>> Open(const ListConfig& config, tpm::Tpm* tpm, Env* env);
  ~MeasurementList();

  // Appends r and extends its PCR. Returns false (and does nothing) for a duplicate.
  // On a write failure (full disk) the PCR is extended with 0xFF and no entry is written, so
  // the chain visibly breaks, and an error is returned.
  Result<bool> Append(const ima::Record& r);
  // A violation (open_writers/ToMToU) of the default template: zero digest, 0xFF extend.
  Status AppendViolation(std::string_view path);
  // A limd entry: ima-buf with name and key=value; buffer, on the default PCR.
  Status AppendBuffer(std::string_view name, std::string_view buf, bool as_gap = false);
  // The lim-start entry (docs/limd.md).
  Status AppendStart(double uptime_seconds);

  const StartReport& start_report() const { return report_; }
  const ListConfig& config() const { return config_; }
  std::string list_path() const { return config_.state_dir + "/" + kListName; }
  uint64_t entries() const { return entries_.load(); }
  // Bytes of the list file that hold whole records already extended into the TPM: a reader
  // that stops there never sees a torn record (the securityfs view snapshots it at open).
  uint64_t visible_bytes() const { return visible_bytes_.load(); }
  uint64_t violations() const { return violations_.load(); }
  uint64_t duplicates() const { return duplicates_.load(); }
  uint64_t write_failures() const { return write_failures_.load(); }
  const std::vector<uint16_t>& banks() const { return banks_; }
  tpm::Tpm* tpm() const { return tpm_; }

 private:
  MeasurementList(const ListConfig& c, tpm::Tpm* tpm, Env* env) : config_(c), tpm_(tpm), env_(env) {}
  void Log(const std::string& line) const;
  Status Lock();
  Status Recover();   // same chain: cut, replay, re-extend
  // Recover's steps. RecoveredList: what one pass over the list found (defined in the .cc).
  struct RecoveredList;
  Result<RecoveredList> ReadForRecovery(const std::string& list);  // also fills dups_, violations_
  Status CutTornTail(const std::string& list, uint64_t good_end);
  Result<int64_t> LongestReplayingPrefix(const std::string& list, const RecoveredList& r);
  Status ReextendFrom(const RecoveredList& r, size_t first);
  Status NewChain(const std::string& reason, bool archive);
  Status WriteChainInfo();
  Status ExtendRecord(const ima::Record& r);
  Status ExtendBytes(int pcr, const std::map<uint16_t, Bytes>& digests, bool dump = true);
  Status ExtendAllFF(int pcr);
  Result<bool> AppendLocked(const ima::Record& r);
  // A state file (mode 0600): written by rename, its inode registered as limd's own.
  Status WriteStateFile(const std::string& name, ByteView data);
  void Own(int fd) {
    if (config_.own_files) config_.own_files->AddFd(fd);
  }
  void DumpSoftwarePcrs();

  ListConfig config_;
  tpm::Tpm* tpm_;
  Env* env_;
  StartReport report_;
  std::vector<uint16_t> banks_;
  std::string boot_id_;
  uint32_t reset_count_ = 0;
  int lock_fd_ = -1;
  int list_fd_ = -1;
  uint64_t list_size_ = 0;

  std::mutex mu_;
  TemplateDigestTable dups_{config_.hash.size};  // the kernel's ima_htable (exact)
  std::atomic<uint64_t> entries_{0}, violations_{0}, duplicates_{0}, write_failures_{0};
  std::atomic<uint64_t> visible_bytes_{0};
};

// The records limd writes are built by ima (list_writer.h): the templates it can record are
// ima::FileRecordTemplate's.
using ima::FileRecord;

}  // namespace lim::daemon
