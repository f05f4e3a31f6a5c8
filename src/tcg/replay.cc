#include "tcg/replay.h"

#include <cstring>

#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tcg/efi.h"
#include "tcg/event_type.h"

namespace lim::tcg {

namespace {

constexpr char kStartupLocality[] = "StartupLocality";  // 16 bytes with NUL

// Candidate byte ranges a spec-conforming digest may be the hash of; empty when the event
// type's digest cannot be recomputed from the log.
std::vector<ByteView> DigestInputs(const Event& e) {
  ByteView d = e.data;
  switch (e.type) {
    case kEvSeparator:
    case kEvAction:
    case kEvEfiAction:
    case kEvSCrtmVersion:
    case kEvEfiGptEvent:
    case kEvEfiVariableDriverConfig:
    case kEvOmitBootDeviceEvents:
      return {d};
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority: {
      // edk2 hashes the whole UEFI_VARIABLE_DATA for some variables and only VariableData
      // for others (Boot####); shim does either. Accept both.
      // Old shim logs UEFI_VARIABLE_DATA whose lengths disagree with EventSize and hashes a
      // different span; such events cannot be checked from the log.
      auto v = ParseUefiVariable(d);
      if (!v || 32 + 2 * v->name_length + v->data_length != d.size()) return {};
      return {d, v->data};
    }
    case kEvIpl: {
      if (e.pcr == 12) return {d};  // systemd-boot ≥251: the UTF-16 command line as is
      if (e.pcr != 8) return {};    // PCR 9/14: file contents, MOK lists — not in the log
      // GRUB: "grub_cmd: …", "kernel_cmdline: …", "grub_kernel_cmdline …": the digest is
      // over the text after the first space, with or without the trailing NUL.
      std::vector<ByteView> c{d};
      if (!d.empty() && d.back() == 0) c.push_back(d.first(d.size() - 1));
      const uint8_t* sp = static_cast<const uint8_t*>(std::memchr(d.data(), ' ', d.size()));
      if (sp) {
        ByteView rest = d.subspan(static_cast<size_t>(sp - d.data()) + 1);
        c.push_back(rest);
        if (!rest.empty() && rest.back() == 0) c.push_back(rest.first(rest.size() - 1));
      }
      return c;
    }
    default:
      return {};
  }
}

}  // namespace

namespace {

// One reusable hasher per algorithm and thread: a one-shot EVP_Digest allocates and wipes a
// context each time, which dominated replaying large logs.
bool HashEquals(const HashAlgo& algo, ByteView in, ByteView want) {
  thread_local std::vector<std::pair<uint16_t, Hasher>> cache;
  Hasher* h = nullptr;
  for (auto& [alg, hasher] : cache) {
    if (alg == algo.tpm_alg) h = &hasher;
  }
  if (!h) {
    auto created = Hasher::Create(algo);
    if (!created.ok()) return false;
    cache.emplace_back(algo.tpm_alg, std::move(created).value());
    h = &cache.back().second;
  }
  uint8_t out[128];
  h->Update(in);
  h->Final(out);
  return algo.size == want.size() && std::memcmp(out, want.data(), want.size()) == 0;
}

}  // namespace

DigestCheck CheckEventDigests(const Event& e) {
  if (e.spec_id_header || e.type == kEvNoAction) return DigestCheck::kNotCheckable;
  std::vector<ByteView> inputs = DigestInputs(e);
  if (inputs.empty()) return DigestCheck::kNotCheckable;
  // Find the candidate input with the first computable bank, then confirm that same input
  // in every other bank (one hash per bank instead of one per candidate and bank).
  const ByteView* matched = nullptr;
  bool checked = false;
  for (const auto& d : e.digests) {
    auto algo = HashAlgoByTpmAlg(d.alg);
    if (!algo.ok() || !HashAlgoAvailable(*algo) || algo->size != d.digest.size()) continue;
    if (!matched) {
      for (const ByteView& in : inputs) {
        if (HashEquals(*algo, in, d.digest)) {
          matched = &in;
          break;
        }
      }
      if (!matched) return DigestCheck::kMismatch;
    } else if (!HashEquals(*algo, *matched, d.digest)) {
      return DigestCheck::kMismatch;
    }
    checked = true;
  }
  return checked ? DigestCheck::kMatches : DigestCheck::kNotCheckable;
}

ReplayResult Replay(const EventLog& log, const ReplayOptions& options) {
  ReplayResult r;
  struct Lane {
    PcrBank* bank;
    Hasher hasher;
  };
  // Banks first, then hashers pointing at them (the vector must not grow afterwards).
  std::vector<std::pair<uint16_t, Result<Hasher>>> pending;
  for (const auto& a : log.Banks()) {
    auto algo = HashAlgoByTpmAlg(a.alg);
    if (!algo.ok() || !HashAlgoAvailable(*algo) || algo->size != a.digest_size) {
      r.problems.push_back({0, 0,
                            "bank " + TpmBankName(a.alg) +
                                " cannot be computed here (unknown or unavailable algorithm); it is not replayed",
                            false});
      continue;
    }
    auto h = Hasher::Create(*algo);
    if (!h.ok()) {
      r.problems.push_back({0, 0, "bank " + TpmBankName(a.alg) + ": " + h.status().message(), false});
      continue;
    }
    r.pcrs.Add(a.alg, a.digest_size);
    pending.emplace_back(a.alg, std::move(h));
  }
  std::vector<Lane> lanes;
  for (auto& [alg, h] : pending) lanes.push_back({r.pcrs.FindAlg(alg), std::move(h).value()});

  // Initial PCR 0 from the StartupLocality event or an H-CRTM event.
  for (const auto& e : log.events) {
    if (e.pcr != 0) continue;
    if (e.type == kEvEfiHcrtmEvent) {
      r.startup_locality = 4;
      break;
    }
    if (e.type == kEvNoAction && !e.spec_id_header && e.data.size() >= sizeof kStartupLocality + 1 &&
        std::memcmp(e.data.data(), kStartupLocality, sizeof kStartupLocality) == 0) {
      r.startup_locality = e.data[sizeof kStartupLocality];
    }
  }
  if (r.startup_locality > 0 && !options.tpm2_tools_5_4_compat) {
    for (auto& l : lanes) {
      l.bank->pcrs[0].back() = static_cast<uint8_t>(r.startup_locality);
      l.bank->extended |= 1u;
    }
  }

  r.checks.assign(log.events.size(), DigestCheck::kNotCheckable);
  // Events measured after ExitBootServices returned come from the OS (or a confused
  // firmware); they are replayed like any other but worth a note.
  size_t ebs_index = 0, after_ebs = 0;
  bool ebs_done = false;
  uint8_t buf[2 * 128];
  for (const auto& e : log.events) {
    if (ebs_done && !e.spec_id_header && e.type != kEvNoAction && after_ebs++ == 0) ebs_index = e.index;
    if (e.type == kEvEfiAction && AsChars(e.data).starts_with("Exit Boot Services Returned with Success")) ebs_done = true;
    if (e.spec_id_header || e.pcr >= kNumPcrs) continue;
    if (e.type == kEvNoAction && !(options.tpm2_tools_5_4_compat && log.format == LogFormat::kCryptoAgile)) continue;
    for (auto& l : lanes) {
      ByteView d = e.DigestFor(l.bank->tpm_alg);
      if (d.empty()) {
        r.problems.push_back({e.index, e.offset, "event has no " + l.bank->name + " digest; " + l.bank->name +
                                                     " PCR " + std::to_string(e.pcr) + " is not extended"});
        continue;
      }
      Bytes& pcr = l.bank->pcrs[e.pcr];
      std::memcpy(buf, pcr.data(), pcr.size());
      std::memcpy(buf + pcr.size(), d.data(), d.size());
      l.hasher.Update(ByteView(buf, pcr.size() + d.size()));
      l.hasher.Final(pcr.data());
      l.bank->extended |= 1u << e.pcr;
    }
    if (options.check_digests) {
      DigestCheck c = CheckEventDigests(e);
      r.checks[e.index] = c;
      if (c == DigestCheck::kMismatch) {
        r.problems.push_back({e.index, e.offset,
                              "digest of " + EventTypeName(e.type) + " in PCR " + std::to_string(e.pcr) +
                                  " does not match its event data (the decoded data is not what was measured)"});
      }
    }
  }
  if (after_ebs) {
    const Event& first = log.events[ebs_index];
    r.problems.push_back({first.index, first.offset,
                          std::to_string(after_ebs) + " event(s) follow \"Exit Boot Services Returned with Success\"",
                          false});
  }
  return r;
}

}  // namespace lim::tcg
