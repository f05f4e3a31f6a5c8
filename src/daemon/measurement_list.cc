#include "daemon/measurement_list.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "daemon/safe_files.h"
#include "crypto/digest.h"
#include "ima/boot_aggregate.h"
#include "ima/digest_field.h"
#include "ima/list_reader.h"
#include "ima/replay.h"

namespace lim::daemon {

namespace {

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + strerror(errno));
}

bool PathExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

Status MakeDir(const std::string& p) {
  if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", p);
  return Status::Ok();
}

}  // namespace

void MeasurementList::Log(const std::string& line) const {
  if (config_.log) config_.log(line);
}

MeasurementList::~MeasurementList() {
  if (list_fd_ >= 0) ::close(list_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status MeasurementList::Lock() {
  LIM_RETURN_IF_ERROR(PrepareStateDir(config_.state_dir));  // refuses a directory others can write
  std::string p = config_.state_dir + "/lock";
  lock_fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return ErrnoStatus("open", p);
  Own(lock_fd_);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Unavailable("another limd already uses state directory " + config_.state_dir + " (" + p +
                                 " is locked)");
    }
    return ErrnoStatus("flock", p);
  }
  return Status::Ok();
}

Result<std::unique_ptr<MeasurementList>> MeasurementList::Open(const ListConfig& config, tpm::Tpm* tpm, Env* env) {
  if (!ima::FileRecordTemplate(config.template_name)) {
    return Status::Unsupported("limd cannot record template " + config.template_name);
  }
  if (config.pcr < 0 || config.pcr >= tpm::kMaxPcrs) return Status::InvalidArgument("--pcr out of range 0-23");
  std::unique_ptr<MeasurementList> l(new MeasurementList(config, tpm, env));
  LIM_RETURN_IF_ERROR(l->Lock());
  LIM_ASSIGN_OR_RETURN(l->banks_, tpm->AllocatedBanks());
  if (l->banks_.empty()) return Status::Unavailable("the TPM has no allocated PCR bank");
  LIM_ASSIGN_OR_RETURN(l->boot_id_, env->BootId());
  LIM_ASSIGN_OR_RETURN(tpm::ClockInfo clock, tpm->ReadClock());
  l->reset_count_ = clock.reset_count;

  std::string list = l->list_path();
  std::string info_path = config.state_dir + "/chain.json";
  struct stat st;
  bool have_list = ::stat(list.c_str(), &st) == 0 && st.st_size > 0;
  if (have_list) l->report_.downtime_seconds = env->NowUnixSeconds() - static_cast<int64_t>(st.st_mtim.tv_sec);

  if (!have_list) {
    LIM_RETURN_IF_ERROR(l->NewChain("first start", false));
  } else if (!PathExists(info_path)) {
    LIM_RETURN_IF_ERROR(l->NewChain("list without chain.json", true));
  } else {
    LIM_ASSIGN_OR_RETURN(std::string text, ReadFileText(info_path));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.contains("boot_id") || !j.contains("reset_count") || !j.contains("pcr")) {
      LIM_RETURN_IF_ERROR(l->NewChain(info_path + " unreadable", true));
    } else if (j["boot_id"].get<std::string>() != l->boot_id_) {
      LIM_RETURN_IF_ERROR(l->NewChain("boot_id changed (reboot)", true));
    } else if (j["reset_count"].get<uint32_t>() != l->reset_count_) {
      LIM_RETURN_IF_ERROR(l->NewChain("TPM resetCount changed (TPM restarted)", true));
    } else if (j["pcr"].get<int>() != config.pcr) {
      LIM_RETURN_IF_ERROR(l->NewChain("PCR changed", true));
    } else {
      LIM_RETURN_IF_ERROR(l->Recover());
    }
  }
  l->visible_bytes_.store(l->list_size_);
