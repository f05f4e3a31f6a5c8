#include "ima/policy_match.h"

#include <algorithm>
#include <cstdio>

namespace lim::ima {

uint32_t DefaultMask(ImaHook f) {
  switch (f) {
    case ImaHook::kBprmCheck: case ImaHook::kCredsCheck: case ImaHook::kMmapCheck: case ImaHook::kMmapCheckReqprot:
      return may::kExec;
    case ImaHook::kFileCheck: case ImaHook::kModuleCheck: case ImaHook::kFirmwareCheck:
    case ImaHook::kKexecKernelCheck: case ImaHook::kKexecInitramfsCheck: case ImaHook::kPolicyCheck:
      return may::kRead;
    default:
      return 0;
  }
}


namespace {

inline bool Cmp(CmpOp op, uint32_t have, uint32_t rule) {
  switch (op) {
    case CmpOp::kGt: return have > rule;
    case CmpOp::kLt: return have < rule;
    case CmpOp::kEq: break;
  }
  return have == rule;
}

uint64_t UuidHalf(const std::array<uint8_t, 16>& u, int half) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | u[static_cast<size_t>(half * 8 + i)];
  return v;
}

int ClassOf(uint32_t act) { return static_cast<int>(ClassOfAction(act)); }

constexpr uint32_t kClassBit[kActionClassCount] = {action::kMeasure, action::kAppraise, action::kAudit, action::kHash};

// get_subaction()
uint32_t SubAction(uint32_t rule_flags, ImaHook func) {
  if (!(rule_flags & rule_flag::kFunc)) return appraise_sub::kFile;
  switch (func) {
    case ImaHook::kMmapCheck: case ImaHook::kMmapCheckReqprot: return appraise_sub::kMmap;
    case ImaHook::kBprmCheck: return appraise_sub::kBprm;
    case ImaHook::kCredsCheck: return appraise_sub::kCreds;
    case ImaHook::kFileCheck: case ImaHook::kPostSetattr: return appraise_sub::kFile;
    default: return appraise_sub::kRead;
  }
}

bool IsDataHook(ImaHook f) { return f == ImaHook::kKeyCheck || f == ImaHook::kCriticalData; }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* OpText(CmpOp op) { return op == CmpOp::kGt ? ">" : op == CmpOp::kLt ? "<" : "="; }

std::string MaskText(uint32_t m) { return may::MaskText(m, "0"); }

}  // namespace

ActionClass ClassOfAction(uint32_t act) {
  if (act & (action::kMeasure | action::kDontMeasure)) return ActionClass::kMeasure;
  if (act & (action::kAppraise | action::kDontAppraise)) return ActionClass::kAppraise;
  if (act & action::kAudit) return ActionClass::kAudit;
  return ActionClass::kHash;
}

std::string_view ActionClassName(ActionClass c) {
  switch (c) {
    case ActionClass::kMeasure: return "measure";
    case ActionClass::kAppraise: return "appraise";
    case ActionClass::kAudit: return "audit";
    case ActionClass::kHash: return "hash";
  }
  return "";
}

PolicyMatcher::IdRange PolicyMatcher::MakeRange(CmpOp op, uint32_t v, bool* empty) {
  *empty = false;
  switch (op) {
    case CmpOp::kGt: return {v + 1, 0xffffffffu - (v + 1)};  // v < 0xffffffff (the invalid id)
    case CmpOp::kLt:
      if (v == 0) {
        *empty = true;
        return {1, 0};
      }
      return {0, v - 1};
    case CmpOp::kEq: break;
  }
  return {v, 0};
}

int32_t PolicyMatcher::Intern(const std::string& s) {
  auto [it, inserted] = strings_.try_emplace(s, static_cast<int32_t>(strings_.size()));
  return it->second;
}

int32_t PolicyMatcher::Lookup(std::string_view s) const {
  auto it = strings_.find(s);
  return it == strings_.end() ? -1 : it->second;
}

