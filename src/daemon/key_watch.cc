#include "daemon/key_watch.h"

#include <fcntl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "daemon/proc_context.h"
#include "ima/list_writer.h"
#include "ima/policy.h"

namespace lim::daemon {

namespace {

constexpr long kKeyctlDescribe = 6;      // KEYCTL_DESCRIBE
constexpr long kKeyctlRead = 11;         // KEYCTL_READ (a keyring: its keys' serials)
constexpr uint64_t kMaxPayload = 1 << 20;  // add_key refuses larger payloads

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kDigits[p[i] >> 4], s += kDigits[p[i] & 15];
  return s;
}

// "type;uid;gid;perm;description" for a key limd may view.
Result<std::string> Describe(int64_t serial) {
  std::string buf(4096, '\0');
  long n = ::syscall(SYS_keyctl, kKeyctlDescribe, static_cast<long>(serial), buf.data(), buf.size());
  if (n < 0) return Status::IoError("KEYCTL_DESCRIBE " + std::to_string(serial) + ": " + strerror(errno));
  buf.resize(std::min(static_cast<size_t>(n), buf.size()));
  while (!buf.empty() && buf.back() == '\0') buf.pop_back();
  return buf;
}

// The type and the description of a KEYCTL_DESCRIBE answer.
std::pair<std::string, std::string> Split(const std::string& d) {
  size_t at = 0;
  for (int i = 0; i < 4 && at != std::string::npos; ++i) at = d.find(';', i == 0 ? 0 : at + 1);
  std::string type = d.substr(0, d.find(';'));
  return {type, at == std::string::npos ? "" : d.substr(at + 1)};
}

Result<Bytes> ReadMem(int fd, uint64_t addr, size_t n) {
  Bytes b(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, b.data() + got, n - got, static_cast<off_t>(addr + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IoError(std::string("read task memory: ") + (r < 0 ? strerror(errno) : "short"));
    got += static_cast<size_t>(r);
  }
  return b;
}

// A NUL-terminated string of task memory (at most 4095 bytes: add_key's limit).
Result<std::string> ReadMemString(int fd, uint64_t addr) {
  std::string out;
  char chunk[256];
  while (out.size() < 4096) {
    ssize_t r = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(addr + out.size()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IoError(std::string("read task memory: ") + (r < 0 ? strerror(errno) : "short"));
    const char* nul = static_cast<const char*>(std::memchr(chunk, 0, static_cast<size_t>(r)));
    if (nul) return out.append(chunk, static_cast<size_t>(nul - chunk));
    out.append(chunk, static_cast<size_t>(r));
  }
  return Status::InvalidArgument("description longer than 4095 bytes");
}

// The serial, the type and the text after the type column of each /proc/keys line
// ("%08x … %-9.9s " then the type's describe output).
struct ProcKey {
  int64_t serial = 0;
  std::string type;  // at most 9 characters ("asymmetri")
  std::string rest;
};
std::vector<ProcKey> ProcKeys() {
  std::vector<ProcKey> out;
  auto text = ReadFileText("/proc/keys");
  if (!text.ok()) return out;
  size_t at = 0;
  while (at < text->size()) {
    size_t end = text->find('\n', at);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(at, end - at);
    at = end + 1;
    // Seven columns, then the type padded to 9 characters and one space.
    size_t pos = 0;
    for (int col = 0; col < 7 && pos != std::string::npos; ++col) {
      pos = line.find_first_not_of(' ', pos);
      if (pos != std::string::npos) pos = line.find(' ', pos);
    }
    if (pos == std::string::npos) continue;
    pos = line.find_first_not_of(' ', pos);
    if (pos == std::string::npos || pos + 10 > line.size()) continue;
    ProcKey k;
    k.serial = static_cast<int64_t>(std::strtoll(line.c_str(), nullptr, 16));
    k.type = line.substr(pos, 9);
    while (!k.type.empty() && k.type.back() == ' ') k.type.pop_back();
    k.rest = line.substr(pos + 10);
    out.push_back(std::move(k));
  }
  return out;
}

// The last 4 bytes of a certificate's subject key identifier in hex, as /proc/keys shows
// them (kids->id[1]); empty when it has none; nullopt when der is no certificate.
std::optional<std::string> SkidTail(ByteView der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) return std::nullopt;
  std::string tail;
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(x)) {
    auto n = static_cast<size_t>(ASN1_STRING_length(skid));
    const uint8_t* d = ASN1_STRING_get0_data(skid);
    tail = n > 4 ? Hex(d + n - 4, 4) : Hex(d, n);
  }
  X509_free(x);
  return tail;
}

}  // namespace

