// EvmState: limd's EVM (docs/appraisal.md "EVM in limd") — the check the appraisal asks
// before it trusts security.ima (the kernel's evm_verifyxattr), and the per-run memory that
// lets limd re-compute security.evm after a change the way the kernel does, without ever
// blessing a change it did not see.
//
// Verify: security.evm against the file's protected xattrs, inode, generation, uid, gid,
// mode and filesystem UUID — an HMAC (0x02) with the HMAC key held in locked memory, or a
// signature (0x03, portable 0x05) with the trusted EVM keys — giving the kernel's statuses
// (pass, pass_immutable, fail, fail_immutable, no_label, no_xattrs, unknown). An offline
// change (xattrs, mode or owner edited while limd was not running, a disk moved) fails
// here: limd has no memory of that file in this run.
//
// Online changes (chmod, chown, setxattr by root while limd runs) arrive from AttribWatch
// (Changed). The kernel checks the current HMAC before such a change and re-computes it
// after; limd re-computes and writes the HMAC only for a file whose previous state it
// verified in this run (pass, or nothing protected) on a watched filesystem, with every
// change since seen — and only while security.evm itself is the value limd verified or
// wrote (a security.evm written by someone else is judged as written, as the kernel keeps a
// user-written EVM signature). Anything else stays failed, never blessed. As in the
// kernel, a good 0x03 signature is replaced by an HMAC at its first verification when the
// HMAC key is loaded; a portable 0x05 signature is never rewritten. A queue overflow in
// AttribWatch (changes unseen) forgets every verified file.
//
// Overlayfs (SetHmacUnsupported): limd writes no HMAC there, as the kernel, which sets
// SB_I_EVM_HMAC_UNSUPPORTED on overlay superblocks — a layer's file can be changed on the
// layer's own filesystem, with no event on the overlay file, so no change seen there is
// known to be the only one. Verification is unchanged: an HMAC or signature that no longer
// matches fails; nothing is re-blessed or replaced.
//
// limd's own security.ima writes (fix mode, a last writer's close) are the kernel's
// evm_inode_post_setxattr: ImaXattrUpdated re-computes the HMAC for a verified file, or
// for a file with nothing else protected and no security.evm (a new file).
//
// Threading: Verify/ImaXattrUpdated run on several worker threads at once (one inode at a
// time: the Measurer serialises an inode's decisions); Changed/Overflowed on AttribWatch's
// thread. One mutex over the table, not held across file I/O or crypto.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/public_key.h"
#include "crypto/secret_bytes.h"
#include "daemon/appraiser.h"
#include "daemon/attrib_watch.h"
#include "ima/appraise.h"
#include "ima/evm.h"
#include "tpm/tpm.h"

namespace lim::daemon {

// The kernel's evm_initialized bits (security/integrity/evm/evm.h), shown by the view's
// `evm` file.
inline constexpr uint32_t kEvmInitHmac = 0x0001;
inline constexpr uint32_t kEvmInitX509 = 0x0002;
inline constexpr uint32_t kEvmSetupComplete = 0x80000000;

// The EVM HMAC key as limd loads it (--evm-key FILE or --evm-key-sealed FILE, exclusive):
// straight into locked memory, never written anywhere in clear. A sealed key needs the TPM
// it was sealed to (tpm: limd's). Neither given: an empty SecretBytes.
Result<SecretBytes> LoadEvmKey(const std::string& key_file, const std::string& sealed_file, tpm::Tpm* tpm);

class EvmState {
 public:
  // hmac_key: empty when none (HMACs are then `unknown`). keys: trusted EVM certificates
  // (may be null or empty), kept by the caller. watch: null when online changes are not
  // watched (then nothing is ever re-blessed). fsuuid: hash the filesystem UUID
  // (CONFIG_EVM_ATTR_FSUUID, the kernel's default).
  EvmState(SecretBytes hmac_key, const std::vector<PublicKey>* keys, bool fsuuid = true);

  void set_watch(AttribWatch* watch) { watch_ = watch; }
  // The HMAC key, when it can only be had after construction (sealed: after the TPM is
  // open). Before any Verify.
  void SetHmacKey(SecretBytes key);
  // EVM initialised (the kernel's evm_initialized != 0): an HMAC key or EVM keys.
  bool enabled() const { return init_flags_ != 0; }
  uint32_t init_flags() const { return init_flags_; }
  bool has_hmac_key() const { return !hmac_key_.empty(); }

  // EVM's verdict on the file open at fd (on device dev), with security.ima and
  // security.evm as the caller read them (nullopt: absent).
  ima::EvmVerdict Verify(int fd, uint64_t dev, const std::optional<Bytes>& ima, const std::optional<Bytes>& evm);
  // limd wrote security.ima of the file open at fd.
  void ImaXattrUpdated(int fd, uint64_t dev);

  // The appraisal's seam (appraiser.h): an EvmCheck that forwards to this EvmState, which
  // must outlive it (limd owns the EvmState; the Appraiser owns the check).
  std::unique_ptr<EvmCheck> AsCheck();

  // The kernel's securityfs evm_xattrs (CONFIG_EVM_ADD_XATTRS, ima::EvmXattrList): a name
  // added at run time is hashed from the next decision on, after the default names (a
  // default that was off is enabled in its place). A file verified before keeps its entry:
  // its next verification hashes the new name too, as in the kernel, where an HMAC made
  // without it then fails.
  ima::EvmXattrList::AddResult AddXattr(std::string_view name);
  std::string XattrsText() const;
  std::vector<std::string> Xattrs() const;

  // dev (an overlayfs superblock) gets no HMAC written by limd (above).
  void SetHmacUnsupported(uint64_t dev);
  bool HmacUnsupported(uint64_t dev) const;

  // From AttribWatch.
  void Changed(const std::string& key);
  void Overflowed();

  struct Counts {
    std::atomic<uint64_t> verified{0}, failed{0}, rewritten{0}, signatures_replaced{0}, refused{0}, write_errors{0},
        forgotten{0};
  };
  const Counts& counts() const { return counts_; }
  size_t tracked() const;
  // The most files remembered as verified; past it the table is cleared (a later change
  // of a forgotten file fails instead of being re-blessed: the safe direction).
  static constexpr size_t kMaxTracked = 1 << 16;

 private:
  struct Entry {
    bool changed = false;       // a change was seen since it was verified
    std::optional<Bytes> evm;   // security.evm as verified or written by limd
  };
  // The EVM inputs of fd with the caller's security.ima (one decision, one view) and the
  // superblock's UUID (FS_IOC_GETFSUUID; zeros where the filesystem has none, as the
  // kernel's s_uuid).
  Result<ima::EvmInputs> Inputs(int fd, const std::optional<Bytes>& ima) const;
  ima::EvmVerdict Check(const ima::EvmInputs& in, const std::optional<Bytes>& evm) const;
  // Computes the HMAC over in and writes security.evm = 0x02 ‖ HMAC; the value written.
  Result<Bytes> WriteHmac(int fd, const ima::EvmInputs& in);
  void Remember(const std::optional<std::string>& key, std::optional<Bytes> evm);

  SecretBytes hmac_key_;
  const std::vector<PublicKey>* keys_;
  const bool fsuuid_;
  uint32_t init_flags_ = 0;
  AttribWatch* watch_ = nullptr;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> table_;  // AttribWatch::Key → entry
  std::unordered_set<uint64_t> no_hmac_devs_;     // overlayfs superblocks
  ima::EvmXattrList xattrs_;
  Counts counts_;
};

}  // namespace lim::daemon
