// EventLog: a parsed TCG boot event log (the firmware's binary_bios_measurements) in either
// format — the TCG 1.2 SHA1 log (TCG_PCR_EVENT records) or the crypto-agile TCG2 log
// (a TCG_PCR_EVENT "Spec ID Event03" header, then TCG_PCR_EVENT2 records whose digest sizes
// come from the header, so banks lim cannot hash — or has never heard of — still parse).
//
// Parsing never fails on messy input: it keeps every event it can frame and records what is
// wrong (truncated tail, PCR index out of range, unknown digest algorithm, inconsistent
// sizes) as Problems naming the event index and byte offset. Only input in which not even
// one event can be framed is an error. Events hold views into the caller's buffer, which must
// outlive the EventLog. A parsed EventLog is immutable; share it freely between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "base/status.h"

namespace lim::tcg {

enum class LogFormat { kTcg12, kCryptoAgile };

struct EventDigest {
  uint16_t alg = 0;  // TPM_ALG_* id
  ByteView digest;
};

struct Event {
  size_t index = 0;   // 0-based; the Spec ID header is event 0 of a crypto-agile log
  size_t offset = 0;  // byte offset of the record in the file
  uint32_t pcr = 0;
  uint32_t type = 0;
  std::vector<EventDigest> digests;  // TCG 1.2: one sha1 digest
  ByteView data;
  bool spec_id_header = false;  // the TCG_PCR_EVENT header of a crypto-agile log

  // The digest for a TPM algorithm, or an empty view when the event has none for it.
  ByteView DigestFor(uint16_t alg) const {
    for (const auto& d : digests) {
      if (d.alg == alg) return d.digest;
    }
    return {};
  }
};

struct SpecIdAlgorithm {
  uint16_t alg = 0;
  uint16_t digest_size = 0;
};

// TCG_EfiSpecIDEvent (PC Client PFP 10.4.5.1).
struct SpecIdEvent {
  std::string signature;  // "Spec ID Event03" (without the NUL)
  uint32_t event_size = 0;  // EventSize as declared in the header record (may be too small)
  uint32_t platform_class = 0;
  uint8_t spec_version_minor = 0;
  uint8_t spec_version_major = 0;
  uint8_t spec_errata = 0;
  uint8_t uintn_size = 0;
  uint32_t number_of_algorithms = 0;
  std::vector<SpecIdAlgorithm> algorithms;
  uint8_t vendor_info_size = 0;
  ByteView vendor_info;
};

struct Problem {
  size_t event_index = 0;
  size_t offset = 0;
  std::string message;
  // A flagged problem makes `lim eventlog` exit 1; notes (e.g. zero padding after the last
  // event) are printed but do not.
  bool flagged = true;

  std::string ToString() const;  // "event 24 (offset 0x1a2b): message"
};

struct EventLog {
  LogFormat format = LogFormat::kTcg12;
  std::optional<SpecIdEvent> spec_id;
  std::vector<Event> events;
  std::vector<Problem> problems;
  size_t size = 0;  // bytes of input

  // Banks the log carries: the Spec ID's algorithms, or {sha1} for a TCG 1.2 log.
  std::vector<SpecIdAlgorithm> Banks() const;
  bool HasFlaggedProblems() const;
};

// Parses a log. Fails (kCorrupt) only when no event at all can be framed.
Result<EventLog> ParseEventLog(ByteView data);

// A log file together with the bytes its events point into.
struct LoadedEventLog {
  MappedFile file;
  EventLog log;
};
// The largest event log read: firmware logs are tens of KiB (a cap of 128 KiB for ACPI TPM2
// logs has been proposed for Linux); 16 MiB is far beyond any real one and refuses /dev/zero, which frames as an
// endless run of empty TCG 1.2 events.
constexpr size_t kMaxEventLogSize = 16 << 20;
Result<LoadedEventLog> LoadEventLog(const std::string& path);

}  // namespace lim::tcg