#ifdef __GLIBC__
  // The replay's per-entry buffers (a digest per bank and entry) are freed now, but glibc
  // keeps pages of its heap that lie below live blocks (the duplicate table's): give them
  // back, or a restart over a long list keeps its peak as RSS for good.
  malloc_trim(0);
#endif
  return l;
}

Status MeasurementList::WriteChainInfo() {
  nlohmann::json j;
  j["boot_id"] = boot_id_;
  j["reset_count"] = reset_count_;
  j["pcr"] = config_.pcr;
  j["tpm"] = tpm::TpmKindName(tpm_->kind());
  j["created_unix"] = env_->NowUnixSeconds();
  return WriteStateFile("chain.json", AsBytes(j.dump(2) + "\n"));
}

Status MeasurementList::WriteStateFile(const std::string& name, ByteView data) {
  std::string path = config_.state_dir + "/" + name;
  return config_.own_files ? config_.own_files->Write(path, data, 0600) : WriteFileBytes(path, data, 0600);
}

Status MeasurementList::NewChain(const std::string& reason, bool archive) {
  report_.new_chain = true;
  report_.new_chain_reason = reason;
  std::string list = list_path();
  if (archive && PathExists(list)) {
    std::string dir = config_.state_dir + "/archive";
    LIM_RETURN_IF_ERROR(MakeDir(dir));
    std::string stamp = std::to_string(env_->NowUnixSeconds());
    std::string dest = dir + "/" + kListName + "." + stamp;
    for (int i = 1; PathExists(dest); ++i) dest = dir + "/" + kListName + "." + stamp + "." + std::to_string(i);
    if (::rename(list.c_str(), dest.c_str()) != 0) return ErrnoStatus("archive (rename)", list);
    std::string info = config_.state_dir + "/chain.json";
    if (PathExists(info)) ::rename(info.c_str(), (dest + ".chain.json").c_str());
    report_.archived_to = dest;
    Log("NEW CHAIN (" + reason + "): previous list archived to " + dest);
  }
  // The PCR must be ours: a kernel IMA writes PCR 10, and a non-zero PCR with an empty list
  // means someone else extends it — the list could never replay.
  if (config_.pcr == 10 && !config_.pcr_explicit) {
    auto count = ReadFileText(config_.kernel_ima_count);
    if (count.ok() && std::atoi(count->c_str()) > 0) {
      return Status::Unavailable("the kernel's IMA is active (" + config_.kernel_ima_count +
                                 " > 0) and owns PCR 10; choose another PCR with --pcr N");
    }
  }
  tpm::PcrSelection sel;
  for (uint16_t b : banks_) sel.push_back({b, {config_.pcr}});
  LIM_ASSIGN_OR_RETURN(tpm::PcrValues vals, tpm_->ReadPcrs(sel));
  for (const auto& [alg, m] : vals) {
    for (const auto& [idx, v] : m) {
      if (!ima::IsAllZero(v)) {
        return Status::Unavailable("PCR " + std::to_string(idx) + " (" + TpmBankName(alg) +
                                   ") is not zero although limd starts a new chain: something else extends it" +
                                   (config_.pcr_explicit ? "" : "; choose another PCR with --pcr N"));
      }
    }
  }
  list_fd_ = ::open(list.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (list_fd_ < 0) return ErrnoStatus("open", list);
  Own(list_fd_);
  list_size_ = 0;
  LIM_RETURN_IF_ERROR(WriteChainInfo());

  // boot_aggregate (kernel-ima.md §6): the kernel's bank choice, zeros without a TPM.
  HashAlgo agg_algo = config_.hash;
  Bytes agg(config_.hash.size, 0);
  if (tpm_->kind() != tpm::TpmKind::kSoftware) {
    std::vector<HashAlgo> algos;
    for (uint16_t b : banks_) {
      auto a = HashAlgoByTpmAlg(b);
      if (a.ok()) algos.push_back(*a);
    }
    auto chosen = ima::ChooseBootAggregateBank(algos, config_.hash);
    if (chosen.ok()) {
      std::set<int> idx;
      for (int i = 0; i < 10; ++i) idx.insert(i);
      LIM_ASSIGN_OR_RETURN(tpm::PcrValues pcrs, tpm_->ReadPcrs({{chosen->tpm_alg, idx}}));
      PcrSet set;
      for (const auto& [i, v] : pcrs[chosen->tpm_alg]) set.Set(chosen->tpm_name, static_cast<uint32_t>(i), v);
      LIM_ASSIGN_OR_RETURN(agg, ima::BootAggregate(set, *chosen));
      agg_algo = *chosen;
    }
  }
  LIM_ASSIGN_OR_RETURN(ima::Record r, ima::FileRecord(config_.template_name, agg_algo, agg, "boot_aggregate", {},
                                                 static_cast<uint32_t>(config_.pcr)));
  std::lock_guard<std::mutex> lk(mu_);
  LIM_ASSIGN_OR_RETURN(bool added, AppendLocked(r));
  (void)added;
  return Status::Ok();
}

// Per entry of the list being recovered: its PCR and the digest each bank gets.
struct MeasurementList::RecoveredList {
  struct Bank {
    HashAlgo algo;
    std::vector<uint8_t> digests;  // per entry, algo.size bytes
  };
  std::vector<Bank> banks;
  std::vector<uint32_t> pcrs;
  std::set<int> used;     // the PCRs the entries extend
  uint64_t good_end = 0;  // the end of the last whole record
};

Status MeasurementList::Recover() {
  std::string list = list_path();
  LIM_ASSIGN_OR_RETURN(RecoveredList r, ReadForRecovery(list));
  LIM_RETURN_IF_ERROR(CutTornTail(list, r.good_end));
  size_t n = r.pcrs.size();
  report_.previous_entries = n;
  entries_ = n;
  LIM_ASSIGN_OR_RETURN(int64_t best, LongestReplayingPrefix(list, r));
  report_.replayed_prefix = static_cast<uint64_t>(best);
  list_fd_ = ::open(list.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (list_fd_ < 0) return ErrnoStatus("open", list);
  ::fchmod(list_fd_, 0600);  // a list an older limd left 0644: state files are 0600
  Own(list_fd_);
  list_size_ = r.good_end;
  LIM_RETURN_IF_ERROR(ReextendFrom(r, static_cast<size_t>(best)));
  if (report_.reextended > 0) DumpSoftwarePcrs();
  if (report_.reextended > 0 || report_.cut_bytes > 0) {
    Log("recovered " + list + ": " + std::to_string(n) + " entries, " + std::to_string(best) + " already in the TPM, " +
        std::to_string(report_.reextended) + " extended again, " + std::to_string(report_.cut_bytes) + " bytes cut");
    std::string buf = "entries=" + std::to_string(n) + ";replayed=" + std::to_string(best) +
                      ";reextended=" + std::to_string(report_.reextended) + ";cut_bytes=" +
                      std::to_string(report_.cut_bytes) + ";";
    LIM_RETURN_IF_ERROR(AppendBuffer("lim-recovered", buf));
  }
  return Status::Ok();
}

// One pass: per entry its PCR and the digest each bank gets; the duplicate table.
Result<MeasurementList::RecoveredList> MeasurementList::ReadForRecovery(const std::string& list) {
  ima::ListOptions opts;
  opts.bank = Sha1Algo();
  opts.byte_order = kNativeOrder;
  opts.allow_mmap = false;
  LIM_ASSIGN_OR_RETURN(auto reader, ima::ListReader::Open(list, opts));
  RecoveredList r;
  std::vector<ima::BankDigester> digesters;
  for (uint16_t b : banks_) {
    LIM_ASSIGN_OR_RETURN(HashAlgo a, HashAlgoByTpmAlg(b));
    LIM_ASSIGN_OR_RETURN(auto d, ima::BankDigester::Create(a, Sha1Algo(), ima::ReplayMode::kPerBank));
    r.banks.push_back({a, {}});
    digesters.push_back(std::move(d));
  }
  LIM_ASSIGN_OR_RETURN(auto dup_digester, ima::BankDigester::Create(config_.hash, Sha1Algo(), ima::ReplayMode::kPerBank));
  ima::Entry e;
  Bytes buf(64);
  for (;;) {
    auto next = reader->Next(&e);
    if (!next.ok()) {
      if (!reader->last_error_was_truncation()) {
        return Status::Corrupt("cannot recover " + list + ": " + next.status().message() +
                               " (not a torn tail; refusing to touch it — move it away to start a new chain)");
      }
      break;
    }
    if (!*next) break;
    r.good_end = reader->next_offset();
    if (e.pcr >= static_cast<uint32_t>(tpm::kMaxPcrs)) return Status::Corrupt(list + ": entry " + std::to_string(e.index) + " uses PCR " + std::to_string(e.pcr));
    r.pcrs.push_back(e.pcr);
    r.used.insert(static_cast<int>(e.pcr));
    for (size_t bi = 0; bi < r.banks.size(); ++bi) {
      auto& b = r.banks[bi];
      size_t at = b.digests.size();
      b.digests.resize(at + b.algo.size);
      digesters[bi].Compute(e, b.digests.data() + at);
    }
    if (e.violation) {
      violations_++;
    } else {
      dup_digester.Compute(e, buf.data());
      dups_.Insert({buf.data(), config_.hash.size}, e.pcr);
    }
  }
  return r;
}

Status MeasurementList::CutTornTail(const std::string& list, uint64_t good_end) {
  struct stat st;
  if (::stat(list.c_str(), &st) != 0) return ErrnoStatus("stat", list);
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (good_end < file_size) {
    report_.cut_bytes = file_size - good_end;
    if (::truncate(list.c_str(), static_cast<off_t>(good_end)) != 0) return ErrnoStatus("truncate", list);
    Log("cut a torn last record of " + std::to_string(report_.cut_bytes) + " bytes from " + list);
  }
  return Status::Ok();
}

// The longest prefix that replays to the TPM in every bank and every PCR the list uses.
Result<int64_t> MeasurementList::LongestReplayingPrefix(const std::string& list, const RecoveredList& r) {
  std::set<int> used = r.used;
  used.insert(config_.pcr);
  tpm::PcrSelection sel;
  for (uint16_t b : banks_) sel.push_back({b, used});
  LIM_ASSIGN_OR_RETURN(tpm::PcrValues tpm_vals, tpm_->ReadPcrs(sel));
  std::vector<ima::PcrReplayer> replayers;
  for (auto& b : r.banks) {
    LIM_ASSIGN_OR_RETURN(auto rep, ima::PcrReplayer::Create(b.algo));
    replayers.push_back(std::move(rep));
  }
  auto equal = [&](size_t bi, int pcr) {
    const Bytes& want = tpm_vals[r.banks[bi].algo.tpm_alg][pcr];
    ByteView have = replayers[bi].ValueView(static_cast<uint32_t>(pcr));
    return want.size() == have.size() && std::equal(want.begin(), want.end(), have.begin());
  };
  int mismatches = 0;
  for (size_t bi = 0; bi < r.banks.size(); ++bi) {
    for (int p : used) mismatches += equal(bi, p) ? 0 : 1;
  }
  int64_t best = mismatches == 0 ? 0 : -1;
  size_t n = r.pcrs.size();
  for (size_t i = 0; i < n; ++i) {
    int p = static_cast<int>(r.pcrs[i]);
    for (size_t bi = 0; bi < r.banks.size(); ++bi) {
      bool before = equal(bi, p);
      replayers[bi].Extend(r.pcrs[i], r.banks[bi].digests.data() + i * r.banks[bi].algo.size);
      bool after = equal(bi, p);
      mismatches += (before ? 1 : 0) - (after ? 1 : 0);
    }
    if (mismatches == 0) best = static_cast<int64_t>(i + 1);
  }
  if (best < 0) {
    return Status::Mismatch("no prefix of " + list + " (" + std::to_string(n) +
                            " entries) replays to the TPM's PCRs: something other than limd extended them "
                            "in this boot; limd does not paper over it (inspect with lim verify --tpm, then move the "
                            "list away to start a new chain)");
  }
  return best;
}

// Entries after the prefix the TPM has: extended again, in order (a crash between the
// append and the extend, or a TPM reset).
Status MeasurementList::ReextendFrom(const RecoveredList& r, size_t first) {
  for (size_t i = first; i < r.pcrs.size(); ++i) {
    std::map<uint16_t, Bytes> d;
    for (auto& b : r.banks) {
      const uint8_t* p = b.digests.data() + i * b.algo.size;
      d[b.algo.tpm_alg] = Bytes(p, p + b.algo.size);
    }
    LIM_RETURN_IF_ERROR(ExtendBytes(static_cast<int>(r.pcrs[i]), d, /*dump=*/false));
    report_.reextended++;
  }
  return Status::Ok();
}

Status MeasurementList::ExtendBytes(int pcr, const std::map<uint16_t, Bytes>& digests, bool dump) {
  Status s = tpm_->Extend(pcr, digests);
  if (s.ok() && dump) DumpSoftwarePcrs();
  return s;
}

void MeasurementList::DumpSoftwarePcrs() {
  // The software bank lives in this process only; a JSON copy lets `lim verify --pcrs` check
  // the list (it is labelled software, and carries no tamper evidence).
  if (tpm_->kind() != tpm::TpmKind::kSoftware) return;
  std::set<int> all;
  for (int i = 0; i < tpm::kMaxPcrs; ++i) all.insert(i);
  tpm::PcrSelection sel;
  for (uint16_t b : banks_) sel.push_back({b, all});
  auto v = tpm_->ReadPcrs(sel);
  if (v.ok()) (void)WriteStateFile("software_pcrs.json", AsBytes(tpm::PcrValuesToJson(*v)));
}

Status MeasurementList::ExtendAllFF(int pcr) {
  std::map<uint16_t, Bytes> d;
  for (uint16_t b : banks_) {
    auto a = HashAlgoByTpmAlg(b);
    size_t size = a.ok() ? a->size : 32;
    d[b] = Bytes(size, 0xff);
  }
  return ExtendBytes(pcr, d);
}

Status MeasurementList::ExtendRecord(const ima::Record& r) {
  if (r.violation) return ExtendAllFF(config_.pcr);
  LIM_ASSIGN_OR_RETURN(Bytes input, ima::TemplateDigestInputOf(r, kNativeOrder));
  std::map<uint16_t, Bytes> d;
  Bytes sha1;
  for (uint16_t b : banks_) {
    auto a = HashAlgoByTpmAlg(b);
    if (a.ok() && HashAlgoAvailable(*a)) {
      LIM_ASSIGN_OR_RETURN(d[b], Digest(*a, input));
    } else {
      // Banks the kernel cannot compute get the SHA1 digest zero-padded (kernel-ima.md §4.3).
      if (sha1.empty()) {
        LIM_ASSIGN_OR_RETURN(sha1, Digest(Sha1Algo(), input));
      }
      Bytes p = sha1;
      p.resize(a.ok() ? a->size : 32, 0);
      d[b] = std::move(p);
    }
  }
  return ExtendBytes(static_cast<int>(r.pcr), d);
}

Result<bool> MeasurementList::AppendLocked(const ima::Record& r) {
  Bytes key;  // the template digest in the ima_hash bank (none for a violation)
  if (!r.violation) {
    LIM_ASSIGN_OR_RETURN(key, ima::TemplateDigestOf(r, config_.hash, kNativeOrder));
    if (dups_.Contains(key, r.pcr)) {
      duplicates_++;
      return false;
    }
  }
  Bytes rec;
  ima::ListWriter writer(Sha1Algo(), kNativeOrder);
  LIM_RETURN_IF_ERROR(writer.Append(r, &rec));
  // One write(2) with O_APPEND: a kill -9 leaves the record whole or absent (a torn record
  // can only come from a crash of the machine or a full disk; Open() cuts it).
  size_t off = 0;
  Status failed;
  while (off < rec.size()) {
    ssize_t w = ::write(list_fd_, rec.data() + off, rec.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      failed = ErrnoStatus("append to", list_path());
      break;
    }
    off += static_cast<size_t>(w);
  }
  if (!failed.ok()) {
    write_failures_++;
    if (off > 0) (void)!::ftruncate(list_fd_, static_cast<off_t>(list_size_));
    // The chain must break visibly: the TPM moves on without a list entry.
    Status ff = ExtendAllFF(config_.pcr);
    return failed.WithPrefix(ff.ok() ? "PCR extended with 0xFF, no entry" : "and the 0xFF extend failed too");
  }
  list_size_ += rec.size();
  Status ext = ExtendRecord(r);
  if (!ext.ok()) {
    // The entry is in the list but not in the TPM; a restart re-extends it.
    return ext.WithPrefix("entry " + std::to_string(entries_.load()) + " appended but not extended");
  }
  entries_++;
  if (r.violation) violations_++;
  visible_bytes_.store(list_size_);
  if (!r.violation) dups_.Insert(key, r.pcr);
  return true;
}

Result<bool> MeasurementList::Append(const ima::Record& r) {
  std::lock_guard<std::mutex> lk(mu_);
  return AppendLocked(r);
}

Status MeasurementList::AppendViolation(std::string_view path) {
  ima::Record r = ima::ViolationRecord(config_.hash, path, config_.template_name);
  r.pcr = static_cast<uint32_t>(config_.pcr);
  LIM_ASSIGN_OR_RETURN(bool added, Append(r));
  (void)added;
  return Status::Ok();
}

Status MeasurementList::AppendBuffer(std::string_view name, std::string_view buf, bool as_gap) {
  LIM_ASSIGN_OR_RETURN(ima::Record r, ima::ImaBufRecord(config_.hash, name, AsBytes(buf), static_cast<uint32_t>(config_.pcr)));
  if (as_gap) {
    // A gap (lim-event-overflow): zero digest and 0xFF extend like a violation, so a verifier
    // must acknowledge it; the buffer says what was lost.
    r.violation = true;
    r.fields[0] = ima::BuildDigestNg(config_.hash.kernel_name, Bytes(config_.hash.size, 0));
  }
  LIM_ASSIGN_OR_RETURN(bool added, Append(r));
  (void)added;
  return Status::Ok();
}

Status MeasurementList::AppendStart(double uptime_seconds) {
  char up[32];
  std::snprintf(up, sizeof up, "%.3f", uptime_seconds);
  bool hw = tpm_->kind() == tpm::TpmKind::kDevice;
  std::string buf = "version=" + config_.version + ";boot_id=" + boot_id_ + ";uptime=" + up +
                    ";tpm=" + tpm::TpmKindName(tpm_->kind()) + ";root_of_trust=" + (hw ? "tpm" : "none") +
                    ";reset_count=" + std::to_string(reset_count_) +
                    ";previous_entries=" + std::to_string(report_.previous_entries) + ";downtime=" +
                    (report_.downtime_seconds < 0 ? std::string("unknown") : std::to_string(report_.downtime_seconds)) +
                    ";new_chain=" + (report_.new_chain ? "1" : "0") + ";";
  return AppendBuffer("lim-start", buf);
}

}  // namespace lim::daemon
