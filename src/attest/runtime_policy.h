// RuntimePolicy: the reference values a verifier holds a host's measurement list against,
// in lim's native JSON form and keylime's runtime policy JSON (keylime/ima/types.py
// RuntimePolicy, meta.version 1), imported and exported with the whole schema.
//
// What a policy holds: per-path allowed file digests; digests allowed anywhere (lim only:
// keylime has no such list); excludes — keylime's are Python regular expressions matched
// with re.match (anchored at the start, not at the end), so lim compiles them with PCRE2 (a
// Perl/Python-compatible engine: (?P<name>…), (?i), lookarounds mean what Python means; the
// only translation is Python's \Z → PCRE2's \z) and matches anchored at the start; trusted
// public keys for ima-sig entries (keylime's "verification-keys"); keyrings (allowed digests
// of keys measured into a kernel keyring by ima-buf entries) and ima.ignored_keyrings;
// ima-buf expectations (allowed digests per ima-buf name, e.g. kernel_cmdline);
// ima.log_hash_alg; ima.dm_policy (kept and exported as given, and evaluated as keylime does
// when not null: dm_* ima-buf entries go to DmPolicy, dm_policy.h); and measured-boot
// expectations — allowed values of PCRs 0–7 per bank, and "boot", the boot components of
// the firmware log (BootPolicy, boot_policy.h); lim only: keylime keeps those in a separate
// mb_refstate.
//
// Verdict rules (keylime's where keylime decides): an excluded path passes; an ima-sig entry
// that carries a signature, under a policy with keys, is judged by the signature alone (good
// → pass, bad → bad-signature, unknown key → untrusted-key); otherwise the file digest must
// be one allowed for its path, or one allowed anywhere; ima-buf entries whose buffer is an
// X.509 certificate are keys: ignored when their keyring is ignored, else their digest must
// be allowed for the keyring, and then the key is learned and trusted for later ima-sig
// entries (per agent and boot: the caller keeps the learned keys); other ima-buf entries must
// have a digest allowed for their name. Digests compare as bytes: keylime writes them as bare
// hex, lim as "algo:hex"; both are accepted on import.
//
// Package provenance (lim only; `lim policy from-debs|from-dpkg|update`, src/debs): a path may
// name the package that ships it and, per version of that package, the digests it had. A
// policy then keeps several versions' digests per path (the update window) and judges them:
// a digest of the newest version passes; one of an older version the policy still allows is
// the notice old-version (the host still runs the old file — not a failure); a digest of no
// version fails digest-not-allowed with a reinstall hint (attest/remediation.h), and a path no
// package owns fails unknown-file "not owned by any package in the policy". In keylime's form
// every version's digests are in "digests" (keylime allows any of them); the provenance itself
// is lim-only and reported as lost.
//
// A RuntimePolicy is immutable once built; Check is const and thread-safe (PCRE2 match data
// is per call).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "attest/boot_policy.h"
#include "attest/dm_policy.h"
#include "attest/verdict.h"
#include "base/hex.h"
#include "base/status.h"
#include "crypto/public_key.h"
#include "ima/entry.h"

namespace lim::attest {

class ExcludeSet;

// Keys a host loaded into its keyrings through ima-buf entries that the policy allowed.
struct LearnedKeys {
  std::vector<Bytes> certificates;  // DER, as measured
  std::vector<PublicKey> keys;      // parsed from certificates
};

struct PolicyMeta {
  int version = 1;
  std::optional<int> generator;      // keylime's generator id (kept as given)
  std::optional<std::string> timestamp;
  int release = 0;
};

// A package the policy has files of.
struct PackageInfo {
  std::vector<std::string> versions;  // the versions allowed, newest first
  std::string installed;              // the version installed where the policy came from ("": not known)
  std::string source;                 // "deb" (digests from the .deb) or "tofu" (from disk: trust on first use)
};

// The package that ships a path, and the digests each of its versions had there.
struct PathOwner {
  std::string package;
  std::map<std::string, std::vector<std::string>> versions;  // version → raw digests
};

class RuntimePolicy {
 public:
  RuntimePolicy();
  ~RuntimePolicy();
  RuntimePolicy(RuntimePolicy&&) noexcept;
  RuntimePolicy& operator=(RuntimePolicy&&) noexcept;
  RuntimePolicy(const RuntimePolicy&);
  RuntimePolicy& operator=(const RuntimePolicy&);

  // keylime runtime policy JSON. Errors name the key ("digests./usr/bin/x[1]: …").
  static Result<RuntimePolicy> FromKeylimeJson(std::string_view json);
  // lim's native JSON ({"lim_runtime_policy":1,…}, docs/attestation.md).
  static Result<RuntimePolicy> FromNativeJson(std::string_view json);
  // Either form, told apart by its top-level keys.
  static Result<RuntimePolicy> FromJson(std::string_view json);

  // keylime's form, always with "ima" (keylime refuses a policy without it). What keylime
  // cannot express (digests allowed anywhere, measured-boot values) is listed in *lost.
  std::string ToKeylimeJson(std::vector<std::string>* lost = nullptr) const;
  std::string ToNativeJson() const;

