#include "tcg/event_log.h"

#include <cstdio>
#include <cstring>

#include "base/bytes.h"
#include "crypto/hash_algo.h"
#include "tcg/event_type.h"

namespace lim::tcg {

namespace {

constexpr uint16_t kAlgSha1 = 0x0004;
constexpr size_t kTcg12HeaderSize = 32;  // pcr, type, sha1 digest, data size
constexpr char kSpecId03[] = "Spec ID Event03";  // 16 bytes with its NUL
// No real log has more banks than the TPM algorithm registry has hashes.
constexpr uint32_t kMaxDigestCount = 64;

std::string Hex32(size_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%zx", v);
  return buf;
}

bool AllBytesAre(ByteView b, uint8_t v) {
  for (uint8_t x : b) {
    if (x != v) return false;
  }
  return true;
}

class Parser {
 public:
  explicit Parser(ByteView data) : data_(data) { log_.size = data.size(); }

  Result<EventLog> Parse() {
    if (data_.size() < kTcg12HeaderSize) {
      return Status::Corrupt("event log of " + std::to_string(data_.size()) +
                             " bytes is shorter than one event header (32 bytes)");
    }
    if (LooksCryptoAgile()) {
      LIM_RETURN_IF_ERROR(ParseSpecId());
      log_.format = LogFormat::kCryptoAgile;
      ParseEvents2();
    } else {
      log_.format = LogFormat::kTcg12;
      ParseEvents12();
    }
    if (log_.events.empty()) {
      std::string why = log_.problems.empty() ? "no events" : log_.problems.front().message;
      return Status::Corrupt("no usable event: " + why);
    }
    return std::move(log_);
  }

 private:
  void AddProblem(size_t index, size_t offset, std::string message, bool flagged = true) {
    log_.problems.push_back({index, offset, std::move(message), flagged});
  }

  void CheckPcrIndex(const Event& e) {
    if (e.pcr > 23) {
      AddProblem(e.index, e.offset,
                 "PCR index " + std::to_string(e.pcr) + " (" + Hex32(e.pcr) +
                     ") is outside 0-23; the event is not replayed");
    }
  }

  // Trailing bytes that are all 0x00 or all 0xFF are the unused rest of a firmware buffer.
  bool IsPadding(size_t pos, size_t index) {
    ByteView rest = data_.subspan(pos);
    if (rest.empty()) return false;
    if (AllBytesAre(rest, 0x00) || AllBytesAre(rest, 0xFF)) {
      AddProblem(index, pos,
                 std::to_string(rest.size()) + " bytes of " + (rest[0] ? "0xff" : "0x00") +
                     " padding after the last event",
                 /*flagged=*/false);
      return true;
    }
    return false;
  }

  bool LooksCryptoAgile() const {
    // The PCR index is not part of the test: a Spec ID header outside PCR 0 is still one
    // (ParseSpecId flags it).
    uint32_t type = LoadU32(data_.data() + 4, ByteOrder::kLittle);
    uint32_t size = LoadU32(data_.data() + 28, ByteOrder::kLittle);
    if (type != kEvNoAction || size < sizeof kSpecId03) return false;
    if (data_.size() < kTcg12HeaderSize + sizeof kSpecId03) return false;
    return std::memcmp(data_.data() + kTcg12HeaderSize, kSpecId03, sizeof kSpecId03) == 0;
  }

