#include "verifier/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "verifier/prom_text_test_util.h"

namespace lim::verifier {
namespace {

using testing::ParsePromText;
using testing::PromFamily;
using testing::PromGet;

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 2.0, 50.0}) h.Observe(v);
  auto s = h.Take();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 4, 5}));  // 0.1 is "le 0.1"
  EXPECT_DOUBLE_EQ(s.sum, 52.65);
  EXPECT_EQ(s.count, 5u);
}

TEST(MetricsTest, HistogramFromManyThreadsLosesNothing) {
  Histogram h(RoundLatencyBounds());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(0.003 * (i % 7));
    });
  }
  for (auto& t : ts) t.join();
  auto s = h.Take();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.cumulative.back(), 40000u);
}

TEST(MetricsTest, ExpositionParsesStrictlyAndEscapesLabelValues) {
  ExpositionWriter w;
  w.Family("lim_test_agents", "gauge", "agents by state \\ with a backslash");
  w.Sample("lim_test_agents", {{"state", "attested"}}, uint64_t{3});
  w.Sample("lim_test_agents", {{"state", "odd \"name\"\nnext\\"}}, uint64_t{1});
  CounterFamily c;
  c.Add("unknown-file", 2);
  c.Add("quote-signature");
  w.Family("lim_test_failures_total", "counter", "failures");
  for (const auto& [k, v] : c.Snapshot()) w.Sample("lim_test_failures_total", {{"reason", k}}, v);
  Histogram h(StoreLatencyBounds());
  h.Observe(0.0003);
  h.Observe(7);
  w.HistogramFamily("lim_test_seconds", "latency", h.Take(), {{"op", "write"}});
  std::map<std::string, PromFamily> fams;
  ASSERT_EQ(ParsePromText(w.text(), &fams), "") << w.text();
  EXPECT_EQ(PromGet(fams, "lim_test_agents", {{"state", "odd \"name\"\nnext\\"}}), 1);
  EXPECT_EQ(PromGet(fams, "lim_test_failures_total", {{"reason", "unknown-file"}}), 2);
  EXPECT_EQ(PromGet(fams, "lim_test_seconds_bucket", {{"op", "write"}, {"le", "0.0005"}}), 1);
  EXPECT_EQ(PromGet(fams, "lim_test_seconds_bucket", {{"op", "write"}, {"le", "5"}}), 1);
  EXPECT_EQ(PromGet(fams, "lim_test_seconds_bucket", {{"op", "write"}, {"le", "+Inf"}}), 2);
  EXPECT_EQ(PromGet(fams, "lim_test_seconds_count", {{"op", "write"}}), 2);
  EXPECT_DOUBLE_EQ(PromGet(fams, "lim_test_seconds_sum", {{"op", "write"}}), 7.0003);
  EXPECT_NE(w.text().find("state=\"odd \\\"name\\\"\\nnext\\\\\""), std::string::npos) << w.text();
  EXPECT_NE(w.text().find("# HELP lim_test_agents agents by state \\\\ with a backslash\n"), std::string::npos);
}

TEST(MetricsTest, FloatsInPrometheusSyntax) {
  EXPECT_EQ(FormatPromValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatPromValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatPromValue(NAN), "NaN");
  EXPECT_EQ(FormatPromValue(0.0025), "0.0025");
  EXPECT_EQ(FormatPromValue(30), "30");
  EXPECT_EQ(FormatPromValue(0.0005), "0.0005");
  EXPECT_EQ(FormatPromValue(0.0001), "0.0001");
}

// The parser the other tests rely on refuses what a scraper would (each case one defect).
TEST(MetricsTest, TheStrictParserRefusesMalformedExpositions) {
  const std::string ok =
      "# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
      "# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
  ASSERT_EQ(ParsePromText(ok, nullptr), "");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"# TYPE a_total counter\na_total 1\n", "no # HELP"},
      {"# HELP a_total x\na_total 1\n", "before # TYPE"},
      {"# HELP a x\n# TYPE a counter\na 1\n", "_total"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total -1\n", "negative"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total 1", "newline"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n", "twice"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total{l=\"\\t\"} 1\n", "bad escape"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total{l=x} 1\n", "not quoted"},
      {"# HELP a_total x\n# TYPE a_total counter\na_total one\n", "bad value"},
      {"# HELP a_total x\n# TYPE a_total counter\n# HELP g x\n# TYPE g gauge\ng 1\na_total 1\n", "outside"},
      {"# HELP a_total x\n# TYPE a_total counter\n\na_total 1\n", "empty line"},
      {"# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 3\nh_count 1\n",
       "cumulative"},
      {"# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n", "+Inf"},
      {"# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
       "_count differs"},
      {"# HELP h y\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "_sum"},
      {"# HELP h y\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
       "h_sum 3\nh_count 2\n",
       "not increasing"},
      {"# HELP 1a x\n# TYPE 1a gauge\n", "bad metric name"},
      {"# HELP g x\n# TYPE g gauge\ng{__x=\"1\"} 1\n", "bad label name"},
      {"# HELP g x\n# TYPE g gauge\ng 1 1700000000\n", "timestamps"},
  };
  for (const auto& [text, want] : bad) {
    std::string err = ParsePromText(text, nullptr);
    EXPECT_NE(err.find(want), std::string::npos) << "text:\n" << text << "error: " << err;
  }
}

}  // namespace
}  // namespace lim::verifier
