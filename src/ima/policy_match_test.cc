#include "ima/policy_match.h"

#include <gtest/gtest.h>

#include <random>

#include "ima/policy_builtin.h"
#include "tests/testing.h"

namespace lim::ima {
namespace {

constexpr uint64_t kExt4 = 0xef53;
constexpr uint64_t kTmpfs = 0x01021994;
constexpr uint64_t kProc = 0x9fa0;

Policy Parse(std::string_view text) {
  Result<Policy> p = ParsePolicy(text, "test");
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Policy{};
}

Policy Builtin(std::string_view name) {
  Result<Policy> p = BuiltinPolicy(name);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Policy{};
}

PolicyAccess Access(ImaHook func, uint32_t mask, uint64_t fsmagic = kExt4, uint32_t uid = 0) {
  PolicyAccess a;
  a.func = func;
  a.mask = mask;
  a.fsmagic = fsmagic;
  a.uid = a.euid = a.suid = uid;
  a.gid = a.egid = a.sgid = uid;
  return a;
}

// Expected outcome of one class: rule is 1-based like the CLI (0 = no rule matched).
struct Expect {
  bool yes;
  int rule;
};

void Check(const PolicyMatcher& m, const PolicyAccess& a, ActionClass c, Expect e, const char* what) {
  PolicyDecision d = m.Decide(a);
  EXPECT_EQ(d.of(c).yes, e.yes) << what;
  EXPECT_EQ(d.of(c).rule + 1, e.rule) << what;
}

// The rule a plain reading of the policy picks for class c: the first of that class whose
// conditions hold (Mismatch() evaluates the uncompiled rules separately from Decide()).
int PlainFirstMatch(const PolicyMatcher& m, const PolicyAccess& a, int c) {
  for (size_t i = 0; i < m.size(); ++i) {
    if (static_cast<int>(ClassOfAction(m.rule(i).action)) == c && m.Mismatch(i, a).empty()) return static_cast<int>(i);
  }
  return -1;
}

struct TcbCase {
  const char* what;
  PolicyAccess access;
  Expect measure;
};

TEST(PolicyMatchTcb, KernelRules) {
  PolicyMatcher tcb(Builtin("tcb"));
  PolicyAccess setuid_root = Access(ImaHook::kFileCheck, may::kRead, kExt4, 1000);
  setuid_root.suid = 0;
  setuid_root.cap_setuid = true;
  PolicyAccess no_cap = setuid_root;
  no_cap.cap_setuid = false;
  PolicyAccess euid_root = Access(ImaHook::kFileCheck, may::kRead, kExt4, 1000);
  euid_root.euid = 0;
  const TcbCase kCases[] = {
      // The tmpfs exclusion is for FILE_CHECK only: executables and mmaps on tmpfs are measured.
      {"tmpfs read", Access(ImaHook::kFileCheck, may::kRead, kTmpfs), {false, 4}},
      {"tmpfs exec", Access(ImaHook::kBprmCheck, may::kExec, kTmpfs), {true, 15}},
      {"tmpfs mmap", Access(ImaHook::kMmapCheck, may::kExec, kTmpfs), {true, 14}},
      {"proc exec", Access(ImaHook::kBprmCheck, may::kExec, kProc), {false, 1}},
      {"ext4 exec", Access(ImaHook::kBprmCheck, may::kExec), {true, 15}},
      {"mmap REQPROT is its own hook", Access(ImaHook::kMmapCheckReqprot, may::kExec), {false, 0}},
      // ^MAY_READ: any open that includes read.
      {"root read", Access(ImaHook::kFileCheck, may::kRead), {true, 16}},
      {"root read+write", Access(ImaHook::kFileCheck, may::kRead | may::kWrite), {true, 16}},
      {"root write only", Access(ImaHook::kFileCheck, may::kWrite), {false, 0}},
      {"user read", Access(ImaHook::kFileCheck, may::kRead, kExt4, 1000), {false, 0}},
      // euid=0: effective root matches rule 16; uid=0 (rule 17) would not.
      {"euid 0", euid_root, {true, 16}},
      // CAP_SETUID: euid= also matches the saved uid.
      {"suid 0 with CAP_SETUID", setuid_root, {true, 16}},
      {"suid 0 without CAP_SETUID", no_cap, {false, 0}},
      {"module", Access(ImaHook::kModuleCheck, may::kRead), {true, 18}},
      {"firmware", Access(ImaHook::kFirmwareCheck, may::kRead), {true, 19}},
      {"policy", Access(ImaHook::kPolicyCheck, may::kRead), {true, 20}},
      {"module on proc", Access(ImaHook::kModuleCheck, may::kRead, kProc), {false, 1}},
      {"kexec kernel: no rule", Access(ImaHook::kKexecKernelCheck, may::kRead), {false, 0}},
  };
  for (const TcbCase& c : kCases) Check(tcb, c.access, ActionClass::kMeasure, c.measure, c.what);
  // tcb has no appraise/audit/hash rule: those classes are not even asked for.
  PolicyDecision d = tcb.Decide(Access(ImaHook::kBprmCheck, may::kExec));
  EXPECT_FALSE(d.of(ActionClass::kAppraise).considered);
  EXPECT_TRUE(d.of(ActionClass::kMeasure).considered);
  EXPECT_EQ(tcb.policy_actions(), action::kMeasure);
}

TEST(PolicyMatchTcb, OriginalTcbUsesExactMask) {
  PolicyMatcher m(Builtin("ima_tcb"));
  // mask=MAY_READ (no '^') needs the mask to be exactly MAY_READ.
  Check(m, Access(ImaHook::kFileCheck, may::kRead), ActionClass::kMeasure, {true, 16}, "read only");
  Check(m, Access(ImaHook::kFileCheck, may::kRead | may::kWrite), ActionClass::kMeasure, {false, 0}, "read+write");
  Check(m, Access(ImaHook::kFileCheck, may::kRead | may::kAppend), ActionClass::kMeasure, {false, 0}, "read+append");
  Check(m, Access(ImaHook::kPolicyCheck, may::kRead), ActionClass::kMeasure, {false, 0}, "no POLICY_CHECK rule");
  // uid=0 is the real uid: an effective root does not match.
  PolicyAccess euid_root = Access(ImaHook::kFileCheck, may::kRead, kExt4, 1000);
  euid_root.euid = 0;
  euid_root.cap_setuid = true;
  Check(m, euid_root, ActionClass::kMeasure, {false, 0}, "euid root vs uid=0");
}

TEST(PolicyMatchBuiltin, AppraiseTcb) {
  PolicyMatcher m(Builtin("appraise_tcb"));
  PolicyAccess root_file = Access(ImaHook::kFileCheck, may::kRead);
  PolicyDecision d = m.Decide(root_file);
  EXPECT_TRUE(d.of(ActionClass::kAppraise).yes);
  EXPECT_EQ(d.of(ActionClass::kAppraise).rule, 15);
  EXPECT_EQ(d.action & appraise_sub::kFile, appraise_sub::kFile);
  EXPECT_EQ(d.action & rule_flag::kDigsigRequired, 0u);
  // The tmpfs exclusion of appraise_tcb is for every hook.
  Check(m, Access(ImaHook::kBprmCheck, may::kExec, kTmpfs), ActionClass::kAppraise, {false, 4}, "tmpfs exec");
  PolicyAccess user_file = root_file;
  user_file.fowner = 1000;
  Check(m, user_file, ActionClass::kAppraise, {false, 0}, "file not owned by root");
  d = m.Decide(Access(ImaHook::kPolicyCheck, may::kRead));
  EXPECT_EQ(d.of(ActionClass::kAppraise).rule, 14);
  EXPECT_NE(d.action & rule_flag::kDigsigRequired, 0u);
  EXPECT_NE(d.action & appraise_sub::kRead, 0u);
  EXPECT_EQ(d.action & rule_flag::kFailUnverifiableSigs, 0u);

  PolicyMatcher secure(Builtin("appraise_tcb|fail_securely"));
  d = secure.Decide(root_file);
  EXPECT_NE(d.action & rule_flag::kFailUnverifiableSigs, 0u);
}

TEST(PolicyMatchBuiltin, SecureBootAndCriticalData) {
  PolicyMatcher m(Builtin("secure_boot critical_data"));
  PolicyDecision d = m.Decide(Access(ImaHook::kKexecKernelCheck, may::kRead));
  EXPECT_TRUE(d.of(ActionClass::kAppraise).yes);
  EXPECT_EQ(d.of(ActionClass::kAppraise).rule, 2);
  EXPECT_NE(d.action & rule_flag::kDigsigRequired, 0u);
  PolicyAccess data = Access(ImaHook::kCriticalData, 0);
  data.func_data = "selinux";
  data.has_func_data = true;
  Check(m, data, ActionClass::kMeasure, {true, 5}, "critical data");
  Check(m, Access(ImaHook::kFileCheck, may::kRead), ActionClass::kAppraise, {false, 0}, "plain file");
}

TEST(PolicyMatch, RulesWithoutFunc) {
  PolicyMatcher m(Parse("measure fowner=0\n"));
  Check(m, Access(ImaHook::kFileCheck, may::kRead), ActionClass::kMeasure, {true, 1}, "file");
  Check(m, Access(ImaHook::kKexecCmdline, 0), ActionClass::kMeasure, {true, 1}, "kexec cmdline is inode-less but not data");
  PolicyAccess key = Access(ImaHook::kKeyCheck, 0);
  key.func_data = ".ima";
  key.has_func_data = true;
  Check(m, key, ActionClass::kMeasure, {false, 0}, "keys need func=KEY_CHECK");
  PolicyAccess other = Access(ImaHook::kBprmCheck, may::kExec);
  other.fowner = 5;
  Check(m, other, ActionClass::kMeasure, {false, 0}, "other owner");
}

TEST(PolicyMatch, KeyringsAndLabels) {
  PolicyMatcher m(Parse("measure func=KEY_CHECK keyrings=.ima|.evm template=ima-buf pcr=11\n"
                        "measure func=CRITICAL_DATA label=selinux uid=0\n"));
  PolicyAccess key = Access(ImaHook::kKeyCheck, 0);
  key.func_data = ".ima";
  key.has_func_data = true;
  PolicyDecision d = m.Decide(key);
  EXPECT_TRUE(d.of(ActionClass::kMeasure).yes);
  EXPECT_EQ(d.pcr, 11);
  ASSERT_NE(d.template_name, nullptr);
  EXPECT_EQ(*d.template_name, "ima-buf");
  key.func_data = ".builtin_trusted_keys";
  Check(m, key, ActionClass::kMeasure, {false, 0}, "other keyring");
  key.has_func_data = false;
  Check(m, key, ActionClass::kMeasure, {false, 0}, "no keyring");
  PolicyAccess data = Access(ImaHook::kCriticalData, 0);
  data.func_data = "selinux";
  data.has_func_data = true;
  Check(m, data, ActionClass::kMeasure, {true, 2}, "label");
  data.uid = 1;
  Check(m, data, ActionClass::kMeasure, {false, 0}, "uid differs");
  PolicyMatcher any(Parse("measure func=KEY_CHECK\n"));
  key.has_func_data = false;
  Check(any, key, ActionClass::kMeasure, {true, 1}, "no keyrings= matches every key");
}

TEST(PolicyMatch, FirstMatchPerClass) {
  PolicyMatcher m(Parse("dont_appraise fsmagic=0x9fa0\n"
                        "measure func=BPRM_CHECK pcr=12 template=ima-sig\n"
                        "measure pcr=13\n"
                        "appraise func=BPRM_CHECK appraise_type=imasig appraise_algos=sha256\n"
                        "audit\n"
                        "audit func=BPRM_CHECK\n"));
  PolicyDecision d = m.Decide(Access(ImaHook::kBprmCheck, may::kExec, kProc));
  EXPECT_EQ(d.of(ActionClass::kAppraise).rule, 0);  // dont_appraise decided appraisal...
  EXPECT_FALSE(d.of(ActionClass::kAppraise).yes);
  EXPECT_EQ(d.of(ActionClass::kMeasure).rule, 1);  // ...but not measurement
  EXPECT_TRUE(d.of(ActionClass::kMeasure).yes);
  EXPECT_EQ(d.pcr, 12);  // the later measure rule with pcr=13 is never reached
  EXPECT_EQ(d.of(ActionClass::kAudit).rule, 4);
  d = m.Decide(Access(ImaHook::kBprmCheck, may::kExec));
  EXPECT_EQ(d.of(ActionClass::kAppraise).rule, 3);
  EXPECT_EQ(d.allowed_algos, 1u << 4);
  EXPECT_NE(d.action & appraise_sub::kBprm, 0u);
  EXPECT_NE(d.action & rule_flag::kCheckBlacklist, 0u);
  d = m.Decide(Access(ImaHook::kFileCheck, may::kRead));
  EXPECT_EQ(d.of(ActionClass::kMeasure).rule, 2);
  EXPECT_EQ(d.pcr, 13);
  EXPECT_EQ(d.template_name, nullptr);
}

TEST(PolicyMatch, AppraiseClearsAnEarlierHash) {
  PolicyMatcher m(Parse("hash\nappraise\n"));
  PolicyDecision d = m.Decide(Access(ImaHook::kFileCheck, may::kWrite));
  EXPECT_EQ(d.of(ActionClass::kHash).rule, 0);
  EXPECT_FALSE(d.of(ActionClass::kHash).yes);  // the kernel clears IMA_HASH on an appraise match
  EXPECT_TRUE(d.of(ActionClass::kAppraise).yes);
  PolicyMatcher later(Parse("appraise\nhash\n"));
  d = later.Decide(Access(ImaHook::kFileCheck, may::kWrite));
  EXPECT_TRUE(d.of(ActionClass::kHash).yes);
}

TEST(PolicyMatch, PostSetattrIgnoresFuncAndMask) {
  PolicyMatcher m(Parse("appraise func=BPRM_CHECK mask=MAY_EXEC\nmeasure\n"));
  PolicyDecision d = m.Decide(Access(ImaHook::kPostSetattr, 0));
  EXPECT_TRUE(d.of(ActionClass::kAppraise).yes);
  EXPECT_FALSE(d.of(ActionClass::kMeasure).considered);
}

TEST(PolicyMatch, IdOperatorsAndGroups) {
  PolicyMatcher m(Parse("measure uid>1000\nappraise egid<100\naudit fgroup=5 fowner>0\n"));
  PolicyAccess a = Access(ImaHook::kFileCheck, may::kRead, kExt4, 1001);
  Check(m, a, ActionClass::kMeasure, {true, 1}, "uid>1000");
  a.uid = 1000;
  Check(m, a, ActionClass::kMeasure, {false, 0}, "uid 1000 not >1000");
  a.egid = 200;
  a.sgid = 50;
  Check(m, a, ActionClass::kAppraise, {false, 0}, "egid 200, no CAP_SETGID");
  a.cap_setgid = true;
  Check(m, a, ActionClass::kAppraise, {true, 2}, "sgid 50 with CAP_SETGID");
  a.fgroup = 5;
  a.fowner = 0;
  Check(m, a, ActionClass::kAudit, {false, 0}, "fowner 0 not >0");
  a.fowner = 7;
  Check(m, a, ActionClass::kAudit, {true, 3}, "fgroup and fowner");
}

TEST(PolicyMatch, FsnameFsuuidAndLabels) {
  PolicyMatcher m(Parse("dont_measure fsname=tmpfs\n"
                        "dont_measure fsuuid=6a1b2c3d-0000-1111-2222-333344445555\n"
                        "dont_measure obj_type=tmp_t\n"
                        "measure subj_type=unconfined_t obj_user=system_u\n"
                        "measure func=FILE_CHECK\n"));
  PolicyAccess a = Access(ImaHook::kFileCheck, may::kRead);
  a.fsname = "tmpfs";
  Check(m, a, ActionClass::kMeasure, {false, 1}, "fsname");
  a.fsname = "ext4";
  a.fsuuid = {0x6a, 0x1b, 0x2c, 0x3d, 0, 0, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55};
  Check(m, a, ActionClass::kMeasure, {false, 2}, "fsuuid");
  a.fsuuid = {};
  a.lsm[kObjType] = "tmp_t";
  Check(m, a, ActionClass::kMeasure, {false, 3}, "obj_type");
  a.lsm[kObjType] = "etc_t";
  Check(m, a, ActionClass::kMeasure, {true, 5}, "other type");
  a.lsm[kSubjType] = "unconfined_t";
  Check(m, a, ActionClass::kMeasure, {true, 5}, "subj_type alone is not enough");
  a.lsm[kObjUser] = "system_u";
  Check(m, a, ActionClass::kMeasure, {true, 4}, "both labels");
  a.lsm = {};
  Check(m, a, ActionClass::kMeasure, {true, 5}, "unknown labels match no label rule");
}

// The compiled matcher agrees with a plain reading of the rules (Mismatch(), written
// separately over the uncompiled rules) on random policies and accesses.
TEST(PolicyMatch, CompiledMatcherAgreesWithPlainEvaluation) {
  std::mt19937 rng(12345);
  int matched = 0;
  const char* kActions[] = {"measure", "dont_measure", "appraise", "dont_appraise", "audit", "hash", "dont_hash"};
  const char* kConds[] = {"func=FILE_CHECK", "func=BPRM_CHECK", "func=MMAP_CHECK", "mask=MAY_READ", "mask=^MAY_READ",
                          "mask=MAY_EXEC", "fsmagic=0x9fa0", "fsmagic=0xef53", "uid=0", "euid=0", "uid>10",
                          "gid<5", "egid=0", "fowner=0", "fgroup>1", "fsname=tmpfs", "obj_type=a_t",
                          "subj_user=u", "fsuuid=00000000-0000-0000-0000-000000000001", "uid<0", "fowner<1", "euid>0",
                          "egid<3", "fgroup=2", "obj_type=b_t"};
  const ImaHook kHooks[] = {ImaHook::kFileCheck, ImaHook::kBprmCheck, ImaHook::kMmapCheck, ImaHook::kModuleCheck,
                            ImaHook::kPostSetattr};
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int r = 0; r < 12; ++r) {
      std::string line = kActions[rng() % 7];
      uint32_t used = 0;
      for (int c = 0; c < 3; ++c) {
        size_t i = rng() % std::size(kConds);
        std::string_view cond = kConds[i];
        uint32_t slot = cond.substr(0, 3) == "fun" ? 1 : cond.substr(0, 3) == "mas" ? 2 : cond.substr(0, 3) == "fsm" ? 4
                        : (cond[0] == 'u' || cond[0] == 'e') && cond[1] != 'g' ? 8 : 16 + static_cast<uint32_t>(i);
        if (cond.substr(0, 3) == "gid" || cond.substr(0, 4) == "egid") slot = 32;
        if (used & (1u << (slot % 32))) continue;
        used |= 1u << (slot % 32);
        line += " " + std::string(cond);
      }
      if (CheckPolicy(line, "r").errors.empty()) text += line + "\n";
    }
    if (text.empty()) continue;
    Policy p = Parse(text);
    PolicyMatcher m(p);
    for (int k = 0; k < 20; ++k) {
      PolicyAccess a = Access(kHooks[rng() % 5], 1u << (rng() % 4), rng() % 2 ? kProc : kExt4, rng() % 3 ? 0 : 20);
      a.euid = rng() % 2 ? 0 : 30;
      a.cap_setuid = rng() % 2;
      a.gid = static_cast<uint32_t>(rng() % 8);
      a.fowner = static_cast<uint32_t>(rng() % 2);
      a.fgroup = static_cast<uint32_t>(rng() % 3);
      a.fsname = rng() % 2 ? "tmpfs" : "ext4";
      if (rng() % 2) a.lsm[kObjType] = "a_t";
      if (rng() % 2) a.fsuuid[15] = 1;
      PolicyDecision d = m.Decide(a, action::kDoMask);
      for (int c = 0; c < kActionClassCount; ++c) {
        int expect = PlainFirstMatch(m, a, c);
        ASSERT_EQ(d.classes[c].rule, expect) << text << "class " << c;
        if (expect >= 0) ++matched;
      }
    }
  }
  EXPECT_GT(matched, 5000);  // the random policies do decide things
}

