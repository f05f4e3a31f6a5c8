// CLI tests of `lim tpm …` against a private swtpm, cross-checked with tpm2-tools.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"
#include <tss2/tss2_tpm2_types.h>

namespace lim {
namespace {

using lim::testing::Fixture;
using lim::testing::LimBinary;
using lim::testing::MakeTempDir;
using lim::testing::Run;
using lim::testing::ShellQuote;
using tpm::testing::ParseTpm2PcrRead;
using tpm::testing::SwtpmTctiForTests;
using tpm::testing::Tpm2Tools;

lim::testing::CommandResult Lim(const std::string& args) {
  return lim::testing::Run(LimBinary() + " " + args + " --tpm " + ShellQuote(SwtpmTctiForTests()));
}
lim::testing::CommandResult LimNoTpm(const std::string& args) { return lim::testing::Run(LimBinary() + " " + args); }

TEST(CmdTpmTest, PcrreadMatchesTpm2PcrRead) {
  auto r = Lim("tpm extend 10 --data /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lim = Lim("tpm pcrread --pcrs 0-23");
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  EXPECT_NE(lim.err.find("not a hardware root of trust"), std::string::npos);
  auto ours = tpm::PcrValuesFromJson(lim.out);
  ASSERT_TRUE(ours.ok()) << lim.out;
  auto theirs = Tpm2Tools("tpm2_pcrread sha1:all+sha256:all+sha384:all+sha512:all");
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  EXPECT_EQ(*ours, ParseTpm2PcrRead(theirs.out));
  auto one = Lim("tpm pcrread --pcrs 10 --bank sha256");
  ASSERT_EQ(one.exit_code, 0);
  // PCR 10 = sha256(0^32 || sha256("")) (computed with Python hashlib).
  EXPECT_EQ(one.out, "{\"sha256\":{\"10\":\"1c9ecec90e28d2461650418635878a5c91e49f47586ecf75f2b0cbb94e897112\"}}\n")
      << one.out;
}

TEST(CmdTpmTest, ExtendWithDigestsNeedsEveryBank) {
  std::string z1(40, '1'), z256(64, '2'), z384(96, '3'), z512(128, '4');
  auto bad = Lim("tpm extend 11 --digest sha256:" + z256);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("no digest for allocated bank sha1"), std::string::npos) << bad.err;
  auto both = Lim("tpm extend 11 --data /dev/null --digest sha256:" + z256);
  EXPECT_EQ(both.exit_code, 2);
  auto ok = Lim("tpm extend 11 --digest sha1:" + z1 + " --digest sha256:" + z256 + " --digest sha384:" + z384 +
                " --digest sha512:" + z512);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto theirs = Tpm2Tools("tpm2_pcrread sha1:11");
  auto v = ParseTpm2PcrRead(theirs.out);
  auto lim = Lim("tpm pcrread --pcrs 11 --bank sha1");
  EXPECT_EQ(lim.out, "{\"sha1\":{\"11\":\"" + ToHex(v[TPM2_ALG_SHA1][11]) + "\"}}\n");
  EXPECT_NE(ToHex(v[TPM2_ALG_SHA1][11]), std::string(40, '0'));
}

TEST(CmdTpmTest, AkQuoteCheckquoteAndTpm2CheckQuote) {
  std::string d = MakeTempDir();
  auto ak = Lim("tpm ak create --out " + d + "/ak");
  ASSERT_EQ(ak.exit_code, 0) << ak.err;
  for (const char* f : {"ak.pub.pem", "ak.pub", "ak.name", "ak.priv", "ak.json"}) {
    struct stat st {};
    EXPECT_EQ(::stat((d + "/ak/" + f).c_str(), &st), 0) << f;
  }
  auto check = LimNoTpm("tpm ak check --ak " + d + "/ak/ak.pub");
  EXPECT_EQ(check.exit_code, 0) << check.err;
  auto q = Lim("tpm quote --nonce 1234abcd --pcrs 0-10 --bank sha256 --ak " + d + "/ak --out " + d + "/q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  std::string files = " --msg " + d + "/q/quote.msg --sig " + d + "/q/quote.sig --pcrs " + d + "/q/quote.pcrs";
  auto c = LimNoTpm("tpm checkquote --ak " + d + "/ak/ak.pub.pem" + files + " --nonce 1234abcd");
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("quote: ok"), std::string::npos);
  EXPECT_NE(c.out.find("resetCount: "), std::string::npos);
  EXPECT_NE(c.out.find("restartCount: "), std::string::npos);
  auto t = lim::testing::Run("tpm2_checkquote -u " + d + "/ak/ak.pub.pem -m " + d + "/q/quote.msg -s " + d + "/q/quote.sig -f " + d +
               "/q/quote.pcrs -q 1234abcd -g sha256");
  EXPECT_EQ(t.exit_code, 0) << t.err;

  auto wrong_nonce = LimNoTpm("tpm checkquote --ak " + d + "/ak/ak.pub.pem" + files + " --nonce 1234abce");
  EXPECT_EQ(wrong_nonce.exit_code, 1);
  EXPECT_NE(wrong_nonce.err.find("nonce"), std::string::npos) << wrong_nonce.err;

  // An altered PCR value (the JSON form of the PCRs).
  auto json = ReadFileText(d + "/q/quote.pcrs.json");
  ASSERT_TRUE(json.ok());
  auto values = tpm::PcrValuesFromJson(*json);
  ASSERT_TRUE(values.ok());
  (*values)[TPM2_ALG_SHA256][7][0] ^= 1;
  ASSERT_TRUE(WriteFileBytes(d + "/altered.json", AsBytes(tpm::PcrValuesToJson(*values))).ok());
  auto altered = LimNoTpm("tpm checkquote --ak " + d + "/ak/ak.pub.pem --msg " + d + "/q/quote.msg --sig " + d +
                          "/q/quote.sig --pcrs " + d + "/altered.json --nonce 1234abcd");
  EXPECT_EQ(altered.exit_code, 1);
  EXPECT_NE(altered.err.find("pcr-digest"), std::string::npos) << altered.err;

  // A different AK.
  auto ak2 = Lim("tpm ak create --out " + d + "/ak2");
  ASSERT_EQ(ak2.exit_code, 0) << ak2.err;
  auto other = LimNoTpm("tpm checkquote --ak " + d + "/ak2/ak.pub.pem" + files + " --nonce 1234abcd");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("signature"), std::string::npos) << other.err;

