#include "ima/list_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <tuple>

#include "ima/digest_field.h"

namespace lim::ima {

namespace {

enum class Probe { kGood, kIncomplete, kBad };

// Does a record with digest size d parse at the start of head? On kGood, *len is its size.
Probe ProbeRecord(ByteView head, size_t d, ByteOrder order, size_t* len) {
  ByteReader r(head);
  uint32_t pcr, nlen;
  ByteView name;
  if (!r.ReadU32(&pcr, order)) return Probe::kIncomplete;
  if (pcr > kMaxPcrIndex) return Probe::kBad;
  if (!r.Skip(d) || !r.ReadU32(&nlen, order)) return Probe::kIncomplete;
  if (nlen == 0 || nlen > kMaxTemplateNameLen) return Probe::kBad;
  if (!r.ReadView(nlen, &name)) return Probe::kIncomplete;
  for (uint8_t c : name) {
    if (c < 0x21 || c > 0x7e) return Probe::kBad;
  }
  if (AsChars(name) == "ima") {
    uint32_t n;
    if (!r.Skip(20) || !r.ReadU32(&n, order)) return Probe::kIncomplete;
    if (n > kMaxTemplateNameLen) return Probe::kBad;
    if (!r.Skip(n)) return Probe::kIncomplete;
  } else {
    uint32_t dlen;
    if (!r.ReadU32(&dlen, order)) return Probe::kIncomplete;
    if (dlen > kMaxTemplateDataLen) return Probe::kBad;
    ByteView data;
    if (!r.ReadView(dlen, &data)) return Probe::kIncomplete;
    ByteReader f(data);
    while (!f.empty()) {
      uint32_t fl;
      if (!f.ReadU32(&fl, order) || !f.Skip(fl)) return Probe::kBad;
    }
  }
  *len = r.offset();
  return Probe::kGood;
}

}  // namespace

ByteOrder DetectByteOrder(ByteView head) {
  if (head.size() < 4) return kNativeOrder;
  uint32_t native = LoadU32(head.data(), kNativeOrder);
  if (native <= kMaxPcrIndex) return kNativeOrder;
  ByteOrder other = kNativeOrder == ByteOrder::kLittle ? ByteOrder::kBig : ByteOrder::kLittle;
  return LoadU32(head.data(), other) <= kMaxPcrIndex ? other : kNativeOrder;
}

Result<HashAlgo> DetectListBank(ByteView head, ByteOrder order) {
  static const int kTry[] = {2 /*sha1*/, 4 /*sha256*/, 5 /*sha384*/, 6 /*sha512*/};
  for (int id : kTry) {
    HashAlgo a = *HashAlgoByKernelId(id);
    ByteView rest = head;
    int good = 0;
    Probe last = Probe::kGood;
    while (!rest.empty() && good < 32) {
      size_t n = 0;
      last = ProbeRecord(rest, a.size, order, &n);
      if (last != Probe::kGood) break;
      ++good;
      rest = rest.subspan(n);
    }
    // Consistent: at least one whole record and nothing that contradicts this size (a torn
    // tail or a record larger than the probe window is fine).
    if (good > 0 && last != Probe::kBad) return a;
  }
  return Status::Corrupt("entry 0 at byte offset 0: cannot tell the template-digest size: no bank (20, 32, 48, 64 bytes) parses the first record; give --list-bank");
}

ListReader::~ListReader() {
  Unmap();
  if (fd_ >= 0) ::close(fd_);
}

void ListReader::Unmap() {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
}

void ListReader::ReleaseConsumed() {
  constexpr size_t kChunk = 32 << 20;
  if (!map_ || pos_ < released_ + kChunk) return;
  size_t upto = pos_ & ~(size_t{4096} - 1);
  ::madvise(static_cast<uint8_t*>(map_) + released_, upto - released_, MADV_DONTNEED);
  released_ = upto;
}

Result<std::unique_ptr<ListReader>> ListReader::Open(const std::string& path, const ListOptions& options) {
  std::unique_ptr<ListReader> r(new ListReader());
  r->origin_ = path;
  r->fd_ = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) return Status::IoError(path + ": open: " + std::strerror(errno));
  ::posix_fadvise(r->fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  struct stat st;
  if (options.allow_mmap && ::fstat(r->fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, r->fd_, 0);
    if (m != MAP_FAILED) {
      ::madvise(m, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
      r->map_ = m;
      r->map_size_ = static_cast<size_t>(st.st_size);
      r->data_ = ByteView(static_cast<const uint8_t*>(m), r->map_size_);
      r->eof_ = true;
    }
  }
  if (!r->map_) r->buf_.resize(std::max<size_t>(options.buffer_size, 1 << 16));
  LIM_RETURN_IF_ERROR(r->Init(options));
  return r;
}

Result<std::unique_ptr<ListReader>> ListReader::FromBytes(ByteView data, const ListOptions& options,
                                                          std::string origin) {
  std::unique_ptr<ListReader> r(new ListReader());
  r->origin_ = std::move(origin);
  r->data_ = data;
  r->eof_ = true;
  LIM_RETURN_IF_ERROR(r->Init(options));
  return r;
}

Status ListReader::Init(const ListOptions& options) {
  auto head = Ensure(64 << 10);
  if (!head.ok()) return head.status();
  ByteView h = data_.subspan(pos_);
  order_ = options.byte_order ? *options.byte_order : DetectByteOrder(h);
  if (options.bank) {
    bank_ = *options.bank;
  } else if (h.empty()) {
    bank_ = Sha1Algo();
  } else {
    auto b = DetectListBank(h, order_);
    if (!b.ok()) return ExplainUndetectedBank(h, b.status().WithPrefix(origin_));
    bank_ = *b;
  }
  return Status::Ok();
}

Status ListReader::ExplainUndetectedBank(ByteView head, const Status& detect) const {
  // A cut-off record is damage only when the head is the whole input; otherwise it may just
  // run past the probe window.
  const bool whole = fd_ < 0 || map_ || eof_;
  // Progress of a reading: whole records, then whether a template name was recognised (the
  // strongest sign of the right size), then how far it got. Readings that recognise nothing
  // are equally lost: the first one (sha1, the size of the kernel's main list) is reported.
  using Progress = std::tuple<uint64_t, bool, uint64_t>;
  std::optional<Status> best;
  Progress best_progress;
  std::string best_bank;
  bool all_same = true;
  for (int id : {2 /*sha1*/, 4 /*sha256*/, 5 /*sha384*/, 6 /*sha512*/}) {
    ListOptions o;
    o.bank = *HashAlgoByKernelId(id);
    o.byte_order = order_;
    auto r = FromBytes(head, o, origin_);
    if (!r.ok()) continue;
    Entry e;
    Result<bool> more = true;
    for (int i = 0; i < 64 && more.ok() && *more; ++i) more = (*r)->Next(&e);
    if (more.ok() || ((*r)->last_error_was_truncation() && !whole)) continue;
    const bool named = !(*r)->templates_.empty();
    Progress p{(*r)->entries_read(), named, named ? (*r)->last_error_at_ : 0};
    if (best && more.status().message() != best->message()) all_same = false;
    if (!best || p > best_progress) {
      best = more.status();
      best_progress = p;
      best_bank = TpmBankName(o.bank->tpm_alg);
    }
  }
  if (!best) return detect;
  if (all_same) return *best;
  return Status::Corrupt(best->message() + " (read with " + best_bank +
                         " template digests; no digest size parses the list; --list-bank chooses one)");
}

Result<bool> ListReader::Ensure(size_t n) {
  if (data_.size() - pos_ >= n) return true;
  if (fd_ < 0 || map_) return false;
  // Slide the unread tail to the front, grow if one record needs more, then read.
  size_t keep = filled_ - pos_;
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, keep);
    base_ += pos_;
    pos_ = 0;
    filled_ = keep;
  }
  if (buf_.size() < n) buf_.resize(n);
  while (filled_ < n && !eof_) {
    ssize_t got = ::read(fd_, buf_.data() + filled_, buf_.size() - filled_);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::IoError(origin_ + ": read: " + std::strerror(errno));
    if (got == 0) eof_ = true;
    filled_ += static_cast<size_t>(got);
  }
  data_ = ByteView(buf_.data(), filled_);
  return filled_ - pos_ >= n;
}

