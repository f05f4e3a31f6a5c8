#include "attest/enroll.h"

#include <gtest/gtest.h>

#include "attest/attest_test_util.h"
#include "base/file.h"
#include "tests/testing.h"
#include "tpm/key.h"
#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace lim::attest {
namespace {

using Sh = lim::testing::CommandResult;
Sh Sh_(const std::string& c) { return lim::testing::Run(c); }
using lim::testing::ShellQuote;

// A private swtpm manufactured by swtpm_setup with EK certificates from a private local CA
// (swtpm_setup.conf and swtpm-localca.conf in the test's own directory: no system state).
class EnrollTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(lim::testing::MakeTempDir());
    const std::string& d = *dir_;
    ASSERT_TRUE(WriteFileBytes(d + "/swtpm_setup.conf",
                               AsBytes("create_certs_tool = /usr/bin/swtpm_localca\n"
                                       "create_certs_tool_config = " + d + "/swtpm-localca.conf\n"
                                       "create_certs_tool_options = " + d + "/swtpm-localca.options\n"
                                       "active_pcr_banks = sha256\n")).ok());
    ASSERT_TRUE(WriteFileBytes(d + "/swtpm-localca.conf",
                               AsBytes("statedir = " + d + "/ca\nsigningkey = " + d + "/ca/signkey.pem\n"
                                       "issuercert = " + d + "/ca/issuercert.pem\ncertserial = " + d +
                                       "/ca/certserial\n")).ok());
    ASSERT_TRUE(WriteFileBytes(d + "/swtpm-localca.options",
                               AsBytes("--platform-manufacturer lim\n--platform-version 2.1\n--platform-model test\n"))
                    .ok());
    auto r = Sh_("mkdir -p " + d + "/ca " + d + "/state && timeout 60 swtpm_setup --tpm2 --tpmstate " + d +
                 "/state --config " + d + "/swtpm_setup.conf --create-ek-cert --overwrite 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // The trusted CAs: the local CA's root and its intermediate signing certificate.
    r = Sh_("mkdir -p " + d + "/cas && cp " + d + "/ca/*cert*.pem " + d + "/cas/");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    config_ = new tpm::SwtpmConfig;
    config_->state_dir = d + "/state";
    config_->run_dir = d + "/run";
    config_->create_ek_cert = false;
    config_->die_with_parent = true;
    auto pid = tpm::SwtpmStart(*config_);
    ASSERT_TRUE(pid.ok()) << pid.status().message();
  }
  static void TearDownTestSuite() {
    if (config_) {
      EXPECT_TRUE(tpm::SwtpmStop(*config_).ok());
    }
    delete config_;
    config_ = nullptr;
    delete dir_;
  }

  std::string Tools(const std::string& cmd) {
    auto r = Sh_("export TPM2TOOLS_TCTI=" + ShellQuote(tpm::SwtpmTcti(*config_)) + "; cd " + *dir_ +
                 " && timeout 60 sh -c " + ShellQuote(cmd));
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
    return r.out;
  }

  void SetUp() override {
    auto t = tpm::OpenTpm(tpm::SwtpmTcti(*config_));
    ASSERT_TRUE(t.ok()) << t.status().message();
    tpm_ = std::move(t).value();
    auto ek = tpm_->ReadEkPublic(tpm::EkType::kRsa);
    ASSERT_TRUE(ek.ok()) << ek.status().message();
    ek_ = *ek;
    auto ak = tpm_->CreateAk(tpm::EkType::kRsa, tpm::AkAlg::kEccP256);
    ASSERT_TRUE(ak.ok()) << ak.status().message();
    ak_ = *ak;
    // The RSA-2048 EK certificate (TCG EK Credential Profile NV index 0x01c00002).
    Tools("tpm2_nvread 0x01c00002 -C o -o ek_rsa.der");
    auto cert = ReadFileBytes(*dir_ + "/ek_rsa.der");
    ASSERT_TRUE(cert.ok());
    id_.agent_id = "host1";
    id_.ek_public = tpm::MarshalPublic2B(ek_);
    id_.ek_certificate = *cert;
    id_.ak_public = tpm::MarshalPublic2B(ak_.pub);
    options_.ca_dir = *dir_ + "/cas";
  }

  static std::string* dir_;
  static tpm::SwtpmConfig* config_;
  std::unique_ptr<tpm::Tpm> tpm_;
  TPMT_PUBLIC ek_{};
  tpm::AkKey ak_;
  Identity id_;
  EnrollOptions options_;
};
std::string* EnrollTest::dir_ = nullptr;
tpm::SwtpmConfig* EnrollTest::config_ = nullptr;

