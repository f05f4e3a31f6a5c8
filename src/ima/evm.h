// EVM (kernel-ima.md §11): the message the kernel HMACs or signs to protect a file's
// security xattrs and metadata, and the security.evm formats. Message M = the present
// protected xattr values, in the kernel's order and without names or lengths ‖ h_misc
// (ino, generation, uid, gid, mode; native layout of a 64-bit kernel, 24 bytes) ‖ the
// filesystem's 16-byte UUID. Portable signatures (0x05) zero ino and generation and omit
// the UUID. HMAC (0x02) is HMAC-SHA1 keyed with the 128-byte zero-padded key buffer.
// Stateless functions plus ReadEvmInputs, which reads one open file; thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "ima/ima_signature.h"

namespace lim::ima {

inline constexpr const char kEvmXattrName[] = "security.evm";
// MAX_KEY_SIZE of the kernel's evm-key: the HMAC key buffer is always this long.
inline constexpr size_t kEvmMaxKeySize = 128;

using FsUuid = std::array<uint8_t, 16>;

// The protected xattr names in hashing order. HMACs and non-portable signatures use the
// names a distribution kernel enables (SELinux, SMACK64, AppArmor, IMA, capability — also
// evmctl's default list); portable signatures use every name the kernel knows, including
// SMACK64EXEC, SMACK64TRANSMUTE and SMACK64MMAP.
const std::vector<std::string_view>& EvmXattrNames(bool portable);

// The kernel's run-time list of protected names (evm_config_xattrnames with
// CONFIG_EVM_ADD_XATTRS, written through securityfs evm_xattrs): the defaults in their
// order, enabled as EvmXattrNames(false), then each name added at run time at the end, in
// the order added — the order the HMAC and signatures hash them in. Names are only added,
// never removed. Not thread-safe (EvmState holds it under its mutex).
class EvmXattrList {
 public:
  EvmXattrList();
  enum class AddResult {
    kAdded,        // a new name, appended
    kEnabled,      // a default name that was not enabled (SMACK64EXEC…): enabled in place
    kExists,       // enabled already (the kernel's EEXIST)
    kNotSecurity,  // no "security." prefix (the kernel's EINVAL)
  };
  // evm_write_xattrs's rules for one name (a trailing newline already removed).
  AddResult Add(std::string_view name);
  // The enabled names in hashing order.
  std::vector<std::string> Enabled() const;
  // What reading evm_xattrs shows: each enabled name and "\n".
  std::string Text() const;

 private:
  struct Entry {
    std::string name;
    bool enabled;
  };
  std::vector<Entry> entries_;
};

struct EvmInputs {
  // Protected xattrs present on the file (name, value); order does not matter.
  std::vector<std::pair<std::string, Bytes>> xattrs;
  uint64_t ino = 0;
  uint32_t generation = 0;
  uint32_t uid = 0, gid = 0;  // as seen from the initial user namespace
  uint16_t mode = 0;          // full st_mode, file type included
  std::optional<FsUuid> fsuuid;  // none: not hashed (CONFIG_EVM_ATTR_FSUUID off, evmctl --uuid=)
  // The protected names of HMACs and non-portable signatures in hashing order
  // (EvmXattrList::Enabled()); empty: EvmXattrNames(false). Portable signatures hash
  // EvmXattrNames(true), then the names here that list lacks, in this order.
  std::vector<std::string> names;

  const Bytes* Xattr(std::string_view name) const;
};

// The protected names hashed for in, in order (see EvmInputs::names).
std::vector<std::string_view> ProtectedNames(const EvmInputs& in, bool portable);

// The hashed message. Fails with NotFound when no protected xattr is present (the kernel's
// INTEGRITY_NOXATTRS) and, for portable signatures, when security.ima is missing.
Result<Bytes> EvmMessage(const EvmInputs& in, bool portable);
// HMAC-SHA1 over the message (20 bytes); key at most kEvmMaxKeySize bytes.
Result<Bytes> EvmHmac(ByteView key, const EvmInputs& in);
// H(message) for EVM signatures (0x03 non-portable, 0x05 portable).
Result<Bytes> EvmDigest(const HashAlgo& algo, const EvmInputs& in, bool portable);

struct EvmXattr {
  uint8_t type = 0;  // kEvmXattrHmac, kXattrDigsig or kEvmXattrPortableDigsig
  ByteView hmac;     // 0x02: the 20-byte HMAC
  SignatureV2 sig;   // 0x03 / 0x05
};
// Errors name the problem and start with "security.evm: ".
Result<EvmXattr> ParseEvmXattr(ByteView value);

// Reads the protected xattrs, inode number, generation (FS_IOC_GETVERSION; 0 where the
// filesystem has none), owner and mode of an open file. fsuuid is left empty; names is
// set to names, whose xattrs are read beside EvmXattrNames(true).
Result<EvmInputs> ReadEvmInputs(int fd, const std::string& what, const std::vector<std::string>& names = {});

// "0f1e2d3c-…" (36 characters, either case) to bytes in text order.
Result<FsUuid> ParseFsUuid(std::string_view text);
std::string FormatFsUuid(const FsUuid& u);
// The mount of a device number from /proc/self/mountinfo: filesystem type and source.
struct DeviceMount {
  std::string type;
  std::string source;
};
Result<DeviceMount> MountOfDevice(dev_t dev);

// The UUID the kernel keeps in the superblock of the filesystem holding dev, for
// filesystems whose superblock lim can read: ext2/3/4 (the mount's block device is read;
// needs root). Others: Unsupported, naming the filesystem (give the UUID by hand).
Result<FsUuid> FilesystemUuid(dev_t dev);

}  // namespace lim::ima
