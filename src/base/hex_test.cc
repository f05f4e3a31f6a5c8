#include "base/hex.h"

#include <gtest/gtest.h>

#include "base/bytes.h"

namespace lim {
namespace {

TEST(HexTest, RoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "0001abff");
  auto r = FromHex("0001ABff");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, b);
  auto p = FromHex("0x10");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at(0), 0x10);
}

TEST(HexTest, RejectsBadInput) {
  EXPECT_FALSE(FromHex("abc").ok());
  auto r = FromHex("zz");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("position 0"), std::string::npos);
}

TEST(ByteReaderTest, BoundsAndOrder) {
  Bytes b = {1, 0, 0, 0, 0, 0, 0, 2};
  ByteReader r(b, 100);
  uint32_t le = 0, be = 0;
  ASSERT_TRUE(r.ReadU32(&le, ByteOrder::kLittle));
  ASSERT_TRUE(r.ReadU32(&be, ByteOrder::kBig));
  EXPECT_EQ(le, 1u);
  EXPECT_EQ(be, 2u);
  EXPECT_EQ(r.file_offset(), 108u);
  uint8_t x;
  EXPECT_FALSE(r.ReadU8(&x));
  ByteView v;
  EXPECT_FALSE(r.ReadView(1, &v));
}

TEST(ByteWriterTest, WritesBothOrders) {
  Bytes out;
  ByteWriter w(&out);
  w.U32(0x01020304, ByteOrder::kBig);
  w.U16(0x0506, ByteOrder::kLittle);
  EXPECT_EQ(ToHex(out), "010203040605");
}

}  // namespace
}  // namespace lim