  Status ParseSpecId() {
    Event e;
    e.index = 0;
    e.offset = 0;
    e.spec_id_header = true;
    ByteReader r(data_);
    uint32_t size = 0;
    ByteView digest;
    r.ReadU32(&e.pcr, ByteOrder::kLittle);
    r.ReadU32(&e.type, ByteOrder::kLittle);
    r.ReadView(20, &digest);
    r.ReadU32(&size, ByteOrder::kLittle);
    e.digests.push_back({kAlgSha1, digest});
    if (e.pcr != 0) AddProblem(0, 0, "Spec ID event is in PCR " + std::to_string(e.pcr) + ", not 0");
    if (!AllBytesAre(digest, 0)) AddProblem(0, 0, "Spec ID event digest is not all zero");

    ByteView body = r.Rest();
    SpecIdEvent s;
    ByteReader b(body, kTcg12HeaderSize);
    ByteView sig;
    uint32_t nalg = 0;
    bool ok = b.ReadView(16, &sig) && b.ReadU32(&s.platform_class, ByteOrder::kLittle) &&
              b.ReadU8(&s.spec_version_minor) && b.ReadU8(&s.spec_version_major) &&
              b.ReadU8(&s.spec_errata) && b.ReadU8(&s.uintn_size) &&
              b.ReadU32(&nalg, ByteOrder::kLittle);
    if (!ok) return Status::Corrupt("Spec ID event at offset 0x0 is truncated");
    s.signature = std::string(AsChars(sig.first(15)));
    s.number_of_algorithms = nalg;
    s.event_size = size;
    if (nalg == 0) return Status::Corrupt("Spec ID event at offset 0x0 lists no digest algorithm");
    if (static_cast<uint64_t>(nalg) * 4 > b.remaining()) {
      return Status::Corrupt("Spec ID event at offset 0x0: " + std::to_string(nalg) +
                             " algorithms do not fit in the log");
    }
    for (uint32_t i = 0; i < nalg; ++i) {
      SpecIdAlgorithm a;
      b.ReadU16(&a.alg, ByteOrder::kLittle);
      b.ReadU16(&a.digest_size, ByteOrder::kLittle);
      if (a.digest_size == 0 || a.digest_size > 128) {
        return Status::Corrupt("Spec ID event at offset 0x0: algorithm " + Hex32(a.alg) +
                               " has implausible digest size " + std::to_string(a.digest_size));
      }
      auto known = HashAlgoByTpmAlg(a.alg);
      if (known.ok() && known->size != a.digest_size) {
        AddProblem(0, 0, "Spec ID event gives " + std::string(known->tpm_name) + " a digest size of " +
                             std::to_string(a.digest_size) + ", not " + std::to_string(known->size));
      }
      s.algorithms.push_back(a);
    }
    // The declared EventSize normally bounds the header; some logs (tpm2-tools'
    // specid-vendordata.bin) declare too few bytes and let vendorInfo run past it. Like
    // tpm2_eventlog, continue after vendorInfo when it fits in the file, and say so.
    size_t consumed = kTcg12HeaderSize + b.offset();
    size_t end = kTcg12HeaderSize + static_cast<size_t>(size);
    if (!b.ReadU8(&s.vendor_info_size)) {
      if (end > data_.size()) return Status::Corrupt("Spec ID event at offset 0x0 is truncated");
      AddProblem(0, 0, "Spec ID event has no vendorInfoSize byte");
    } else {
      consumed += 1;
      if (consumed + s.vendor_info_size > data_.size()) {
        return Status::Corrupt("Spec ID event at offset 0x0: vendorInfo runs past the end of the log");
      }
      s.vendor_info = data_.subspan(consumed, s.vendor_info_size);
      consumed += s.vendor_info_size;
    }
    if (consumed > end) {
      AddProblem(0, 0, "Spec ID event declares EventSize " + std::to_string(size) + " but its fields take " +
                           std::to_string(consumed - kTcg12HeaderSize) + " bytes; continuing after vendorInfo");
      end = consumed;
    } else if (end > data_.size()) {
      return Status::Corrupt("Spec ID event at offset 0x0: EventSize " + std::to_string(size) +
                             " runs past the end of the log");
    }
    e.data = data_.subspan(kTcg12HeaderSize, end - kTcg12HeaderSize);
    pos_ = end;
    log_.spec_id = std::move(s);
    log_.events.push_back(std::move(e));
    return Status::Ok();
  }

