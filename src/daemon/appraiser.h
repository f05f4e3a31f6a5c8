// Appraiser: the appraisal decision limd takes for one file at an open, exec or mmap event
// whose policy says `appraise` — the kernel's ima_appraise_measurement() in user space
// (docs/appraisal.md, "limd"). It reads security.ima and security.evm through the event's
// fd with bounded reads (a hostile value is a named audit cause, never a crash), asks the
// EVM check (EvmCheck, below) before trusting security.ima, then decides with the pure
// code of src/ima (ima::AppraiseValues: digest compare, v2/v3 signature with the trusted
// keys, appraise_algos) and lim's digest denylist. What the answer is (deny under enforce,
// record under log, write a digest xattr under fix) follows from the mode; the Measurer
// caches the outcome with the measurement and answers.
//
// The EVM seam: EvmCheck is what the appraisal asks about security.evm. The default
// (MakeSignatureEvmCheck) verifies EVM signatures (0x03, portable 0x05) with the given
// certificates and has no HMAC key (HMACs are `unknown`, as in a kernel with only EVM x509
// keys); with no certificate it is not initialised (the kernel's evm_initialized == 0:
// EVM answers INTEGRITY_UNKNOWN and IMA goes on). limd's EVM work (HMAC key, attribute
// watch, per-run verified inodes) plugs in its own EvmCheck.
//
// Threading: Appraise() and the EvmCheck are called from several worker threads at once
// (different inodes; one inode at a time under the Measurer's per-inode turn); the
// Appraiser is immutable after construction.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "crypto/public_key.h"
#include "daemon/env.h"
#include "ima/appraise.h"

namespace lim::daemon {

// The kernel's ima_appraise= modes. kOff: no appraisal at all (limd's default, measure
// only). kLog: appraise, record failures, allow. kEnforce: deny a failed access with
// FAN_DENY (the caller sees EPERM). kFix: appraise, write a missing or wrong digest xattr
// (never over a signature), allow.
enum class AppraiseMode : uint8_t { kOff, kLog, kEnforce, kFix };
Result<AppraiseMode> ParseAppraiseMode(std::string_view name);
std::string_view AppraiseModeName(AppraiseMode mode);

// The security xattrs of one file, each read once and bounded (ima::kMaxImaXattrSize).
struct FileXattrs {
  std::optional<Bytes> ima;  // security.ima; nullopt: absent (or no xattr support)
  std::optional<Bytes> evm;  // security.evm
  Status ima_status;         // not ok: security.ima could not be read (oversized, I/O)
  Status evm_status;
};
// Reads both through fd (fgetxattr; never a reopen by path).
FileXattrs ReadFileXattrs(int fd, const std::string& what);

// The EVM check the appraisal asks before it trusts security.ima (evm_verifyxattr).
class EvmCheck {
 public:
  virtual ~EvmCheck() = default;
  // Whether EVM is initialised (keys or an HMAC key loaded). When false Verify() is not
  // called and the appraisal goes on as the kernel's does on INTEGRITY_UNKNOWN.
  virtual bool enabled() const = 0;
  // EVM's verdict on the file open at fd (read with pread/fgetxattr/ioctl only, never
  // reopened: limd may not open files on a watched filesystem): status is one of the
  // kernel's names (pass, pass_immutable, fail, fail_immutable, no_label, no_xattrs,
  // unknown) — ima::VerifyEvm's. facts: the event's fstat (owner, mode, inode, fsuuid as
  // FS_IOC_GETFSUUID gives it). xattrs: security.ima and security.evm as the appraisal
  // read them (use these values, not a second read: one decision, one view of the file).
  virtual ima::EvmVerdict Verify(int fd, const FileFacts& facts, const FileXattrs& xattrs) = 0;
  // limd rewrote security.ima (fix mode, or a last writer's close: IMA_UPDATE_XATTR), the
  // kernel's evm_inode_post_setxattr: an EVM that holds an HMAC key re-computes
  // security.evm here when the file's previous state verified. Default: nothing.
  virtual void ImaXattrUpdated(int fd, const FileFacts& facts) {
    (void)fd;
    (void)facts;
  }
};

// The default EVM check: signatures with `keys` (kept by the caller, alive as long as the
// check), no HMAC key. Enabled iff keys is non-empty. The filesystem UUID hashed into 0x03
// signatures is FileFacts::fsuuid (the superblock's s_uuid, zeros where it has none).
std::unique_ptr<EvmCheck> MakeSignatureEvmCheck(const std::vector<PublicKey>* keys);

// lim's own addition: file digests that are never allowed whatever security.ima says.
// A text file, one digest a line: `ALGO:HEX` (sha256:…) or bare HEX (sha256, or whichever
// algorithm has that length when only one does); `#` comments and blank lines ignored.
class DigestDenylist {
 public:
  static Result<DigestDenylist> Load(const std::string& path);
  static Result<DigestDenylist> Parse(std::string_view text, const std::string& source);
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // The algorithms digests are listed in (each costs a hash of an appraised file whose
  // measurement used another).
  const std::vector<HashAlgo>& algos() const { return algos_; }
  bool Contains(const HashAlgo& algo, ByteView digest) const;

