// SecurityfsView: the kernel's IMA securityfs files (kernel-ima.md §2.4, §5), served by
// limd over FUSE (libfuse3) at `--securityfs DIR` so tools that read
// /sys/kernel/security/ima/… work unchanged on a kernel without IMA (docs/securityfs.md).
//
//   DIR/ima -> integrity/ima
//   DIR/integrity/ima/{ascii,binary}_runtime_measurements -> …_sha1
//   DIR/integrity/ima/{ascii,binary}_runtime_measurements_<bank>   (sha1 + every TPM bank)
//   DIR/integrity/ima/{runtime_measurements_count,violations,policy}
//   DIR/tpm0/binary_bios_measurements                               (with a boot log)
//   DIR/evm -> integrity/evm/evm: the kernel's evm_initialized flags (EVM_INIT_HMAC 1,
//   EVM_INIT_X509 2) in decimal without a newline, as evm_read_key prints them; limd's
//   EVM is set up at start (the kernel's EVM_SETUP_COMPLETE), so a write is refused
//   with EPERM, as the kernel refuses it once set up
//   DIR/integrity/evm/evm_xattrs: the EVM-protected xattr names (CONFIG_EVM_ADD_XATTRS),
//   one a line; a write adds a security.* name to EvmState's list, "." locks the list
//   (mode 0440 from then on), each write recorded as an INTEGRITY_EVM_XATTR audit line
//   (WriteEvmXattrs)
//
// Every open takes a snapshot of the list's visible length (whole records already in the
// TPM), so a read never shows a torn record while limd appends; sizes are unknown (st_size
// 0, direct_io) as on securityfs; modes are the kernel's and only root gets in (no
// allow_other, default_permissions, and a uid check). The binary sha1 file is the store's
// bytes; the other banks and the ASCII files are rendered from the mapped snapshot while the
// reader reads, per bank as the kernel does (zeros for violations). `policy` reads
// LivePolicy::Show() and writes through a PolicyWriter, committed on the first flush after a
// write.
//
// The FUSE threads never touch a watched filesystem while serving: they read the list
// through an fd opened at start (pread, mmap) and limd's counters. (Loading a policy *file*
// opens that file from a limd thread, which limd's fanotify reader answers at once.)
//
// Threading: Start() runs two FUSE threads; Stop() (or the destructor) ends them and
// unmounts. The MeasurementList and LivePolicy must outlive the view.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "crypto/hash_algo.h"
#include "daemon/live_policy.h"
#include "daemon/measurement_list.h"
#include "ima/entry_renderer.h"
#include "ima/list_reader.h"

struct fuse;

namespace lim::daemon {

// statfs f_type of a FUSE filesystem (the view's, as seen by fanotify's fsmagic).
inline constexpr uint64_t kFuseSuperMagic = 0x65735546;

// The list files the view serves: sha1 first (always), then each allocated TPM bank whose
// digest this process can compute, without duplicates.
std::vector<HashAlgo> ViewBanks(const std::vector<uint16_t>& tpm_banks);

// The kernel's ascii_runtime_measurements_<bank> / binary_runtime_measurements_<bank> for
// the records of a SHA1 binary list (limd's store): template digests in the bank's hash,
// zeros for violations.
Result<std::string> RenderAsciiList(ByteView sha1_list, const HashAlgo& bank);
Result<Bytes> RenderBinaryList(ByteView sha1_list, const HashAlgo& bank);

// The same, one entry at a time (the view renders while a reader reads, so an open file
// holds about one read's worth of output; ima::EntryRenderer renders each entry).
// sha1_list must outlive the renderer.
class ListRenderer {
 public:
  // format: kAscii or kBinary (the view serves no JSON).
  static Result<std::unique_ptr<ListRenderer>> Create(ByteView sha1_list, const HashAlgo& bank, ima::RenderFormat format);
  // Appends the next entry's rendering to *out; false at the end of the list.
  Result<bool> Next(std::string* out);

 private:
  ListRenderer() = default;
  std::unique_ptr<ima::ListReader> reader_;
  std::optional<ima::EntryRenderer> entry_;
};

// One entry of the view's tree.
struct ViewNode {
  enum class Type { kDir, kLink, kFile };
  enum class File { kNone, kAscii, kBinary, kCount, kViolations, kPolicy, kBootLog, kEvm, kEvmXattrs };
  Type type = Type::kDir;
  uint32_t mode = 0;        // permission bits
  std::string target;       // kLink
  File file = File::kNone;  // kFile
  HashAlgo bank{};          // kAscii / kBinary
  std::vector<std::string> children;  // kDir, in listing order
};

// The tree for these banks, keyed by path from the view's root ("/", "/integrity/ima/…").
// evm_xattrs: whether integrity/evm/evm_xattrs is in it.
std::vector<std::pair<std::string, ViewNode>> BuildViewTree(const std::vector<HashAlgo>& banks, bool boot_log,
                                                           bool evm_xattrs = false);

// Makes dir usable as the mount point: creates it (and parents), and lazily unmounts a
// stale FUSE mount a crashed limd left (stat fails with ENOTCONN). A live FUSE mount there
// (another limd's view) is refused.
Status PrepareMountPoint(const std::string& dir, std::string* note);

class EvmState;

// One write(2) of data to evm_xattrs, as the kernel's evm_write_xattrs: EPERM once locked,
// E2BIG past XATTR_NAME_MAX (255) bytes; the name ends at a NUL, one trailing newline is
// dropped; "." locks the list; a name without the "security." prefix is EINVAL, one
// already enabled EEXIST. Returns data.size() or -errno. *audit: the fields of the
// INTEGRITY_EVM_XATTR record (`xattr="NAME" res=N`, the name in upper-case hex when it holds a quote,
// a space or a control character — audit_log_untrustedstring), empty when the kernel logs
// none (EPERM, E2BIG). The write's file offset is not checked: FUSE advances it after each
// write of an open, the kernel's never moves.
int WriteEvmXattrs(EvmState* evm, std::atomic<bool>* locked, std::string_view data, std::string* audit);

struct ViewOptions {
  std::string dir;
  // TCG event log served as tpm0/binary_bios_measurements (read, bounded, by the caller before
  // any state was touched); none: no such file.
  std::optional<Bytes> boot_log;
  // The kernel's evm_initialized (evm_state.h kEvmInit*): what DIR/evm shows.
  uint32_t evm_flags = 0;
  // evm_xattrs' list (limd's EvmState; null: the file is not served) and where its
  // INTEGRITY_EVM_XATTR records go.
  EvmState* evm = nullptr;
  std::function<void(const std::string& fields)> audit;
};

class SecurityfsView {
 public:
  static Result<std::unique_ptr<SecurityfsView>> Start(const ViewOptions& options, MeasurementList* list,
                                                       LivePolicy* policy, std::string* note);
  ~SecurityfsView();
  // Ends the FUSE threads and unmounts (fuse_session_unmount). Idempotent.
  void Stop();
  const std::string& dir() const { return options_.dir; }
  dev_t device() const { return dev_; }

  struct Impl;  // the FUSE callbacks' state (securityfs_view.cc)

 private:
  SecurityfsView() = default;
  ViewOptions options_;
  std::unique_ptr<Impl> impl_;
  struct fuse* fuse_ = nullptr;
  int stop_fd_ = -1;
  dev_t dev_ = 0;
  bool mounted_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace lim::daemon