Status ListReader::Error(uint64_t at, const std::string& what) const {
  last_error_at_ = at;
  return Status::Corrupt(origin_ + ": entry " + std::to_string(index_) + " at byte offset " + std::to_string(at) +
                         ": " + what);
}

Status ListReader::Truncated(uint64_t at, const std::string& what) {
  truncated_ = true;
  return Error(at, what);
}

Status ListReader::SeekTo(uint64_t offset, uint64_t index) {
  if (fd_ < 0) return Status::InvalidArgument(origin_ + ": cannot seek in-memory input");
  if (map_) {
    Unmap();
    if (buf_.size() < (1 << 16)) buf_.resize(1 << 16);
  }
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    return Status::IoError(origin_ + ": seek: " + std::strerror(errno));
  }
  base_ = offset;
  pos_ = filled_ = 0;
  data_ = {};
  eof_ = false;
  index_ = index;
  truncated_ = false;
  return Status::Ok();
}

namespace {
uint64_t Head8(std::string_view s) {
  uint64_t h = 0;
  std::memcpy(&h, s.data(), std::min<size_t>(8, s.size()));
  return h;
}
}  // namespace

Result<const Template*> ListReader::ResolveTemplate(std::string_view name) {
  const uint64_t head = Head8(name);
  for (const TemplateKey& k : template_keys_) {
    if (k.len == name.size() && k.head == head && (name.size() <= 8 || k.tmpl->name() == name)) return k.tmpl;
  }
  LIM_ASSIGN_OR_RETURN(Template t, Template::Lookup(name));
  templates_.push_back(std::make_unique<Template>(std::move(t)));
  template_keys_.push_back({name.size(), head, templates_.back().get()});
  return templates_.back().get();
}

