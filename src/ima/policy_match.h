// PolicyMatcher: decides an access against a Policy exactly as the kernel's
// ima_match_policy()/ima_match_rules() do — rules in order, the first matching rule of an
// action class (measure/dont_measure, appraise/dont_appraise, audit, hash/dont_hash) decides
// that class, its pcr=/template= and appraise flags are returned.
//
// Built once per policy: rules compiled to fixed-size records, strings interned to integers,
// and a bitset classifier per condition kind (see below), so Decide() costs a few table
// lookups and bitset ANDs whatever the number of rules, and no string compares; the access's
// strings (fsname, LSM labels, keyring/label) are looked up once per call, and only when the
// policy uses them. Decide() is const and allocation-free: one matcher may serve many threads.
#pragma once

#include <array>
#include <functional>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ima/policy.h"

namespace lim::ima {

// The inputs the kernel looks at: the task's credentials, the inode and its superblock.
struct PolicyAccess {
  ImaHook func = ImaHook::kFileCheck;
  uint32_t mask = 0;  // MAY_* bits requested (see kernel-ima.md §8.4 for each hook's mask)
  uint32_t uid = 0, euid = 0, suid = 0;
  uint32_t gid = 0, egid = 0, sgid = 0;
  bool cap_setuid = false;  // with CAP_SETUID, euid= also matches on suid or uid
  bool cap_setgid = false;
  uint32_t fowner = 0, fgroup = 0;  // inode owner/group as seen through the mount's idmapping
  uint64_t fsmagic = 0;
  std::array<uint8_t, 16> fsuuid{};
  std::string_view fsname;
  std::array<std::string_view, kLsmFieldCount> lsm;  // empty: unknown, matches no label condition
  // KEY_CHECK: the keyring name; CRITICAL_DATA: the data label. has_func_data=false is the
  // kernel's NULL (then only rules without keyrings=/label= match).
  std::string_view func_data;
  bool has_func_data = false;
};

// The MAY_* mask each hook asks with (kernel-ima.md §8.4): MAY_EXEC for BPRM_CHECK,
// CREDS_CHECK and the mmap hooks, MAY_READ for FILE_CHECK and the read-file hooks, else 0.
uint32_t DefaultMask(ImaHook hook);

enum class ActionClass : uint8_t { kMeasure, kAppraise, kAudit, kHash };
inline constexpr int kActionClassCount = 4;
std::string_view ActionClassName(ActionClass c);  // "measure", "appraise", "audit", "hash"
// The class a rule action belongs to (dont_measure → kMeasure, …).
ActionClass ClassOfAction(uint32_t action);

// IMA_*_APPRAISE sub-action bits the kernel adds for a matching appraise rule.
namespace appraise_sub {
inline constexpr uint32_t kFile = 0x00001000;
inline constexpr uint32_t kMmap = 0x00004000;
inline constexpr uint32_t kBprm = 0x00010000;
inline constexpr uint32_t kRead = 0x00040000;
inline constexpr uint32_t kCreds = 0x00100000;
}  // namespace appraise_sub

struct ClassDecision {
  bool considered = false;  // the caller (the kernel hook) asked for this class
  int rule = -1;            // 0-based index of the first matching rule of the class, -1 none
  bool yes = false;         // the action bit is set in the final result
};

struct PolicyDecision {
  uint32_t action = 0;  // ima_match_policy()'s return: action, sub-action and non-action bits
  std::array<ClassDecision, kActionClassCount> classes;
  int pcr = -1;                                // pcr= of a matching rule; -1: the default PCR
  const std::string* template_name = nullptr;  // template= of a matching rule; null: default
  uint32_t allowed_algos = 0;                  // appraise_algos= of the appraise rule; 0: any

  const ClassDecision& of(ActionClass c) const { return classes[static_cast<int>(c)]; }
};

class PolicyMatcher {
 public:
  explicit PolicyMatcher(const Policy& policy);
  PolicyMatcher(PolicyMatcher&&) = default;
  PolicyMatcher& operator=(PolicyMatcher&&) = default;
  PolicyMatcher(const PolicyMatcher&) = delete;  // compiled rules point into policy_rules_
  PolicyMatcher& operator=(const PolicyMatcher&) = delete;

  // Classes the kernel asks for on this hook: every positive action present in the policy
  // (ima_policy_flag); POST_SETATTR asks for appraise and hash (ima_must_appraise).
  PolicyDecision Decide(const PolicyAccess& access) const;
  // `wanted` is a set of action::kMeasure/kAppraise/kAudit/kHash.
  PolicyDecision Decide(const PolicyAccess& access, uint32_t wanted) const;

  // ima_policy_flag: the positive actions present (SETXATTR_CHECK rules excluded).
  uint32_t policy_actions() const { return policy_actions_; }
  size_t size() const { return rules_.size(); }
  // Whether decisions use the bitset classifier (policies up to 4096 rules) or walk rules.
  bool uses_classifier() const { return classifier_; }
  const PolicyRule& rule(size_t i) const { return policy_rules_[i]; }

