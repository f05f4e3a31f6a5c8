#include "ima/entry_renderer.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/hex.h"
#include "ima/list_reader.h"

namespace lim::ima {
namespace {

// A SHA1 list (as limd stores it) of one file record and one violation.
struct Sha1List {
  std::vector<Record> records;
  Bytes bytes;
};

Sha1List MakeList() {
  Sha1List l;
  Bytes digest(32, 0x5a);
  l.records.push_back(*FileRecord("ima-sig", Sha256Algo(), digest, "/bin/true", Bytes{0x03, 2, 4, 1, 2, 3, 4, 0, 1, 7}, 10));
  l.records.push_back(ViolationRecord(Sha256Algo(), "/tmp/tomtou"));
  ListWriter w(Sha1Algo(), kNativeOrder);
  for (const auto& r : l.records) EXPECT_TRUE(w.Append(r, &l.bytes).ok());
  return l;
}

// Calls fn on each entry of the list (an entry is valid only until the next one is read).
template <typename Fn>
size_t ForEachEntry(const Sha1List& l, Fn fn) {
  ListOptions o;
  o.bank = Sha1Algo();
  o.byte_order = kNativeOrder;
  auto reader = ListReader::FromBytes(l.bytes, o);
  EXPECT_TRUE(reader.ok());
  if (!reader.ok()) return 0;
  Entry e;
  size_t n = 0;
  while (*(*reader)->Next(&e)) fn(n++, e);
  return n;
}

TEST(EntryRenderer, AsciiInAnotherBankRecomputesTheTemplateDigest) {
  Sha1List l = MakeList();
  auto r = EntryRenderer::Create(RenderFormat::kAscii, Sha1Algo(), Sha256Algo());
  ASSERT_TRUE(r.ok()) << r.status().message();
  Bytes want = *TemplateDigestOf(l.records[0], Sha256Algo(), kNativeOrder);
  std::vector<std::string> digests, lines;
  EXPECT_EQ(ForEachEntry(l, [&](size_t, const Entry& e) {
              digests.push_back(ToHex(r->BankDigest(e)));
              std::string out;
              EXPECT_TRUE(r->Append(e, &out).ok());
              lines.push_back(out);
            }),
            2u);
  EXPECT_EQ(digests[0], ToHex(want));
  EXPECT_EQ(lines[0].rfind("10 " + ToHex(want) + " ima-sig sha256:", 0), 0u) << lines[0];
  EXPECT_EQ(lines[0].back(), '\n');
  // A violation shows zeros in every bank.
  EXPECT_EQ(digests[1], std::string(64, '0'));
}

TEST(EntryRenderer, SameBankShowsTheStoredDigest) {
  Sha1List l = MakeList();
  auto r = EntryRenderer::Create(RenderFormat::kJson, Sha1Algo(), Sha1Algo());
  ASSERT_TRUE(r.ok());
  ForEachEntry(l, [&](size_t i, const Entry& e) {
    if (i != 0) return;
    EXPECT_EQ(ToHex(r->BankDigest(e)), ToHex(e.digest));
    std::string out;
    ASSERT_TRUE(r->Append(e, &out).ok());
    EXPECT_EQ(out.front(), '{');
    EXPECT_NE(out.find(ToHex(e.digest)), std::string::npos) << out;
    EXPECT_EQ(out.back(), '\n');
  });
}

// Binary: the records as a list of that bank holds them (as if written there directly), in
// the byte order asked for — in SHA1 and native order exactly the stored bytes.
TEST(EntryRenderer, BinaryIsTheListOfThatBank) {
  Sha1List l = MakeList();
  for (const HashAlgo& bank : {Sha1Algo(), Sha256Algo()}) {
    for (ByteOrder order : {kNativeOrder, ByteOrder::kBig}) {
      auto r = EntryRenderer::Create(RenderFormat::kBinary, Sha1Algo(), bank, order);
      ASSERT_TRUE(r.ok());
      std::string got;
      Bytes want;
      ListWriter w(bank, order);
      ForEachEntry(l, [&](size_t, const Entry& e) { EXPECT_TRUE(r->Append(e, &got).ok()); });
      for (const auto& rec : l.records) ASSERT_TRUE(w.Append(rec, &want).ok());  // written directly
      EXPECT_EQ(got, std::string(want.begin(), want.end())) << bank.kernel_name;
      if (bank == Sha1Algo() && order == kNativeOrder) {
        EXPECT_EQ(got, std::string(l.bytes.begin(), l.bytes.end()));
      }
    }
  }
}

TEST(FileRecord, SigFieldOnlyForSignatures) {
  Bytes digest(32, 1);
  auto sig = FileRecord("ima-sig", Sha256Algo(), digest, "/a", Bytes{0x03, 2, 4, 0, 0, 0, 0, 0, 1, 9}, 10);
  ASSERT_TRUE(sig.ok());
  ASSERT_EQ(sig->fields.size(), 3u);
  EXPECT_EQ(sig->fields[2].size(), 10u);
  auto digest_only = FileRecord("ima-sigv2", Sha256Algo(), digest, "/a", Bytes{0x04, 4, 1, 2}, 10);
  ASSERT_TRUE(digest_only.ok());
  EXPECT_TRUE(digest_only->fields[2].empty());
  auto ng = FileRecord("ima-ng", Sha256Algo(), digest, "/a", Bytes{0x03, 2}, 7);
  ASSERT_TRUE(ng.ok());
  EXPECT_EQ(ng->fields.size(), 2u);
  EXPECT_EQ(ng->pcr, 7u);
  EXPECT_EQ(FileRecord("ima", Sha256Algo(), digest, "/a", {}, 10).status().code(), StatusCode::kUnsupported);
  EXPECT_TRUE(FileRecordTemplate("ima-ngv2"));
  EXPECT_FALSE(FileRecordTemplate("ima-buf"));
}

}  // namespace
}  // namespace lim::ima