// Long runs of single-key rules (the shape of real policies) with mixed actions, repeated
// keys and other rules in between decide exactly as a rule-by-rule walk.
TEST(PolicyMatch, KeyedRunsAgreeWithPlainEvaluation) {
  std::mt19937 rng(777);
  const char* kActions[] = {"measure", "dont_measure", "appraise", "dont_appraise", "audit", "hash", "dont_hash"};
  const char* kKeys[] = {"fsmagic=0x9fa0", "fsmagic=0xef53", "fsmagic=0x1021994", "fsname=tmpfs", "fsname=ext4",
                         "obj_type=a_t",   "obj_type=b_t",   "subj_user=u",        "func=FILE_CHECK fsmagic=0xef53",
                         "func=BPRM_CHECK fsmagic=0x9fa0", "func=FILE_CHECK mask=MAY_READ fsmagic=0xef53",
                         "uid=0", "func=MMAP_CHECK obj_type=a_t"};
  const ImaHook kHooks[] = {ImaHook::kFileCheck, ImaHook::kBprmCheck, ImaHook::kMmapCheck, ImaHook::kPostSetattr};
  int decided = 0;
  size_t groups = 0;
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int r = 0; r < 40; ++r) {
      // Mostly plain single-key rules so that runs form; sometimes a breaker.
      size_t k = 8 + rng() % 5;
      if (rng() % 10 != 0) {
        switch (round % 4) {
          case 0: k = rng() % 3; break;      // fsmagic runs
          case 1: k = 3 + rng() % 2; break;  // fsname runs
          case 2: k = 5 + rng() % 2; break;  // obj_type runs
          default: k = rng() % 8; break;     // mixed kinds
        }
      }
      text += std::string(kActions[rng() % 7]) + " " + kKeys[k] + "\n";
    }
    Policy p = Parse(text);
    PolicyMatcher m(p);
    if (m.uses_classifier()) ++groups;
    for (int k = 0; k < 30; ++k) {
      PolicyAccess a = Access(kHooks[rng() % 4], 1u << (rng() % 4), rng() % 3 == 0 ? kProc : rng() % 2 ? kExt4 : kTmpfs,
                              rng() % 2 ? 0 : 5);
      a.fsname = rng() % 3 == 0 ? "tmpfs" : rng() % 2 ? "ext4" : "xfs";
      a.lsm[kObjType] = rng() % 3 == 0 ? "a_t" : rng() % 2 ? "b_t" : "";
      a.lsm[kSubjUser] = rng() % 2 ? "u" : "v";
      PolicyDecision d = m.Decide(a, action::kDoMask);
      for (int c = 0; c < kActionClassCount; ++c) {
        int expect = PlainFirstMatch(m, a, c);
        ASSERT_EQ(d.classes[c].rule, expect) << text << "class " << c << " hook " << ImaHookName(a.func);
        if (expect >= 0) ++decided;
      }
    }
  }
  EXPECT_GT(decided, 10000);
  EXPECT_EQ(groups, 200u);  // decided by the classifier
}

