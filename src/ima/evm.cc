#include "ima/evm.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/hmac.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/bytes.h"
#include "base/mountinfo.h"
#include "crypto/digest.h"
#include "ima/ima_xattr.h"

namespace lim::ima {

namespace {

// evm_config_default_xattrnames, in order.
constexpr std::string_view kSelinux = "security.selinux";
constexpr std::string_view kSmack = "security.SMACK64";
constexpr std::string_view kSmackExec = "security.SMACK64EXEC";
constexpr std::string_view kSmackTransmute = "security.SMACK64TRANSMUTE";
constexpr std::string_view kSmackMmap = "security.SMACK64MMAP";
constexpr std::string_view kApparmor = "security.apparmor";
constexpr std::string_view kIma = "security.ima";
constexpr std::string_view kCapability = "security.capability";

// struct h_misc of a 64-bit kernel: unsigned long ino; u32 generation; uid_t uid; gid_t
// gid; umode_t mode; two bytes of padding, zeroed.
constexpr size_t kMiscSize = 24;

// The largest protected xattr value read (capability is 24 bytes, LSM labels are short,
// security.ima at most kMaxImaXattrSize).
constexpr size_t kMaxProtectedXattr = 4096;

}  // namespace

const std::vector<std::string_view>& EvmXattrNames(bool portable) {
  static const std::vector<std::string_view> enabled = {kSelinux, kSmack, kApparmor, kIma, kCapability};
  static const std::vector<std::string_view> all = {kSelinux,   kSmack, kSmackExec,  kSmackTransmute,
                                                    kSmackMmap, kApparmor, kIma, kCapability};
  return portable ? all : enabled;
}

EvmXattrList::EvmXattrList() {
  const auto& enabled = EvmXattrNames(false);
  for (std::string_view n : EvmXattrNames(true)) {
    entries_.push_back({std::string(n), std::find(enabled.begin(), enabled.end(), n) != enabled.end()});
  }
}

EvmXattrList::AddResult EvmXattrList::Add(std::string_view name) {
  if (!name.starts_with("security.")) return AddResult::kNotSecurity;
  for (Entry& e : entries_) {
    if (e.name != name) continue;
    if (e.enabled) return AddResult::kExists;
    e.enabled = true;  // in its place in the list, not at the end
    return AddResult::kEnabled;
  }
  entries_.push_back({std::string(name), true});
  return AddResult::kAdded;
}

std::vector<std::string> EvmXattrList::Enabled() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) {
    if (e.enabled) out.push_back(e.name);
  }
  return out;
}

std::string EvmXattrList::Text() const {
  std::string out;
  for (const Entry& e : entries_) {
    if (e.enabled) out += e.name + "\n";
  }
  return out;
}

