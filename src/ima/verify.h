// VerifyList: the work of `lim verify`. Every template digest is checked, every bank of the
// given PCR set is replayed, and the longest prefix of the list whose replay equals the PCRs
// in every bank is found (the PCRs are read before the list, so the list may have grown).
// Banks are replayed in parallel (one thread per bank, each streaming the list itself), so
// two banks use both cores. A bank that does not match per-bank is retried in the pre-5.8
// SHA1-padded mode. Thread-safe: no shared state between calls.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/pcr_set.h"
#include "ima/entry.h"
#include "ima/list_reader.h"

namespace lim::ima {

struct SignatureVerdict {
  enum Kind { kNoSignature, kGood, kUnknownKey, kBad } kind = kNoSignature;
  std::string detail;  // why bad, or the unknown key id
};
// Called for every non-violation entry, on one thread.
using SignatureCheck = std::function<SignatureVerdict(const Entry&)>;

struct VerifyOptions {
  PcrSet pcrs;
  ListOptions list;
  bool parallel = true;
  SignatureCheck check_signature;  // optional
};

struct EntryProblem {
  uint64_t index = 0;
  uint64_t offset = 0;
  std::string what;
};


struct VerifyReport {
  uint64_t entries = 0;
  uint64_t violations = 0;
  std::string list_bank;
  // Template digests (list bank). Counted over the whole list.
  uint64_t digest_failures = 0;
  std::optional<EntryProblem> first_digest_failure;
  // PCR match.
  bool matched = false;
  uint64_t matched_prefix = 0;  // entries covered by the PCRs
  std::map<std::string, std::string> bank_modes;  // bank → "per-bank" / "sha1-padded"
  std::string mismatch;  // why no prefix matched
  // Entries no given PCR value attests: those after the matching prefix (the tail: appended
  // after the PCRs were read), and those inside it that extend a PCR no bank of the given
  // set has a value for (nothing compares their effect, so they prove nothing).
  uint64_t tail() const { return matched ? entries - matched_prefix : entries; }
  uint64_t uncovered = 0;                        // inside the prefix, PCR not given
  uint64_t uncovered_pcrs = 0;                   // mask of those PCRs
  std::optional<EntryProblem> first_uncovered;  // what: "PCR N"
  uint64_t unattested() const { return matched ? tail() + uncovered : entries; }
  // Signatures (only with a SignatureCheck).
  uint64_t signatures_checked = 0;
  uint64_t signature_failures = 0;
  uint64_t signatures_unknown_key = 0;
  std::optional<EntryProblem> first_signature_failure;
  std::optional<EntryProblem> first_unknown_key;
};

// A list that is not a regular file (a pipe, standard input, a device) is read into memory
// (each bank's thread streams the list again); more than this is refused. 1 GiB is some five
// million entries, far beyond a kernel list; a regular file of any size is mapped instead.
constexpr uint64_t kMaxStreamedList = uint64_t{1} << 30;

// Errors are for unusable input (corrupt list, PCR set that names nothing the list extends);
// check failures are in the report.
Result<VerifyReport> VerifyList(const std::string& path, const VerifyOptions& options);

}  // namespace lim::ima