  // Frames records from pos to the end of the log. read_digests reads what follows the PCR
  // index and type up to EventSize; it records a problem and returns false when the rest of
  // the log cannot be framed.
  template <typename ReadDigests>
  void ParseEvents(size_t pos, ReadDigests read_digests) {
    while (pos < data_.size()) {
      size_t index = log_.events.size();
      if (IsPadding(pos, index)) break;
      ByteReader r(data_.subspan(pos), pos);
      Event e;
      e.index = index;
      e.offset = pos;
      if (!(r.ReadU32(&e.pcr, ByteOrder::kLittle) && r.ReadU32(&e.type, ByteOrder::kLittle))) {
        AddProblem(index, pos, "truncated event header: " + std::to_string(data_.size() - pos) + " bytes left");
        break;
      }
      if (!read_digests(r, e)) break;
      uint32_t size = 0;
      if (!r.ReadU32(&size, ByteOrder::kLittle)) {
        AddProblem(index, pos, "truncated event: EventSize is cut off");
        break;
      }
      if (!r.ReadView(size, &e.data)) {
        AddProblem(index, pos, "truncated event: EventSize " + std::to_string(size) + " but only " +
                                   std::to_string(r.remaining()) + " bytes remain");
        break;
      }
      CheckPcrIndex(e);
      pos += r.offset();
      log_.events.push_back(std::move(e));
    }
  }

  // TCG_PCR_EVENT: one SHA1 digest.
  void ParseEvents12() {
    ParseEvents(0, [this](ByteReader& r, Event& e) {
      ByteView digest;
      if (!r.ReadView(20, &digest)) {
        AddProblem(e.index, e.offset, "truncated event: the SHA1 digest is cut off");
        return false;
      }
      e.digests.push_back({kAlgSha1, digest});
      return true;
    });
  }

  // TCG_PCR_EVENT2: a count, then (algorithm, digest) pairs sized by the Spec ID header.
  void ParseEvents2() {
    const auto& algs = log_.spec_id->algorithms;
    ParseEvents(pos_, [this, &algs](ByteReader& r, Event& e) {
      uint32_t count = 0;
      if (!r.ReadU32(&count, ByteOrder::kLittle)) {
        AddProblem(e.index, e.offset, "truncated event: the digest count is cut off");
        return false;
      }
      if (count > kMaxDigestCount) {
        AddProblem(e.index, e.offset, "digest count " + std::to_string(count) +
                                          " is implausible; cannot frame the rest of the log");
        return false;
      }
      e.digests.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        uint16_t alg = 0;
        if (!r.ReadU16(&alg, ByteOrder::kLittle)) {
          AddProblem(e.index, e.offset, "truncated event: digest " + std::to_string(i) + " is cut off");
          return false;
        }
        size_t dsize = 0;
        for (const auto& a : algs) {
          if (a.alg == alg) dsize = a.digest_size;
        }
        if (dsize == 0) {
          auto known = HashAlgoByTpmAlg(alg);
          if (!known.ok()) {
            AddProblem(e.index, e.offset, "digest algorithm " + Hex32(alg) +
                                              " is not in the Spec ID header and unknown; cannot frame the rest of the log");
            return false;
          }
          dsize = known->size;
          AddProblem(e.index, e.offset, std::string("digest algorithm ") + known->tpm_name + " is not in the Spec ID header");
        }
        ByteView d;
        if (!r.ReadView(dsize, &d)) {
          AddProblem(e.index, e.offset, "truncated event: digest " + std::to_string(i) + " is cut off");
          return false;
        }
        e.digests.push_back({alg, d});
      }
      return true;
    });
  }

  ByteView data_;
  size_t pos_ = 0;
  EventLog log_;
};

}  // namespace

std::string Problem::ToString() const {
  return "event " + std::to_string(event_index) + " (offset " + Hex32(offset) + "): " + message;
}

std::vector<SpecIdAlgorithm> EventLog::Banks() const {
  if (spec_id) return spec_id->algorithms;
  return {{kAlgSha1, 20}};
}

bool EventLog::HasFlaggedProblems() const {
  for (const auto& p : problems) {
    if (p.flagged) return true;
  }
  return false;
}

Result<EventLog> ParseEventLog(ByteView data) { return Parser(data).Parse(); }

Result<LoadedEventLog> LoadEventLog(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path, kMaxEventLogSize, "an event log"));
  auto log = ParseEventLog(file.data());
  if (!log.ok()) return log.status().WithPrefix(path);
  return LoadedEventLog{std::move(file), std::move(log).value()};
}

}  // namespace lim::tcg
