// Tests of sealing to a PCR policy against a private swtpm: round trip, the refusal after a
// policy PCR moved (naming it), tpm2-tools unsealing lim's blob (so it is a standard sealed
// object under the standard primary), the file form and its hostile variants.
#include "tpm/seal.h"

#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <string>

#include "base/file.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"
#include "tpm/tpm.h"

namespace lim::tpm {
namespace {

using lim::testing::MakeTempDir;
using lim::testing::ShellQuote;
using testing::Tpm2Tools;

using testing::LoadedTpmHandles;
using testing::OpenTestTpm;

const std::string kSecret = "0123456789abcdef0123456789abcdef";

TEST(SealTest, SealsUnsealsAndTpm2ToolsUnsealsTheSameBlob) {
  auto tpm = OpenTestTpm();
  ASSERT_TRUE(tpm);
  auto sel = ParsePcrSelection("sha256:0,7");
  ASSERT_TRUE(sel.ok());
  auto sealed = tpm->Seal(AsBytes(kSecret), *sel);
  ASSERT_TRUE(sealed.ok()) << sealed.status().message();
  EXPECT_EQ(sealed->values_at_seal.at(TPM2_ALG_SHA256).size(), 2u);

  // Through the file form, as limd reads it.
  std::string text = EncodeSealedObject(*sealed);
  EXPECT_EQ(text.find(ToHex(AsBytes(kSecret))), std::string::npos) << "the secret is in the file in clear";
  auto decoded = DecodeSealedObject(text, "sealed.json");
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(decoded->public_area, sealed->public_area);
  EXPECT_EQ(decoded->pcrs, *sel);

  auto tpm2 = OpenTestTpm();  // another run
  ASSERT_TRUE(tpm2);
  auto key = tpm2->Unseal(*decoded);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(AsChars(key->view()), kSecret);

  EXPECT_EQ(LoadedTpmHandles(), "") << "a transient object or session was left loaded";

  // tpm2-tools: the same primary from `tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb`,
  // a policy session with PolicyPCR, TPM2_Unseal.
  std::string dir = MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/seal.pub", sealed->public_area).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/seal.priv", sealed->private_area).ok());
  auto r = Tpm2Tools("cd " + ShellQuote(dir) +
                     " && tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb -c prim.ctx"
                     " && tpm2_load -Q -C prim.ctx -u seal.pub -r seal.priv -c seal.ctx && tpm2_flushcontext -t"
                     " && tpm2_startauthsession --policy-session -S s.ctx && tpm2_policypcr -Q -S s.ctx -l sha256:0,7"
                     " && tpm2_unseal -c seal.ctx -p session:s.ctx -o out.bin"
                     " ; rc=$?; tpm2_flushcontext -t; tpm2_flushcontext -s; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto theirs = ReadFileBytes(dir + "/out.bin");
  ASSERT_TRUE(theirs.ok());
  EXPECT_EQ(AsChars(*theirs), kSecret);
}

TEST(SealTest, UnsealAfterExtendingAPolicyPcrFailsNamingIt) {
  auto tpm = OpenTestTpm();
  ASSERT_TRUE(tpm);
  // PCR 23 (resettable by software, and no other test's) stands for a boot PCR.
  auto sel = ParsePcrSelection("sha256:7,23");
  ASSERT_TRUE(sel.ok());
  auto sealed = tpm->Seal(AsBytes(kSecret), *sel);
  ASSERT_TRUE(sealed.ok()) << sealed.status().message();
  ASSERT_TRUE(tpm->Unseal(*sealed).ok());
  ASSERT_TRUE(ExtendWithData(*tpm, 23, AsBytes("another kernel")).ok());
  auto key = tpm->Unseal(*sealed);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kMismatch);
  const std::string& m = key.status().message();
  EXPECT_NE(m.find("the TPM refuses to unseal: the policy PCRs (sha256:7,23) no longer hold the values they had at sealing"),
            std::string::npos) << m;
  EXPECT_NE(m.find("sha256:23 (sealed "), std::string::npos) << m;
  EXPECT_EQ(m.find("sha256:7 ("), std::string::npos) << m;  // PCR 7 did not move
  EXPECT_EQ(LoadedTpmHandles(), "") << "a failed unseal left something loaded";
  // Resetting PCR 23 (allowed for it, never for PCRs 0-15) brings the key back.
  ASSERT_EQ(Tpm2Tools("tpm2_pcrreset 23").exit_code, 0);
  EXPECT_TRUE(tpm->Unseal(*sealed).ok());
}

