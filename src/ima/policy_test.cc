#include "ima/policy.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "ima/policy_builtin.h"
#include "tests/testing.h"

namespace lim::ima {
namespace {

using lim::testing::Fixture;

std::string ShowOne(std::string_view line) {
  Result<Policy> p = ParsePolicy(line, "t");
  if (!p.ok()) return "ERROR: " + p.status().message();
  return ShowPolicy(*p);
}

// Every policy shipped in the fixtures is one the kernel accepts.
TEST(PolicyFixtures, EveryFixturePolicyIsAccepted) {
  const char* kFiles[] = {
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_kexec/kexec.policy",
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_keys/keycheck.policy",
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_measurements/tcb.policy",
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_policy/measure.policy",
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_selinux/selinux.policy",
      "ltp/testcases/kernel/security/integrity/ima/datafiles/ima_violations/violations.policy",
      "rust-keylime/ima-policy/ima-policy",
      "keylime/demo/ima-policy",
      "keylime/demo/ima-policies/ima-policy-default",
      "keylime/demo/ima-policies/ima-policy-keylime",
      "keylime/demo/ima-policies/ima-policy-keylime-etc",
      "keylime-tests/Library/test-helpers/ima-policy-simple",
      "keylime-tests/Library/test-helpers/ima-policy-signing",
      "meta-security/meta-integrity/recipes-security/ima_policy_appraise_all/files/ima_policy_appraise_all",
      "meta-security/meta-integrity/recipes-security/ima_policy_hashed/files/ima_policy_hashed",
      "meta-security/meta-integrity/recipes-security/ima_policy_simple/files/ima_policy_simple",
      "gooroom-exe-protector/data/ima_policy",
  };
  for (const char* f : kFiles) {
    Result<Policy> p = LoadPolicyFile(Fixture(f));
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_FALSE(p->rules.empty()) << f;
    Result<std::string> text = ReadFileText(Fixture(f));
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(p->text, *text) << "the exact bytes loaded are kept: " << f;
    EXPECT_EQ(p->loaded_bytes().size(), text->size());
  }
}

TEST(PolicyFixtures, RuleCounts) {
  auto count = [](const char* f) {
    Result<Policy> p = LoadPolicyFile(Fixture(f));
    return p.ok() ? p->rules.size() : size_t{0};
  };
  EXPECT_EQ(count("ltp/testcases/kernel/security/integrity/ima/datafiles/ima_policy/measure.policy"), 8u);
  EXPECT_EQ(count("gooroom-exe-protector/data/ima_policy"), 16u);
  EXPECT_EQ(count("keylime/demo/ima-policies/ima-policy-default"), 27u);  // last line has no newline
}

TEST(PolicyFixtures, LtpInvalidPolicyIsRejectedAtTheMisspeltAction) {
  const std::string f =
      Fixture("ltp/testcases/kernel/security/integrity/ima/datafiles/ima_policy/measure.policy-invalid");
  Result<Policy> p = LoadPolicyFile(f);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), f + ":13:1: unknown keyword 'dnt_measure'");
  Result<std::string> text = ReadFileText(f);
  ASSERT_TRUE(text.ok());
  PolicyParseOutput out = CheckPolicy(*text, f);
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].line, 13);
  EXPECT_EQ(out.policy.rules.size(), 7u);
}

// LTP's tcb.policy is the kernel's ima_policy=tcb written out: reading both back must agree.
TEST(PolicyFixtures, LtpTcbPolicyReadsBackAsTheBuiltinTcb) {
  Result<Policy> file =
      LoadPolicyFile(Fixture("ltp/testcases/kernel/security/integrity/ima/datafiles/ima_measurements/tcb.policy"));
  ASSERT_TRUE(file.ok());
  Result<Policy> builtin = BuiltinPolicy("tcb");
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ(ShowPolicy(*file), ShowPolicy(*builtin));
}

struct ShowCase {
  const char* in;
  const char* out;
};