 private:
  std::vector<std::pair<int, Bytes>> entries_;  // (kernel hash id, digest), sorted
  std::vector<HashAlgo> algos_;
};

// What one appraisal found. The Measurer caches it with the measurement.
struct AppraiseOutcome {
  bool pass = false;
  std::string cause;   // the kernel's audit cause on failure ("invalid-signature", …)
  std::string detail;  // what was checked or what failed
  std::string form;    // what security.ima held
  std::string key;     // the key that verified or was expected
  // security.ima is a signature (0x03 / 0x06, IMA_DIGSIG): the file is immutable — a
  // write-open is denied under enforce, and no digest is ever written over it.
  bool signature = false;
  bool new_file = false;  // no security.ima on a file its opener created (IMA_NEW_FILE)
  bool fixed = false;     // fix mode wrote a digest xattr
  // The security.ima value that was checked (an ima-sig entry's `sig` field), if any.
  std::optional<Bytes> ima_xattr;
};

// The content digests the appraisal may need, computed once by the caller (the Measurer
// hashes the file once for measurement and appraisal): the file's digest in an algorithm.
using DigestSource = std::function<Result<Bytes>(const HashAlgo& algo)>;

struct AppraiserConfig {
  AppraiseMode mode = AppraiseMode::kOff;
  HashAlgo fix_hash = Sha256Algo();  // ima_hash: the digest fix mode and writer closes write
};

class Appraiser {
 public:
  // ima_keys: the trusted keys for security.ima signatures (the kernel's .ima keyring).
  // evm: null means an EVM check that is never initialised.
  Appraiser(const AppraiserConfig& config, std::vector<PublicKey> ima_keys, DigestDenylist denylist,
            std::unique_ptr<EvmCheck> evm);

  AppraiseMode mode() const { return config_.mode; }
  bool enforce() const { return config_.mode == AppraiseMode::kEnforce; }
  const std::vector<PublicKey>& keys() const { return ima_keys_; }
  EvmCheck* evm() const { return evm_.get(); }

  // The decision for the file open at fd under a rule demanding req. xattrs: as
  // ReadFileXattrs read them. created: the opener may have created the file (O_CREAT on
  // an empty file without security.ima: the kernel's FMODE_CREATED, see docs). digest:
  // the file's content digest (the Measurer's cached one when the algorithm matches).
  // In fix mode a failure that is not about a signature writes the digest xattr (with the
  // xattr's algorithm, else fix_hash) and passes.
  AppraiseOutcome Appraise(int fd, const FileFacts& facts, const std::string& path, const ima::AppraiseRequirements& req,
                           const FileXattrs& xattrs, bool created, const DigestSource& digest) const;

  // IMA_UPDATE_XATTR at the last writer's close: writes security.ima = the digest of the
  // file's content now (fix_hash, or the algorithm security.ima names) unless it holds a
  // signature (and not when it already holds that digest). digest: the content now.
  // Returns whether it wrote.
  Result<bool> UpdateXattr(int fd, const FileFacts& facts, const std::string& path, const DigestSource& digest) const;

 private:
  AppraiserConfig config_;
  std::vector<PublicKey> ima_keys_;
  DigestDenylist denylist_;
  std::unique_ptr<EvmCheck> evm_;
};

// limd's start: the appraiser its flags ask for (null for --appraise off). keys_dir: a
// missing directory is an error when given explicitly; the default one (kDefaultKeyDir)
// missing trusts no key and says so in *notes, as files without a certificate do.
// denylist: a path, or empty for none. evm: the EVM check (null: EVM not initialised).
struct AppraiserSettings {
  std::string mode = "off";
  std::string keys_dir;
  bool keys_explicit = false;
  std::string denylist;
  HashAlgo fix_hash = Sha256Algo();
  std::unique_ptr<EvmCheck> evm;
};
Result<std::unique_ptr<Appraiser>> LoadAppraiser(AppraiserSettings s, std::vector<std::string>* notes);

// The kernel's audit line for an appraisal failure, fields in integrity_audit_msg's order
// without auid/ses/subj: `pid=… uid=… op=appraise_data cause=… comm="…" name="…" ino=…
// res=0 errno=0` (res=0: the kernel's result for a failed appraisal).
std::string AppraiseAuditLine(pid_t pid, uint32_t uid, const std::string& comm, const std::string& path, uint64_t ino,
                              const AppraiseOutcome& o, std::string_view op = "appraise_data");

}  // namespace lim::daemon
