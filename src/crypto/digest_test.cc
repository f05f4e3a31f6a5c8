#include "crypto/digest.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace lim {
namespace {

TEST(HashAlgoTest, MapsBetweenKernelTpmAndNames) {
  auto a = HashAlgoByName("sm3_256");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kernel_id, 17);
  EXPECT_EQ(a->tpm_alg, 0x0012);
  EXPECT_STREQ(a->kernel_name, "sm3");
  EXPECT_EQ(HashAlgoByName("sm3-256")->kernel_id, 17);
  EXPECT_EQ(HashAlgoByName("SHA256")->tpm_alg, 0x000B);
  EXPECT_EQ(HashAlgoByTpmAlg(0x0027)->kernel_id, 20);
  EXPECT_EQ(HashAlgoByKernelId(6)->size, 64u);
  EXPECT_EQ(TpmBankName(0x1234), "tpm_alg_0x1234");
  EXPECT_EQ(TpmBankName(0x000C), "sha384");
}

TEST(HashAlgoTest, UnknownIsClearError) {
  auto a = HashAlgoByName("sha999");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("sha999"), std::string::npos);
  EXPECT_FALSE(HashAlgoByKernelId(23).ok());
  EXPECT_FALSE(HashAlgoByTpmAlg(0x0099).ok());
}

TEST(DigestTest, KnownAnswers) {
  // FIPS 180 "abc" vectors and the SM3 standard's "abc" vector.
  EXPECT_EQ(ToHex(*Digest(Sha1Algo(), AsBytes("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(ToHex(*Digest(Sha256Algo(), AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto sm3 = HashAlgoByName("sm3");
  ASSERT_TRUE(HashAlgoAvailable(*sm3));
  EXPECT_EQ(ToHex(*Digest(*sm3, AsBytes("abc"))),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  auto s3 = HashAlgoByName("sha3-256");
  EXPECT_EQ(ToHex(*Digest(*s3, AsBytes("abc"))),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
}

TEST(DigestTest, Sha2FamilyKnownAnswersAndEvpAgreement) {
  // FIPS 180-4 "abc" vectors, through the direct SHA-2 path.
  EXPECT_EQ(ToHex(*Digest(*HashAlgoByName("sha224"), AsBytes("abc"))),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
  EXPECT_EQ(ToHex(*Digest(*HashAlgoByName("sha384"), AsBytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(ToHex(*Digest(*HashAlgoByName("sha512"), AsBytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  // Hasher (direct) and EVP agree on long multi-part input for every SHA variant.
  Bytes big(100000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  for (const char* name : {"sha1", "sha224", "sha256", "sha384", "sha512"}) {
    HashAlgo a = *HashAlgoByName(name);
    auto h = Hasher::Create(a);
    h->Update(ByteView(big).subspan(0, 333));
    h->Update(ByteView(big).subspan(333));
    Bytes direct = h->Final();
    Bytes evp(a.size);
    unsigned n = 0;
    ASSERT_EQ(EVP_Digest(big.data(), big.size(), evp.data(), &n, *FetchMd(a), nullptr), 1);
    EXPECT_EQ(direct, evp) << name;
  }
}

TEST(DigestTest, EveryAvailableAlgoHashesToItsSize) {
  int available = 0;
  for (const auto& a : AllHashAlgos()) {
    auto d = Digest(a, AsBytes("x"));
    EXPECT_EQ(d.ok(), HashAlgoAvailable(a)) << a.kernel_name;
    if (d.ok()) {
      EXPECT_EQ(d->size(), a.size) << a.kernel_name;
      ++available;
    }
  }
  EXPECT_GE(available, 13);
  // From OpenSSL's legacy provider.
  EXPECT_EQ(ToHex(*Digest(*HashAlgoByName("md4"), AsBytes("abc"))), "a448017aaf21d8525fc10ae87aa6729d");
  EXPECT_TRUE(HashAlgoAvailable(*HashAlgoByName("wp512")));
  EXPECT_TRUE(HashAlgoAvailable(*HashAlgoByName("rmd160")));
}

TEST(HasherTest, IncrementalEqualsOneShot) {
  auto h = Hasher::Create(Sha256Algo());
  ASSERT_TRUE(h.ok());
  h->Update(AsBytes("ab"));
  h->Update(AsBytes("c"));
  EXPECT_EQ(h->Final(), *Digest(Sha256Algo(), AsBytes("abc")));
  h->Update(AsBytes("abc"));  // reusable after Final
  EXPECT_EQ(h->Final(), *Digest(Sha256Algo(), AsBytes("abc")));
}

}  // namespace
}  // namespace lim