// Policies beyond the classifier's size are walked rule by rule; both ways decide alike.
TEST(PolicyMatch, HugePolicyWalksRulesAndAgrees) {
  std::string text;
  for (int i = 0; i < 4100; ++i) text += "dont_measure fsmagic=0x" + std::to_string(10000 + i) + "\n";
  text += "measure func=BPRM_CHECK\nappraise fowner=0\n";
  PolicyMatcher big(Parse(text));
  EXPECT_FALSE(big.uses_classifier());
  PolicyMatcher small(Parse("dont_measure fsmagic=0x10042\nmeasure func=BPRM_CHECK\nappraise fowner=0\n"));
  EXPECT_TRUE(small.uses_classifier());
  for (uint64_t magic : {uint64_t{0x10042}, uint64_t{kExt4}}) {
    for (ImaHook f : {ImaHook::kBprmCheck, ImaHook::kFileCheck}) {
      PolicyAccess a = Access(f, may::kExec, magic);
      PolicyDecision d1 = big.Decide(a), d2 = small.Decide(a);
      for (int c = 0; c < kActionClassCount; ++c) {
        EXPECT_EQ(d1.classes[c].yes, d2.classes[c].yes);
        EXPECT_EQ(d1.classes[c].rule >= 0, d2.classes[c].rule >= 0);
      }
      EXPECT_EQ(d1.action, d2.action);
    }
  }
  Check(big, Access(ImaHook::kBprmCheck, may::kExec, 0x10042), ActionClass::kMeasure, {false, 43}, "dont rule 43");
  Check(big, Access(ImaHook::kBprmCheck, may::kExec), ActionClass::kMeasure, {true, 4101}, "measure");
}