Result<std::string> ResolveHoldingKeyring(int64_t serial, const std::string& asymmetric_description) {
  struct Ring {
    std::string description;
    std::vector<int32_t> keys;
  };
  std::vector<Ring> rings;
  std::vector<std::string> holders;
  for (const ProcKey& k : ProcKeys()) {
    if (k.type != "keyring") continue;
    std::vector<int32_t> ids(1024);
    long n = ::syscall(SYS_keyctl, kKeyctlRead, static_cast<long>(k.serial), ids.data(), ids.size() * sizeof(int32_t));
    if (n < 0) continue;
    ids.resize(std::min(ids.size(), static_cast<size_t>(n) / sizeof(int32_t)));
    auto d = Describe(k.serial);
    if (!d.ok()) continue;
    if (std::find(ids.begin(), ids.end(), static_cast<int32_t>(serial)) != ids.end()) {
      holders.push_back(Split(*d).second);
    }
    rings.push_back(Ring{Split(*d).second, std::move(ids)});
  }
  if (holders.empty() && !asymmetric_description.empty()) {
    // Unlinked already: the next add_key of the same description replaced it (a new key,
    // same index key, same ring). The one ring that links an asymmetric key of that
    // description is that ring.
    for (const Ring& r : rings) {
      for (int32_t id : r.keys) {
        auto d = Describe(id);
        if (!d.ok()) continue;
        auto [type, desc] = Split(*d);
        if (type == "asymmetric" && desc == asymmetric_description) {
          holders.push_back(r.description);
          break;
        }
      }
    }
  }
  if (holders.size() != 1) {
    return Status::NotFound(std::to_string(holders.size()) + " viewable keyrings link key " + std::to_string(serial));
  }
  return holders[0];
}

Result<std::string> ProcKeysDescribeTail(int64_t serial, const std::string& description) {
  for (const ProcKey& k : ProcKeys()) {
    if (k.serial != serial) continue;
    if (k.rest.compare(0, description.size(), description) != 0) break;
    return k.rest.substr(description.size());
  }
  return Status::NotFound("key " + std::to_string(serial) + " is not in /proc/keys for limd");
}

Result<std::string> KernelX509Description(ByteView der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) return Status::InvalidArgument("not an X.509 certificate");
  // x509_fabricate_name: the last CN, O and emailAddress of the subject.
  std::string cn, o, email;
  bool has_cn = false, has_o = false, has_email = false;
  X509_NAME* name = X509_get_subject_name(x);
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    ASN1_STRING* v = X509_NAME_ENTRY_get_data(e);
    std::string val(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)), static_cast<size_t>(ASN1_STRING_length(v)));
    if (nid == NID_commonName) cn = val, has_cn = true;
    if (nid == NID_organizationName) o = val, has_o = true;
    if (nid == NID_pkcs9_emailAddress) email = val, has_email = true;
  }
  std::string subject;
  if (has_cn && has_o) {
    bool cn_has_o_prefix = o.size() <= cn.size() && cn.compare(0, o.size(), o) == 0;
    bool share_seven = cn.size() >= 7 && o.size() >= 7 && cn.compare(0, 7, o, 0, 7) == 0;
    subject = cn_has_o_prefix || share_seven ? cn : o + ": " + cn;
  } else if (has_cn) {
    subject = cn;
  } else if (has_o) {
    subject = o;
  } else if (has_email) {
    subject = email;
  }
  // x509_key_preparse: the raw subject key identifier, else the serial number's content
  // octets as encoded (a leading zero octet included).
  std::string id;
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(x);
  if (skid) {
    id = Hex(ASN1_STRING_get0_data(skid), static_cast<size_t>(ASN1_STRING_length(skid)));
  } else {
    unsigned char* enc = nullptr;
    int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &enc);
    if (n > 2 && enc) {
      size_t hdr = (enc[1] & 0x80) ? 2 + (enc[1] & 0x7f) : 2;
      if (hdr < static_cast<size_t>(n)) id = Hex(enc + hdr, static_cast<size_t>(n) - hdr);
    }
    OPENSSL_free(enc);
  }
  X509_free(x);
  return subject + ": " + id;
}

std::optional<std::string> SpecialKeyringName(int32_t ringid, uint32_t uid) {
  switch (ringid) {
    case -1: return "_tid";
    case -2: return "_pid";
    case -4: return "_uid." + std::to_string(uid);
    case -5: return "_uid_ses." + std::to_string(uid);
    default: return std::nullopt;
  }
}