PolicyMatcher::PolicyMatcher(const Policy& policy)
    : policy_rules_(policy.rules), fail_unverifiable_sigs_(policy.fail_unverifiable_sigs) {
  rules_.reserve(policy_rules_.size());
  extra_.reserve(policy_rules_.size());
  for (size_t i = 0; i < policy_rules_.size(); ++i) {
    const PolicyRule& r = policy_rules_[i];
    Compiled c{};
    Extra x{};
    c.action = r.action;
    c.flags = r.flags;
    c.func = r.func;
    c.mask = r.mask;
    bool empty = false;
    c.uid = MakeRange(r.uid_op, r.uid, &empty);
    c.never_data = empty && (r.flags & (rule_flag::kUid | rule_flag::kEuid));
    bool any_empty = c.never_data;
    c.gid = MakeRange(r.gid_op, r.gid, &empty);
    any_empty |= empty && (r.flags & (rule_flag::kGid | rule_flag::kEgid));
    c.fowner = MakeRange(r.fowner_op, r.fowner, &empty);
    any_empty |= empty && (r.flags & rule_flag::kFowner);
    c.fgroup = MakeRange(r.fgroup_op, r.fgroup, &empty);
    any_empty |= empty && (r.flags & rule_flag::kFgroup);
    c.never_file = any_empty;
    c.fsmagic = r.fsmagic;
    x.uuid_hi = UuidHalf(r.fsuuid, 0);
    x.uuid_lo = UuidHalf(r.fsuuid, 1);
    c.fsname_id = -1;
    if (r.flags & rule_flag::kFsname) {
      c.fsname_id = Intern(r.fsname);
      uses_fsname_ = true;
    }
    c.lsm_present = 0;
    for (int f = 0; f < kLsmFieldCount; ++f) {
      x.lsm_id[f] = -1;
      if (r.lsm[f].empty()) continue;
      c.lsm_present = static_cast<uint8_t>(c.lsm_present | (1u << f));
      x.lsm_id[f] = Intern(r.lsm[f]);
      uses_lsm_ = static_cast<uint8_t>(uses_lsm_ | (1u << f));
    }
    const std::vector<std::string>* list = nullptr;
    if (r.func == ImaHook::kKeyCheck && (r.flags & rule_flag::kKeyrings)) list = &r.keyrings;
    if (r.func == ImaHook::kCriticalData && (r.flags & rule_flag::kLabel)) list = &r.labels;
    x.list_begin = static_cast<uint32_t>(list_ids_.size());
    x.list_count = 0;
    if (list) {
      for (const std::string& item : *list) list_ids_.push_back(Intern(item));
      x.list_count = static_cast<uint32_t>(list->size());
      uses_func_data_ = true;
    }
    x.pcr = r.pcr;
    x.allowed_algos = r.allowed_algos;
    x.template_name = r.template_name.empty() ? nullptr : &r.template_name;
    rules_.push_back(c);
    extra_.push_back(x);

    if (r.func != ImaHook::kSetxattrCheck) policy_actions_ |= r.action & action::kDoMask;
    // A rule is a candidate for the hooks it can match: its own, or every file hook when it
    // has no func= (the buffer hooks KEY_CHECK/CRITICAL_DATA need func= equal).
  }
  for (int h = 1; h < kImaHookCount; ++h) {
    auto hook = static_cast<ImaHook>(h);
    for (size_t i = 0; i < policy_rules_.size(); ++i) {
      const PolicyRule& r = policy_rules_[i];
      bool candidate = hook == ImaHook::kPostSetattr || r.func == hook ||
                       (!(r.flags & rule_flag::kFunc) && !IsDataHook(hook));
      if (candidate) by_hook_[h].push_back(static_cast<uint32_t>(i));
    }
  }
  words_ = (rules_.size() + 63) / 64;
  if (words_ <= kMaxClassifierWords) BuildClassifier();
}

