// `lim verify` (template digests, replay against PCRs, signatures) and `lim boot-aggregate`.
#include <cstdio>
#include <map>

#include "base/escape.h"
#include "cli/command.h"
#include "cli/list_args.h"
#include "cli/tpm_pcrs.h"
#include "ima/boot_aggregate.h"
#include "ima/signature_check.h"
#include "ima/verify.h"
#include "tcg/event_log.h"
#include "tcg/replay.h"

namespace lim::cli {

namespace {

struct VerifyArgs {
  ListArgs list;
  std::vector<std::string> pcr_files;
  std::vector<std::string> keys;
  std::string tcti;  // --tpm
  bool allow_tail = false;
  bool allow_uncovered = false;  // --allow-uncovered-pcrs
  bool single_thread = false;
};

// The union of every --pcrs file. Two files that give one bank's PCR different values are an
// error naming both: which one is right cannot be guessed, and taking either would make the
// verdict depend on the order of the flags. The same value twice is fine.
Result<PcrSet> LoadPcrFiles(const std::vector<std::string>& files) {
  PcrSet set;
  std::map<std::pair<std::string, uint32_t>, const std::string*> source;
  for (const auto& f : files) {
    LIM_ASSIGN_OR_RETURN(PcrSet one, PcrSet::Load(f));
    for (const auto& [bank, pcrs] : one.banks()) {
      for (const auto& [idx, v] : pcrs) {
        const Bytes* have = set.Get(bank, idx);
        if (have && *have != v) {
          return Status::InvalidArgument("--pcrs: " + bank + " PCR " + std::to_string(idx) + " is " + ToHex(*have) +
                                         " in " + *source[{bank, idx}] + " but " + ToHex(v) + " in " + f);
        }
        source[{bank, idx}] = &f;
        set.Set(bank, idx, v);
      }
    }
  }
  return set;
}

std::string PcrListText(uint64_t mask) {
  std::string out;
  for (uint32_t p = 0; p < 64; ++p) {
    if (mask & (uint64_t{1} << p)) out += (out.empty() ? "" : ",") + std::to_string(p);
  }
  return out;
}

std::string Where(const ima::EntryProblem& p) {
  return "entry " + std::to_string(p.index) + " (byte offset " + std::to_string(p.offset) + ")";
}

int RunVerify(const VerifyArgs& a) {
  auto opts = a.list.Options();
  if (!opts.ok()) return ReportError(opts.status());
  ima::VerifyOptions vo;
  vo.list = *opts;
  vo.parallel = !a.single_thread;
  if (a.pcr_files.empty() == a.tcti.empty()) {
    return ReportError(Status::InvalidArgument("verify: give either --pcrs FILE or --tpm TCTI"));
  }
  // The PCRs are read before the list, so entries appended meanwhile are a tail.
  auto pcrs = a.tcti.empty() ? LoadPcrFiles(a.pcr_files) : ReadTpmPcrs(a.tcti);
  if (!pcrs.ok()) return ReportError(pcrs.status());
  vo.pcrs = std::move(pcrs).value();
  std::shared_ptr<ima::EntrySignatureChecker> checker;
  if (!a.keys.empty()) {
    std::vector<PublicKey> keys;
    for (const auto& k : a.keys) {
      auto loaded = PublicKey::LoadFile(k);
      if (!loaded.ok()) return ReportError(loaded.status());
      for (auto& key : *loaded) keys.push_back(key);
    }
    checker = std::make_shared<ima::EntrySignatureChecker>(std::move(keys));
    vo.check_signature = [checker](const ima::Entry& e) { return checker->Check(e); };
  }
  std::string path = a.list.ResolvedPath();
  auto r = ima::VerifyList(path, vo);
  if (!r.ok()) return ReportError(r.status());

  bool ok = true;
  const std::string shown = Escaped(path);
  std::printf("list: %s (%s template digests)\n", shown.c_str(), r->list_bank.c_str());
  std::printf("entries: %llu\n", static_cast<unsigned long long>(r->entries));
  std::printf("violations: %llu\n", static_cast<unsigned long long>(r->violations));
  if (r->digest_failures == 0) {
    std::printf("template digests: ok\n");
  } else {
    ok = false;
    std::printf("template digests: %llu wrong, first at %s: %s\n", static_cast<unsigned long long>(r->digest_failures),
                Where(*r->first_digest_failure).c_str(), Escaped(r->first_digest_failure->what).c_str());
  }
  for (const auto& [bank, mode] : r->bank_modes) std::printf("bank %s: replayed %s\n", bank.c_str(), mode.c_str());
  if (r->matched) {
    std::printf("pcrs: match after entry %lld (prefix of %llu entries)\n",
                static_cast<long long>(r->matched_prefix) - 1, static_cast<unsigned long long>(r->matched_prefix));
  } else {
    ok = false;
    std::printf("pcrs: %s\n", r->mismatch.c_str());
  }
  std::printf("unattested: %llu", static_cast<unsigned long long>(r->unattested()));
  if (r->uncovered > 0) {
    std::printf(" (%llu after the match; %llu of PCR %s, which no given value covers)",
                static_cast<unsigned long long>(r->tail()), static_cast<unsigned long long>(r->uncovered),
                PcrListText(r->uncovered_pcrs).c_str());
  }
  std::printf("\n");
  const bool tail_refused = r->matched && r->tail() > 0 && !a.allow_tail;
  const bool uncovered_refused = r->matched && r->uncovered > 0 && !a.allow_uncovered;
  if (tail_refused || uncovered_refused) ok = false;
  if (checker) {
    std::printf("signatures: %llu checked, %llu bad, %llu unknown key\n",
                static_cast<unsigned long long>(r->signatures_checked),
                static_cast<unsigned long long>(r->signature_failures),
                static_cast<unsigned long long>(r->signatures_unknown_key));
    if (r->first_signature_failure) {
      ok = false;
      std::printf("signature: first bad at %s: %s\n", Where(*r->first_signature_failure).c_str(),
                  Escaped(r->first_signature_failure->what).c_str());
    }
    if (r->first_unknown_key) {
      std::printf("signature: first unknown key id %s at %s\n", Escaped(r->first_unknown_key->what).c_str(),
                  Where(*r->first_unknown_key).c_str());
    }
  }
  std::printf("result: %s\n", ok ? "ok" : "FAILED");
  if (!ok) {
    if (r->first_digest_failure) {
      std::fprintf(stderr, "lim: %s: %s: %s\n", shown.c_str(), Where(*r->first_digest_failure).c_str(),
                   Escaped(r->first_digest_failure->what).c_str());
    } else if (!r->matched) {
      std::fprintf(stderr, "lim: %s: %s\n", shown.c_str(), r->mismatch.c_str());
    } else if (r->first_signature_failure) {
      std::fprintf(stderr, "lim: %s: %s: %s\n", shown.c_str(), Where(*r->first_signature_failure).c_str(),
                   Escaped(r->first_signature_failure->what).c_str());
    } else if (uncovered_refused) {
      std::fprintf(stderr,
                   "lim: %s: %s: extends %s, for which no --pcrs value is given: %llu such entries are unattested "
                   "(give that PCR, or --allow-uncovered-pcrs accepts them)\n",
                   shown.c_str(), Where(*r->first_uncovered).c_str(), r->first_uncovered->what.c_str(),
                   static_cast<unsigned long long>(r->uncovered));
    } else {
      std::fprintf(stderr, "lim: %s: %llu entries after the PCR match are unattested (--allow-tail accepts them)\n",
                   shown.c_str(), static_cast<unsigned long long>(r->tail()));
    }
  }
  return ok ? kExitOk : kExitCheckFailed;
}

struct BootAggregateArgs {
  std::vector<std::string> pcr_files;
  std::string boot_log;
  std::string tcti;
  std::vector<std::string> banks;
  bool pre_5_8 = false;
};

int RunBootAggregate(const BootAggregateArgs& a) {
  if (!a.pcr_files.empty() + !a.boot_log.empty() + !a.tcti.empty() != 1) {
    return ReportError(Status::InvalidArgument("boot-aggregate: give one of --pcrs FILE, --tpm TCTI, --boot-log EVENTLOG"));
  }
  Result<PcrSet> pcrs = Status::InvalidArgument("no PCRs");
  if (!a.tcti.empty()) {
    pcrs = ReadTpmPcrs(a.tcti);
  } else if (!a.boot_log.empty()) {
    // PCRs 0-9 as the firmware and boot loader left them: the event log replayed.
    auto log = tcg::LoadEventLog(a.boot_log);
    if (!log.ok()) return ReportError(log.status());
    pcrs = tcg::Replay(log->log).pcrs.ToPcrSet();
  } else {
    pcrs = LoadPcrFiles(a.pcr_files);
  }
  if (!pcrs.ok()) return ReportError(pcrs.status());
  std::vector<std::string> banks;
  if (a.banks.empty()) {
    for (const auto& [b, _] : pcrs->banks()) banks.push_back(b);
    std::sort(banks.begin(), banks.end(), BankNameLess);
  } else {
    for (const auto& b : a.banks) {
      auto c = CanonicalBankName(b);
      if (!c.ok()) return ReportError(Status::InvalidArgument("--bank: " + c.status().message()));
      banks.push_back(*c);
    }
  }
  int printed = 0;
  for (const auto& b : banks) {
    auto algo = HashAlgoByName(b);
    if (!algo.ok()) return ReportError(algo.status());
    auto agg = ima::BootAggregate(*pcrs, *algo, a.pre_5_8);
    if (!agg.ok()) {
      if (!a.banks.empty()) return ReportError(agg.status());
      continue;  // a bank without PCRs 0-9 cannot give one; others may
    }
    std::printf("%s:%s\n", algo->kernel_name, ToHex(*agg).c_str());
    ++printed;
  }
  if (printed == 0) return ReportError(Status::InvalidArgument("no bank in the PCR files has PCRs 0-7 (sha1) or 0-9"));
  return kExitOk;
}

void Register(CLI::App& app) {
  auto va = std::make_shared<VerifyArgs>();
  auto* v = app.add_subcommand("verify", "check every template digest and replay the list against PCR values");
  va->list.AddTo(v, true);
  v->add_option("--pcrs", va->pcr_files, "[ALG,]FILE: PCR-set JSON, evmctl PCR-NN text, tpm2_pcrread output");
  v->add_option("--tpm", va->tcti, "read the PCRs from this TPM (TCTI: device:/dev/tpmrm0, swtpm:path=…)");
  v->add_option("--key", va->keys, "X.509 certificate (PEM/DER) to verify ima-sig signatures (repeatable)");
  v->add_flag("--allow-tail", va->allow_tail, "accept entries appended after the PCRs were read");
  v->add_flag("--allow-uncovered-pcrs", va->allow_uncovered,
              "accept entries for PCRs that no --pcrs value covers (nothing attests them)");
  v->add_flag("--single-thread", va->single_thread, "replay the banks one after another on one core");
  v->callback([va] { ExitCode() = RunVerify(*va); });

  auto ba = std::make_shared<BootAggregateArgs>();
  auto* b = app.add_subcommand("boot-aggregate", "compute boot_aggregate from PCRs 0-9, like evmctl ima_boot_aggregate");
  b->add_option("--pcrs", ba->pcr_files, "[ALG,]FILE with PCRs 0-7 (sha1) or 0-9 (other banks)");
  b->add_option("--tpm", ba->tcti, "read PCRs 0-9 from this TPM (TCTI)");
  b->add_option("--boot-log", ba->boot_log, "TCG event log (binary_bios_measurements) to replay for PCRs 0-9");
  b->add_option("--bank", ba->banks, "bank (repeatable; default: every bank in the files)");
  b->add_flag("--pre-5.8", ba->pre_5_8, "kernels before 5.8: PCRs 0-7 in every bank");
  b->callback([ba] { ExitCode() = RunBootAggregate(*ba); });
}

}  // namespace

LIM_REGISTER_COMMAND(Register);

}  // namespace lim::cli