std::vector<std::string_view> ProtectedNames(const EvmInputs& in, bool portable) {
  if (!portable) {
    if (in.names.empty()) return EvmXattrNames(false);
    return std::vector<std::string_view>(in.names.begin(), in.names.end());
  }
  std::vector<std::string_view> out = EvmXattrNames(true);
  for (const std::string& n : in.names) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

const Bytes* EvmInputs::Xattr(std::string_view name) const {
  for (const auto& [n, v] : xattrs) {
    if (n == name) return &v;
  }
  return nullptr;
}

Result<Bytes> EvmMessage(const EvmInputs& in, bool portable) {
  Bytes m;
  bool any = false;
  for (std::string_view name : ProtectedNames(in, portable)) {
    const Bytes* v = in.Xattr(name);
    if (!v) continue;
    any = true;
    m.insert(m.end(), v->begin(), v->end());
  }
  if (!any) return Status::NotFound("no EVM-protected xattr is present (no_xattrs)");
  if (portable && !in.Xattr(kIma)) return Status::NotFound("a portable EVM signature needs security.ima");
  uint8_t misc[kMiscSize] = {};
  uint64_t ino = portable ? 0 : in.ino;
  uint32_t gen = portable ? 0 : in.generation;
  std::memcpy(misc + 0, &ino, 8);
  std::memcpy(misc + 8, &gen, 4);
  std::memcpy(misc + 12, &in.uid, 4);
  std::memcpy(misc + 16, &in.gid, 4);
  std::memcpy(misc + 20, &in.mode, 2);
  m.insert(m.end(), misc, misc + kMiscSize);
  if (!portable && in.fsuuid) m.insert(m.end(), in.fsuuid->begin(), in.fsuuid->end());
  return m;
}

Result<Bytes> EvmHmac(ByteView key, const EvmInputs& in) {
  if (key.empty() || key.size() > kEvmMaxKeySize) {
    return Status::InvalidArgument("EVM HMAC key of " + std::to_string(key.size()) + " bytes (1 to 128)");
  }
  LIM_ASSIGN_OR_RETURN(Bytes m, EvmMessage(in, /*portable=*/false));
  // The kernel copies the key into a zeroed MAX_KEY_SIZE buffer and keys the HMAC with all
  // of it (evm_init_key / init_desc).
  uint8_t buf[kEvmMaxKeySize] = {};
  std::memcpy(buf, key.data(), key.size());
  Bytes out(20);
  unsigned int len = 0;
  const unsigned char* ok = HMAC(EVP_sha1(), buf, sizeof buf, m.data(), m.size(), out.data(), &len);
  OPENSSL_cleanse(buf, sizeof buf);
  if (!ok || len != out.size()) return Status::Internal("HMAC-SHA1 failed");
  return out;
}

Result<Bytes> EvmDigest(const HashAlgo& algo, const EvmInputs& in, bool portable) {
  LIM_ASSIGN_OR_RETURN(Bytes m, EvmMessage(in, portable));
  return Digest(algo, m);
}

Result<EvmXattr> ParseEvmXattr(ByteView value) {
  auto bad = [](const std::string& what) { return Status::Corrupt(std::string(kEvmXattrName) + ": " + what); };
  if (value.empty()) return bad("empty value");
  if (value.size() > kMaxImaXattrSize) return bad(std::to_string(value.size()) + " bytes, more than any HMAC or signature");
  EvmXattr x;
  x.type = value[0];
  switch (x.type) {
    case kEvmXattrHmac:
      // evm_verify_hmac: an HMAC value must be exactly 1 + SHA1 bytes.
      if (value.size() != 21) return bad("HMAC (0x02) of " + std::to_string(value.size() - 1) + " bytes, must be 20");
      x.hmac = value.subspan(1);
      return x;
    case kXattrDigsig:
    case kEvmXattrPortableDigsig: {
      auto sig = ParseSignatureV2(value);
      if (!sig.ok()) return bad(sig.status().message());
      if (sig->version != 2) return bad("signature version " + std::to_string(sig->version) + ", must be 2");
      x.sig = *sig;
      return x;
    }
    default: {
      char t[8];
      std::snprintf(t, sizeof t, "0x%02x", x.type);
      return bad(std::string("unknown type ") + t);
    }
  }
}

Result<EvmInputs> ReadEvmInputs(int fd, const std::string& what, const std::vector<std::string>& names) {
  EvmInputs in;
  in.names = names;
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IoError(what + ": fstat: " + std::strerror(errno));
  in.ino = st.st_ino;
  in.uid = st.st_uid;
  in.gid = st.st_gid;
  in.mode = static_cast<uint16_t>(st.st_mode);
  int gen = 0;
  if (ioctl(fd, FS_IOC_GETVERSION, &gen) == 0) in.generation = static_cast<uint32_t>(gen);
  Bytes buf(kMaxProtectedXattr);
  // Every name a message may hash: the portable list and the names added at run time.
  for (std::string_view name : ProtectedNames(in, /*portable=*/true)) {
    std::string n(name);
    ssize_t r = fgetxattr(fd, n.c_str(), buf.data(), buf.size());
    if (r < 0) {
      if (errno == ENODATA || errno == ENOTSUP) continue;
      if (errno == ERANGE) return Status::Corrupt(what + ": " + n + " is larger than " + std::to_string(buf.size()) + " bytes");
      return Status::IoError(what + ": getxattr " + n + ": " + std::strerror(errno));
    }
    in.xattrs.emplace_back(n, Bytes(buf.begin(), buf.begin() + r));
  }
  return in;
}

Result<FsUuid> ParseFsUuid(std::string_view text) {
  std::string hex;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23)) continue;
    hex += text[i];
  }
  auto b = FromHex(hex);
  if (text.size() != 36 || !b.ok() || b->size() != 16) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a UUID (8-4-4-4-12 hex digits)");
  }
  FsUuid u;
  std::memcpy(u.data(), b->data(), 16);
  return u;
}

std::string FormatFsUuid(const FsUuid& u) {
  std::string h = ToHex(u);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

Result<DeviceMount> MountOfDevice(dev_t dev) {
  LIM_ASSIGN_OR_RETURN(std::vector<MountinfoLine> mounts, ReadMountinfo());
  for (const auto& m : mounts) {
    if (m.dev == dev) return DeviceMount{m.fstype, m.source};
  }
  return Status::NotFound("device " + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) +
                          " is not in /proc/self/mountinfo");
}

Result<FsUuid> FilesystemUuid(dev_t dev) {
  LIM_ASSIGN_OR_RETURN(DeviceMount m, MountOfDevice(dev));
  const std::string& type = m.type;
  const std::string& source = m.source;
  if (type != "ext4" && type != "ext3" && type != "ext2") {
    return Status::Unsupported("cannot read the UUID of a " + type + " filesystem; give it with --uuid");
  }
  int fd = open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(source + ": open: " + std::strerror(errno) + " (give the UUID with --uuid)");
  // ext2/3/4 superblock at byte 1024: s_magic 0xEF53 at +56, s_uuid at +104.
  uint8_t sb[1024];
  ssize_t n = pread(fd, sb, sizeof sb, 1024);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof sb) || sb[56] != 0x53 || sb[57] != 0xef) {
    return Status::Corrupt(source + ": no ext2/3/4 superblock");
  }
  FsUuid u;
  std::memcpy(u.data(), sb + 104, 16);
  return u;
}

}  // namespace lim::ima