uint32_t PolicyMatcher::NewSet() {
  auto off = static_cast<uint32_t>(pool_.size());
  pool_.resize(pool_.size() + words_, 0);
  return off;
}

namespace {
inline void SetBit(uint64_t* set, size_t i) { set[i / 64] |= uint64_t{1} << (i % 64); }
}  // namespace

void PolicyMatcher::BuildClassifier() {
  using namespace rule_flag;
  classifier_ = true;
  const size_t n = rules_.size();
  all_set_ = NewSet();
  for (size_t i = 0; i < n; ++i) SetBit(Set(all_set_), i);
  for (int h = 1; h < kImaHookCount; ++h) {
    hook_set_[h] = NewSet();
    for (uint32_t i : by_hook_[h]) {
      if (!rules_[i].never_file) SetBit(Set(hook_set_[h]), i);
    }
  }
  for (uint32_t m = 0; m < 32; ++m) {
    mask_set_[m] = NewSet();
    for (size_t i = 0; i < n; ++i) {
      const Compiled& r = rules_[i];
      bool big = m & 16;  // the access mask has bits above MAY_APPEND: no exact mask= equals it
      if ((r.flags & kMask) && (big || r.mask != m)) continue;
      if ((r.flags & kInmask) && !(r.mask & m & 15)) continue;
      SetBit(Set(mask_set_[m]), i);
    }
  }
  BuildKeyed(kDimFsmagic, kFsmagic, -1);
  BuildKeyed(kDimFsname, kFsname, -1);
  BuildKeyed(kDimFsuuid, kFsuuid, -1);
  for (int f = 0; f < kLsmFieldCount; ++f) BuildKeyed(kDimLsm0 + f, 0, f);
  BuildRange(kDimUid, kUid);
  BuildRange(kDimEuid, kEuid);
  BuildRange(kDimGid, kGid);
  BuildRange(kDimEgid, kEgid);
  BuildRange(kDimFowner, kFowner);
  BuildRange(kDimFgroup, kFgroup);
}

void PolicyMatcher::BuildKeyed(int dim, uint32_t cond_flag, int lsm_field) {
  auto has = [&](size_t i) {
    return lsm_field >= 0 ? (rules_[i].lsm_present & (1u << lsm_field)) != 0 : (rules_[i].flags & cond_flag) != 0;
  };
  auto key = [&](size_t i) -> std::pair<uint64_t, uint64_t> {
    if (lsm_field >= 0) return {static_cast<uint64_t>(extra_[i].lsm_id[lsm_field]), 0};
    if (dim == kDimFsmagic) return {rules_[i].fsmagic, 0};
    if (dim == kDimFsname) return {static_cast<uint64_t>(rules_[i].fsname_id), 0};
    return {extra_[i].uuid_hi, extra_[i].uuid_lo};
  };
  KeyedDim& d = keyed_[dim];
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (has(i)) d.keys.push_back(key(i));
  }
  if (d.keys.empty()) return;
  dims_used_ |= 1u << dim;
  std::sort(d.keys.begin(), d.keys.end());
  d.keys.erase(std::unique(d.keys.begin(), d.keys.end()), d.keys.end());
  d.other = NewSet();
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!has(i)) SetBit(Set(d.other), i);
  }
  for (const auto& k : d.keys) {
    uint32_t set = NewSet();
    std::copy(Set(d.other), Set(d.other) + words_, Set(set));
    for (size_t i = 0; i < rules_.size(); ++i) {
      if (has(i) && key(i) == k) SetBit(Set(set), i);
    }
    d.sets.push_back(set);
  }
}

