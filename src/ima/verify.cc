#include "ima/verify.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "base/file.h"
#include "ima/replay.h"

namespace lim::ima {

namespace {

// Where, along the list, one bank's replay equals the given PCRs. The set of PCRs that
// differ changes only when an entry flips one PCR's status, so it is kept as segments
// (first prefix length, mismatch mask) rather than per entry.
struct BankTrack {
  std::string bank;
  HashAlgo algo;
  ReplayMode mode = ReplayMode::kPerBank;
  uint64_t given_mask = 0;                             // PCRs the set gives for this bank
  std::vector<std::pair<uint64_t, uint64_t>> segments;  // (prefix length, mismatch mask)
  uint64_t touched = 0;
  Bytes final_values;  // for messages
  PcrSet replayed;
  Status status;
};

struct ListPass {
  uint64_t covered = 0;  // input: PCRs some bank of the given set has a value for
  struct Uncovered {
    uint64_t index, offset;
    uint32_t pcr;
  };
  std::vector<Uncovered> uncovered;  // entries extending another PCR, in list order
  uint64_t entries = 0;
  uint64_t violations = 0;
  uint64_t digest_failures = 0;
  std::optional<EntryProblem> first_digest_failure;
  uint64_t signatures_checked = 0;
  uint64_t signature_failures = 0;
  uint64_t signatures_unknown_key = 0;
  std::optional<EntryProblem> first_signature_failure;
  std::optional<EntryProblem> first_unknown_key;
};

using ReaderFactory = std::function<Result<std::unique_ptr<ListReader>>()>;

// One bank's replay state during a pass.
struct BankState {
  BankTrack* track;
  BankDigester digester;
  PcrReplayer replayer;
  Bytes expected;  // flat array of the given values; PCRs not given never mismatch
  uint64_t mismatch = 0;
};

// Streams the list once for the given banks. With pass != nullptr it also checks template
// digests (and signatures) — done by exactly one pass.
void ReplayBanks(const ReaderFactory& open, const PcrSet& pcrs, const HashAlgo& list_bank,
                 const SignatureCheck* sig, const std::vector<BankTrack*>& tracks, ListPass* pass) {
  auto fail = [&](const Status& s) {
    for (BankTrack* t : tracks) t->status = s;
  };
  auto reader = open();
  if (!reader.ok()) return fail(reader.status());
  std::vector<BankState> banks;
  for (BankTrack* t : tracks) {
    auto dig = BankDigester::Create(t->algo, list_bank, t->mode);
    if (!dig.ok()) return fail(dig.status());
    auto rep = PcrReplayer::Create(t->algo);
    if (!rep.ok()) return fail(rep.status());
    BankState b{t, std::move(dig).value(), std::move(rep).value(), Bytes(PcrReplayer::kPcrs * t->algo.size, 0), 0};
    auto given = pcrs.banks().find(t->bank);
    if (given != pcrs.banks().end()) {
      for (const auto& [idx, v] : given->second) {
        if (idx >= PcrReplayer::kPcrs || v.size() != t->algo.size) continue;
        t->given_mask |= uint64_t{1} << idx;
        std::memcpy(b.expected.data() + idx * v.size(), v.data(), v.size());
        if (!std::all_of(v.begin(), v.end(), [](uint8_t x) { return x == 0; })) b.mismatch |= uint64_t{1} << idx;
      }
    }
    t->segments.emplace_back(0, b.mismatch);
    banks.push_back(std::move(b));
  }
  std::optional<TemplateDigestChecker> checker;
  if (pass) {
    auto c = TemplateDigestChecker::Create(list_bank);
    if (!c.ok()) return fail(c.status());
    checker.emplace(std::move(c).value());
  }
  uint8_t digest[64];
  Bytes computed;
  Entry e;
  uint64_t n = 0;
  for (;;) {
    auto more = (*reader)->Next(&e);
    if (!more.ok()) return fail(more.status());
    if (!*more) break;
    if (pass) {
      if (e.violation) ++pass->violations;
      if (!(pass->covered & (uint64_t{1} << e.pcr))) {
        pass->uncovered.push_back({e.index, e.offset, e.pcr});
      }
      if (!checker->Check(e, &computed)) {
        if (pass->digest_failures++ == 0) {
          pass->first_digest_failure = EntryProblem{e.index, e.offset,
              "template digest mismatch: stored " + ToHex(e.digest) + ", computed " + ToHex(computed)};
        }
      }
      if (sig && *sig && !e.violation) {
        SignatureVerdict v = (*sig)(e);
        if (v.kind != SignatureVerdict::kNoSignature) ++pass->signatures_checked;
        if (v.kind == SignatureVerdict::kBad && pass->signature_failures++ == 0) {
          pass->first_signature_failure = EntryProblem{e.index, e.offset, v.detail};
        }
        if (v.kind == SignatureVerdict::kUnknownKey && pass->signatures_unknown_key++ == 0) {
          pass->first_unknown_key = EntryProblem{e.index, e.offset, v.detail};
        }
      }
    }
    const uint64_t bitp = uint64_t{1} << e.pcr;  // e.pcr ≤ kMaxPcrIndex < 64
    for (BankState& b : banks) {
      b.digester.Compute(e, digest);
      b.replayer.Extend(e.pcr, digest);
      if (b.track->given_mask & bitp) {
        const size_t size = b.track->algo.size;
        // Almost always unequal until the matching prefix: one word decides (every bank
        // digest is at least 8 bytes), the full compare only when that word agrees.
        const uint8_t* have = b.replayer.Value(e.pcr);
        const uint8_t* want = b.expected.data() + e.pcr * size;
        uint64_t h8, w8;
        std::memcpy(&h8, have, 8);
        std::memcpy(&w8, want, 8);
        bool eq = h8 == w8 && std::memcmp(have, want, size) == 0;
        uint64_t next = eq ? (b.mismatch & ~bitp) : (b.mismatch | bitp);
        if (next != b.mismatch) {
          b.mismatch = next;
          b.track->segments.emplace_back(n + 1, next);
        }
      }
    }
    ++n;
  }
  for (BankState& b : banks) {
    b.track->touched = b.replayer.touched();
    b.replayer.ExportTo(&b.track->replayed);
  }
  if (pass) pass->entries = n;
}

// Prefix lengths (as closed ranges) at which a bank matches, given the PCRs the whole list
// touches.
std::vector<std::pair<uint64_t, uint64_t>> MatchRanges(const BankTrack& t, uint64_t touched, uint64_t entries) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (size_t i = 0; i < t.segments.size(); ++i) {
    uint64_t begin = t.segments[i].first;
    uint64_t end = i + 1 < t.segments.size() ? t.segments[i + 1].first - 1 : entries;
    if ((t.segments[i].second & touched) == 0) out.emplace_back(begin, end);
  }
  return out;
}

// A list that is not a regular file (a pipe, standard input, a device) is copied into
// memory record by record through a streaming reader, so input that is no list (/dev/zero,
// /dev/urandom) stops at its first record, and an endless one at the limit.
Result<Bytes> ReadStreamedList(const std::string& path, const ListOptions& lo) {
  LIM_ASSIGN_OR_RETURN(auto reader, ListReader::Open(path, lo));
  Bytes out;
  Entry e;
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
    if (!more) break;
    ByteView rec = reader->last_record();
    if (out.size() + rec.size() > kMaxStreamedList) {
      return Status::InvalidArgument(path + ": larger than " + std::to_string(kMaxStreamedList) + " bytes (" +
                                     SizeText(kMaxStreamedList) +
                                     "), the limit for a list that is not a regular file (copy it to a file first)");
    }
    out.insert(out.end(), rec.begin(), rec.end());
  }
  return out;
}

}  // namespace