  // A truncated message.
  auto msg = ReadFileBytes(d + "/q/quote.msg");
  ASSERT_TRUE(msg.ok());
  ASSERT_TRUE(WriteFileBytes(d + "/short.msg", ByteView(msg->data(), msg->size() - 10)).ok());
  auto trunc = LimNoTpm("tpm checkquote --ak " + d + "/ak/ak.pub.pem --msg " + d + "/short.msg --sig " + d +
                        "/q/quote.sig --pcrs " + d + "/q/quote.pcrs --nonce 1234abcd");
  EXPECT_EQ(trunc.exit_code, 2);  // no TPMS_ATTEST: malformed input
  EXPECT_NE(trunc.err.find("malformed"), std::string::npos) << trunc.err;

  // A PCR file for another selection.
  auto q2 = Lim("tpm quote --nonce 1234abcd --pcrs 0-9 --bank sha256 --ak " + d + "/ak --out " + d + "/q2");
  ASSERT_EQ(q2.exit_code, 0) << q2.err;
  auto sel = LimNoTpm("tpm checkquote --ak " + d + "/ak/ak.pub.pem --msg " + d + "/q/quote.msg --sig " + d +
                      "/q/quote.sig --pcrs " + d + "/q2/quote.pcrs --nonce 1234abcd");
  EXPECT_EQ(sel.exit_code, 1);
  EXPECT_NE(sel.err.find("pcr-select"), std::string::npos) << sel.err;
}

TEST(CmdTpmTest, Tpm2QuotePassesLimCheckquote) {
  std::string d = MakeTempDir();
  auto r = Tpm2Tools(
      "cd " + ShellQuote(d) +
      " && tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null && tpm2_flushcontext -t"
      " && tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub.pem -f pem -n ak.name >/dev/null"
      " && tpm2_flushcontext -t && tpm2_flushcontext -s"
      " && tpm2_quote -c ak.ctx -l sha1:0,1,2,3,4,5,6,7+sha256:0,1,2,3,4,5,6,7,8,9,10 -q 00ff -m quote.msg -s quote.sig -o quote.pcrs -g sha256 >/dev/null"
      " ; rc=$?; tpm2_flushcontext -t; tpm2_flushcontext -s; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string files = " --ak " + d + "/ak.pub.pem --msg " + d + "/quote.msg --sig " + d + "/quote.sig --pcrs " + d + "/quote.pcrs";
  auto c = LimNoTpm("tpm checkquote" + files + " --nonce 00ff");
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("rsassa"), std::string::npos) << c.out;
  auto bad = LimNoTpm("tpm checkquote" + files + " --nonce 00fe");
  EXPECT_EQ(bad.exit_code, 1);
}

// The TPM 2.0 quote of go-attestation's windows_gcp_shielded_vm.json, given to the CLI as
// TPMT_PUBLIC + TPMS_ATTEST + TPMT_SIGNATURE with the log's PCRs as a PCR-set JSON.
TEST(CmdTpmTest, GoAttestationQuoteViaCli) {
  auto text = ReadFileText(Fixture("go-attestation/attest/testdata/windows_gcp_shielded_vm.json"));
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text);
  tpm::PcrValues values;
  for (const auto& p : j["Log"]["PCRs"]) {
    std::string b64 = p["Digest"];
    Bytes raw(b64.size());
    int n = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    ASSERT_GE(n, 20);
    raw.resize(20);
    values[TPM2_ALG_SHA1][p["Index"].get<int>()] = raw;
  }
  std::string d = MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(d + "/pcrs.json", AsBytes(tpm::PcrValuesToJson(values))).ok());
  std::string base = Fixture("go-attestation/derived/windows_gcp_shielded_vm.json.");
  auto c = LimNoTpm("tpm checkquote --ak " + base + "AK.Public.bin --msg " + base + "Quote.Quote.bin --sig " + base +
                    "Quote.Signature.bin --pcrs " + d + "/pcrs.json --nonce ''");
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("a610f27bc687ce906243287d832706036e79f6e1"), std::string::npos) << c.out;
}