void PolicyMatcher::BuildRange(int dim, uint32_t cond_flag) {
  auto range = [&](size_t i) -> const IdRange& {
    const Compiled& r = rules_[i];
    if (cond_flag & (rule_flag::kUid | rule_flag::kEuid)) return r.uid;
    if (cond_flag & (rule_flag::kGid | rule_flag::kEgid)) return r.gid;
    return cond_flag == rule_flag::kFowner ? r.fowner : r.fgroup;
  };
  RangeDim& d = ranged_[dim];
  d.starts.push_back(0);
  bool used = false;
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!(rules_[i].flags & cond_flag) || rules_[i].never_file) continue;
    used = true;
    const IdRange& r = range(i);
    d.starts.push_back(r.lo);
    d.starts.push_back(uint64_t{r.lo} + r.span + 1);
  }
  if (!used) {
    d.starts.clear();
    return;
  }
  dims_used_ |= 1u << dim;
  std::sort(d.starts.begin(), d.starts.end());
  d.starts.erase(std::unique(d.starts.begin(), d.starts.end()), d.starts.end());
  while (!d.starts.empty() && d.starts.back() > 0xffffffffULL) d.starts.pop_back();
  for (uint64_t start : d.starts) {
    uint32_t set = NewSet();
    for (size_t i = 0; i < rules_.size(); ++i) {
      // Segments never straddle a range boundary, so the segment start decides.
      if (!(rules_[i].flags & cond_flag) || range(i).Contains(static_cast<uint32_t>(start))) SetBit(Set(set), i);
    }
    d.sets.push_back(set);
  }
}

// ima_match_rule_data(): func must be equal; then uid, then the keyring/label list.
bool PolicyMatcher::MatchesData(uint32_t idx, const PolicyAccess& a, const Resolved& ids) const {
  const Compiled& r = rules_[idx];
  if (r.func != a.func) return false;
  if (r.flags & rule_flag::kUid) {
    if (r.never_data || !r.uid.Contains(a.uid)) return false;
  }
  const Extra& x = extra_[idx];
  if (x.list_count == 0) return true;
  if (!a.has_func_data) return false;
  for (uint32_t i = 0; i < x.list_count; ++i) {
    if (list_ids_[x.list_begin + i] == ids.func_data) return true;
  }
  return false;
}

// ima_match_rules(): the conditions of one rule, for an inode hook.
bool PolicyMatcher::MatchesFile(uint32_t idx, const PolicyAccess& a, const Resolved& ids, bool setattr) const {
  using namespace rule_flag;
  const Compiled& r = rules_[idx];
  const uint32_t flags = r.flags;
  if (!setattr) {
    if ((flags & kFunc) && r.func != a.func) return false;
    if ((flags & kMask) && r.mask != a.mask) return false;
    if ((flags & kInmask) && !(r.mask & a.mask)) return false;
  }
  if ((flags & kFsmagic) && r.fsmagic != a.fsmagic) return false;
  if (r.never_file) return false;
  if ((flags & kFsname) && r.fsname_id != ids.fsname) return false;
  if (flags & kFsuuid) {
    const Extra& x = extra_[idx];
    if (x.uuid_hi != ids.uuid_hi || x.uuid_lo != ids.uuid_lo) return false;
  }
  if ((flags & kUid) && !r.uid.Contains(a.uid)) return false;
  if (flags & kEuid) {
    // With CAP_SETUID the kernel also accepts the saved and the real uid.
    if (!r.uid.Contains(a.euid) && !(a.cap_setuid && (r.uid.Contains(a.suid) || r.uid.Contains(a.uid)))) return false;
  }
  if ((flags & kGid) && !r.gid.Contains(a.gid)) return false;
  if (flags & kEgid) {
    if (!r.gid.Contains(a.egid) && !(a.cap_setgid && (r.gid.Contains(a.sgid) || r.gid.Contains(a.gid)))) return false;
  }
  if ((flags & kFowner) && !r.fowner.Contains(a.fowner)) return false;
  if ((flags & kFgroup) && !r.fgroup.Contains(a.fgroup)) return false;
  if (r.lsm_present) {
    const Extra& x = extra_[idx];
    for (int f = 0; f < kLsmFieldCount; ++f) {
      if ((r.lsm_present & (1u << f)) && (ids.lsm[f] < 0 || ids.lsm[f] != x.lsm_id[f])) return false;
    }
  }
  return true;
}

