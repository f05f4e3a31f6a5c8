#include "daemon/measurement_list.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <cstring>

#include "base/file.h"
#include "crypto/digest.h"
#include "daemon/fake_env_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "ima/list_reader.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using testing::FakeEnv;

// A TPM whose resetCount the test controls (a restarted swtpm), forwarding the rest.
class ResetCountTpm final : public tpm::Tpm {
 public:
  explicit ResetCountTpm(tpm::Tpm* t) : t_(t) {}
  uint32_t reset_count = 0;
  std::optional<tpm::TpmKind> kind_override;  // e.g. swtpm: no software_pcrs.json dumps
  tpm::TpmKind kind() const override { return kind_override ? *kind_override : t_->kind(); }
  std::string Describe() const override { return t_->Describe(); }
  Result<std::vector<uint16_t>> AllocatedBanks() override { return t_->AllocatedBanks(); }
  Result<tpm::PcrValues> ReadPcrs(const tpm::PcrSelection& s) override { return t_->ReadPcrs(s); }
  Status Extend(int pcr, const std::map<uint16_t, Bytes>& d) override { return t_->Extend(pcr, d); }
  Result<tpm::ClockInfo> ReadClock() override { return tpm::ClockInfo{1, reset_count, 0, true}; }
  Result<TPMT_PUBLIC> ReadEkPublic(tpm::EkType ek) override { return t_->ReadEkPublic(ek); }
  Result<tpm::AkKey> CreateAk(tpm::EkType ek, tpm::AkAlg alg) override { return t_->CreateAk(ek, alg); }
  Result<tpm::Quote> MakeQuote(const tpm::AkKey& ak, const tpm::PcrSelection& s, ByteView n) override {
    return t_->MakeQuote(ak, s, n);
  }
  Result<Bytes> ActivateCredential(const tpm::AkKey& ak, ByteView a, ByteView b) override {
    return t_->ActivateCredential(ak, a, b);
  }

 private:
  tpm::Tpm* t_;
};

std::vector<std::string> Names(const std::string& path) { return testing::ListNames(path); }

class ListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    soft_ = tpm::OpenSoftwareTpm();
    tpm_ = std::make_unique<ResetCountTpm>(soft_.get());
  }
  ListConfig Config() {
    ListConfig c;
    c.state_dir = dir_;
    c.kernel_ima_count = dir_ + "/no-kernel-ima";
    return c;
  }
  std::unique_ptr<MeasurementList> OpenList() {
    auto l = MeasurementList::Open(Config(), tpm_.get(), &env_);
    EXPECT_TRUE(l.ok()) << l.status().message();
    return l.ok() ? std::move(*l) : nullptr;
  }
  ima::Record FileRec(const std::string& path, std::string_view content) {
    Bytes d = *Digest(Sha256Algo(), AsBytes(content));
    return *FileRecord("ima-ng", Sha256Algo(), d, path, {}, 10);
  }
  std::string ListPath() { return dir_ + "/binary_runtime_measurements"; }
  int Verify(const std::string& list) {
    auto pcrs = tpm_->ReadPcrs({{0x4, {10}}, {0xb, {10}}});
    EXPECT_TRUE(pcrs.ok());
    std::string f = dir_ + "/verify-pcrs.json";
    EXPECT_TRUE(WriteFileBytes(f, AsBytes(tpm::PcrValuesToJson(*pcrs))).ok());
    auto r = lim::testing::RunCommand(lim::testing::LimBinary() + " verify " + list + " --pcrs " + f);
    if (r.exit_code != 0) ADD_FAILURE() << r.out << r.err;
    return r.exit_code;
  }
  uint64_t FileSize(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }

  FakeEnv env_;
  std::string dir_;
  std::unique_ptr<tpm::Tpm> soft_;
  std::unique_ptr<ResetCountTpm> tpm_;
};

TEST_F(ListTest, NewChainStartsWithBootAggregateAndStart) {
  auto l = OpenList();
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->start_report().new_chain);
  ASSERT_TRUE(l->AppendStart(3.25).ok());
  ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  EXPECT_EQ(Names(ListPath()), (std::vector<std::string>{"boot_aggregate", "lim-start", "/a"}));
  EXPECT_EQ(l->entries(), 3u);
  EXPECT_EQ(Verify(ListPath()), 0);
  // The lim-start buffer (docs/limd.md).
  auto bytes = ReadFileBytes(ListPath());
  std::string all(bytes->begin(), bytes->end());
  EXPECT_NE(all.find("version=0.1.0;boot_id=11111111-2222-3333-4444-555555555555;uptime=3.250;tpm=software;"
                     "root_of_trust=none;reset_count=0;previous_entries=0;downtime=unknown;new_chain=1;"),
            std::string::npos);
}

TEST_F(ListTest, SecondListOnSameStateRefused) {
  auto a = OpenList();
  ASSERT_TRUE(a);
  auto b = MeasurementList::Open(Config(), tpm_.get(), &env_);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("another limd"), std::string::npos);
  a.reset();
  EXPECT_TRUE(OpenList());  // lock released with the first
}