TEST(SealTest, RefusesBadInput) {
  auto tpm = OpenTestTpm();
  ASSERT_TRUE(tpm);
  PcrSelection sel = {{TPM2_ALG_SHA256, {0}}};
  EXPECT_EQ(tpm->Seal({}, sel).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tpm->Seal(Bytes(129, 1), sel).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tpm->Seal(AsBytes("k"), {}).status().code(), StatusCode::kInvalidArgument);
  auto sw = OpenSoftwareTpm();
  auto s = sw->Seal(AsBytes("k"), sel);
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(s.status().message().find("cannot seal"), std::string::npos);
  // A blob from another TPM (here: a corrupted private part) fails to load, saying why.
  auto sealed = tpm->Seal(AsBytes("k"), sel);
  ASSERT_TRUE(sealed.ok());
  sealed->private_area[10] ^= 0xff;
  auto u = tpm->Unseal(*sealed);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("was it sealed on this TPM"), std::string::npos) << u.status().message();
}

TEST(SealFileTest, SelectionsAndHostileFiles) {
  auto sel = ParsePcrSelection("sha256:0,7+sha1:0-2");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(SelectionToString(*sel), "sha256:0,7+sha1:0,1,2");
  for (const char* bad : {"", "0,7", "sha256:", "sha256:24", "md5:0", "sha256:0+sha256:1"}) {
    EXPECT_FALSE(ParsePcrSelection(bad).ok()) << bad;
  }
  SealedObject s;
  s.pcrs = *sel;
  // A TPM2B_PUBLIC of a keyed-hash object, marshalled by tpm2-tss.
  TPM2B_PUBLIC pub{};
  pub.publicArea.type = TPM2_ALG_KEYEDHASH;
  pub.publicArea.nameAlg = TPM2_ALG_SHA256;
  pub.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
  s.public_area.resize(sizeof pub);
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, s.public_area.data(), s.public_area.size(), &off), TSS2_RC_SUCCESS);
  s.public_area.resize(off);
  s.private_area = {0x00, 0x02, 0xaa, 0xbb};
  std::string good = EncodeSealedObject(s);
  ASSERT_TRUE(DecodeSealedObject(good, "f").ok()) << DecodeSealedObject(good, "f").status().message();
  auto err = [](const std::string& text) {
    auto r = DecodeSealedObject(text, "key.sealed");
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err("not json").find("key.sealed: not a sealed key file"), std::string::npos);
  EXPECT_NE(err("{}").find("no \"format\""), std::string::npos);
  EXPECT_NE(err(R"({"format":"other"})").find("format 'other'"), std::string::npos);
  std::string bad_hex = good;
  bad_hex.replace(bad_hex.find("\"private\": \"") + 12, 2, "zz");
  EXPECT_NE(err(bad_hex).find("private"), std::string::npos);
  std::string short_priv = good;
  short_priv.replace(short_priv.find("\"private\": \"") + 12, 8, "0009aabb");
  EXPECT_NE(err(short_priv).find("not a TPM2B_PRIVATE"), std::string::npos);
  std::string bad_pcrs = good;
  bad_pcrs.replace(bad_pcrs.find("sha256:0,7"), 10, "sha256:0,99");
  EXPECT_NE(err(bad_pcrs).find("bad PCR index '99'"), std::string::npos);
  auto dir = MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/big", Bytes(kMaxSealedFileSize + 1, '{')).ok());
  EXPECT_FALSE(ReadSealedFile(dir + "/big").ok());
}

}  // namespace
}  // namespace lim::tpm