// Mapped and in-memory lists almost always hold the whole record: check that inline and
// only go through Ensure (and its Result) when more must be read.
#define LIM_ENSURE(have, n)                               \
  do {                                                    \
    const size_t lim_need_ = (n);                         \
    if (data_.size() - pos_ >= lim_need_) {               \
      have = true;                                        \
    } else {                                              \
      LIM_ASSIGN_OR_RETURN(have, Ensure(lim_need_));      \
    }                                                     \
  } while (0)

Result<bool> ListReader::Next(Entry* e) {
  const uint64_t start = base_ + pos_;
  // Fixed head: pcr, digest, name length.
  const size_t d = bank_.size;
  bool have = false;
  LIM_ENSURE(have, 1);
  if (!have) return false;
  LIM_ENSURE(have, 8 + d);
  if (!have) {
    return Truncated(start, "truncated record: " + std::to_string(data_.size() - pos_) + " bytes left, a record head needs " +
                            std::to_string(8 + d));
  }
  const uint8_t* p = data_.data() + pos_;
  uint32_t pcr = LoadU32(p, order_);
  uint32_t nlen = LoadU32(p + 4 + d, order_);
  if (pcr > kMaxPcrIndex) return Error(start, "PCR index " + std::to_string(pcr) + " out of range");
  if (nlen == 0 || nlen > kMaxTemplateNameLen) {
    return Error(start + 4 + d, "template name length " + std::to_string(nlen) + " is not in 1.." +
                                    std::to_string(kMaxTemplateNameLen));
  }
  LIM_ENSURE(have, 8 + d + nlen + 4);
  if (!have) return Truncated(start, "truncated record: template name runs past the end of the list");
  p = data_.data() + pos_;
  std::string_view name(reinterpret_cast<const char*>(p + 8 + d), nlen);
  auto tmpl = ResolveTemplate(name);
  if (!tmpl.ok()) return Error(start + 8 + d, tmpl.status().message());

  // Every member is assigned below; fields past num_fields are never read, so the
  // 240-byte field array is not cleared per record (that was a third of decoding time).
  Entry& out = *e;
  out.template_data = {};
  out.index = index_;
  out.offset = start;
  out.pcr = pcr;
  out.tmpl = *tmpl;
  out.order = order_;
  size_t body = 8 + d + nlen;  // offset of what follows the name
  size_t total = 0;
  if ((*tmpl)->is_legacy_ima()) {
    // d (20 bytes, no length) then u32 name length and the name without NUL.
    LIM_ENSURE(have, body + 24);
    if (!have) return Truncated(start, "truncated 'ima' record: digest and name length run past the end");
    p = data_.data() + pos_;
    uint32_t n = LoadU32(p + body + 20, order_);
    if (n > kMaxTemplateNameLen) {
      return Error(start + body + 20, "'ima' event name length " + std::to_string(n) + " exceeds 255");
    }
    total = body + 24 + n;
    LIM_ENSURE(have, total);
    if (!have) return Truncated(start, "truncated 'ima' record: event name runs past the end");
    p = data_.data() + pos_;
    out.fields[0] = ByteView(p + body, 20);
    out.fields[1] = ByteView(p + body + 24, n);
    out.num_fields = 2;
  } else {
    uint32_t len = LoadU32(p + body, order_);
    if (len > kMaxTemplateDataLen) {
      return Error(start + body, "template data length " + std::to_string(len) + " is absurdly large");
    }
    total = body + 4 + len;
    LIM_ENSURE(have, total);
    if (!have) {
      return Truncated(start + body, "truncated record: template data length " + std::to_string(len) +
                                     " points past the end of the list");
    }
    p = data_.data() + pos_;
    out.template_data = ByteView(p + body + 4, len);
    ByteReader fr(out.template_data, start + body + 4);
    const auto& ids = (*tmpl)->fields();
    for (size_t i = 0; i < ids.size(); ++i) {
      uint32_t fl;
      size_t at = fr.file_offset();
      if (!fr.ReadU32(&fl, order_)) return Error(at, "template data ends before field " + std::to_string(i) + " (" + GetFieldInfo(ids[i]).name + ")");
      if (!fr.ReadView(fl, &out.fields[i])) {
        return Error(at, std::string("field '") + GetFieldInfo(ids[i]).name + "' length " + std::to_string(fl) +
                             " runs past the template data");
      }
    }
    if (!fr.empty()) {
      return Error(fr.file_offset(), std::to_string(fr.remaining()) + " bytes after the last field of '" +
                                         std::string(name) + "'");
    }
    out.num_fields = ids.size();
  }
  out.digest = ByteView(p + 4, d);
  out.template_name = name;
  out.violation = IsAllZero(out.digest);
  // Field-level checks that make a record undecodable.
  const auto& ids = (*tmpl)->fields();
  for (size_t i = 0; i < out.num_fields; ++i) {
    if (ids[i] == FieldId::kDNg || ids[i] == FieldId::kDNgV2 || (ids[i] == FieldId::kDModsig && !out.fields[i].empty())) {
      Status st = CheckDigestField(i, ids[i], out.fields[i]);
      if (!st.ok()) return Error(start, std::string("field '") + GetFieldInfo(ids[i]).name + "': " + st.message());
    } else if (ids[i] == FieldId::kD && out.fields[i].size() != 20 && out.fields[i].size() != 16) {
      return Error(start, "field 'd' has " + std::to_string(out.fields[i].size()) + " bytes (expected 20)");
    }
  }
  last_record_ = ByteView(p, total);
  pos_ += total;
  ++index_;
  ReleaseConsumed();
  return true;
}

Status ListReader::CheckDigestField(size_t i, FieldId id, ByteView payload) {
  const Bytes& prefix = valid_prefix_[i];
  if (!prefix.empty() && payload.size() == valid_size_[i]) {
    // Same algorithm prefix and size as a digest already accepted ("sha256:" NUL is 8
    // bytes: one word compare).
    bool same = prefix.size() == 8 ? Head8(AsChars(payload)) == Head8(AsChars(prefix))
                                   : std::memcmp(payload.data(), prefix.data(), prefix.size()) == 0;
    if (same) return Status::Ok();
  }
  auto df = ParseDigestField(payload, id == FieldId::kDNgV2);
  if (!df.ok()) return df.status();
  if (!df->historic_violation) {
    size_t prefix_len = static_cast<size_t>(df->digest.data() - payload.data());
    valid_prefix_[i].assign(payload.data(), payload.data() + prefix_len);
    valid_size_[i] = payload.size();
  }
  return Status::Ok();
}

}  // namespace lim::ima
