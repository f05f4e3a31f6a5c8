// Parsing proofs beyond PCR values: guard-oss's golden per-event output (PCR index, type,
// data of every event) and tcglog-parser's byte-exact round trip (re-serialising the parsed
// events must give the file back).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "base/file.h"
#include "tcg/event_log.h"
#include "tests/testing.h"

namespace lim::tcg {
namespace {

using lim::testing::Fixture;

Bytes Base64(const std::string& s) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

TEST(GoldenFixtures, GuardOssPerEventGolden) {
  // events_test.go: parsing must produce exactly the events of the .json reference
  // (crypto-agile logs: without the Spec ID header).
  const std::vector<std::pair<std::string, size_t>> logs = {
      {"binary_bios_measurements_15", 39}, {"binary_bios_measurements_27", 178},
      {"linux_event_log", 43},             {"tpm12_windows_lenovo_x1carbonv3", 37},
      {"tpm2_windows_lenovo_yogax1v2", 53}, {"windows_event_log", 35},
  };
  for (const auto& [name, count] : logs) {
    SCOPED_TRACE(name);
    std::string base = "guard-oss/apisrv/pkg/eventlog/testdata/" + name;
    auto bytes = ReadFileBytes(Fixture(base));
    ASSERT_TRUE(bytes.ok());
    auto log = ParseEventLog(*bytes);
    ASSERT_TRUE(log.ok()) << log.status().message();
    std::ifstream f(Fixture(base + ".json"));
    auto golden = nlohmann::json::parse(f);
    ASSERT_EQ(golden.size(), count);
    size_t skip = log->spec_id ? 1 : 0;
    ASSERT_EQ(log->events.size(), count + skip);
    for (size_t i = 0; i < count; ++i) {
      const Event& e = log->events[i + skip];
      const auto& g = golden[i];
      EXPECT_EQ(e.pcr, static_cast<uint32_t>(g["Index"].get<int64_t>())) << "event " << i;
      EXPECT_EQ(e.type, g["Type"].get<uint32_t>()) << "event " << i;
      EXPECT_EQ(ToHex(e.data), ToHex(Base64(g["Data"].get<std::string>()))) << "event " << i;
    }
  }
}

TEST(GoldenFixtures, TcglogParserRoundTripIsByteExact) {
  auto bytes = ReadFileBytes(Fixture("tcglog-parser/testdata/binary_bios_measurements"));
  ASSERT_TRUE(bytes.ok());
  auto log = ParseEventLog(*bytes);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->format, LogFormat::kCryptoAgile);
  EXPECT_EQ(log->events.size(), 115u);
  Bytes out;
  ByteWriter w(&out);
  for (const auto& e : log->events) {
    w.U32(e.pcr, ByteOrder::kLittle);
    w.U32(e.type, ByteOrder::kLittle);
    if (e.spec_id_header) {
      w.Append(e.digests.front().digest);
    } else {
      w.U32(static_cast<uint32_t>(e.digests.size()), ByteOrder::kLittle);
      for (const auto& d : e.digests) {
        w.U16(d.alg, ByteOrder::kLittle);
        w.Append(d.digest);
      }
    }
    w.U32(static_cast<uint32_t>(e.data.size()), ByteOrder::kLittle);
    w.Append(e.data);
  }
  EXPECT_EQ(out, *bytes);
  EXPECT_TRUE(log->problems.empty());
}

}  // namespace
}  // namespace lim::tcg
