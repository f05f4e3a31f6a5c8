// CLI tests of `lim evm key seal|unseal` against a private swtpm.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/file.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"

namespace lim {
namespace {

using lim::testing::LimBinary;
using lim::testing::MakeTempDir;
using lim::testing::ShellQuote;
using tpm::testing::SwtpmTctiForTests;
using tpm::testing::Tpm2Tools;

lim::testing::CommandResult Lim(const std::string& args) {
  return lim::testing::Run(LimBinary() + " " + args + " --tpm " + ShellQuote(SwtpmTctiForTests()));
}

TEST(CmdEvmKeyTest, SealThenUnsealPrintsTheFingerprintNeverTheKey) {
  std::string dir = MakeTempDir();
  std::string key = dir + "/evm.key";
  const std::string secret = "an EVM key of 32 bytes, no more.";
  ASSERT_TRUE(WriteFileBytes(key, AsBytes(secret), 0600).ok());
  auto s = Lim("evm key seal --in " + key + " --pcrs sha256:0,7,23 -o " + dir + "/evm.sealed");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("sealed: 32-byte key sha256:"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("under PolicyPCR sha256:0,7,23"), std::string::npos) << s.out;
  EXPECT_NE(s.err.find("sealing to it proves nothing against root"), std::string::npos) << s.err;
  std::string fingerprint = s.out.substr(s.out.find("sha256:"), 23);
  auto sealed = ReadFileTextBounded(dir + "/evm.sealed", 1 << 16);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find(secret), std::string::npos);
  EXPECT_EQ(sealed->find(ToHex(AsBytes(secret))), std::string::npos);
  EXPECT_EQ(lim::testing::ModeOf(dir + "/evm.sealed") & 0777, 0600u);

  auto u = Lim("evm key unseal " + dir + "/evm.sealed");
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_NE(u.out.find("unsealed: 32-byte key " + fingerprint), std::string::npos) << u.out << " vs " << fingerprint;
  EXPECT_EQ(u.out.find(secret), std::string::npos);

  // A policy PCR moves: exit 1 (a check failed), naming the PCR.
  ASSERT_EQ(Tpm2Tools("tpm2_pcrextend 23:sha256=" + std::string(64, 'a')).exit_code, 0);
  auto moved = Lim("evm key unseal " + dir + "/evm.sealed");
  EXPECT_EQ(moved.exit_code, 1) << moved.err;
  EXPECT_NE(moved.err.find("no longer hold the values they had at sealing: sha256:23"), std::string::npos) << moved.err;
  ASSERT_EQ(Tpm2Tools("tpm2_pcrreset 23").exit_code, 0);
}

TEST(CmdEvmKeyTest, RefusesAKeyFileOthersCanRead) {
  std::string dir = MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/evm.key", AsBytes("k"), 0644).ok());
  ASSERT_EQ(chmod((dir + "/evm.key").c_str(), 0644), 0);
  auto s = Lim("evm key seal --in " + dir + "/evm.key -o " + dir + "/out");
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.err.find("mode 0644 lets group or others at it"), std::string::npos) << s.err;
  auto bad = Lim("evm key seal --in " + dir + "/evm.key --pcrs 0,7 -o " + dir + "/out");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("names no bank"), std::string::npos) << bad.err;
  auto missing = Lim("evm key unseal " + dir + "/nothing");
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace lim
