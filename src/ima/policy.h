// IMA policy: the kernel's policy language as data. ParsePolicy() turns policy text into a
// Policy with exactly the kernel's acceptance rules (ima_policy.c: ima_parse_rule,
// ima_validate_rule, ima_check_policy) for the reference configuration (6.18 distro kernel:
// appraisal, modsig, asymmetric-key measurement, read/write policy, SELinux and AppArmor).
// ShowPolicy() prints a Policy byte-for-byte as the kernel prints its securityfs policy file
// (ima_policy_show). Matching lives in policy_match.h, built-in policies in
// policy_builtin.h.
//
// LSM labels (obj_*/subj_*) are treated as labels the running LSM defines: the kernel keeps a
// custom-policy rule whose label the LSM does not know, but never matches it and hides it
// from the policy file; lim cannot ask an LSM, so every label is "active".
//
// Plain values: a Policy is immutable after parsing and may be shared between threads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/hex.h"
#include "base/status.h"

namespace lim::ima {

// enum ima_hooks (ima.h __ima_hooks), same numeric values.
enum class ImaHook : uint8_t {
  kNone = 0,
  kFileCheck,
  kMmapCheck,
  kMmapCheckReqprot,
  kBprmCheck,
  kCredsCheck,
  kPostSetattr,
  kModuleCheck,
  kFirmwareCheck,
  kKexecKernelCheck,
  kKexecInitramfsCheck,
  kPolicyCheck,
  kKexecCmdline,
  kKeyCheck,
  kCriticalData,
  kSetxattrCheck,
};
inline constexpr int kImaHookCount = 16;

// Canonical name as the kernel prints it ("FILE_CHECK"); "NONE" for kNone.
std::string_view ImaHookName(ImaHook hook);
// Accepts what `func=` accepts (incl. PATH_CHECK and FILE_MMAP); with allow_internal also
// POST_SETATTR (a hook, but not a policy keyword).
Result<ImaHook> ImaHookByName(std::string_view name, bool allow_internal = false);

// Rule actions (ima_policy.c), same values as the IMA_* action bits they stand for.
namespace action {
inline constexpr uint32_t kMeasure = 0x0001;
inline constexpr uint32_t kDontMeasure = 0x0002;
inline constexpr uint32_t kAppraise = 0x0004;
inline constexpr uint32_t kDontAppraise = 0x0008;
inline constexpr uint32_t kAudit = 0x0040;
inline constexpr uint32_t kHash = 0x0100;
inline constexpr uint32_t kDontHash = 0x0200;
inline constexpr uint32_t kDoMask = kMeasure | kAppraise | kAudit | kHash;  // IMA_DO_MASK
}  // namespace action
std::string_view ActionName(uint32_t action);

// Rule flags: condition bits (ima_policy.c) and non-action bits (ima.h), kernel values.
namespace rule_flag {
inline constexpr uint32_t kFunc = 0x0001;
inline constexpr uint32_t kMask = 0x0002;
inline constexpr uint32_t kFsmagic = 0x0004;
inline constexpr uint32_t kUid = 0x0008;
inline constexpr uint32_t kFowner = 0x0010;
inline constexpr uint32_t kFsuuid = 0x0020;
inline constexpr uint32_t kInmask = 0x0040;
inline constexpr uint32_t kEuid = 0x0080;
inline constexpr uint32_t kPcr = 0x0100;
inline constexpr uint32_t kFsname = 0x0200;
inline constexpr uint32_t kKeyrings = 0x0400;
inline constexpr uint32_t kLabel = 0x0800;
inline constexpr uint32_t kValidateAlgos = 0x1000;
inline constexpr uint32_t kGid = 0x2000;
inline constexpr uint32_t kEgid = 0x4000;
inline constexpr uint32_t kFgroup = 0x8000;
inline constexpr uint32_t kDigsigRequired = 0x01000000;
inline constexpr uint32_t kPermitDirectio = 0x02000000;
inline constexpr uint32_t kFailUnverifiableSigs = 0x10000000;
inline constexpr uint32_t kModsigAllowed = 0x20000000;
inline constexpr uint32_t kCheckBlacklist = 0x40000000;
inline constexpr uint32_t kVerityRequired = 0x80000000;
inline constexpr uint32_t kNonActionMask = 0xff000000;  // IMA_NONACTION_FLAGS
}  // namespace rule_flag

// MAY_* access bits (include/linux/fs.h).
namespace may {
inline constexpr uint32_t kExec = 0x1;
inline constexpr uint32_t kWrite = 0x2;
inline constexpr uint32_t kRead = 0x4;
inline constexpr uint32_t kAppend = 0x8;

// The mask= names, in the kernel's bit order: the one table parse, show and explain use.
struct BitName {
  uint32_t bit;
  std::string_view name;
};
inline constexpr BitName kNames[] = {{kExec, "MAY_EXEC"}, {kWrite, "MAY_WRITE"}, {kRead, "MAY_READ"}, {kAppend, "MAY_APPEND"}};

// The bits' names joined by '|' ("MAY_EXEC|MAY_READ"), or `none` when no bit is set.
std::string MaskText(uint32_t mask, std::string_view none);
}  // namespace may

enum class CmpOp : uint8_t { kEq, kGt, kLt };

// Index into PolicyRule::lsm, in the kernel's order (enum lsm_rule_types).
enum LsmField : uint8_t { kObjUser, kObjRole, kObjType, kSubjUser, kSubjRole, kSubjType };
inline constexpr int kLsmFieldCount = 6;
std::string_view LsmFieldName(int field);  // "obj_user" …

// One rule, as the kernel stores it (struct ima_rule_entry). Fields are meaningful only
// when the corresponding flag is set.
struct PolicyRule {
  uint32_t action = 0;
  uint32_t flags = 0;
  ImaHook func = ImaHook::kNone;
  uint32_t mask = 0;
  uint64_t fsmagic = 0;
  std::array<uint8_t, 16> fsuuid{};
  uint32_t uid = 0;  // uid= or euid= (one slot, like the kernel)
  uint32_t gid = 0;  // gid= or egid=
  uint32_t fowner = 0;
  uint32_t fgroup = 0;
  CmpOp uid_op = CmpOp::kEq;
  CmpOp gid_op = CmpOp::kEq;
  CmpOp fowner_op = CmpOp::kEq;
  CmpOp fgroup_op = CmpOp::kEq;
  int pcr = 0;
  uint32_t allowed_algos = 0;  // bit i = kernel hash id i
  std::array<std::string, kLsmFieldCount> lsm;  // empty = no condition
  std::string fsname;
  std::vector<std::string> keyrings;
  std::vector<std::string> labels;
  std::string template_name;  // built-in template name, empty = the default template