  // Building (tests, `lim policy learn`). Digests as raw bytes.
  void AllowPath(const std::string& path, Bytes digest);
  // Room for this many paths before they are added (no rehash while a large policy is built).
  void ReservePaths(size_t paths) { digests_.reserve(paths); }
  void AllowAnywhere(Bytes digest);
  Status AddExclude(const std::string& python_regex);
  void TrustKey(PublicKey key);
  void AllowKeyring(const std::string& keyring, Bytes digest);
  void IgnoreKeyring(const std::string& keyring);
  void AllowImaBuf(const std::string& name, Bytes digest);
  void AllowBootPcr(uint16_t bank, int pcr, Bytes value);
  void set_log_hash_alg(std::string alg) { log_hash_alg_ = std::move(alg); }
  // Package provenance. SetPackage replaces the package's info (versions newest first);
  // AllowPackageFile allows digest for path and records it under package and version (a path
  // another package owned before changes owner; the earlier digests stay allowed).
  void SetPackage(const std::string& name, PackageInfo info);
  void AllowPackageFile(const std::string& path, const std::string& package, const std::string& version,
                        Bytes digest);
  // Forgets version of package: its digests leave every path where no other kept version has
  // them (a path left with no digest leaves the policy), and the version leaves the package.
  void DropPackageVersion(const std::string& package, const std::string& version);
  const std::map<std::string, PackageInfo>& packages() const { return packages_; }
  const std::map<std::string, PathOwner>& owners() const { return owners_; }
  // The allowed digests of path (raw), nullptr when the path is not listed.
  const std::vector<std::string>* PathDigests(const std::string& path) const;
  // Every listed path, sorted (byte order).
  std::vector<std::string> PathNames() const;

  // The verdict on one list entry: nullopt when it passes. A keyring key the policy allows
  // is appended to *learned (when given). learned keys count as trusted for ima-sig.
  // dm: the agent's device-mapper state (dm_policy); null → dm entries are held against
  // "ima-buf" like other buffers.
  std::optional<Finding> Check(const ima::Entry& e, const LearnedKeys& learned, LearnedKeys* learn,
                               DmState* dm = nullptr) const;
  // Measured boot: failures for quoted PCR 0–7 values the policy does not allow (nothing
  // when the policy has no measured-boot expectations for that bank).
  std::vector<Finding> CheckBootPcrs(const std::map<uint16_t, std::map<int, Bytes>>& quoted) const;

  bool Excluded(std::string_view path) const;

  const PolicyMeta& meta() const { return meta_; }
  size_t paths() const { return digests_.size(); }
  size_t anywhere() const { return anywhere_.size(); }
  const std::vector<std::string>& excludes() const { return exclude_sources_; }
  const std::vector<PublicKey>& keys() const { return keys_; }
  const std::string& log_hash_alg() const { return log_hash_alg_; }
  bool has_boot_pcrs() const { return !boot_pcrs_.empty(); }
  // Boot components of the firmware log ("boot"); null when the policy has none.
  const BootPolicy* boot() const { return boot_.get(); }
  void SetBoot(BootPolicy boot);
  // The parsed dm_policy; null when it is null.
  const DmPolicy* dm() const { return dm_.get(); }

 private:
  Status Rebuild();  // compiles excludes_ from exclude_sources_
  std::optional<Finding> CheckFile(const ima::Entry& e, std::string_view path, const std::string& digest,
                                   const LearnedKeys& learned) const;
  // For a digest allowed at path: the old-version notice when it belongs only to versions
  // older than the package's newest; nullopt otherwise.
  std::optional<Finding> CheckVersion(const ima::Entry& e, std::string_view path, const std::string& digest,
                                      const std::string& shown) const;
  std::optional<Finding> CheckBuf(const ima::Entry& e, std::string_view name, const std::string& digest,
                                  const LearnedKeys& learned, LearnedKeys* learn, DmState* dm) const;
  // dm_policy_ from the policy text (key order kept: rule order decides) and compiled.
  Status SetDmPolicyFrom(std::string_view text, bool keylime);

  PolicyMeta meta_;
  // Digests as raw bytes in std::string (hashable); an entry's digest is looked up as is.
  std::unordered_map<std::string, std::vector<std::string>> digests_;
  std::unordered_set<std::string> anywhere_;
  std::vector<std::string> exclude_sources_;
  std::shared_ptr<const ExcludeSet> excludes_;
  std::vector<PublicKey> keys_;
  std::vector<Bytes> key_spki_;  // DER SubjectPublicKeyInfo of keys_, for export
  std::map<std::string, std::vector<std::string>> keyrings_;
  std::set<std::string> ignored_keyrings_;
  std::string log_hash_alg_ = "sha1";
  std::string dm_policy_ = "null";  // JSON text, kept verbatim
  std::map<std::string, std::vector<std::string>> ima_buf_;
  std::map<uint16_t, std::map<int, std::vector<Bytes>>> boot_pcrs_;
  std::map<std::string, PackageInfo> packages_;
  std::map<std::string, PathOwner> owners_;
  std::shared_ptr<const BootPolicy> boot_;
  std::shared_ptr<const DmPolicy> dm_;
};

// A starting policy from a known-good list: every file entry's path with its digest,
// every ima-buf entry's name with its digest, keys from keyring entries allowed.
Result<RuntimePolicy> LearnPolicy(ByteView list, uint64_t* entries = nullptr);

// "sha256:ab…" or "ab…" → raw bytes.
Result<Bytes> ParsePolicyDigest(std::string_view text);

}  // namespace lim::attest
