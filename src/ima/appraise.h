// Appraisal of one file the way the kernel's ima_appraise_measurement() and xattr_verify()
// decide it (kernel-ima.md §10.5, §11): EVM first (when configured), then security.ima —
// a digest compared with the file's content, a v2 signature verified over the content
// digest, a v3 (0x06) signature over the fs-verity digest's ima_file_id — then the rule's
// appraise_algos. A failure carries the kernel's audit cause ("missing-hash",
// "invalid-signature", "invalid-HMAC", …) and which xattr, key and check decided it. Used by
// `lim appraise` now and meant for limd; no daemon state. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/hex.h"
#include "crypto/public_key.h"
#include "ima/evm.h"

namespace lim::ima {

// What the matching appraise rule demands.
struct AppraiseRequirements {
  bool signature_required = false;  // appraise_type=imasig (IMA_DIGSIG_REQUIRED)
  bool verity_required = false;     // digest_type=verity (IMA_VERITY_REQUIRED)
  uint32_t allowed_algos = 0;       // appraise_algos=: bit i = kernel hash id i; 0 = any
};

// EVM as initialised: off unless an HMAC key or EVM signature keys are loaded (the kernel's
// evm_initialized; without either, EVM answers INTEGRITY_UNKNOWN and IMA goes on).
struct EvmConfig {
  bool enabled = false;
  Bytes hmac_key;                                // empty: HMACs cannot be checked (unknown)
  const std::vector<PublicKey>* keys = nullptr;  // for 0x03 / 0x05 signatures
  std::optional<FsUuid> fsuuid;                  // hashed into HMACs and 0x03 signatures
  // Why fsuuid is missing when it could not be found; an HMAC or 0x03 signature then fails
  // with this reason (empty: no UUID is hashed, by choice).
  std::string fsuuid_error;
  // The protected names in hashing order (EvmInputs::names; empty: the defaults).
  std::vector<std::string> names;
};

struct Appraisal {
  bool pass = false;
  std::string cause;       // the kernel's audit cause on failure, empty on success
  std::string xattr;       // the xattr that decided: "security.ima" or "security.evm"
  std::string form;        // what security.ima holds ("0x04 sha256 digest", …), empty if absent
  std::string detail;      // one line on what was checked
  std::string evm_status;  // EVM's verdict (pass, pass_immutable, fail, fail_immutable,
                           // no_label, no_xattrs, unknown); empty when EVM is off
  std::string key;         // the key that verified or was expected: id and origin
  Bytes file_digest;       // the content digest that was compared or verified
  HashAlgo algo{};
};

// fd: the file, open for reading at offset 0 (its content is read); what names it.
// Errors reading the file are returned as failures with cause "read-error".
Appraisal AppraiseFile(int fd, const std::string& what, const AppraiseRequirements& req,
                       const std::vector<PublicKey>& ima_keys, const EvmConfig& evm);

// EVM alone (evm_verify_hmac): the status name and, on failure, why.
struct EvmVerdict {
  std::string status;  // pass, pass_immutable, fail, fail_immutable, no_label, no_xattrs, unknown
  std::string detail;
  std::string key;
};

// The same decision on values already read (limd reads each xattr once per event and
// hashes once for measurement and appraisal). ima: security.ima (nullopt: absent);
// ima_read: not ok when it could not be read (Corrupt: oversized → unknown-ima-data, else
// read-error). evm: EVM's verdict, asked only once security.ima is present (as the
// kernel); empty function: EVM off. digest(algo, verity): the file's content digest, or
// its fs-verity digest when verity is true.
using ContentDigest = std::function<Result<Bytes>(const HashAlgo& algo, bool verity)>;
Appraisal AppraiseValues(const std::optional<Bytes>& ima, const Status& ima_read, const std::function<EvmVerdict()>& evm,
                         const AppraiseRequirements& req, const std::vector<PublicKey>& ima_keys,
                         const ContentDigest& digest);
EvmVerdict VerifyEvm(const std::optional<Bytes>& evm_xattr, const EvmInputs& in, const EvmConfig& evm);

// Reads an xattr of an open file: nullopt when absent (or the filesystem has no xattrs).
Result<std::optional<Bytes>> ReadXattr(int fd, const char* name, size_t max, const std::string& what);

}  // namespace lim::ima