TEST(PolicyShow, CanonicalReadBack) {
  const ShowCase kCases[] = {
      {"measure func=FILE_MMAP mask=MAY_EXEC", "measure func=MMAP_CHECK mask=MAY_EXEC \n"},
      {"measure func=PATH_CHECK mask=^MAY_READ euid=0", "measure func=FILE_CHECK mask=^MAY_READ euid=0 \n"},
      {"dont_measure fsmagic=0x01021994", "dont_measure fsmagic=0x1021994 \n"},
      {"dont_measure fsmagic=0x1021994 func=FILE_CHECK", "dont_measure func=FILE_CHECK fsmagic=0x1021994 \n"},
      {"measure fsmagic=+0X9FA0", "measure fsmagic=0x9fa0 \n"},
      {"measure fsmagic=9fa0", "measure fsmagic=0x9fa0 \n"},
      {"measure func=KEY_CHECK keyrings=.ima|.evm template=ima-buf pcr=11",
       "measure func=KEY_CHECK keyrings=.ima|.evm pcr=11 template=ima-buf \n"},
      {"measure func=CRITICAL_DATA label=selinux|kernel_info", "measure func=CRITICAL_DATA label=selinux|kernel_info \n"},
      {"appraise func=MODULE_CHECK appraise_type=imasig|modsig", "appraise func=MODULE_CHECK appraise_type=imasig|modsig \n"},
      {"appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
       "appraise func=BPRM_CHECK appraise_type=sigv3 digest_type=verity \n"},
      {"measure func=BPRM_CHECK digest_type=verity template=ima-ngv2",
       "measure func=BPRM_CHECK template=ima-ngv2 digest_type=verity \n"},
      {"appraise func=SETXATTR_CHECK appraise_algos=sha512,sha256,sha256",
       "appraise func=SETXATTR_CHECK appraise_algos=sha256,sha512 \n"},
      {"measure fsuuid=6A1B2C3D-0000-1111-2222-333344445555xyz uid>1000 fowner<5 fgroup=7 egid=3",
       "measure fsuuid=6a1b2c3d-0000-1111-2222-333344445555 uid>1000 egid=3 fowner<5 fgroup=7 \n"},
      {"dont_measure obj_type=var_log_t subj_user=system_u obj_user=x",
       "dont_measure obj_user=x obj_type=var_log_t subj_user=system_u \n"},
      {"measure uid=4294967294", "measure uid=-2 \n"},
      {"measure template=d-ng|n-ng|sig", "measure template=ima-sig \n"},
      {"measure func=FILE_CHECK fsname=tmpfs permit_directio", "measure func=FILE_CHECK fsname=tmpfs permit_directio \n"},
      {"audit func=BPRM_CHECK", "audit func=BPRM_CHECK \n"},
      {"hash", "hash \n"},
      {"dont_hash fsmagic=0x9fa0", "dont_hash fsmagic=0x9fa0 \n"},
      {"measure pcr=+11", "measure pcr=11 \n"},
      {"measure pcr=-0", "measure pcr=0 \n"},
      {"appraise appraise_flag=check_blacklist appraise_type=imasig", "appraise appraise_type=imasig \n"},
      {"\t measure\tfunc=BPRM_CHECK   # trailing comment", "measure func=BPRM_CHECK \n"},
      {"measure fsmagic=0 fsmagic=0x9fa0", "measure fsmagic=0x9fa0 \n"},  // the kernel misses this duplicate
      {"measure fsname=a fsname=b", "measure fsname=b \n"},
      {"measure pcr=10 pcr=11", "measure pcr=11 \n"},
      {"measure func=KEXEC_CMDLINE obj_type=foo_t", "measure func=KEXEC_CMDLINE obj_type=foo_t \n"},
      {"appraise func=FIRMWARE_CHECK appraise_type=imasig appraise_type=imasig",
       "appraise func=FIRMWARE_CHECK appraise_type=imasig \n"},
      {"measure fgroup>10 gid<5 fowner=0", "measure gid<5 fowner=0 fgroup>10 \n"},
      {"dont_appraise func=POLICY_CHECK mask=MAY_APPEND", "dont_appraise func=POLICY_CHECK mask=MAY_APPEND \n"},
      {"measure func=MMAP_CHECK_REQPROT mask=^MAY_EXEC", "measure func=MMAP_CHECK_REQPROT mask=^MAY_EXEC \n"},
      {"measure func=BPRM_CHECK template=ima", "measure func=BPRM_CHECK template=ima \n"},
  };
  for (const ShowCase& c : kCases) EXPECT_EQ(ShowOne(c.in), c.out) << c.in;
}

