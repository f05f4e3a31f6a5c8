#include "daemon/template_digest_table.h"

#include <gtest/gtest.h>

#include <random>

namespace lim::daemon {
namespace {

Bytes RandomDigest(std::mt19937_64& rng, size_t n) {
  Bytes d(n);
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  return d;
}

TEST(TemplateDigestTable, ExactOverAHundredThousandDigests) {
  std::mt19937_64 rng(7);
  TemplateDigestTable t(32);
  std::vector<Bytes> in;
  for (int i = 0; i < 100000; ++i) {
    in.push_back(RandomDigest(rng, 32));
    ASSERT_TRUE(t.Insert(in.back(), 10));
  }
  EXPECT_EQ(t.size(), 100000u);
  for (const auto& d : in) ASSERT_TRUE(t.Contains(d, 10));
  for (const auto& d : in) ASSERT_FALSE(t.Insert(d, 10));  // already there: nothing added
  for (int i = 0; i < 100000; ++i) ASSERT_FALSE(t.Contains(RandomDigest(rng, 32), 10));
  EXPECT_EQ(t.size(), 100000u);
  // digest + PCR + an index at load ≤ 1/2: well under the ~56 bytes of a node-based set.
  EXPECT_LT(t.bytes() / t.size(), 56u) << t.bytes();
}

TEST(TemplateDigestTable, EveryByteAndThePcrCount) {
  std::mt19937_64 rng(9);
  TemplateDigestTable t(64);
  Bytes d = RandomDigest(rng, 64);
  ASSERT_TRUE(t.Insert(d, 10));
  EXPECT_FALSE(t.Contains(d, 11));  // another PCR: not a duplicate (kernel)
  EXPECT_TRUE(t.Insert(d, 11));
  // Digests equal but for one byte — the first 16, the last — are different entries: a
  // table keyed by a prefix would call them duplicates and drop an entry.
  for (size_t at : {size_t{0}, size_t{15}, size_t{16}, size_t{63}}) {
    Bytes e = d;
    e[at] ^= 1;
    EXPECT_FALSE(t.Contains(e, 10)) << at;
    EXPECT_TRUE(t.Insert(e, 10)) << at;
    EXPECT_TRUE(t.Contains(e, 10)) << at;
  }
  EXPECT_TRUE(t.Contains(d, 10));
  EXPECT_EQ(t.size(), 6u);
  EXPECT_FALSE(t.Contains(Bytes(32, 0), 10));  // the wrong size is never present
  EXPECT_FALSE(t.Insert(Bytes(32, 0), 10));
}

}  // namespace
}  // namespace lim::daemon