Status KeyWatch::Attach(TraceEvents* trace) {
  LIM_ASSIGN_OR_RETURN(enter_event_, trace->Add("syscalls/sys_enter_add_key"));
  LIM_ASSIGN_OR_RETURN(exit_event_, trace->Add("syscalls/sys_exit_add_key"));
  return Status::Ok();
}

bool KeyWatch::OnRecord(const TraceRecord& r) {
  if (r.event == enter_event_) {
    OnEnter(static_cast<pid_t>(r.tid), static_cast<uint64_t>(r.Int("_type").value_or(0)),
            static_cast<uint64_t>(r.Int("_payload").value_or(0)), static_cast<uint64_t>(r.Int("plen").value_or(0)),
            static_cast<int32_t>(r.Int("ringid").value_or(0)), r.time_ns,
            static_cast<uint64_t>(r.Int("_description").value_or(0)));
    return true;
  }
  if (r.event == exit_event_) {
    OnExit(static_cast<pid_t>(r.tid), r.Int("ret").value_or(-1), r.time_ns);
    return true;
  }
  return false;
}

void KeyWatch::OnEnter(pid_t tid, uint64_t type_addr, uint64_t payload_addr, uint64_t plen, int32_t ringid,
                       uint64_t time_ns, uint64_t desc_addr) {
  if (pending_.size() > 1024) pending_.clear();  // exits lost: never grow without bound
  int fd = ::open(("/proc/" + std::to_string(tid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Pending& p = pending_[tid];
    p = Pending{};
    p.enter_ns = time_ns, p.ringid = ringid;
    p.error = std::string("open task memory: ") + strerror(errno);
    return;
  }
  // Only the asymmetric key type is measured (ima_post_key_create_or_update).
  auto type = ReadMem(fd, type_addr, 11);
  bool asymmetric = type.ok() && std::memcmp(type->data(), "asymmetric", 11) == 0;
  if (!asymmetric && type.ok()) {
    ::close(fd);
    pending_.erase(tid);
    return;
  }
  Pending& p = pending_[tid];
  p = Pending{};
  p.enter_ns = time_ns;
  p.ringid = ringid;
  if (auto creds = ReadCreds(tid); creds.ok()) p.uid = creds->uid, p.comm = creds->comm;
  if (desc_addr != 0) {
    // An empty description counts as none: the kernel derives one then too
    // (x509_key_preparse fills prep->description when the caller's is empty).
    auto desc = ReadMemString(fd, desc_addr);
    if (desc.ok()) {
      p.has_description = !desc->empty();
      p.description = std::move(*desc);
    } else {
      p.error = "description: " + desc.status().message();
    }
  }
  if (!type.ok()) {
    p.error = type.status().message();  // checked again at exit through the key's type
  } else if (plen == 0 || plen > kMaxPayload) {
    p.error = "payload size " + std::to_string(plen);
  } else {
    auto payload = ReadMem(fd, payload_addr, static_cast<size_t>(plen));
    if (payload.ok()) {
      p.payload = std::move(*payload);
    } else {
      p.error = payload.status().message();
    }
  }
  ::close(fd);
}

void KeyWatch::OnExit(pid_t tid, int64_t ret, uint64_t time_ns) {
  auto it = pending_.find(tid);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (ret <= 0) return;  // add_key failed: the kernel measured nothing
  std::string reason;
  std::string keyring = KeyringOf(p, ret, &reason);
  ima::PolicyAccess pa;
  pa.func = ima::ImaHook::kKeyCheck;
  pa.uid = pa.euid = pa.suid = p.uid;
  pa.func_data = keyring;
  pa.has_func_data = reason.empty();
  ima::PolicyDecision d = measurer_->DecideBuffer(pa);
  // A keyring limd cannot name may be one a rule names: recorded as a gap then too.
  bool measure = d.of(ima::ActionClass::kMeasure).yes;
  if (!measure && reason.empty()) return;
  auto key = Describe(ret);
  std::string description;
  if (key.ok()) {
    auto [type, desc] = Split(*key);
    if (type != "asymmetric") return;  // not measured by the kernel either
    description = desc;
  }
  if (!reason.empty()) {
    if (!key.ok()) return;  // neither keyring nor key viewable: not even the type is known
    Gap(static_cast<uint64_t>(ret), keyring, description, tid, reason);
    return;
  }
  if (!key.ok()) {
    Gap(static_cast<uint64_t>(ret), keyring, "", tid, "key_unreadable");
    return;
  }
  if (std::string unverified = UnverifiedPayload(p, ret, description); !unverified.empty()) {
    Gap(static_cast<uint64_t>(ret), keyring, description, tid, unverified);
    return;
  }
  AppendKey(p, ret, keyring, d.pcr, time_ns);
}

std::string KeyWatch::KeyringOf(const Pending& p, int64_t ret, std::string* reason) {
  // The keyring: its name decides the policy (keyrings=) and names the entry.
  std::string keyring;
  if (p.ringid > 0) {
    auto d = Describe(p.ringid);
    if (d.ok()) {
      keyring = Split(*d).second;
    } else {
      *reason = "keyring_unreadable";
    }
  } else if (auto special = SpecialKeyringName(p.ringid, p.uid)) {
    keyring = *special;
  } else {
    *reason = "keyring_unresolved";
  }
  if (!reason->empty()) {
    // @s, or a ring limd may not describe by id: the ring that now links the new key.
    std::string key_desc;
    if (auto k = Describe(ret); k.ok() && Split(*k).first == "asymmetric") key_desc = Split(*k).second;
    auto holder = ResolveHoldingKeyring(ret, key_desc);
    if (holder.ok()) {
      keyring = *holder;
      reason->clear();
    } else if (log_) {
      log_("key " + std::to_string(ret) + ": keyring id " + std::to_string(p.ringid) + " unresolved: " +
           holder.status().message());
    }
  }
  if (keyring.empty()) keyring = "ringid:" + std::to_string(p.ringid);
  return keyring;
}

std::string KeyWatch::UnverifiedPayload(const Pending& p, int64_t ret, const std::string& description) {
  if (!p.error.empty()) return "payload_unreadable";
  if (p.has_description) {
    // The caller's description replaced the derived one: the key identifier's tail in
    // /proc/keys must be that of the bytes read.
    auto tail = SkidTail(p.payload);
    // The kernel made a key of the bytes it copied, so bytes read that are no certificate
    // changed after its copy (the caller's buffer reused: a race lost under load).
    if (!tail) return "payload_mismatch";
    if (tail->empty()) return "payload_unverifiable";
    auto shown = ProcKeysDescribeTail(ret, description);
    if (description != p.description || !shown.ok() || shown->rfind(": X509.", 0) != 0 ||
        shown->find(" " + *tail + " ") == std::string::npos) {
      return "payload_mismatch";
    }
  } else {
    auto expected = KernelX509Description(p.payload);
    if (!expected.ok() || *expected != description) {
      // The bytes read are not the certificate the kernel parsed (changed after the copy).
      return "payload_mismatch";
    }
  }
  return "";
}

void KeyWatch::AppendKey(const Pending& p, int64_t ret, const std::string& keyring, int rule_pcr, uint64_t time_ns) {
  const ListConfig& lc = list_->config();
  int pcr = rule_pcr >= 0 ? rule_pcr : lc.pcr;
  auto rec = ima::ImaBufRecord(lc.hash, keyring, p.payload, static_cast<uint32_t>(pcr));
  if (!rec.ok()) {
    if (log_) log_("key " + std::to_string(ret) + ": " + rec.status().message());
    return;
  }
  auto added = list_->Append(*rec);
  if (!added.ok()) {
    if (log_) log_("key " + std::to_string(ret) + " on " + keyring + ": " + added.status().message());
    return;
  }
  if (*added) measured_++;  // else the duplicate table kept it out (the same key on a same-named ring)
  uint64_t now = NowNs();
  delays_.Add(now > time_ns ? (now - time_ns) / 1000 : 0);
}

void KeyWatch::Gap(uint64_t serial, const std::string& keyring, const std::string& description, pid_t tid,
                   const std::string& reason) {
  Status s = list_->AppendBuffer("lim-key-unmeasured", "serial=" + std::to_string(serial) + ";keyring=" + keyring +
                                                           ";description=" + description + ";pid=" +
                                                           std::to_string(tid) + ";reason=" + reason + ";",
                                 /*as_gap=*/true);
  if (s.ok()) gaps_++;
  if (log_) {
    log_("key " + std::to_string(serial) + " (" + description + ") added to " + keyring + " by tid " +
         std::to_string(tid) + ": not measured (" + reason + "), gap entry" + (s.ok() ? "" : " failed: " + s.message()));
  }
}

}  // namespace lim::daemon