TEST(PolicyShow, LongFsnameIsCutLikeTheKernelsBuffer) {
  std::string name(70, 'f');
  EXPECT_EQ(ShowOne("measure fsname=" + name), "measure fsname=" + std::string(63, 'f') + " \n");
}

struct ErrorCase {
  const char* in;
  int col;
  const char* message;  // substring
};

TEST(PolicyErrors, KernelRejections) {
  const ErrorCase kCases[] = {
      {"dnt_measure", 1, "unknown keyword 'dnt_measure'"},
      {"measure appraise", 9, "second action"},
      {"measure func=FILE_CHECK func=BPRM_CHECK", 25, "duplicate func="},
      {"measure func=FILE_CHEK", 9, "unknown func"},
      {"measure func=POST_SETATTR", 9, "unknown func"},
      {"measure uid=0 euid=0", 15, "share one slot"},
      {"measure gid=0 egid=1", 15, "share one slot"},
      {"measure fowner=0 fowner>3", 18, "duplicate fowner"},
      {"dont_measure pcr=10", 14, "pcr= is only allowed with measure"},
      {"measure pcr=64", 9, "pcr= needs a PCR index"},
      {"measure pcr=-1", 9, "pcr= needs a PCR index"},
      {"measure template=ima-foo", 9, "unknown template"},
      {"template=ima-ng measure", 1, "only allowed after the measure action"},
      {"dont_measure template=ima-ng", 14, "only allowed after the measure action"},
      {"measure template=ima-ng template=ima-sig", 25, "duplicate template="},
      {"measure appraise_type=imasig", 9, "appraise_type= is only allowed with appraise"},
      {"measure appraise_algos=sha256", 9, "appraise_algos= is only allowed with appraise"},
      {"appraise func=FILE_CHECK appraise_type=imasig|modsig", 26, "only allowed with func=MODULE_CHECK"},
      {"appraise appraise_type=imasig|modsig", 10, "only allowed with func=MODULE_CHECK"},
      {"appraise func=MODULE_CHECK digest_type=verity appraise_type=sigv3", 28, "not allowed with func=MODULE_CHECK"},
      {"appraise func=BPRM_CHECK appraise_type=sigv3", 26, "needs digest_type=verity"},
      {"appraise func=BPRM_CHECK appraise_type=imasig digest_type=verity", 47, "must come before appraise_type"},
      {"appraise func=BPRM_CHECK digest_type=verity appraise_type=imasig", 45, "cannot follow digest_type=verity"},
      {"appraise func=BPRM_CHECK digest_type=verity", 26, "needs appraise_type=sigv3"},
      {"measure digest_type=fsverity", 9, "unknown digest_type"},
      {"measure func=KEY_CHECK fsmagic=0x9fa0", 24, "not allowed with func=KEY_CHECK"},
      {"appraise func=KEY_CHECK", 1, "only allows measure and dont_measure"},
      {"audit func=CRITICAL_DATA", 1, "only allows measure and dont_measure"},
      {"measure keyrings=.ima", 9, "keyrings= is only allowed with func=KEY_CHECK"},
      {"measure func=FILE_CHECK label=x", 25, "label= is only allowed with func=CRITICAL_DATA"},
      {"measure func=KEY_CHECK obj_type=foo_t", 24, "LSM conditions are not allowed"},
      {"measure func=CRITICAL_DATA subj_type=foo_t", 28, "LSM conditions are not allowed"},
      {"measure func=KEXEC_CMDLINE mask=MAY_READ", 28, "not allowed with func=KEXEC_CMDLINE"},
      {"appraise func=SETXATTR_CHECK", 10, "needs appraise_algos="},
      {"measure func=SETXATTR_CHECK", 1, "only allows appraise"},
      {"appraise func=SETXATTR_CHECK appraise_algos=sha256 fowner=0", 52, "not allowed with func=SETXATTR_CHECK"},
      {"appraise appraise_algos=sha256,,sha1", 10, "unknown hash algorithm ''"},
      {"appraise appraise_algos=sha256,", 10, "unknown hash algorithm ''"},
      {"appraise appraise_algos=SHA256", 10, "unknown hash algorithm 'SHA256'"},
      {"appraise appraise_algos=rmd128", 10, "not available"},
      {"appraise appraise_algos=sha256 appraise_algos=sha1", 32, "duplicate appraise_algos="},
      {"measure mask=MAY_RED", 9, "unknown mask"},
      {"measure mask=MAY_READ mask=^MAY_EXEC", 23, "duplicate mask="},
      {"measure fsmagic=xyz", 9, "hexadecimal"},
      {"measure fsmagic=0x", 9, "hexadecimal"},
      {"measure fsmagic=0x9fa0 fsmagic=0x9fa0", 24, "duplicate fsmagic="},
      {"measure fsmagic=0x10000000000000000", 9, "out of range"},
      {"measure uid=-1", 9, "decimal id"},
      {"measure uid=0x10", 9, "decimal id"},
      {"measure uid=4294967295", 9, "invalid id"},
      {"measure uid=4294967296", 9, "out of range"},
      {"measure fsuuid=1234", 9, "needs a UUID"},
      {"measure fsuuid=00000000-0000-0000-0000-00000000000g", 9, "needs a UUID"},
      {"measure fsuuid=6a1b2c3d-0000-1111-2222-333344445555 fsuuid=6a1b2c3d-0000-1111-2222-333344445555", 53,
       "duplicate fsuuid="},
      {"measure func=", 9, "func= needs a value"},
      {"measure func", 9, "func= needs a value"},
      {"measure func=KEY_CHECK keyrings=a||b", 24, "empty item"},
      {"measure func=KEY_CHECK keyrings=a keyrings=b", 35, "duplicate keyrings="},
      {"func=BPRM_CHECK", 1, "rule has no action"},
      {"measure obj_type=a obj_type=b", 20, "duplicate obj_type="},
      {"measure\r", 1, "CRLF"},
      {"measure func=BPRM_CHECK\r", 9, "CRLF"},
      {"measure #x", 0, nullptr},  // accepted: a comment token ends the rule
  };
  for (const ErrorCase& c : kCases) {
    PolicyParseOutput out = CheckPolicy(c.in, "t");
    if (!c.message) {
      EXPECT_TRUE(out.errors.empty()) << c.in;
      continue;
    }
    ASSERT_EQ(out.errors.size(), 1u) << c.in;
    EXPECT_EQ(out.errors[0].line, 1) << c.in;
    EXPECT_EQ(out.errors[0].column, c.col) << c.in << ": " << out.errors[0].message;
    EXPECT_NE(out.errors[0].message.find(c.message), std::string::npos) << c.in << ": " << out.errors[0].message;
  }
}

