// BootPolicy: measured-boot reference values for the components a firmware event log
// records — keylime's mb_refstate in spirit (S-CRTM, platform firmware, shim, grub, kernels
// with their initrds and command lines, Secure Boot with its keys), in lim's policy form
// (the "boot" object of a native runtime policy, docs/attestation.md "Measured boot").
//
// What is held against what (digests of the policy's bank, sha256 by default):
//   PCR 0  every event whose digest is not the hash of its data (firmware code: S-CRTM
//          contents, firmware blobs, POST code) → "scrtm" ∪ "platform_firmware";
//   PCR 4  every event whose digest is not the hash of its data, in log order — the
//          EV_EFI_BOOT_SERVICES_APPLICATION PE Authenticode hashes — 1st → "shim",
//          2nd → "grub", 3rd and later → "kernel" (positional, as keylime's example policy);
//   PCR 9  GRUB's file measurements whose name says initrd/initramfs → "initrd";
//   PCR 8  GRUB's "kernel_cmdline: …" strings (digest checked) → "kernel_cmdline", Python
//          regular expressions matched in full;
//   PCR 7  EV_EFI_VARIABLE_DRIVER_CONFIG PK, KEK, db, dbx → "pk" "kek" "db" "dbx" (the
//          event digests, which cover the variables' contents); "secure_boot": true requires
//          SecureBoot=1 and PK, KEK, db, dbx present and not empty.
// A list that is present must also be matched: a policy with "kernel" fails a log with no
// third boot application, so relabelling an event's (unmeasured) type or file name cannot
// move a component out of the check. Events are classified by PCR and by whether their
// digest is the hash of their data — both covered by the quote — not by the event type,
// which no digest covers. Only a log that already replayed to the quoted PCRs is checked.
//
// Immutable once built; Check is const and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attest/py_regex.h"
#include "attest/verdict.h"
#include "base/hex.h"
#include "base/status.h"
#include "tcg/event_log.h"

namespace lim::attest {

class BootPolicy {
 public:
  // The component lists, in the order they are written and checked.
  static const std::vector<std::string>& ComponentNames();

  // The "boot" object; errors name the key ("boot.shim[1]: …").
  static Result<BootPolicy> FromJsonText(std::string_view json_object);
  std::string ToJsonText() const;

  // Findings (boot-component, secure-boot) for a parsed log that replayed to the quote.
  std::vector<Finding> Check(const tcg::EventLog& log) const;

  void Allow(const std::string& component, Bytes digest);
  Status AllowKernelCmdline(const std::string& python_regex);
  void set_secure_boot(bool required) { secure_boot_ = required; }
  void set_bank(uint16_t alg) { bank_ = alg; }
  uint16_t bank() const { return bank_; }
  bool secure_boot() const { return secure_boot_; }
  const std::vector<Bytes>& allowed(const std::string& component) const;
  bool empty() const;

 private:
  uint16_t bank_ = 0x000B;  // TPM_ALG_SHA256
  bool secure_boot_ = false;
  std::map<std::string, std::vector<Bytes>> allowed_;
  std::vector<PyRegex> cmdlines_;
};

// The boot part of a policy from a known-good log: every component above with its digest
// in bank (0: sha256 when the log has it, else its first bank), the kernel command lines as
// literal patterns, and secure_boot set when the log shows Secure Boot on with its keys.
// Fails when the log has no digests of that bank.
Result<BootPolicy> LearnBootPolicy(const tcg::EventLog& log, uint16_t bank = 0);

// Python's re.escape: the text as a pattern matching exactly itself.
std::string PyRegexEscape(std::string_view text);

}  // namespace lim::attest
