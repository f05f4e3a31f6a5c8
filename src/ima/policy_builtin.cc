#include "ima/policy_builtin.h"

#include <string>

namespace lim::ima {

namespace {

// include/uapi/linux/magic.h
constexpr uint64_t kProcSuperMagic = 0x9fa0;
constexpr uint64_t kSysfsMagic = 0x62656572;
constexpr uint64_t kDebugfsMagic = 0x64626720;
constexpr uint64_t kTmpfsMagic = 0x01021994;
constexpr uint64_t kRamfsMagic = 0x858458f6;
constexpr uint64_t kDevptsSuperMagic = 0x1cd1;
constexpr uint64_t kBinfmtfsMagic = 0x42494e4d;
constexpr uint64_t kSecurityfsMagic = 0x73636673;
constexpr uint64_t kSelinuxMagic = 0xf97cff8c;
constexpr uint64_t kSmackMagic = 0x43415d53;
constexpr uint64_t kCgroupSuperMagic = 0x27e0eb;
constexpr uint64_t kCgroup2SuperMagic = 0x63677270;
constexpr uint64_t kNsfsMagic = 0x6e736673;
constexpr uint64_t kEfivarfsMagic = 0xde5e81e4;

PolicyRule FsmagicRule(uint32_t act, uint64_t magic) {
  PolicyRule r;
  r.action = act;
  r.fsmagic = magic;
  r.flags = rule_flag::kFsmagic;
  return r;
}

PolicyRule FuncRule(uint32_t act, ImaHook func, uint32_t mask = 0, uint32_t mask_flag = 0) {
  PolicyRule r;
  r.action = act;
  r.func = func;
  r.flags = rule_flag::kFunc | (mask ? mask_flag : 0);
  r.mask = mask;
  return r;
}

// dont_measure_rules[]
void AddDontMeasure(std::vector<PolicyRule>* out) {
  for (uint64_t m : {kProcSuperMagic, kSysfsMagic, kDebugfsMagic, kTmpfsMagic, kDevptsSuperMagic, kBinfmtfsMagic,
                     kSecurityfsMagic, kSelinuxMagic, kSmackMagic, kCgroupSuperMagic, kCgroup2SuperMagic, kNsfsMagic,
                     kEfivarfsMagic}) {
    PolicyRule r = FsmagicRule(action::kDontMeasure, m);
    if (m == kTmpfsMagic) {  // tmpfs is skipped for FILE_CHECK only: executables there are measured
      r.func = ImaHook::kFileCheck;
      r.flags |= rule_flag::kFunc;
    }
    out->push_back(r);
  }
}

PolicyRule RootReadRule(uint32_t mask_flag, uint32_t uid_flag) {
  PolicyRule r = FuncRule(action::kMeasure, ImaHook::kFileCheck, may::kRead, mask_flag);
  r.uid = 0;
  r.flags |= uid_flag;
  return r;
}

// original_measurement_rules[] (ima_tcb)
void AddOriginalTcb(std::vector<PolicyRule>* out) {
  out->push_back(FuncRule(action::kMeasure, ImaHook::kMmapCheck, may::kExec, rule_flag::kMask));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kBprmCheck, may::kExec, rule_flag::kMask));
  out->push_back(RootReadRule(rule_flag::kMask, rule_flag::kUid));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kModuleCheck));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kFirmwareCheck));
}

// default_measurement_rules[] (ima_policy=tcb)
void AddDefaultTcb(std::vector<PolicyRule>* out) {
  out->push_back(FuncRule(action::kMeasure, ImaHook::kMmapCheck, may::kExec, rule_flag::kMask));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kBprmCheck, may::kExec, rule_flag::kMask));
  out->push_back(RootReadRule(rule_flag::kInmask, rule_flag::kEuid));
  out->push_back(RootReadRule(rule_flag::kInmask, rule_flag::kUid));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kModuleCheck));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kFirmwareCheck));
  out->push_back(FuncRule(action::kMeasure, ImaHook::kPolicyCheck));
}