TEST_F(ListTest, RestartKeepsChainAndDuplicateTable) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  auto l = OpenList();
  EXPECT_FALSE(l->start_report().new_chain);
  EXPECT_EQ(l->start_report().previous_entries, 2u);
  EXPECT_EQ(l->start_report().reextended, 0u);
  auto again = l->Append(FileRec("/a", "a"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // duplicate across the restart
  EXPECT_EQ(Names(ListPath()).size(), 2u);  // nothing to recover: no lim-recovered entry
  EXPECT_EQ(Verify(ListPath()), 0);
}

TEST_F(ListTest, TornLastRecordIsCut) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  uint64_t good = FileSize(ListPath());
  // Half a record at the end (a crash in the middle of a write).
  Bytes rec;
  ASSERT_TRUE(ima::ListWriter(Sha1Algo()).Append(FileRec("/torn", "t"), &rec).ok());
  auto old = *ReadFileBytes(ListPath());
  old.insert(old.end(), rec.begin(), rec.begin() + 30);
  ASSERT_TRUE(WriteFileBytes(ListPath(), old).ok());
  auto l = OpenList();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->start_report().cut_bytes, 30u);
  EXPECT_EQ(l->start_report().previous_entries, 2u);
  EXPECT_GT(FileSize(ListPath()), good);  // + lim-recovered
  EXPECT_EQ(Names(ListPath()), (std::vector<std::string>{"boot_aggregate", "/a", "lim-recovered"}));
  EXPECT_EQ(Verify(ListPath()), 0);
}

TEST_F(ListTest, UnextendedTailIsExtendedAgain) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  // Crash between write and extend: two records in the list the TPM never saw.
  Bytes tail;
  ima::ListWriter w(Sha1Algo());
  ASSERT_TRUE(w.Append(FileRec("/b", "b"), &tail).ok());
  ASSERT_TRUE(w.Append(FileRec("/c", "c"), &tail).ok());
  auto old = *ReadFileBytes(ListPath());
  old.insert(old.end(), tail.begin(), tail.end());
  ASSERT_TRUE(WriteFileBytes(ListPath(), old).ok());
  auto l = OpenList();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->start_report().replayed_prefix, 2u);
  EXPECT_EQ(l->start_report().reextended, 2u);
  EXPECT_EQ(Names(ListPath()), (std::vector<std::string>{"boot_aggregate", "/a", "/b", "/c", "lim-recovered"}));
  EXPECT_EQ(Verify(ListPath()), 0);
}

TEST_F(ListTest, NewResetCountArchivesAndStartsNewChain) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  // swtpm restarted: PCRs back to zero, resetCount moved on.
  soft_ = tpm::OpenSoftwareTpm();
  tpm_ = std::make_unique<ResetCountTpm>(soft_.get());
  tpm_->reset_count = 1;
  auto l = OpenList();
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->start_report().new_chain);
  EXPECT_NE(l->start_report().new_chain_reason.find("resetCount"), std::string::npos);
  ASSERT_FALSE(l->start_report().archived_to.empty());
  EXPECT_EQ(Names(l->start_report().archived_to), (std::vector<std::string>{"boot_aggregate", "/a"}));
  EXPECT_EQ(Names(ListPath()), (std::vector<std::string>{"boot_aggregate"}));
  EXPECT_EQ(Verify(ListPath()), 0);
}

TEST_F(ListTest, NewBootIdArchives) {
  { auto l = OpenList(); }
  soft_ = tpm::OpenSoftwareTpm();
  tpm_ = std::make_unique<ResetCountTpm>(soft_.get());
  env_.boot_id = "99999999-2222-3333-4444-555555555555";
  auto l = OpenList();
  ASSERT_TRUE(l);
  EXPECT_NE(l->start_report().new_chain_reason.find("boot_id"), std::string::npos);
  EXPECT_FALSE(l->start_report().archived_to.empty());
}

TEST_F(ListTest, ForeignExtendIsReportedNotPapered) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  ASSERT_TRUE(tpm::ExtendWithData(*tpm_, 10, AsBytes("someone else")).ok());
  auto l = MeasurementList::Open(Config(), tpm_.get(), &env_);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kMismatch);
  EXPECT_NE(l.status().message().find("no prefix"), std::string::npos);
}

TEST_F(ListTest, NonZeroPcrAtFirstStartRefused) {
  ASSERT_TRUE(tpm::ExtendWithData(*tpm_, 10, AsBytes("kernel ima")).ok());
  auto l = MeasurementList::Open(Config(), tpm_.get(), &env_);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("--pcr"), std::string::npos);
  ListConfig c = Config();
  c.pcr = 11;
  c.pcr_explicit = true;
  EXPECT_TRUE(MeasurementList::Open(c, tpm_.get(), &env_).ok());
}

TEST_F(ListTest, KernelImaOwnsPcr10) {
  ASSERT_TRUE(WriteFileBytes(dir_ + "/no-kernel-ima", AsBytes("57\n")).ok());
  auto l = MeasurementList::Open(Config(), tpm_.get(), &env_);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("kernel's IMA"), std::string::npos);
}

