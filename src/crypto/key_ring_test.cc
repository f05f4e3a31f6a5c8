// Tests of KeyRing (directory of certificates), key ids from the SKID, and PrivateKey
// signatures verified by PublicKey. Keys and certificates are made with the openssl CLI.
#include "crypto/key_ring.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/private_key.h"
#include "tests/testing.h"

namespace lim {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;

class KeyRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    std::filesystem::create_directories(dir_ + "/keys");
    Sh("openssl genrsa -out rsa.key 2048 && "
       "openssl req -new -x509 -key rsa.key -subj /CN=one -days 2 -addext subjectKeyIdentifier=0102030405060708 -out one.pem && "
       "openssl ecparam -name prime256v1 -genkey -noout -out ec.key && "
       "openssl req -new -x509 -key ec.key -subj /CN=two -days 2 -out two.pem && "
       "cat one.pem two.pem > keys/bundle.pem && "
       "openssl req -new -x509 -key ec.key -subj /CN=three -days 2 -outform DER -out keys/three.der && "
       "echo junk > keys/junk.txt && cp one.pem keys/.hidden.pem && mkdir keys/sub && cp two.pem keys/sub/");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Sh(const std::string& cmd) {
    auto r = RunCommand("cd " + ShellQuote(dir_) + " && (" + cmd + ") 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::string dir_;
};

TEST_F(KeyRingTest, LoadsEveryCertificateAndReportsJunk) {
  auto ring = KeyRing::Load(dir_ + "/keys");
  ASSERT_TRUE(ring.ok()) << ring.status().message();
  ASSERT_EQ(ring->keys().size(), 3u);  // bundle (2) + DER; hidden file and subdirectory skipped
  EXPECT_EQ(ring->keys()[0].subject(), "CN=one");
  EXPECT_EQ(ring->keys()[0].key_id(), 0x05060708u);  // last 4 bytes of the SKID
  EXPECT_EQ(ring->keys()[0].description(), "rsa-2048");
  EXPECT_EQ(ring->keys()[1].description(), "ec-prime256v1");
  // Same key, two certificates with hash SKIDs: the same id.
  EXPECT_EQ(ring->keys()[1].key_id(), ring->keys()[2].key_id());
  ASSERT_EQ(ring->problems().size(), 1u);
  EXPECT_NE(ring->problems()[0].find("junk.txt"), std::string::npos) << ring->problems()[0];
  auto missing = KeyRing::Load(dir_ + "/nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto single = KeyRing::Load(dir_ + "/two.pem");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->keys().size(), 1u);
}

TEST_F(KeyRingTest, PrivateKeySignaturesVerifyAndIdsFollowTheCertificate) {
  auto ring = KeyRing::Load(dir_ + "/keys");
  ASSERT_TRUE(ring.ok());
  Bytes digest = *Digest(Sha256Algo(), AsBytes("content"));
  // Without a certificate the id is derived from the key (evmctl), which for a hash SKID
  // certificate is the same; with one, it is the certificate's SKID.
  auto ec = PrivateKey::Load(dir_ + "/ec.key");
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ(ec->key_id(), ring->keys()[1].key_id());
  auto rsa = PrivateKey::Load(dir_ + "/rsa.key", dir_ + "/one.pem");
  ASSERT_TRUE(rsa.ok()) << rsa.status().message();
  EXPECT_EQ(rsa->key_id(), 0x05060708u);
  EXPECT_NE(PrivateKey::Load(dir_ + "/rsa.key")->key_id(), 0x05060708u);
  for (const PrivateKey* k : {&*ec, &*rsa}) {
    auto sig = k->SignDigest(Sha256Algo(), digest);
    ASSERT_TRUE(sig.ok());
    const PublicKey& pub = k == &*ec ? ring->keys()[1] : ring->keys()[0];
    EXPECT_TRUE(pub.VerifyDigest(Sha256Algo(), digest, *sig));
    Bytes other = digest;
    other[0] ^= 1;
    EXPECT_FALSE(pub.VerifyDigest(Sha256Algo(), other, *sig));
  }
  // A certificate of another key is refused; a certificate is not a private key.
  EXPECT_FALSE(PrivateKey::Load(dir_ + "/rsa.key", dir_ + "/two.pem").ok());
  EXPECT_FALSE(PrivateKey::Load(dir_ + "/one.pem").ok());
}

}  // namespace
}  // namespace lim