Result<VerifyReport> VerifyList(const std::string& path, const VerifyOptions& options) {
  // Each bank's thread streams the list itself. Inputs that cannot be read twice (a pipe)
  // are read into memory once.
  std::shared_ptr<Bytes> memory;
  struct stat st;
  if (path == "-" || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    LIM_ASSIGN_OR_RETURN(Bytes b, ReadStreamedList(path, options.list));
    memory = std::make_shared<Bytes>(std::move(b));
  }
  // Fix the bank and byte order once so that every thread decodes alike.
  ListOptions lo = options.list;
  {
    auto probe = memory ? ListReader::FromBytes(*memory, lo, path) : ListReader::Open(path, lo);
    if (!probe.ok()) return probe.status();
    lo.bank = (*probe)->bank();
    lo.byte_order = (*probe)->byte_order();
  }
  const HashAlgo list_bank = *lo.bank;
  ReaderFactory open = [&]() -> Result<std::unique_ptr<ListReader>> {
    if (memory) return ListReader::FromBytes(*memory, lo, path);
    return ListReader::Open(path, lo);
  };

  std::vector<BankTrack> tracks;
  for (const auto& [bank, _] : options.pcrs.banks()) {
    BankTrack t;
    t.bank = bank;
    LIM_ASSIGN_OR_RETURN(t.algo, BankAlgo(bank));
    tracks.push_back(std::move(t));
  }
  if (tracks.empty()) return Status::InvalidArgument("no PCR values given");
  // The thread of the list's own bank (or the first) also checks template digests.
  size_t checker = 0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (tracks[i].algo == list_bank) checker = i;
  }
  ListPass pass;
  for (const auto& t : tracks) {
    auto given = options.pcrs.banks().find(t.bank);
    for (const auto& [idx, v] : given->second) {
      if (idx < PcrReplayer::kPcrs && v.size() == t.algo.size) pass.covered |= uint64_t{1} << idx;
    }
  }
  const SignatureCheck* sig = options.check_signature ? &options.check_signature : nullptr;
  // Parallel: one thread per bank, each streaming the list. Otherwise one pass feeds all.
  auto run_all = [&](std::vector<size_t> which, bool with_pass) {
    if (!options.parallel || which.size() == 1) {
      std::vector<BankTrack*> ts;
      for (size_t i : which) ts.push_back(&tracks[i]);
      ReplayBanks(open, options.pcrs, list_bank, sig, ts, with_pass ? &pass : nullptr);
      return;
    }
    std::vector<std::thread> threads;
    for (size_t i : which) {
      ListPass* p = (with_pass && i == checker) ? &pass : nullptr;
      threads.emplace_back([&, i, p] { ReplayBanks(open, options.pcrs, list_bank, sig, {&tracks[i]}, p); });
    }
    for (auto& th : threads) th.join();
  };
  std::vector<size_t> all(tracks.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  run_all(all, true);
  for (auto& t : tracks) {
    if (!t.status.ok()) return t.status;
  }

  VerifyReport r;
  r.entries = pass.entries;
  r.violations = pass.violations;
  r.list_bank = list_bank.tpm_alg ? TpmBankName(list_bank.tpm_alg) : list_bank.tpm_name;
  r.digest_failures = pass.digest_failures;
  r.first_digest_failure = pass.first_digest_failure;
  r.signatures_checked = pass.signatures_checked;
  r.signature_failures = pass.signature_failures;
  r.first_signature_failure = pass.first_signature_failure;
  r.signatures_unknown_key = pass.signatures_unknown_key;
  r.first_unknown_key = pass.first_unknown_key;

  uint64_t touched = 0;
  for (const auto& t : tracks) touched |= t.touched;
  uint64_t compared = 0;
  for (const auto& t : tracks) compared |= (t.given_mask & touched);
  if (r.entries > 0 && compared == 0) {
    std::string pcrs;
    for (uint32_t p = 0; p < 64; ++p) {
      if (touched & (uint64_t{1} << p)) pcrs += (pcrs.empty() ? "" : ",") + std::to_string(p);
    }
    return Status::InvalidArgument("the PCR values given include none of the PCRs the list extends (" + pcrs + ")");
  }

  // Banks without any per-bank match are tried again, SHA1-padded (pre-5.8 kernels).
  std::vector<size_t> retry;
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (MatchRanges(tracks[i], touched, r.entries).empty() && tracks[i].algo.size >= 20 &&
        !(tracks[i].algo == Sha1Algo())) {
      retry.push_back(i);
    }
  }
  if (!retry.empty()) {
    std::vector<BankTrack> saved;
    for (size_t i : retry) {
      saved.push_back(tracks[i]);
      BankTrack fresh;
      fresh.bank = tracks[i].bank;
      fresh.algo = tracks[i].algo;
      fresh.mode = ReplayMode::kPaddedSha1;
      tracks[i] = std::move(fresh);
    }
    run_all(retry, false);
    for (size_t k = 0; k < retry.size(); ++k) {
      BankTrack& t = tracks[retry[k]];
      if (!t.status.ok()) return t.status;
      if (MatchRanges(t, touched, r.entries).empty()) t = std::move(saved[k]);  // report per-bank
    }
  }

  // Intersect the banks' match ranges; the longest common prefix wins.
  std::vector<std::pair<uint64_t, uint64_t>> common = {{0, r.entries}};
  for (const auto& t : tracks) {
    auto ranges = MatchRanges(t, touched, r.entries);
    std::vector<std::pair<uint64_t, uint64_t>> next;
    for (auto [a0, a1] : common) {
      for (auto [b0, b1] : ranges) {
        uint64_t lo2 = std::max(a0, b0), hi = std::min(a1, b1);
        if (lo2 <= hi) next.emplace_back(lo2, hi);
      }
    }
    common = std::move(next);
    r.bank_modes[t.bank] = ReplayModeName(t.mode);
  }
  if (!common.empty()) {
    r.matched = true;
    for (auto [a, b] : common) r.matched_prefix = std::max(r.matched_prefix, b);
    for (const auto& u : pass.uncovered) {
      if (u.index >= r.matched_prefix) break;
      if (r.uncovered++ == 0) r.first_uncovered = EntryProblem{u.index, u.offset, "PCR " + std::to_string(u.pcr)};
      r.uncovered_pcrs |= uint64_t{1} << u.pcr;
    }
  } else {
    // Explain with the first bank that has no match at all, else say banks disagree.
    for (const auto& t : tracks) {
      if (!MatchRanges(t, touched, r.entries).empty()) continue;
      for (uint32_t p = 0; p < 64; ++p) {
        uint64_t bitp = uint64_t{1} << p;
        if (!(t.given_mask & touched & bitp)) continue;
        const Bytes* want = options.pcrs.Get(t.bank, p);
        const Bytes* got = t.replayed.Get(t.bank, p);
        if (want && got && *want != *got) {
          r.mismatch = "no prefix of the list matches: " + t.bank + " PCR " + std::to_string(p) + " after all " +
                       std::to_string(r.entries) + " entries is " + ToHex(*got) + ", the PCR is " + ToHex(*want);
          break;
        }
      }
      if (r.mismatch.empty()) r.mismatch = "no prefix of the list matches the " + t.bank + " PCRs";
      break;
    }
    if (r.mismatch.empty()) r.mismatch = "every bank matches some prefix, but no prefix matches all banks at once";
  }
  return r;
}

}  // namespace lim::ima