  int line = 0;  // 1-based source line; 0 for built-in rules

  bool HasLsm() const;
};

// The rule as one line of the kernel's policy file, without the final "\n" (so it ends
// with a space, as the kernel's lines do).
std::string ShowRule(const PolicyRule& rule);

struct Policy {
  std::string source;  // file name, or "builtin:NAME"
  std::string text;    // the exact bytes loaded (what POLICY_CHECK measures); empty for built-ins
  std::vector<PolicyRule> rules;
  bool fail_unverifiable_sigs = false;  // ima_policy=fail_securely

  // The bytes to measure for a policy load (POLICY_CHECK / limd's lim-policy-update entry).
  ByteView loaded_bytes() const {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  }
};

// The kernel's policy file for this policy: ShowRule() + "\n" per rule.
std::string ShowPolicy(const Policy& policy);

struct PolicyDiagnostic {
  int line = 0;    // 1-based
  int column = 0;  // 1-based byte column
  std::string message;
};

struct PolicyParseOutput {
  Policy policy;  // the accepted rules (all rules when errors is empty)
  std::vector<PolicyDiagnostic> errors;    // one per rejected rule (the kernel would refuse the load)
  std::vector<PolicyDiagnostic> warnings;  // accepted, but the kernel notices or ignores something
};

// Parses every line and reports every bad rule (`lim policy check`).
PolicyParseOutput CheckPolicy(std::string_view text, std::string_view source);

// Parses a policy the way a write to the kernel's policy file does: fails on the first bad
// rule with "SOURCE:LINE:COL: message", or when no rule is present.
Result<Policy> ParsePolicy(std::string_view text, std::string_view source);
// The largest policy file read. Real policies are a few KiB (the built-in ones are under 2 KiB,
// a long distribution policy some hundred rules); 4 MiB keeps /dev/zero or a mistaken path
// from eating memory while leaving room for generated policies.
constexpr size_t kMaxPolicyFileSize = 4 << 20;
Result<Policy> LoadPolicyFile(const std::string& path);

// "SOURCE:LINE:COL: message"
std::string FormatDiagnostic(std::string_view source, const PolicyDiagnostic& d);

}  // namespace lim::ima
