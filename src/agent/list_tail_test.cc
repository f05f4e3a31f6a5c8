#include "agent/list_tail.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/file.h"
#include "ima/list_reader.h"
#include "ima/synthetic_list.h"
#include "tests/testing.h"

namespace lim::agent {
namespace {

// Byte offset of every record start (and the end) of a list.
std::vector<size_t> Boundaries(const Bytes& list) {
  auto r = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(r.ok());
  std::vector<size_t> out{0};
  ima::Entry e;
  while (true) {
    auto more = (*r)->Next(&e);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    out.push_back((*r)->next_offset());
  }
  return out;
}

class ListTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    path_ = dir_ + "/binary_runtime_measurements";
    ima::SyntheticListSpec spec;
    spec.entries = 3000;
    auto l = ima::MakeSyntheticList(spec);
    ASSERT_TRUE(l.ok());
    list_ = l->list;
    at_ = Boundaries(list_);
    ASSERT_EQ(at_.size(), 3001u);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteEntries(size_t n, size_t extra_bytes = 0) {
    ASSERT_TRUE(WriteFileBytes(path_ + ".new", ByteView(list_.data(), at_[n] + extra_bytes)).ok());
    // Same inode: limd appends in place.
    FILE* f = std::fopen(path_.c_str(), "r+");
    if (!f) f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(list_.data(), 1, at_[n] + extra_bytes, f), at_[n] + extra_bytes);
    std::fclose(f);
    ::truncate(path_.c_str(), static_cast<off_t>(at_[n] + extra_bytes));
    std::filesystem::remove(path_ + ".new");
  }
  Bytes Slice(size_t from, size_t to) { return Bytes(list_.begin() + at_[from], list_.begin() + at_[to]); }

  std::string dir_, path_;
  Bytes list_;
  std::vector<size_t> at_;
};

TEST_F(ListTailTest, TailFromEntryNIsExactlyTheRestAndIncremental) {
  WriteEntries(2000);
  ListTailReader r(path_, "limd");
  auto all = r.Read(0, 1 << 30);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->records, Slice(0, 2000));
  EXPECT_EQ(all->total_entries, 2000u);
  EXPECT_EQ(all->list_bank, "sha1");
  EXPECT_EQ(all->source, "limd");
  EXPECT_EQ(r.checkpoints(), 2u);  // entries 0 and 1024
  uint64_t decoded = r.records_decoded();

  auto tail = r.Read(1500, 1 << 30);  // from a checkpoint: 1024..1999 decoded again
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->first_index, 1500u);
  EXPECT_EQ(tail->records, Slice(1500, 2000));
  EXPECT_EQ(r.records_decoded() - decoded, 2000u - 1024u);

  // The list grows by 10 entries: the next round decodes only those.
  WriteEntries(2010);
  decoded = r.records_decoded();
  auto grown = r.Read(2000, 1 << 30);
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(grown->records, Slice(2000, 2010));
  EXPECT_EQ(grown->total_entries, 2010u);
  EXPECT_EQ(r.records_decoded() - decoded, 10u);
}

TEST_F(ListTailTest, MaxBytesCutsAtARecordBoundaryAndTheRestFollows) {
  WriteEntries(100);
  ListTailReader r(path_, "limd");
  size_t limit = at_[60] - at_[50] + 3;  // ten records and a bit
  auto first = r.Read(50, limit);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->records, Slice(50, 60));
  EXPECT_GE(first->total_entries, 61u);
  auto next = r.Read(60, 1 << 30);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->records, Slice(60, 100));
}

TEST_F(ListTailTest, TornLastRecordIsLeftForNextRoundAndShortListIsReported) {
  WriteEntries(100, 7);  // 7 bytes of record 100
  ListTailReader r(path_, "limd");
  auto t = r.Read(90, 1 << 30);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->records, Slice(90, 100));
  EXPECT_EQ(t->total_entries, 100u);
  auto beyond = r.Read(500, 1 << 30);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->records.empty());
  EXPECT_EQ(beyond->total_entries, 100u);  // the verifier calls this rewound
}

TEST_F(ListTailTest, ReplacedOrShortenedListDropsTheCache) {
  WriteEntries(2000);
  ListTailReader r(path_, "limd");
  ASSERT_TRUE(r.Read(0, 1 << 30).ok());
  EXPECT_EQ(r.known_entries(), 2000u);
  // limd archived the chain and started a new file with 5 entries.
  std::filesystem::remove(path_);
  WriteEntries(5);
  auto t = r.Read(0, 1 << 30);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->records, Slice(0, 5));
  EXPECT_EQ(t->total_entries, 5u);
}

TEST_F(ListTailTest, EmptyListThenGrowing) {
  WriteEntries(0);
  ListTailReader r(path_, "kernel");
  auto empty = r.Read(0, 1 << 30);
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->records.empty());
  EXPECT_EQ(empty->total_entries, 0u);
  EXPECT_EQ(empty->list_bank, "sha1");
  EXPECT_EQ(empty->source, "kernel");
  WriteEntries(3);
  auto three = r.Read(0, 1 << 30);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->records, Slice(0, 3));
}

TEST_F(ListTailTest, CorruptRecordIsAnErrorNamingTheEntry) {
  WriteEntries(20);
  // Entry 10's template-name length becomes absurd.
  Bytes bad = list_;
  size_t off = at_[10] + 4 + 20;
  bad[off + 3] = 0x7f;
  ASSERT_TRUE(WriteFileBytes(path_, ByteView(bad.data(), at_[20])).ok());
  ListTailReader r(path_, "limd");
  auto t = r.Read(0, 1 << 30);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("10"), std::string::npos) << t.status().message();
  ListTailReader missing(dir_ + "/nope", "limd");
  EXPECT_FALSE(missing.Read(0, 100).ok());
}

}  // namespace
}  // namespace lim::agent