PolicyDecision PolicyMatcher::Decide(const PolicyAccess& access) const {
  uint32_t wanted = access.func == ImaHook::kPostSetattr ? (action::kAppraise | action::kHash)
                                                          : policy_actions_;
  return Decide(access, wanted);
}

// ima_match_policy()
PolicyDecision PolicyMatcher::Decide(const PolicyAccess& a, uint32_t wanted) const {
  PolicyDecision d;
  wanted &= action::kDoMask;
  for (int c = 0; c < kActionClassCount; ++c) d.classes[c].considered = (wanted & kClassBit[c]) != 0;
  auto h = static_cast<size_t>(a.func);
  if (h == 0 || h >= by_hook_.size()) return d;

  Resolved ids;
  if (uses_fsname_ && !a.fsname.empty()) ids.fsname = Lookup(a.fsname);
  if (uses_lsm_) {
    for (int f = 0; f < kLsmFieldCount; ++f) {
      if ((uses_lsm_ & (1u << f)) && !a.lsm[f].empty()) ids.lsm[f] = Lookup(a.lsm[f]);
    }
  }
  if (uses_func_data_ && a.has_func_data) ids.func_data = Lookup(a.func_data);
  ids.uuid_hi = UuidHalf(a.fsuuid, 0);
  ids.uuid_lo = UuidHalf(a.fsuuid, 1);
  const bool setattr = a.func == ImaHook::kPostSetattr;
  const bool data = IsDataHook(a.func);

  uint32_t actmask = wanted | (wanted << 1);
  uint32_t result = 0;
  auto apply = [&](uint32_t idx) {
    const Compiled& r = rules_[idx];
    result |= r.flags & rule_flag::kNonActionMask;
    result |= r.action & action::kDoMask;
    if (r.action & action::kAppraise) {
      result |= SubAction(r.flags, a.func);
      result &= ~action::kHash;
      if (fail_unverifiable_sigs_) result |= rule_flag::kFailUnverifiableSigs;
      if (r.flags & rule_flag::kValidateAlgos) d.allowed_algos = extra_[idx].allowed_algos;
    }
    if (r.action & action::kDoMask) {
      actmask &= ~(r.action | r.action << 1);
    } else {
      actmask &= ~(r.action | r.action >> 1);
    }
    const Extra& x = extra_[idx];
    if (r.flags & rule_flag::kPcr) d.pcr = x.pcr;
    if (x.template_name) d.template_name = x.template_name;
    d.classes[ClassOf(r.action)].rule = static_cast<int>(idx);
  };
  if (classifier_ && !data) {
    // AND the rule sets of the access's values, then walk the survivors in policy order.
    uint64_t cand[kMaxClassifierWords];
    const uint64_t* hs = Set(hook_set_[h]);
    const uint64_t* ms =
        Set(setattr ? all_set_ : mask_set_[(a.mask & 15u) | (a.mask > 15u ? 16u : 0u)]);
    for (size_t w = 0; w < words_; ++w) cand[w] = hs[w] & ms[w];
    auto and_set = [&](uint32_t off) {
      const uint64_t* set = Set(off);
      for (size_t w = 0; w < words_; ++w) cand[w] &= set[w];
    };
    auto keyed = [&](int dim, std::pair<uint64_t, uint64_t> key, bool known) {
      const KeyedDim& kd = keyed_[dim];
      auto it = known ? std::lower_bound(kd.keys.begin(), kd.keys.end(), key) : kd.keys.end();
      and_set(it != kd.keys.end() && *it == key ? kd.sets[static_cast<size_t>(it - kd.keys.begin())] : kd.other);
    };
    auto segment = [&](int dim, uint32_t v) {
      const RangeDim& rd = ranged_[dim];
      auto it = std::upper_bound(rd.starts.begin(), rd.starts.end(), uint64_t{v});
      return rd.sets[static_cast<size_t>(it - rd.starts.begin()) - 1];
    };
    auto ranged = [&](int dim, uint32_t v) { and_set(segment(dim, v)); };
    // euid=/egid= with CAP_SETUID/CAP_SETGID: any of the three ids may satisfy the rule.
    auto ranged3 = [&](int dim, uint32_t v1, uint32_t v2, uint32_t v3) {
      const uint64_t* s1 = Set(segment(dim, v1));
      const uint64_t* s2 = Set(segment(dim, v2));
      const uint64_t* s3 = Set(segment(dim, v3));
      for (size_t w = 0; w < words_; ++w) cand[w] &= s1[w] | s2[w] | s3[w];
    };
    const uint32_t used = dims_used_;
    if (used & (1u << kDimFsmagic)) keyed(kDimFsmagic, {a.fsmagic, 0}, true);
    if (used & (1u << kDimFsname)) keyed(kDimFsname, {static_cast<uint64_t>(ids.fsname), 0}, ids.fsname >= 0);
    if (used & (1u << kDimFsuuid)) keyed(kDimFsuuid, {ids.uuid_hi, ids.uuid_lo}, true);
    for (int f = 0; f < kLsmFieldCount; ++f) {
      if (used & (1u << (kDimLsm0 + f))) keyed(kDimLsm0 + f, {static_cast<uint64_t>(ids.lsm[f]), 0}, ids.lsm[f] >= 0);
    }
    if (used & (1u << kDimUid)) ranged(kDimUid, a.uid);
    if (used & (1u << kDimEuid)) {
      if (a.cap_setuid) ranged3(kDimEuid, a.euid, a.suid, a.uid);
      else ranged(kDimEuid, a.euid);
    }
    if (used & (1u << kDimGid)) ranged(kDimGid, a.gid);
    if (used & (1u << kDimEgid)) {
      if (a.cap_setgid) ranged3(kDimEgid, a.egid, a.sgid, a.gid);
      else ranged(kDimEgid, a.egid);
    }
    if (used & (1u << kDimFowner)) ranged(kDimFowner, a.fowner);
    if (used & (1u << kDimFgroup)) ranged(kDimFgroup, a.fgroup);
    for (size_t w = 0; w < words_ && actmask; ++w) {
      for (uint64_t bits = cand[w]; bits && actmask; bits &= bits - 1) {
        auto idx = static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
        if (rules_[idx].action & actmask) apply(idx);
      }
    }
  } else {
    for (uint32_t idx : by_hook_[h]) {
      const Compiled& r = rules_[idx];
      if (!(r.action & actmask)) continue;
      if (data ? !MatchesData(idx, a, ids) : !MatchesFile(idx, a, ids, setattr)) continue;
      apply(idx);
      if (!actmask) break;
    }
  }
  d.action = result;
  for (int c = 0; c < kActionClassCount; ++c) d.classes[c].yes = (result & kClassBit[c]) != 0;
  return d;
}

