#include "tpm/pcr.h"

#include <gtest/gtest.h>

namespace lim::tpm {
namespace {

TEST(PcrTest, ParsePcrList) {
  auto a = ParsePcrList("0-3,7,10-10");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::set<int>{0, 1, 2, 3, 7, 10}));
  EXPECT_FALSE(ParsePcrList("").ok());
  EXPECT_FALSE(ParsePcrList("24").ok());
  EXPECT_FALSE(ParsePcrList("5-2").ok());
  EXPECT_FALSE(ParsePcrList("1,,2").ok());
  EXPECT_FALSE(ParsePcrList("x").ok());
}

TEST(PcrTest, BankNames) {
  EXPECT_EQ(*ParseBankName("sha256"), 0x000b);
  EXPECT_EQ(*ParseBankName("SHA1"), 0x0004);
  EXPECT_EQ(*ParseBankName("sm3_256"), 0x0012);
  EXPECT_EQ(*ParseBankName("sm3"), 0x0012);
  EXPECT_FALSE(ParseBankName("md5").ok());
}

TEST(PcrTest, JsonRoundTrip) {
  PcrValues v;
  v[0x0004][0] = Bytes(20, 0x11);
  v[0x000b][10] = Bytes(32, 0xab);
  std::string j = PcrValuesToJson(v);
  EXPECT_NE(j.find("\"sha1\":{\"0\":\"1111"), std::string::npos);
  auto back = PcrValuesFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, v);
  EXPECT_FALSE(PcrValuesFromJson("{\"sha1\":{\"0\":\"11\"}}").ok());  // wrong size
  EXPECT_FALSE(PcrValuesFromJson("[1]").ok());
  EXPECT_FALSE(PcrValuesFromJson("{\"sha1\":{\"40\":\"11\"}}").ok());
}

}  // namespace
}  // namespace lim::tpm