TEST(CmdTpmTest, CredentialActivationRoundTrip) {
  std::string d = MakeTempDir();
  ASSERT_EQ(Lim("tpm ak create --out " + d + "/ak").exit_code, 0);
  auto ek = Lim("tpm ek --out " + d + "/ek");
  ASSERT_EQ(ek.exit_code, 0) << ek.err;
  auto mc = LimNoTpm("tpm makecredential --ek " + d + "/ek/ek.pub --name " + d + "/ak/ak.name --secret 00112233445566778899 --out " +
                     d + "/cred");
  ASSERT_EQ(mc.exit_code, 0) << mc.err;
  auto ac = Lim("tpm activatecredential --ak " + d + "/ak --credential " + d + "/cred");
  EXPECT_EQ(ac.exit_code, 0) << ac.err;
  EXPECT_EQ(ac.out, "00112233445566778899\n");
  // A credential made for another AK does not activate.
  ASSERT_EQ(Lim("tpm ak create --out " + d + "/ak2").exit_code, 0);
  auto mc2 = LimNoTpm("tpm makecredential --ek " + d + "/ek/ek.pub --name " + d + "/ak2/ak.name --secret 0011 --out " + d + "/cred2");
  ASSERT_EQ(mc2.exit_code, 0);
  auto bad = Lim("tpm activatecredential --ak " + d + "/ak --credential " + d + "/cred2");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("TPM2_ActivateCredential"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out, "");
}

class SwtpmCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    flags_ = " --state " + dir_ + "/state --run-dir " + dir_ + "/run";
  }
  void TearDown() override {
    // Never leave a swtpm behind: kill by the pid it wrote, if it is still there.
    auto pid = ReadFileText(dir_ + "/run/swtpm.pid");
    if (pid.ok()) {
      pid_t p = static_cast<pid_t>(std::atoi(pid->c_str()));
      if (p > 0 && ::kill(p, 0) == 0) ::kill(p, SIGKILL);
    }
  }
  std::string dir_, flags_;
};

TEST_F(SwtpmCommandTest, StartStatusStopWithEkCertificate) {
  auto start = LimNoTpm("tpm swtpm start" + flags_);
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_NE(start.out.find("not a hardware root of trust"), std::string::npos);
  std::string tcti = "swtpm:path=" + dir_ + "/run/sock";
  EXPECT_NE(start.out.find(tcti), std::string::npos) << start.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto status = LimNoTpm("tpm swtpm status" + flags_);
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("ek certificate: yes"), std::string::npos) << status.out;
  // The EK certificate NV index (TCG: 0x01c00002 RSA) is there, and the TPM answers.
  auto nv = lim::testing::Run("TPM2TOOLS_TCTI=" + ShellQuote(tcti) + " timeout 20 tpm2_getcap handles-nv-index");
  EXPECT_NE(nv.out.find("0x1C00002"), std::string::npos) << nv.out << nv.err;
  auto info = lim::testing::Run(LimBinary() + " tpm info --tpm " + ShellQuote(tcti));
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("kind: swtpm"), std::string::npos);
  EXPECT_NE(info.out.find("banks: sha1 sha256"), std::string::npos) << info.out;
  auto stop = LimNoTpm("tpm swtpm stop" + flags_);
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  auto after = LimNoTpm("tpm swtpm status" + flags_);
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_NE(after.out.find("not running"), std::string::npos);
}

TEST(CmdTpmNoTpmTest, MissingTpmFailsWithHowToStartSwtpm) {
  auto r = lim::testing::Run("LIM_TCTI= " + LimBinary() + " tpm pcrread --tpm device:/dev/lim-no-such-tpm");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("lim tpm swtpm start"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  auto bad = LimNoTpm("tpm checkquote --ak /nonexistent --msg x --sig y --pcrs z --nonce 00");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("/nonexistent"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace lim