TEST_F(ListTest, CorruptMiddleIsRefused) {
  {
    auto l = OpenList();
    ASSERT_TRUE(*l->Append(FileRec("/a", "a")));
  }
  auto b = *ReadFileBytes(ListPath());
  b[24 + 3] = 0x7f;  // template-name length of the first record becomes absurd
  ASSERT_TRUE(WriteFileBytes(ListPath(), b).ok());
  auto l = MeasurementList::Open(Config(), tpm_.get(), &env_);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kCorrupt);
}

TEST_F(ListTest, ViolationsAndGapsExtendFF) {
  auto l = OpenList();
  ASSERT_TRUE(l->AppendViolation("/v").ok());
  ASSERT_TRUE(l->AppendBuffer("lim-event-overflow", "lost=unknown;", true).ok());
  EXPECT_EQ(l->violations(), 2u);
  EXPECT_EQ(Names(ListPath()), (std::vector<std::string>{"boot_aggregate", "/v", "lim-event-overflow"}));
  EXPECT_EQ(Verify(ListPath()), 0);
}

// Resource budget: 100,000 entries in the list; the restart (recovery replay, duplicate
// table) stays well inside limd's 32 MiB.
TEST_F(ListTest, HundredThousandEntriesRecoverInBudget) {
  constexpr int kEntries = 100000;
  tpm_->kind_override = tpm::TpmKind::kSwtpm;
  {
    auto l = OpenList();
    ASSERT_TRUE(l);
    for (int i = 0; i < kEntries; ++i) {
      ASSERT_TRUE(l->Append(FileRec("/usr/lib/file-" + std::to_string(i), std::to_string(i))).ok());
    }
  }
  auto rss_kb = [](const char* key) {
    auto s = ReadFileText("/proc/self/status");
    size_t at = s->find(key);
    return at == std::string::npos ? 0L : std::atol(s->c_str() + at + std::strlen(key));
  };
  malloc_trim(0);  // the first list's freed pages out of "before" (Open() trims after it)
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  long before = rss_kb("VmRSS:");
  auto l = OpenList();
  ASSERT_TRUE(l);
  long peak = rss_kb("VmHWM:"), after = rss_kb("VmRSS:");
  EXPECT_EQ(l->start_report().previous_entries, static_cast<uint64_t>(kEntries + 1));
  EXPECT_EQ(l->start_report().reextended, 0u);
  std::printf("100k-entry restart: RSS +%ld KiB steady, +%ld KiB peak (list %llu bytes)\n", after - before,
              peak - before, static_cast<unsigned long long>(FileSize(ListPath())));
  EXPECT_LT(peak - before, 24 * 1024);
  // The duplicate table packs full digests: ~50 bytes an entry (a node set took ~65).
  EXPECT_LT(after - before, 6 * 1024);
  EXPECT_FALSE(*l->Append(FileRec("/usr/lib/file-7", "7")));  // still a duplicate
}

// A full disk: no entry, 0xFF extended, so the chain visibly breaks (invariant 4).
TEST_F(ListTest, FullDiskBreaksTheChainVisibly) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs for the state";
  ASSERT_EQ(::mount("limdfull", dir_.c_str(), "tmpfs", 0, "size=32k,mode=0700"), 0) << strerror(errno);
  struct Unmount {
    std::string d;
    ~Unmount() { ::umount2(d.c_str(), MNT_DETACH); }
  } unmount{dir_};
  auto l = OpenList();
  ASSERT_TRUE(l);
  // Fill the filesystem.
  {
    int fd = ::open((dir_ + "/filler").c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    Bytes block(4096, 0);
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    ::close(fd);
  }
  uint64_t before = FileSize(ListPath());
  Status failed;
  for (int i = 0; i < 100 && failed.ok(); ++i) {
    auto r = l->Append(FileRec("/f" + std::to_string(i), std::to_string(i)));
    if (!r.ok()) failed = r.status();
  }
  ASSERT_FALSE(failed.ok()) << "the small tmpfs never filled";
  EXPECT_NE(failed.message().find("0xFF"), std::string::npos) << failed.message();
  EXPECT_EQ(l->write_failures(), 1u);
  EXPECT_GE(FileSize(ListPath()), before);
  // No record is torn and the list no longer explains the PCR.
  auto r = lim::testing::RunCommand(lim::testing::LimBinary() + " log " + ListPath() + " >/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ::unlink((dir_ + "/filler").c_str());
  auto pcrs = tpm_->ReadPcrs({{0x4, {10}}, {0xb, {10}}});
  ASSERT_TRUE(pcrs.ok());
  std::string f = dir_ + "/verify-pcrs.json";
  ASSERT_TRUE(WriteFileBytes(f, AsBytes(tpm::PcrValuesToJson(*pcrs))).ok());
  auto v = lim::testing::RunCommand(lim::testing::LimBinary() + " verify " + ListPath() + " --pcrs " + f);
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
}

}  // namespace
}  // namespace lim::daemon
