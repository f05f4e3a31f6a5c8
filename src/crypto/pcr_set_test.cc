#include "crypto/pcr_set.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace lim {
namespace {

TEST(PcrSetTest, ParsesJson) {
  auto s = PcrSet::Parse(R"({"sha1":{"10":"9be6bac02bf18d09d17e726c2df00bca4e8831ea"},"sm3":{"0":")" +
                             std::string(64, '0') + R"("}})",
                         "", "p.json");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(ToHex(*s->Get("sha1", 10)), "9be6bac02bf18d09d17e726c2df00bca4e8831ea");
  EXPECT_NE(s->Get("sm3_256", 0), nullptr);
  EXPECT_EQ(s->ToJson(), R"({"sha1":{"10":"9be6bac02bf18d09d17e726c2df00bca4e8831ea"},"sm3_256":{"0":")" +
                             std::string(64, '0') + R"("}})");
}

TEST(PcrSetTest, ParsesEvmctlTextWithSpacesAndBank) {
  std::string text = "PCR-00: 3A 5F 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01\nPCR-10: " +
                     std::string(40, 'a') + "\n";
  auto s = PcrSet::Parse(text, "", "pcrs.txt");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(ToHex(*s->Get("sha1", 0)), "3a5f000000000000000000000000000000000001");
  auto s256 = PcrSet::Parse("PCR-10: " + std::string(64, 'b') + "\n", "sha256", "x");
  ASSERT_TRUE(s256.ok());
  EXPECT_NE(s256->Get("sha256", 10), nullptr);
}

TEST(PcrSetTest, EvmctlTextRoundTrips) {
  PcrSet set;
  set.Set("sha256", 10, Bytes(32, 0xab));
  std::string text = set.ToEvmctlText("sha256");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 24);  // every line, in order
  EXPECT_NE(text.find("PCR-00: " + std::string(64, '0') + "\n"), std::string::npos);
  auto back = PcrSet::Parse(text, "sha256", "t");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back->Get("sha256", 10), Bytes(32, 0xab));
  EXPECT_EQ(*back->Get("sha256", 0), Bytes(32, 0));
}

TEST(PcrSetTest, ParsesTpm2PcrreadOutput) {
  auto s = PcrSet::Parse("sha1:\n  0 : 0x" + std::string(40, '1') + "\n  10: 0x" + std::string(40, '2') +
                             "\nsha256:\n  10: 0x" + std::string(64, 'C') + "\n",
                         "", "pcrread.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(ToHex(*s->Get("sha256", 10)), std::string(64, 'c'));
  EXPECT_NE(s->Get("sha1", 0), nullptr);
}

TEST(PcrSetTest, RejectsWrongSizesAndBadBanks) {
  auto s = PcrSet::Parse(R"({"sha256":{"10":"abcd"}})", "", "p.json");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("p.json"), std::string::npos);
  EXPECT_FALSE(PcrSet::Parse(R"({"sha9":{"10":"abcd"}})", "", "p.json").ok());
  EXPECT_FALSE(PcrSet::Parse(R"({"sha1":{"x":"abcd"}})", "", "p.json").ok());
  EXPECT_FALSE(PcrSet::Parse("", "", "empty").ok());
}

// One PCR given twice with different values inside one file: an error, not "the last wins".
TEST(PcrSetTest, RejectsAPcrGivenTwiceWithDifferentValues) {
  const std::string a(40, 'a'), b(40, 'b');
  auto text = PcrSet::Parse("PCR-10: " + a + "\nPCR-10: " + b + "\n", "sha1", "p.txt");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("p.txt:2: sha1 PCR 10 given twice"), std::string::npos)
      << text.status().message();
  auto json = PcrSet::Parse(R"({"sha1":{"10":")" + a + R"("},"SHA1":{"10":")" + b + R"("}})", "", "p.json");
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().message().find("p.json: sha1 PCR 10 given twice"), std::string::npos);
  auto yaml = PcrSet::Parse("sha1:\n  10: 0x" + a + "\n  10: 0x" + b + "\n", "", "p.yaml");
  EXPECT_FALSE(yaml.ok());
  // The same value twice is no conflict.
  EXPECT_TRUE(PcrSet::Parse("PCR-10: " + a + "\nPCR-10: " + a + "\n", "sha1", "p.txt").ok());
}

// Found by pcr_set_fuzz: evmctl text took PCR-64…PCR-99, which the JSON form (and every
// other) refuses, so such a set did not survive ToJson() and back.
TEST(PcrSetTest, EvmctlIndexesHaveTheSameBoundAsJson) {
  std::string zeros(40, '0');
  EXPECT_TRUE(PcrSet::Parse("PCR-63: " + zeros + "\n", "", "e").ok());
  auto s = PcrSet::Parse("PCR-00: " + zeros + "\nPCR-74: " + zeros + "\n", "", "e");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("e:2: bad PCR index 74"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace lim
