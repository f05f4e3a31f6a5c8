#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/testing.h"

namespace lim::testing {
namespace {

const char* kLtp = "ltp/testcases/kernel/security/integrity/ima/datafiles/";

// The lim binary: LIM_BIN, else the `lim` built beside this test executable (ctest's
// ENVIRONMENT list currently passes only its first entry).
std::string LimPath() {
  if (std::getenv("LIM_BIN")) return LimBinary();
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return LimBinary();
  std::string exe(self, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/')) + "/lim";
}

std::string Lim(const std::string& args) { return ShellQuote(LimPath()) + " " + args; }

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = MakeTempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(CmdPolicy, CheckAcceptsFixturePolicies) {
  for (const char* f : {"ima_policy/measure.policy", "ima_keys/keycheck.policy", "ima_selinux/selinux.policy"}) {
    CommandResult r = lim::testing::Run(Lim("policy check " + ShellQuote(Fixture(std::string(kLtp) + f))));
    EXPECT_EQ(r.exit_code, 0) << f << r.out << r.err;
    EXPECT_NE(r.out.find("accepted"), std::string::npos);
  }
  CommandResult r = lim::testing::Run(Lim("policy check " + ShellQuote(Fixture("rust-keylime/ima-policy/ima-policy"))));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("accepted: 1018 rules"), std::string::npos) << r.out;
}

TEST(CmdPolicy, CheckRejectsLtpInvalidPolicyAtLine13) {
  std::string f = Fixture(std::string(kLtp) + "ima_policy/measure.policy-invalid");
  CommandResult r = lim::testing::Run(Lim("policy check " + ShellQuote(f)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(f + ":13:1: unknown keyword 'dnt_measure'\n"), std::string::npos) << r.out;
}

TEST(CmdPolicy, CheckReportsEveryBadRuleAndWarnings) {
  std::string f = WriteTemp("p", "measure\nmeasure pcr=99\n# ok\nappraise func=KEY_CHECK\nappraise appraise_flag=x\n");
  CommandResult r = lim::testing::Run(Lim("policy check " + ShellQuote(f)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(f + ":2:9: pcr= needs a PCR index 0..63"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(f + ":4:1: func=KEY_CHECK only allows measure and dont_measure"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(f + ":5:10: warning: appraise_flag="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rejected: 2 bad rules"), std::string::npos) << r.out;
}

TEST(CmdPolicy, CheckUnreadableFileIsBadInput) {
  CommandResult r = lim::testing::Run(Lim("policy check /nonexistent/policy"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("lim: ", 0), 0u) << r.err;
}

TEST(CmdPolicy, ShowBuiltinTcbIsTheKernelPolicyFile) {
  CommandResult r = lim::testing::Run(Lim("policy show --builtin tcb"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string expected =
      "dont_measure fsmagic=0x9fa0 \n"
      "dont_measure fsmagic=0x62656572 \n"
      "dont_measure fsmagic=0x64626720 \n"
      "dont_measure func=FILE_CHECK fsmagic=0x1021994 \n"
      "dont_measure fsmagic=0x1cd1 \n"
      "dont_measure fsmagic=0x42494e4d \n"
      "dont_measure fsmagic=0x73636673 \n"
      "dont_measure fsmagic=0xf97cff8c \n"
      "dont_measure fsmagic=0x43415d53 \n"
      "dont_measure fsmagic=0x27e0eb \n"
      "dont_measure fsmagic=0x63677270 \n"
      "dont_measure fsmagic=0x6e736673 \n"
      "dont_measure fsmagic=0xde5e81e4 \n"
      "measure func=MMAP_CHECK mask=MAY_EXEC \n"
      "measure func=BPRM_CHECK mask=MAY_EXEC \n"
      "measure func=FILE_CHECK mask=^MAY_READ euid=0 \n"
      "measure func=FILE_CHECK mask=^MAY_READ uid=0 \n"
      "measure func=MODULE_CHECK \n"
      "measure func=FIRMWARE_CHECK \n"
      "measure func=POLICY_CHECK \n";
  EXPECT_EQ(r.out, expected);
}

TEST(CmdPolicy, ShowOtherBuiltins) {
  CommandResult r = lim::testing::Run(Lim("policy show --builtin appraise_tcb"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("dont_appraise fsmagic=0x858458f6 \n"), std::string::npos);
  EXPECT_NE(r.out.find("appraise func=POLICY_CHECK appraise_type=imasig \nappraise fowner=0 \n"), std::string::npos);
  r = lim::testing::Run(Lim("policy show --builtin secure_boot"));
  EXPECT_EQ(r.out,
            "appraise func=MODULE_CHECK appraise_type=imasig \n"
            "appraise func=FIRMWARE_CHECK appraise_type=imasig \n"
            "appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig \n"
            "appraise func=POLICY_CHECK appraise_type=imasig \n");
  r = lim::testing::Run(Lim("policy show --builtin critical_data"));
  EXPECT_EQ(r.out, "measure func=CRITICAL_DATA \n");
  r = lim::testing::Run(Lim("policy show --builtin ima_tcb"));
  EXPECT_NE(r.out.find("measure func=FILE_CHECK mask=MAY_READ uid=0 \nmeasure func=MODULE_CHECK \n"), std::string::npos);
  r = lim::testing::Run(Lim("policy show --builtin nonsense"));
  EXPECT_EQ(r.exit_code, 2);
}

TEST(CmdPolicy, ShowFileIsCanonical) {
  CommandResult r = lim::testing::Run(Lim("policy show " + ShellQuote(Fixture(std::string(kLtp) + "ima_policy/measure.policy"))));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("dont_measure func=FILE_CHECK fsmagic=0x1021994 \ndont_measure fsmagic=0x73636673 \n"
                         "measure func=MMAP_CHECK mask=MAY_EXEC \n"),
            std::string::npos)
      << r.out;
  r = lim::testing::Run(Lim("policy show " + ShellQuote(Fixture(std::string(kLtp) + "ima_policy/measure.policy-invalid"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("measure.policy-invalid:13:1:"), std::string::npos) << r.err;
}

TEST(CmdPolicy, ExplainMatchesTheContractExamples) {
  CommandResult r = lim::testing::Run(Lim("policy explain --builtin tcb --func BPRM_CHECK --mask MAY_EXEC --path /nonexistent/bin"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "measure: yes rule 15: measure func=BPRM_CHECK mask=MAY_EXEC\n"
            "appraise: no (no rule matched)\n"
            "audit: no (no rule matched)\n"
            "hash: no (no rule matched)\n");
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func FILE_CHECK --mask MAY_READ --path /nonexistent/f --fsmagic 0x1021994"));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n') + 1), "measure: no rule 4: dont_measure func=FILE_CHECK fsmagic=0x1021994\n");
}

TEST(CmdPolicy, ExplainSaysLimdDoesNotMeasureItsStateFiles) {
  std::string list = WriteTemp("binary_runtime_measurements", "x");
  std::string state = list.substr(0, list.rfind('/'));
  CommandResult r = lim::testing::Run(
      Lim("policy explain --builtin tcb --func FILE_CHECK --mask MAY_READ --path " + ShellQuote(list) + " --state " +
          ShellQuote(state)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("limd: not measured if limd wrote it: " + list + " is in limd's state directory " + state),
            std::string::npos)
      << r.out;
  // An exec of it, and a file elsewhere, are decided by the policy alone.
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func BPRM_CHECK --path " + ShellQuote(list) + " --state " +
                            ShellQuote(state)));
  EXPECT_EQ(r.out.find("limd:"), std::string::npos) << r.out;
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func FILE_CHECK --path /nonexistent/f --state " +
                            ShellQuote(state) + " -v"));
  EXPECT_EQ(r.out.find("limd: not measured"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: limd excludes the files it writes in its state directory " + state), std::string::npos)
      << r.out;
}

TEST(CmdPolicy, ExplainEuidNeedsCapSetuidForSavedUid) {
  std::string base = "policy explain --builtin tcb --func FILE_CHECK --mask MAY_READ --path /nonexistent/f "
                     "--fsmagic ext4 --uid 1000 --euid 1000 --suid 0";
  CommandResult r = lim::testing::Run(Lim(base));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "measure: no (no rule matched)");
  r = lim::testing::Run(Lim(base + " --cap-setuid"));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "measure: yes rule 16: measure func=FILE_CHECK mask=^MAY_READ euid=0");
}

TEST(CmdPolicy, ExplainFilePolicyWithLabelsKeyringsAndVerbose) {
  std::string f = WriteTemp("p",
                            "dont_measure obj_type=tmp_t\n"
                            "measure func=KEY_CHECK keyrings=.ima template=ima-buf pcr=11\n"
                            "measure func=FILE_CHECK mask=MAY_READ\n"
                            "appraise func=FILE_CHECK appraise_type=imasig\n");
  CommandResult r = lim::testing::Run(Lim("policy explain " + ShellQuote(f) + " --func FILE_CHECK --mask MAY_READ --path /x --label obj=system_u:object_r:tmp_t:s0"));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "measure: no rule 1: dont_measure obj_type=tmp_t");
  EXPECT_NE(r.out.find("appraise: yes rule 4: appraise func=FILE_CHECK appraise_type=imasig\n"), std::string::npos);
  r = lim::testing::Run(Lim("policy explain " + ShellQuote(f) + " --func FILE_CHECK --mask 'MAY_READ|MAY_WRITE' --path /x -v"));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "measure: no (no rule matched)");
  EXPECT_NE(r.out.find("rule 3: measure func=FILE_CHECK mask=MAY_READ: mask MAY_WRITE|MAY_READ != MAY_READ"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("flags: digsig_required check_blacklist file_appraise"), std::string::npos) << r.out;
  r = lim::testing::Run(Lim("policy explain " + ShellQuote(f) + " --func KEY_CHECK --path /x --keyring .ima -v"));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            "measure: yes rule 2: measure func=KEY_CHECK keyrings=.ima pcr=11 template=ima-buf");
  EXPECT_NE(r.out.find("pcr: 11\ntemplate: ima-buf\n"), std::string::npos) << r.out;
}

TEST(CmdPolicy, ExplainBadUsage) {
  CommandResult r = lim::testing::Run(Lim("policy explain --builtin tcb --func NOPE --path /x"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown IMA hook"), std::string::npos) << r.err;
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func FILE_CHECK --mask MAY_SWIM --path /x"));
  EXPECT_EQ(r.exit_code, 2);
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func FILE_CHECK --path /x --label color=blue"));
  EXPECT_EQ(r.exit_code, 2);
  r = lim::testing::Run(Lim("policy explain --builtin tcb --func FILE_CHECK --path /x --fsuuid nope"));
  EXPECT_EQ(r.exit_code, 2);
}

// `lim policy learn`: a known-good list becomes a runtime policy, native or keylime.
TEST(PolicyLearnCommandTest, LearnsEveryFileOfAList) {
  std::string list = Fixture("ibmtss/utils/imatest.log");
  CommandResult n = lim::testing::Run(Lim("policy learn " + ShellQuote(list)));
  ASSERT_EQ(n.exit_code, 0) << n.err;
  EXPECT_NE(n.out.find("\"lim_runtime_policy\": 1"), std::string::npos) << n.out;
  EXPECT_NE(n.err.find("learned "), std::string::npos) << n.err;
  std::string out = MakeTempDir() + "/keylime.json";
  CommandResult k = lim::testing::Run(Lim("policy learn --format keylime -o " + out + " " + ShellQuote(list)));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  std::string text = Slurp(out);
  EXPECT_NE(text.find("\"ima\""), std::string::npos) << text;  // keylime refuses a policy without it
  EXPECT_NE(text.find("\"log_hash_alg\""), std::string::npos);
  CommandResult bad = lim::testing::Run(Lim("policy learn /nonexistent/list"));
  EXPECT_EQ(bad.exit_code, 2);
}

// `lim policy learn-boot`: a known-good firmware log becomes the "boot" part, alone or added
// to a policy learned from the list.
TEST(PolicyLearnCommandTest, LearnBootAddsTheBootComponentsOfAnEventLog) {
  std::string log = Fixture("keylime/test/data/create-mb-policy/binary_bios_measurements-secureboot");
  CommandResult b = lim::testing::Run(Lim("policy learn-boot " + ShellQuote(log)));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.out.find("\"boot\""), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("\"secure_boot\": true"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("219b8b53c54951cd07a580622e384391bbd9e113448a12ad319903fcafb81e79"), std::string::npos);
  EXPECT_NE(b.err.find("secure_boot required"), std::string::npos) << b.err;
  std::string dir = MakeTempDir();
  CommandResult n = lim::testing::Run(Lim("policy learn -o " + dir + "/p.json " + ShellQuote(Fixture("ibmtss/utils/imatest.log"))));
  ASSERT_EQ(n.exit_code, 0) << n.err;
  CommandResult m = lim::testing::Run(Lim("policy learn-boot --no-secure-boot --policy " + dir + "/p.json -o " + dir +
                                          "/q.json " + ShellQuote(log)));
  ASSERT_EQ(m.exit_code, 0) << m.err;
  std::string merged = Slurp(dir + "/q.json");
  EXPECT_NE(merged.find("\"paths\""), std::string::npos);
  EXPECT_NE(merged.find("\"secure_boot\": false"), std::string::npos) << merged;
  CommandResult bogus = lim::testing::Run(
      Lim("policy learn-boot " + ShellQuote(Fixture("keylime/test/data/create-mb-policy/binary_bios_measurements-bogus"))));
  EXPECT_EQ(bogus.exit_code, 2) << bogus.err;
  CommandResult bank = lim::testing::Run(Lim("policy learn-boot --bank nope " + ShellQuote(log)));
  EXPECT_EQ(bank.exit_code, 2) << bank.err;
}

}  // namespace
}  // namespace lim::testing