TEST(PolicyErrors, EveryBadRuleIsReportedWithItsLine) {
  PolicyParseOutput out = CheckPolicy("# header\nmeasure\n\ndnt_measure\n  measure pcr=99\nappraise\n", "p");
  ASSERT_EQ(out.errors.size(), 2u);
  EXPECT_EQ(FormatDiagnostic("p", out.errors[0]), "p:4:1: unknown keyword 'dnt_measure'");
  EXPECT_EQ(out.errors[1].line, 5);
  EXPECT_EQ(out.errors[1].column, 11);
  EXPECT_EQ(out.policy.rules.size(), 2u);
  Result<Policy> first = ParsePolicy("measure\ndnt_measure\nbogus\n", "p");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().message(), "p:2:1: unknown keyword 'dnt_measure'");
}

TEST(PolicyErrors, EmptyPolicyIsRefused) {
  for (const char* text : {"", "\n", "# nothing\n   \n\t# still nothing\n"}) {
    PolicyParseOutput out = CheckPolicy(text, "e");
    ASSERT_EQ(out.errors.size(), 1u) << text;
    EXPECT_NE(out.errors[0].message.find("no rules"), std::string::npos);
  }
}

TEST(PolicyErrors, NulByteIsAnError) {
  std::string text = "measure\nmeas";
  text += '\0';
  text += "ure\n";
  PolicyParseOutput out = CheckPolicy(text, "n");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].line, 2);
  EXPECT_EQ(out.errors[0].column, 5);
}