std::string PolicyMatcher::Mismatch(size_t i, const PolicyAccess& a) const {
  using namespace rule_flag;
  const PolicyRule& r = policy_rules_[i];
  const bool setattr = a.func == ImaHook::kPostSetattr;
  auto hook = [](ImaHook f) { return std::string(ImaHookName(f)); };
  if ((r.flags & kFunc) && r.func != a.func && !setattr) return "func " + hook(a.func) + " != " + hook(r.func);
  if (IsDataHook(a.func)) {
    if (r.func != a.func) return "rule has no func=" + hook(a.func) + " (needed for buffer data)";
    if ((r.flags & kUid) && !Cmp(r.uid_op, a.uid, r.uid)) {
      return "uid " + std::to_string(a.uid) + " not " + OpText(r.uid_op) + " " + std::to_string(r.uid);
    }
    const auto& list = r.func == ImaHook::kKeyCheck ? r.keyrings : r.labels;
    if (list.empty()) return "";
    if (!a.has_func_data) return "no keyring/label given";
    for (const auto& item : list) {
      if (item == a.func_data) return "";
    }
    return "'" + std::string(a.func_data) + "' is not in the rule's list";
  }
  if ((r.flags & kMask) && r.mask != a.mask && !setattr) {
    return "mask " + MaskText(a.mask) + " != " + MaskText(r.mask) + " (mask= needs the exact mask)";
  }
  if ((r.flags & kInmask) && !(r.mask & a.mask) && !setattr) {
    return "mask " + MaskText(a.mask) + " does not include " + MaskText(r.mask);
  }
  if ((r.flags & kFsmagic) && r.fsmagic != a.fsmagic) return "fsmagic " + Hex(a.fsmagic) + " != " + Hex(r.fsmagic);
  if ((r.flags & kFsname) && r.fsname != a.fsname) return "fsname '" + std::string(a.fsname) + "' != '" + r.fsname + "'";
  if ((r.flags & kFsuuid) && r.fsuuid != a.fsuuid) return "fsuuid differs";
  auto id_fail = [&](const char* name, uint32_t have, CmpOp op, uint32_t want) {
    return std::string(name) + " " + std::to_string(have) + " not " + OpText(op) + " " + std::to_string(want);
  };
  if ((r.flags & kUid) && !Cmp(r.uid_op, a.uid, r.uid)) return id_fail("uid", a.uid, r.uid_op, r.uid);
  if (r.flags & kEuid) {
    if (a.cap_setuid) {
      if (!Cmp(r.uid_op, a.euid, r.uid) && !Cmp(r.uid_op, a.suid, r.uid) && !Cmp(r.uid_op, a.uid, r.uid)) {
        return "none of euid/suid/uid (CAP_SETUID) is " + std::string(OpText(r.uid_op)) + " " + std::to_string(r.uid);
      }
    } else if (!Cmp(r.uid_op, a.euid, r.uid)) {
      return id_fail("euid", a.euid, r.uid_op, r.uid) + " (no CAP_SETUID)";
    }
  }
  if ((r.flags & kGid) && !Cmp(r.gid_op, a.gid, r.gid)) return id_fail("gid", a.gid, r.gid_op, r.gid);
  if (r.flags & kEgid) {
    if (a.cap_setgid) {
      if (!Cmp(r.gid_op, a.egid, r.gid) && !Cmp(r.gid_op, a.sgid, r.gid) && !Cmp(r.gid_op, a.gid, r.gid)) {
        return "none of egid/sgid/gid (CAP_SETGID) is " + std::string(OpText(r.gid_op)) + " " + std::to_string(r.gid);
      }
    } else if (!Cmp(r.gid_op, a.egid, r.gid)) {
      return id_fail("egid", a.egid, r.gid_op, r.gid) + " (no CAP_SETGID)";
    }
  }
  if ((r.flags & kFowner) && !Cmp(r.fowner_op, a.fowner, r.fowner)) return id_fail("fowner", a.fowner, r.fowner_op, r.fowner);
  if ((r.flags & kFgroup) && !Cmp(r.fgroup_op, a.fgroup, r.fgroup)) return id_fail("fgroup", a.fgroup, r.fgroup_op, r.fgroup);
  for (int f = 0; f < kLsmFieldCount; ++f) {
    if (r.lsm[f].empty()) continue;
    if (a.lsm[f].empty()) return std::string(LsmFieldName(f)) + " unknown (rule wants " + r.lsm[f] + ")";
    if (a.lsm[f] != r.lsm[f]) return std::string(LsmFieldName(f)) + " " + std::string(a.lsm[f]) + " != " + r.lsm[f];
  }
  return "";
}

}  // namespace lim::ima
