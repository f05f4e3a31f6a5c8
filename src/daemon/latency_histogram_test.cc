#include "daemon/latency_histogram.h"

#include <gtest/gtest.h>

namespace lim::daemon {
namespace {

TEST(LatencyHistogram, PercentilesAreBucketUpperBounds) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(0.5), 0u);  // empty
  for (int i = 0; i < 90; ++i) h.Add(3);   // bucket 2: < 4 µs
  for (int i = 0; i < 10; ++i) h.Add(1000);  // bucket 10: < 1024 µs
  EXPECT_EQ(h.Percentile(0.5), 4u);
  EXPECT_EQ(h.Percentile(0.9), 1024u);
  EXPECT_EQ(h.Percentile(0.99), 1024u);
  EXPECT_EQ(h.max_us(), 1000u);
  h.Add(uint64_t{1} << 40);  // past the last bucket: counted there
  EXPECT_EQ(h.Percentile(1.0), uint64_t{1} << 23);
  EXPECT_EQ(h.max_us(), uint64_t{1} << 40);
}

}  // namespace
}  // namespace lim::daemon