TEST(PolicyWarnings, KernelNoticesAreWarnings) {
  PolicyParseOutput out = CheckPolicy(
      "measure func=BPRM_CHECK digest_type=verity\nappraise appraise_flag=check_blacklist\n"
      "measure template=ima-sigv2 digest_type=verity\n",
      "w");
  EXPECT_TRUE(out.errors.empty());
  ASSERT_EQ(out.warnings.size(), 2u);
  EXPECT_EQ(out.warnings[0].line, 1);
  EXPECT_NE(out.warnings[0].message.find("d-ngv2"), std::string::npos);
  EXPECT_EQ(out.warnings[1].line, 2);
}

TEST(PolicyShow, LinesEndWithSpaceThenNewline) {
  Result<Policy> p = BuiltinPolicy("tcb");
  ASSERT_TRUE(p.ok());
  std::string shown = ShowPolicy(*p);
  size_t lines = 0;
  for (size_t pos = shown.find('\n'); pos != std::string::npos; pos = shown.find('\n', pos + 1)) {
    ++lines;
    EXPECT_EQ(shown[pos - 1], ' ');
  }
  EXPECT_EQ(lines, 20u);
  // Round trip: the read-back parses to the same read-back.
  Result<Policy> again = ParsePolicy(shown, "again");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ShowPolicy(*again), shown);
}

TEST(PolicyHooks, NamesAndAliases) {
  EXPECT_EQ(*ImaHookByName("FILE_MMAP"), ImaHook::kMmapCheck);
  EXPECT_EQ(*ImaHookByName("PATH_CHECK"), ImaHook::kFileCheck);
  EXPECT_FALSE(ImaHookByName("POST_SETATTR").ok());
  EXPECT_EQ(*ImaHookByName("POST_SETATTR", true), ImaHook::kPostSetattr);
  EXPECT_EQ(ImaHookName(ImaHook::kSetxattrCheck), "SETXATTR_CHECK");
}

}  // namespace
}  // namespace lim::ima

namespace lim::ima {
namespace {

// The one MAY_* table: every name parses to its bit and shows back, and MaskText joins them.
TEST(MayNames, ParseShowAndJoin) {
  for (const auto& n : may::kNames) {
    std::string rule = "measure func=FILE_CHECK mask=^" + std::string(n.name);
    auto p = ParsePolicy(rule + "\n", "t");
    ASSERT_TRUE(p.ok()) << p.status().message();
    ASSERT_EQ(p->rules.size(), 1u);
    EXPECT_EQ(p->rules[0].mask, n.bit);
    EXPECT_NE(ShowRule(p->rules[0]).find("mask=^" + std::string(n.name)), std::string::npos);
  }
  EXPECT_EQ(may::MaskText(may::kExec | may::kRead, "none"), "MAY_EXEC|MAY_READ");
  EXPECT_EQ(may::MaskText(0, "none"), "none");
}

}  // namespace
}  // namespace lim::ima
