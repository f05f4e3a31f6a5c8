// lim verify / boot-aggregate reading PCRs straight from a TPM (a private swtpm per test).
#include <gtest/gtest.h>

#include <filesystem>

#include "base/file.h"
#include "crypto/digest.h"
#include "ima/list_reader.h"
#include "ima/replay.h"
#include "ima/synthetic_list.h"
#include "tests/testing.h"
#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace lim {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

std::string Lim(const std::string& args) { return ShellQuote(lim::testing::LimBinary()) + " " + args; }

// Extends PCR 10 of the TPM with every entry of list, each bank with its own digest, as
// the kernel does.
void ExtendList(tpm::Tpm& t, const Bytes& list) {
  auto banks = t.AllocatedBanks();
  ASSERT_TRUE(banks.ok()) << banks.status().message();
  auto reader = ima::ListReader::FromBytes(list);
  ASSERT_TRUE(reader.ok());
  std::vector<std::pair<uint16_t, ima::BankDigester>> digesters;
  for (uint16_t alg : *banks) {
    auto a = HashAlgoByTpmAlg(alg);
    ASSERT_TRUE(a.ok());
    digesters.emplace_back(alg, std::move(ima::BankDigester::Create(*a, (*reader)->bank(), ima::ReplayMode::kPerBank)).value());
  }
  ima::Entry e;
  uint8_t d[64];
  while (*(*reader)->Next(&e)) {
    std::map<uint16_t, Bytes> digests;
    for (auto& [alg, dig] : digesters) {
      dig.Compute(e, d);
      digests[alg] = Bytes(d, d + dig.bank().size);
    }
    ASSERT_TRUE(t.Extend(static_cast<int>(e.pcr), digests).ok());
  }
}

// A swtpm of this test's own: PCR 10 must start at zero, whatever other tests in the same
// process extended into the shared one.
class OwnSwtpm {
 public:
  OwnSwtpm() {
    dir_ = lim::testing::MakeTempDir();
    config_.state_dir = dir_ + "/state";
    config_.run_dir = dir_ + "/run";
    config_.create_ek_cert = false;
    config_.die_with_parent = true;
    auto pid = tpm::SwtpmStart(config_);
    started_ = pid.ok();
    EXPECT_TRUE(started_) << pid.status().message();
  }
  ~OwnSwtpm() {
    if (started_) {
      EXPECT_TRUE(tpm::SwtpmStop(config_).ok());
    }
    std::filesystem::remove_all(dir_);
  }
  std::string tcti() const { return tpm::SwtpmTcti(config_); }

 private:
  std::string dir_;
  tpm::SwtpmConfig config_;
  bool started_ = false;
};

TEST(VerifyTpmTest, ListExtendedIntoSwtpmVerifiesWithLimAndEvmctl) {
  OwnSwtpm swtpm;
  std::string tcti = swtpm.tcti();
  ima::SyntheticListSpec spec;
  spec.entries = 60;
  spec.violation_every = 13;
  spec.buf_every = 7;
  auto l = ima::MakeSyntheticList(spec);
  {
    auto t = tpm::OpenTpm(tcti);
    ASSERT_TRUE(t.ok()) << t.status().message();
    ExtendList(**t, l->list);
  }
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", l->list).ok());
  auto v = RunCommand(Lim("verify " + dir + "/list --tpm " + ShellQuote(tcti)));
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("unattested: 0"), std::string::npos) << v.out;
  // evmctl agrees, with the PCRs as tpm2_pcrread prints them.
  auto p1 = RunCommand("TPM2TOOLS_TCTI=" + ShellQuote(tcti) + " tpm2_pcrread sha1:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 -o " + dir + "/p1.bin");
  ASSERT_EQ(p1.exit_code, 0) << p1.err;
  auto v1 = RunCommand(Lim("verify " + dir + "/list --pcrs sha1," + dir + "/p1.bin"));
  EXPECT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  auto read = PcrSet::Load("sha1," + dir + "/p1.bin");
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_TRUE(WriteFileBytes(dir + "/p1.txt", AsBytes(read->ToEvmctlText("sha1"))).ok());
  auto evm = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=sha1 --pcrs sha1," + dir + "/p1.txt " +
                        dir + "/list");
  EXPECT_EQ(evm.exit_code, 0) << evm.out << evm.err;
  // One more extend the list does not explain: no prefix matches any more.
  {
    auto t = tpm::OpenTpm(tcti);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(tpm::ExtendWithData(**t, 10, AsBytes("not in the list")).ok());
  }
  auto bad = RunCommand(Lim("verify " + dir + "/list --tpm " + ShellQuote(tcti)));
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.err.find("no prefix of the list matches"), std::string::npos) << bad.err;
  // Without a TPM the error says so, and exits 2.
  auto none = RunCommand(Lim("verify " + dir + "/list --tpm swtpm:path=" + dir + "/nothing"));
  EXPECT_EQ(none.exit_code, 2);
  // boot-aggregate from the same TPM: PCRs 0-9 are all zero on a fresh swtpm.
  auto agg = RunCommand(Lim("boot-aggregate --bank sha256 --tpm " + ShellQuote(tcti)));
  ASSERT_EQ(agg.exit_code, 0) << agg.err;
  EXPECT_EQ(agg.out, "sha256:" + ToHex(*Digest(Sha256Algo(), Bytes(320, 0))) + "\n");
}

}  // namespace
}  // namespace lim