PolicyRule SignedRule(ImaHook func) {
  // Built-in signature rules set only IMA_DIGSIG_REQUIRED (no blacklist bit), unlike a
  // parsed appraise_type=imasig.
  PolicyRule r = FuncRule(action::kAppraise, func);
  r.flags |= rule_flag::kDigsigRequired;
  return r;
}

// secure_boot_rules[]
void AddSecureBoot(std::vector<PolicyRule>* out) {
  for (ImaHook f : {ImaHook::kModuleCheck, ImaHook::kFirmwareCheck, ImaHook::kKexecKernelCheck, ImaHook::kPolicyCheck}) {
    out->push_back(SignedRule(f));
  }
}

// default_appraise_rules[]
void AddAppraiseTcb(std::vector<PolicyRule>* out) {
  for (uint64_t m : {kProcSuperMagic, kSysfsMagic, kDebugfsMagic, kTmpfsMagic, kRamfsMagic, kDevptsSuperMagic,
                     kBinfmtfsMagic, kSecurityfsMagic, kSelinuxMagic, kSmackMagic, kNsfsMagic, kEfivarfsMagic,
                     kCgroupSuperMagic, kCgroup2SuperMagic}) {
    out->push_back(FsmagicRule(action::kDontAppraise, m));
  }
  out->push_back(SignedRule(ImaHook::kPolicyCheck));  // CONFIG_IMA_WRITE_POLICY
  PolicyRule owner;
  owner.action = action::kAppraise;
  owner.fowner = 0;
  owner.flags = rule_flag::kFowner;
  out->push_back(owner);
}

}  // namespace

const std::vector<std::string_view>& BuiltinPolicyNames() {
  static const std::vector<std::string_view> kNames = {"tcb",           "ima_tcb",       "appraise_tcb",
                                                       "ima_appraise_tcb", "secure_boot", "critical_data",
                                                       "fail_securely"};
  return kNames;
}

Result<Policy> BuiltinPolicy(std::string_view name) {
  enum { kNoTcb, kOriginalTcb, kDefaultTcb } tcb = kNoTcb;
  bool appraise_tcb = false, secure_boot = false, critical_data = false, fail_securely = false;
  bool any = false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t sep = name.find_first_of(" |,", start);
    std::string_view p = name.substr(start, sep == std::string_view::npos ? std::string_view::npos : sep - start);
    if (!p.empty()) {
      any = true;
      // As in the kernel, the first of tcb / ima_tcb decides which measurement rules load.
      if (p == "tcb") { if (tcb == kNoTcb) tcb = kDefaultTcb; }
      else if (p == "ima_tcb") { if (tcb == kNoTcb) tcb = kOriginalTcb; }
      else if (p == "appraise_tcb" || p == "ima_appraise_tcb") appraise_tcb = true;
      else if (p == "secure_boot") secure_boot = true;
      else if (p == "critical_data") critical_data = true;
      else if (p == "fail_securely") fail_securely = true;
      else {
        return Status::InvalidArgument("unknown built-in policy '" + std::string(p) +
                                       "' (tcb, ima_tcb, appraise_tcb, secure_boot, critical_data, fail_securely)");
      }
    }
    if (sep == std::string_view::npos) break;
    start = sep + 1;
  }
  if (!any) return Status::InvalidArgument("empty built-in policy name");

  Policy policy;
  policy.source = "builtin:" + std::string(name);
  std::vector<PolicyRule>& rules = policy.rules;
  if (tcb != kNoTcb) AddDontMeasure(&rules);
  if (tcb == kOriginalTcb) AddOriginalTcb(&rules);
  if (tcb == kDefaultTcb) AddDefaultTcb(&rules);
  if (secure_boot) AddSecureBoot(&rules);
  if (appraise_tcb) AddAppraiseTcb(&rules);
  if (critical_data) rules.push_back(FuncRule(action::kMeasure, ImaHook::kCriticalData));
  policy.fail_unverifiable_sigs = fail_securely;
  return policy;
}

}  // namespace lim::ima