TEST_F(EnrollTest, GoodIdentityEnrollsThroughCredentialActivation) {
  auto checked = CheckIdentity(id_, options_);
  ASSERT_TRUE(checked.ok()) << checked.status().message();
  EXPECT_FALSE(checked->tofu);
  EXPECT_NE(checked->ek_issuer.find("swtpm-localca"), std::string::npos) << checked->ek_issuer;
  auto name = tpm::PublicName(ak_.pub);
  EXPECT_EQ(ToHex(checked->ak_name), ToHex(*name));
  Bytes secret;
  auto challenge = MakeChallenge(*checked, &secret);
  ASSERT_TRUE(challenge.ok()) << challenge.status().message();
  auto got = tpm_->ActivateCredential(ak_, challenge->id_object, challenge->secret);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(CheckChallengeResponse(secret, CredentialResponse{*got}).ok());
  EXPECT_FALSE(CheckChallengeResponse(secret, CredentialResponse{Bytes(32, 0)}).ok());
}

TEST_F(EnrollTest, UnknownCaIsRefused) {
  std::string other = lim::testing::MakeTempDir();
  auto r = Sh_("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + other +
               "/k.pem -out " + other + "/ca.pem -subj /CN=other-ca -days 1 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Sh_("rm " + other + "/k.pem");
  options_.ca_dir = other;
  auto checked = CheckIdentity(id_, options_);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find("does not chain"), std::string::npos) << checked.status().message();
}

TEST_F(EnrollTest, AkThatFailsActivationIsRefused) {
  // The challenge is for this AK's name; another AK of the same TPM tries to open it.
  auto checked = CheckIdentity(id_, options_);
  ASSERT_TRUE(checked.ok());
  Bytes secret;
  auto challenge = MakeChallenge(*checked, &secret);
  ASSERT_TRUE(challenge.ok());
  auto other = tpm_->CreateAk(tpm::EkType::kRsa, tpm::AkAlg::kEccP256);
  ASSERT_TRUE(other.ok());
  auto got = tpm_->ActivateCredential(*other, challenge->id_object, challenge->secret);
  Status st = got.ok() ? CheckChallengeResponse(secret, CredentialResponse{*got})
                       : Status::Mismatch(got.status().message());
  EXPECT_FALSE(st.ok());
}

TEST_F(EnrollTest, UnrestrictedSigningKeyOfTheSameTpmIsRefused) {
  // A real sign-only key in this TPM, but not restricted: it would sign anything, quotes too.
  Tools("tpm2_createprimary -C o -c prim.ctx >/dev/null && tpm2_create -C prim.ctx -G ecc -a "
        "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' -u free.pub -r free.priv >/dev/null; tpm2_flushcontext -t");
  auto pub = ReadFileBytes(*dir_ + "/free.pub");
  ASSERT_TRUE(pub.ok());
  id_.ak_public = *pub;
  auto checked = CheckIdentity(id_, options_);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find("not restricted"), std::string::npos) << checked.status().message();
  // And a key that can decrypt too.
  auto parsed = tpm::ParsePublic(tpm::MarshalPublic2B(ak_.pub));
  TPMT_PUBLIC both = *parsed;
  both.objectAttributes |= TPMA_OBJECT_DECRYPT;
  both.objectAttributes &= ~TPMA_OBJECT_SENSITIVEDATAORIGIN;
  Status st = CheckAkPublic(both);
  EXPECT_NE(st.message().find("can decrypt"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not sensitiveDataOrigin"), std::string::npos) << st.message();
}

TEST_F(EnrollTest, NoEkCertificateNeedsTrustOnFirstUse) {
  id_.ek_certificate.reset();
  auto refused = CheckIdentity(id_, options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("trust on first use"), std::string::npos);
  options_.allow_tofu = true;
  auto tofu = CheckIdentity(id_, options_);
  ASSERT_TRUE(tofu.ok()) << tofu.status().message();
  EXPECT_TRUE(tofu->tofu);
}

TEST_F(EnrollTest, CertificateOfAnotherKeyIsRefused) {
  auto ecc = tpm_->ReadEkPublic(tpm::EkType::kEcc);
  ASSERT_TRUE(ecc.ok());
  id_.ek_public = tpm::MarshalPublic2B(*ecc);  // the RSA EK's certificate stays
  auto checked = CheckIdentity(id_, options_);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find("not the EK public area"), std::string::npos);
  id_.ek_public = {1, 2, 3};
  EXPECT_FALSE(CheckIdentity(id_, options_).ok());
}

}  // namespace
}  // namespace lim::attest