  // Why rule i does not match the access ("fsmagic 0x9fa0 != 0xef53"); empty if it matches.
  // Slow (strings); for explanations only.
  std::string Mismatch(size_t i, const PolicyAccess& access) const;

 private:
  // Hot per-rule data, one cache line: what a rule-by-rule walk reads.
  // An id condition (=, >, <) as the range [lo, lo + span]: one unsigned compare.
  struct IdRange {
    uint32_t lo = 0, span = 0;
    bool Contains(uint32_t v) const { return v - lo <= span; }
  };
  // The ids an operator accepts; *empty when it accepts none (x<0).
  static IdRange MakeRange(CmpOp op, uint32_t v, bool* empty);
  // Hot per-rule data, one cache line: what a rule-by-rule walk reads.
  struct alignas(64) Compiled {
    uint32_t action;
    uint32_t flags;
    ImaHook func;
    uint8_t lsm_present;  // bit i: lsm condition i
    bool never_file;      // an id condition is empty (uid<0 …): matches no inode access
    bool never_data;      // uid<0: matches no buffer-data access either
    uint32_t mask;
    IdRange uid, gid, fowner, fgroup;
    uint64_t fsmagic;
    int32_t fsname_id;
  };
  // Cold per-rule data: labels, lists and what a match returns.
  struct Extra {
    uint64_t uuid_hi, uuid_lo;
    std::array<int32_t, kLsmFieldCount> lsm_id;
    uint32_t list_begin, list_count;  // keyrings / labels, ids in list_ids_
    int pcr;
    uint32_t allowed_algos;
    const std::string* template_name;
  };
  struct Resolved {
    int32_t fsname = -1;
    std::array<int32_t, kLsmFieldCount> lsm{-1, -1, -1, -1, -1, -1};
    int32_t func_data = -1;
    uint64_t uuid_hi = 0, uuid_lo = 0;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int32_t Intern(const std::string& s);
  int32_t Lookup(std::string_view s) const;
  // ima_match_rules() for inode hooks (setattr: POST_SETATTR ignores func= and mask=) and
  // for the buffer-data hooks KEY_CHECK / CRITICAL_DATA.
  bool MatchesFile(uint32_t idx, const PolicyAccess& a, const Resolved& ids, bool setattr) const;
  bool MatchesData(uint32_t idx, const PolicyAccess& a, const Resolved& ids) const;

  std::vector<PolicyRule> policy_rules_;
  std::vector<Compiled> rules_;
  std::vector<Extra> extra_;
  // The classifier: for each condition kind ("dimension") the policy uses, a table from the
  // access's value to the bitset of rules that value satisfies (rules without that condition
  // are in every set). Decide() ANDs the sets of the access's values and walks only the
  // surviving rules, in policy order — the same first-match result as testing each rule, in
  // a time bounded by the number of dimensions, not the number of rules.
  // Bitsets live in pool_, words_ 64-bit words each; a set is named by its offset.
  struct KeyedDim {  // equality: fsmagic, fsname, fsuuid, one LSM label
    std::vector<std::pair<uint64_t, uint64_t>> keys;  // sorted
    std::vector<uint32_t> sets;                       // per key
    uint32_t other = 0;                               // for a value no rule names
  };
  struct RangeDim {  // uid, euid, gid, egid, fowner, fgroup (=, <, >)
    std::vector<uint64_t> starts;  // sorted segment starts, starts[0] == 0
    std::vector<uint32_t> sets;    // per segment
  };
  enum Dim : uint8_t { kDimFsmagic, kDimFsname, kDimFsuuid, kDimLsm0, kDimUid = kDimLsm0 + kLsmFieldCount,
                       kDimEuid, kDimGid, kDimEgid, kDimFowner, kDimFgroup, kDimCount };
  static constexpr size_t kMaxClassifierWords = 64;  // up to 4096 rules; larger policies walk

  void BuildClassifier();
  uint32_t NewSet();
  uint64_t* Set(uint32_t off) { return pool_.data() + off; }
  const uint64_t* Set(uint32_t off) const { return pool_.data() + off; }
  void BuildKeyed(int dim, uint32_t cond_flag, int lsm_field);
  void BuildRange(int dim, uint32_t cond_flag);

  std::vector<uint64_t> pool_;
  size_t words_ = 0;
  bool classifier_ = false;
  std::array<uint32_t, kImaHookCount> hook_set_{};  // rules that can match on the hook (func=)
  std::array<uint32_t, 32> mask_set_{};             // by (mask & 15) | (mask > 15 ? 16 : 0)
  uint32_t all_set_ = 0;                            // every rule (for POST_SETATTR's mask)
  std::array<KeyedDim, kDimCount> keyed_;
  std::array<RangeDim, kDimCount> ranged_;
  uint32_t dims_used_ = 0;  // bit per Dim
  std::array<std::vector<uint32_t>, kImaHookCount> by_hook_;  // candidates, for walks
  std::vector<int32_t> list_ids_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> strings_;
  uint32_t policy_actions_ = 0;
  bool fail_unverifiable_sigs_ = false;
  bool uses_fsname_ = false;
  uint8_t uses_lsm_ = 0;
  bool uses_func_data_ = false;
};

}  // namespace lim::ima