// Real policies: keylime's demo policy excludes tmpfs without func=, so unlike the kernel's
// tcb it also skips executables there; MODULE_CHECK uid=0 needs the loading task's uid.
TEST(PolicyMatchFixtures, KeylimeDemoPolicy) {
  Result<Policy> p = LoadPolicyFile(lim::testing::Fixture("keylime/demo/ima-policy"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  PolicyMatcher m(*p);
  Check(m, Access(ImaHook::kBprmCheck, may::kExec, kTmpfs), ActionClass::kMeasure, {false, 4}, "tmpfs exec");
  Check(m, Access(ImaHook::kBprmCheck, may::kExec), ActionClass::kMeasure, {true, 7}, "exec");
  Check(m, Access(ImaHook::kMmapCheck, may::kExec), ActionClass::kMeasure, {true, 8}, "FILE_MMAP is MMAP_CHECK");
  Check(m, Access(ImaHook::kMmapCheck, may::kExec | may::kRead), ActionClass::kMeasure, {false, 0}, "exact mask");
  Check(m, Access(ImaHook::kModuleCheck, may::kRead), ActionClass::kMeasure, {true, 9}, "module by root");
  Check(m, Access(ImaHook::kModuleCheck, may::kRead, kExt4, 5), ActionClass::kMeasure, {false, 0}, "module by uid 5");
  Check(m, Access(ImaHook::kFileCheck, may::kRead), ActionClass::kMeasure, {false, 0}, "plain reads");
}

}  // namespace
}  // namespace lim::ima
