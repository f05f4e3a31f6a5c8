#include "ima/list_reader.h"

#include <gtest/gtest.h>

#include <set>

#include "base/file.h"
#include "ima/digest_field.h"
#include "ima/list_format.h"
#include "ima/list_writer.h"
#include "ima/replay.h"
#include "tests/testing.h"

namespace lim::ima {
namespace {

using lim::testing::Fixture;

struct Decoded {
  std::vector<std::string> ascii;
  uint64_t entries = 0;
  Status error;
};

Decoded DecodeAll(const std::string& path, ListOptions o = {}) {
  Decoded d;
  auto r = ListReader::Open(path, o);
  if (!r.ok()) {
    d.error = r.status();
    return d;
  }
  Entry e;
  for (;;) {
    auto more = (*r)->Next(&e);
    if (!more.ok()) {
      d.error = more.status();
      break;
    }
    if (!*more) break;
    std::string line;
    AppendAsciiLine(e, e.digest, &line);
    d.ascii.push_back(line);
    ++d.entries;
  }
  return d;
}

TEST(ListReaderTest, EmbraveBinaryRendersExactlyItsAsciiFile) {
  Decoded d = DecodeAll(Fixture("embrave/37d16c0/binary_runtime_measurements"));
  ASSERT_TRUE(d.error.ok()) << d.error.message();
  EXPECT_EQ(d.entries, 922u);
  std::string all;
  for (const auto& l : d.ascii) all += l;
  auto want = ReadFileText(Fixture("embrave/37d16c0/ascii_runtime_measurements"));
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(all, *want);
}

TEST(ListReaderTest, DetectsPerBankDigestSizes) {
  for (auto [file, size] : std::vector<std::pair<std::string, size_t>>{
           {"sha1.log", 20}, {"sha256.log", 32}, {"sha384.log", 48}, {"sha512.log", 64}}) {
    auto r = ListReader::Open(Fixture("ibmtss/utils/" + file));
    ASSERT_TRUE(r.ok()) << file;
    EXPECT_EQ((*r)->bank().size, size) << file;
    Decoded d = DecodeAll(Fixture("ibmtss/utils/" + file));
    EXPECT_TRUE(d.error.ok()) << d.error.message();
    EXPECT_EQ(d.entries, 362u) << file;
  }
}

TEST(ListReaderTest, ImatestTemplateZooDecodesAndEveryDigestChecks) {
  auto r = ListReader::Open(Fixture("ibmtss/utils/imatest.log"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto checker = TemplateDigestChecker::Create((*r)->bank());
  ASSERT_TRUE(checker.ok());
  Entry e;
  std::set<std::string> templates;
  int violations = 0, n = 0, signed_entries = 0;
  for (;;) {
    auto more = (*r)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) break;
    ++n;
    templates.insert(std::string(e.template_name));
    if (e.violation) ++violations;
    Bytes computed;
    EXPECT_TRUE(checker->Check(e, &computed)) << "entry " << e.index << " " << e.template_name;
    if (e.HasField(FieldId::kSig) && !e.FieldById(FieldId::kSig).empty()) ++signed_entries;
    std::string line;
    AppendAsciiLine(e, e.digest, &line);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_FALSE(EntryJson(e, e.digest).empty());
  }
  EXPECT_EQ(n, 17);
  EXPECT_EQ(violations, 1);
  EXPECT_GE(signed_entries, 2);
  for (const char* t : {"ima", "ima-ng", "ima-sig", "ima-modsig", "ima-buf", "evm-sig", "ima-ngv2", "ima-sigv2",
                        "d-ng|sig", "n-ng|d-ng", "n-ng|sig|d-ng", "n-ng|sig", "n", "sig"}) {
    EXPECT_TRUE(templates.count(t)) << t;
  }
}

TEST(ListReaderTest, Tpm2TssSmlListsDecodeOrFailCleanly) {
  // Upstream: the valid lists end in a stray byte or a partial record (kernel-ima.md notes).
  struct Case {
    const char* file;
    uint64_t whole_entries;
  };
  for (Case c : {Case{"sml-ima-sha1.bin", 12}, Case{"sml-ima-ng-sha1.bin", 6}, Case{"sml-ima-sig-sha256.bin", 9}}) {
    Decoded d = DecodeAll(Fixture(std::string("tpm2-tss/test/data/fapi/eventlog/") + c.file));
    EXPECT_EQ(d.entries, c.whole_entries) << c.file;
    ASSERT_FALSE(d.error.ok()) << c.file;
    EXPECT_NE(d.error.message().find("entry " + std::to_string(c.whole_entries) + " at byte offset"), std::string::npos)
        << d.error.message();
    EXPECT_NE(d.error.message().find("truncated"), std::string::npos) << d.error.message();
  }
  for (const char* f : {"sml-ima-sha1-invalidated.bin", "sml-ima-ng-sha1-invalidated.bin",
                        "sml-ima-sig-sha256-invalidated.bin"}) {
    Decoded d = DecodeAll(Fixture(std::string("tpm2-tss/test/data/fapi/eventlog/") + f));
    if (!d.error.ok()) {
      EXPECT_NE(d.error.message().find("byte offset"), std::string::npos) << f << ": " << d.error.message();
    }
  }
}

TEST(ListReaderTest, ResearchTemplateIsRejectedCleanly) {
  Decoded d = DecodeAll(Fixture("embrave/b77d7a9/binary_runtime_measurements"));
  ASSERT_FALSE(d.error.ok());
  EXPECT_EQ(d.entries, 0u);
}

// A small list of every template kind, written by ListWriter.
std::vector<Record> SampleRecords() {
  auto sha256 = Sha256Algo();
  Bytes dg(32, 0xab);
  std::vector<Record> v;
  v.push_back(ImaNgRecord(sha256, dg, "boot_aggregate"));
  v.push_back(ImaNgRecord(sha256, dg, "/usr/bin/has space"));
  v.push_back(ImaSigRecord(sha256, dg, "/usr/bin/dd", {}));
  v.push_back(*ImaBufRecord(sha256, "kernel_version", AsBytes("6.18.0")));
  v.push_back(ViolationRecord(sha256, "/tmp/x"));
  Record custom{10, "d-ng|n-ng|iuid|igid|imode", {}, false};
  custom.fields = {BuildDigestNg("sha256", Bytes(32, 0x11)), StringField("/etc/passwd"), U32Field(0, kNativeOrder),
                   U32Field(42, kNativeOrder), U16Field(0100644, kNativeOrder)};
  v.push_back(custom);
  v.push_back(Record{10, "ima", {Bytes(20, 0x22), Bytes{'/', 'i', 'n', 'i', 't'}}, false});
  return v;
}

Bytes WriteAll(const std::vector<Record>& recs, const HashAlgo& bank, ByteOrder order) {
  Bytes out;
  ListWriter w(bank, order);
  for (const auto& r : recs) EXPECT_TRUE(w.Append(r, &out).ok());
  return out;
}

TEST(ListWriterTest, RoundTripsEveryTemplateInBothByteOrdersAndBanks) {
  auto recs = SampleRecords();
  for (ByteOrder order : {ByteOrder::kLittle, ByteOrder::kBig}) {
    for (int id : {2, 4, 5, 6}) {
      HashAlgo bank = *HashAlgoByKernelId(id);
      Bytes list = WriteAll(recs, bank, order);
      auto r = ListReader::FromBytes(list);
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ((*r)->bank().size, bank.size);
      EXPECT_EQ((*r)->byte_order(), order);
      auto checker = TemplateDigestChecker::Create(bank);
      Entry e;
      size_t n = 0;
      for (;;) {
        auto more = (*r)->Next(&e);
        ASSERT_TRUE(more.ok()) << more.status().message();
        if (!*more) break;
        Bytes computed;
        EXPECT_TRUE(checker->Check(e, &computed)) << e.index;
        EXPECT_EQ(e.num_fields, recs[n].fields.size());
        for (size_t f = 0; f < e.num_fields; ++f) {
          EXPECT_EQ(Bytes(e.fields[f].begin(), e.fields[f].end()), recs[n].fields[f]) << n << "/" << f;
        }
        ++n;
      }
      EXPECT_EQ(n, recs.size());
    }
  }
}

TEST(ListFormatTest, AsciiLinesFollowTheKernel) {
  Bytes list = WriteAll(SampleRecords(), Sha1Algo(), kNativeOrder);
  auto r = ListReader::FromBytes(list);
  ASSERT_TRUE(r.ok());
  std::vector<std::string> lines;
  Entry e;
  while (*(*r)->Next(&e)) {
    std::string l;
    AppendAsciiLine(e, e.digest, &l);
    lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 7u);
  std::string dg(64, 'a');
  for (size_t i = 1; i < 64; i += 2) dg[i] = 'b';
  EXPECT_EQ(lines[1].substr(0, 3), "10 ");
  EXPECT_TRUE(lines[1].ends_with(" ima-ng sha256:" + dg + " /usr/bin/has_space\n")) << lines[1];
  // Unsigned ima-sig keeps the space before its empty sig field.
  EXPECT_TRUE(lines[2].ends_with(" /usr/bin/dd \n")) << lines[2];
  EXPECT_TRUE(lines[3].ends_with(" kernel_version " + ToHex(AsBytes("6.18.0")) + "\n")) << lines[3];
  // Violation: all-zero template digest, zero file digest.
  EXPECT_EQ(lines[4].substr(0, 44), "10 " + std::string(40, '0') + " ");
  EXPECT_TRUE(lines[5].ends_with(" /etc/passwd 0 42 33188\n")) << lines[5];
  EXPECT_TRUE(lines[6].ends_with(" ima " + std::string(40, '2') + " /init\n")) << lines[6];
}

TEST(ListFormatTest, PcrBelowTenIsSpacePadded) {
  Record r = ImaNgRecord(Sha256Algo(), Bytes(32, 1), "/x", 8);
  Bytes list = WriteAll({r}, Sha1Algo(), kNativeOrder);
  auto rd = ListReader::FromBytes(list);
  Entry e;
  ASSERT_TRUE(*(*rd)->Next(&e));
  std::string l;
  AppendAsciiLine(e, e.digest, &l);
  EXPECT_EQ(l.substr(0, 3), " 8 ");
}

// Every corruption gets an error naming the entry and the byte offset, never a crash.
TEST(ListReaderTest, CorruptInputsFailWithEntryAndOffset) {
  Bytes good = WriteAll(SampleRecords(), Sha1Algo(), kNativeOrder);
  auto first_len = [&] {
    auto r = ListReader::FromBytes(good);
    Entry e;
    EXPECT_TRUE(*(*r)->Next(&e));
    return (*r)->next_offset();
  }();
  auto expect_error = [&](Bytes list, const std::string& needle, ListOptions o = {}) {
    auto r = ListReader::FromBytes(list, o, "L");
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
      return;
    }
    Entry e;
    for (;;) {
      auto more = (*r)->Next(&e);
      if (!more.ok()) {
        EXPECT_NE(more.status().message().find(needle), std::string::npos) << more.status().message();
        EXPECT_NE(more.status().message().find("byte offset"), std::string::npos) << more.status().message();
        return;
      }
      ASSERT_TRUE(*more) << "no error for " << needle;
    }
  };
  ListOptions sha1;
  sha1.bank = Sha1Algo();
  // Truncated in the middle of the second record.
  expect_error(Bytes(good.begin(), good.begin() + first_len + 30), "entry 1 at byte offset " + std::to_string(first_len), sha1);
  // Template data length absurdly large.
  Bytes big = good;
  size_t len_at = first_len + 4 + 20 + 4 + 6;  // second record: pcr, digest, name len, "ima-ng"
  big[len_at + 3] = 0x7f;
  expect_error(big, "absurdly large", sha1);
  // Length pointing past the end.
  Bytes past = good;
  past[len_at] = 0xff;
  past[len_at + 1] = 0xff;
  expect_error(past, "points past the end", sha1);
  // Unknown template name.
  Bytes unk = good;
  unk[first_len + 4 + 20 + 4] = 'X';
  expect_error(unk, "unknown template", sha1);
  // d-ng digest of the wrong size: shrink the field length and the data length by one.
  Record r = ImaNgRecord(Sha256Algo(), Bytes(31, 7), "/short");
  expect_error(WriteAll({r}, Sha1Algo(), kNativeOrder), "digest of 31 bytes for sha256", sha1);
  // Unknown algorithm in d-ng.
  Record a{10, "ima-ng", {BuildDigestNg("sha999", Bytes(32, 1)), StringField("/a")}, false};
  expect_error(WriteAll({a}, Sha1Algo(), kNativeOrder), "sha999", sha1);
  // Garbage.
  Bytes garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
  expect_error(garbage, "");
  // PCR index out of range.
  Bytes badpcr = good;
  badpcr[first_len] = 200;
  expect_error(badpcr, "PCR index 200", sha1);
}

TEST(ListReaderTest, StreamsWithASmallBuffer) {
  Bytes good = WriteAll(SampleRecords(), Sha1Algo(), kNativeOrder);
  std::string dir = lim::testing::MakeTempDir();
  std::string path = dir + "/list";
  ASSERT_TRUE(WriteFileBytes(path, good).ok());
  ListOptions o;
  o.buffer_size = 1;  // forces a refill for every record
  o.allow_mmap = false;
  Decoded d = DecodeAll(path, o);
  EXPECT_TRUE(d.error.ok()) << d.error.message();
  EXPECT_EQ(d.entries, SampleRecords().size());
  // The mapped path gives the same entries.
  Decoded m = DecodeAll(path);
  EXPECT_EQ(m.ascii, d.ascii);
}

}  // namespace
}  // namespace lim::ima
