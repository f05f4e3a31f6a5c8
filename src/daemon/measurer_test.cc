#include "daemon/measurer.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "daemon/fake_env_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "daemon/measurer_test_util.h"
#include "ima/digest_field.h"
#include "ima/list_reader.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"
#include "ima/replay.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using testing::FakeEnv;

using Got = testing::ListRow;
std::vector<Got> ReadList(const std::string& path) { return testing::ReadListRows(path); }

Bytes Sha(const HashAlgo& a, std::string_view s) { return *Digest(a, AsBytes(s)); }

class MeasurerTest : public testing::MeasurerFixture {
 protected:
  void SetUp() override { Start("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n"); }
  void Start(std::string_view policy_text, const std::string& tmpl = "ima-ng") {
    ListConfig lc;
    lc.template_name = tmpl;
    ASSERT_NO_FATAL_FAILURE(OpenParts(policy_text, lc));
    MeasurerConfig mc;
    mc.template_name = tmpl;
    mc.read_block = 7;  // many preads even for small test files
    measurer_ = std::make_unique<Measurer>(mc, matcher_.get(), list_.get(), &env_,
                                           [this](const std::string& line) { audit_.push_back(line); });
  }
  // An open as the fanotify layer reports it: counts noted in order, then processed.
  Verdict Open(int fd, const std::string& path, bool write = false, ima::ImaHook func = ima::ImaHook::kFileCheck) {
    Access a;
    a.fd = fd;
    a.path = path;
    a.func = func;
    a.open_for_write = write;
    a.mask = write ? ima::may::kWrite : (func == ima::ImaHook::kBprmCheck ? ima::may::kExec : ima::may::kRead);
    a.key = Key(fd);
    a.counts = measurer_->NoteOpen(Key(fd), write, !write);
    return measurer_->Process(a);
  }
  void Close(int fd, bool was_write) {
    measurer_->ApplyClose(Key(fd), measurer_->NoteClose(Key(fd), was_write), env_.file(fd).facts);
  }
  std::vector<Got> List() { return ReadList(dir_ + "/binary_runtime_measurements"); }
  // Replays the list and compares with the software TPM's PCR 10 in both banks.
  void ExpectReplayMatchesTpm() {
    auto pcrs = tpm_->ReadPcrs({{0x4, {10}}, {0xb, {10}}});
    ASSERT_TRUE(pcrs.ok());
    std::string pcr_file = dir_ + "/pcrs.json";
    ASSERT_TRUE(WriteFileBytes(pcr_file, AsBytes(tpm::PcrValuesToJson(*pcrs))).ok());
    auto r = lim::testing::RunCommand(lim::testing::LimBinary() + " verify " + dir_ +
                                      "/binary_runtime_measurements --pcrs " + pcr_file);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  std::vector<std::string> audit_;
};

TEST_F(MeasurerTest, AFailedMeasurementCarriesItsStatus) {
  Access a;
  a.fd = 9999;  // no such file: Env::Facts fails
  a.path = "/mnt/gone";
  a.func = ima::ImaHook::kFileCheck;
  a.mask = ima::may::kRead;
  uint64_t entries = list_->entries();
  Verdict v = measurer_->Process(a);
  EXPECT_EQ(v.status.code(), StatusCode::kIoError);
  EXPECT_EQ(v.status.message(), "bad fd");
  EXPECT_TRUE(v.allow);  // measure mode: the access is still answered, allowed
  EXPECT_FALSE(v.measured);
  EXPECT_EQ(list_->entries(), entries);
  int fd = env_.NewFile("fine\n");
  EXPECT_TRUE(Open(fd, "/mnt/fine").status.ok());
}

TEST_F(MeasurerTest, FileEntryIsExact) {
  int fd = env_.NewFile("hello, measured world\n");
  Verdict v = Open(fd, "/mnt/a file");
  EXPECT_TRUE(v.allow);
  EXPECT_TRUE(v.measured) << v.status.message();
  auto l = List();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].name, "boot_aggregate");
  EXPECT_EQ(l[0].algo, "sha256");
  EXPECT_EQ(l[0].digest, Bytes(32, 0));  // software TPM: zeros, as the kernel without TPM
  EXPECT_EQ(l[1].pcr, 10u);
  EXPECT_EQ(l[1].tmpl, "ima-ng");
  EXPECT_EQ(l[1].name, "/mnt/a_file");  // spaces become '_' (kernel)
  EXPECT_EQ(l[1].algo, "sha256");
  EXPECT_EQ(l[1].digest, Sha(Sha256Algo(), "hello, measured world\n"));
  EXPECT_GT(env_.preads, 3);  // hashed in blocks through the fd
  ExpectReplayMatchesTpm();
}

TEST_F(MeasurerTest, PolicyDecidesFuncAndMask) {
  Start("measure func=BPRM_CHECK\n");
  int fd = env_.NewFile("#!/bin/sh\n");
  EXPECT_FALSE(Open(fd, "/x").measured);  // FILE_CHECK read: no rule
  EXPECT_TRUE(Open(fd, "/x", false, ima::ImaHook::kBprmCheck).measured);
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(MeasurerTest, UnchangedFileIsMeasuredOnce) {
  int fd = env_.NewFile("abc");
  EXPECT_TRUE(Open(fd, "/f").measured);
  Close(fd, false);
  int before = env_.preads;
  Verdict v = Open(fd, "/f");
  EXPECT_FALSE(v.measured);
  EXPECT_TRUE(v.cached);
  EXPECT_EQ(env_.preads, before);  // the cache answered, no hash
  EXPECT_EQ(List().size(), 2u);
  EXPECT_EQ(measurer_->cache_hits(), 1u);
}

TEST_F(MeasurerTest, DuplicateSuppressionAsKernel) {
  int a = env_.NewFile("same");
  int b = env_.NewFile("same");  // another inode, same content
  EXPECT_TRUE(Open(a, "/p").measured);
  Verdict v = Open(b, "/p");  // same template data and PCR: no entry
  EXPECT_TRUE(v.duplicate);
  EXPECT_FALSE(v.measured);
  // The duplicate still marks b measured (kernel): b under another name stays cached.
  EXPECT_TRUE(Open(b, "/q").cached);
  int c = env_.NewFile("same");
  EXPECT_TRUE(Open(c, "/q").measured);  // same content, other path: a new entry
  auto l = List();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[2].name, "/q");
  EXPECT_EQ(list_->duplicates(), 1u);
  ExpectReplayMatchesTpm();
}

TEST_F(MeasurerTest, RewrittenFileMeasuredAgainAfterLastWriterCloses) {
  int r = env_.NewFile("v1");
  EXPECT_TRUE(Open(r, "/f").measured);
  Close(r, false);
  int w = env_.Dup(r);
  Open(w, "/f", true);       // write open: not measured by this policy
  env_.Write(w, "version 2");
  // While the writer is open the verdict stands (kernel semantics), with one open_writers.
  Verdict during = Open(r, "/f");
  EXPECT_TRUE(during.cached);
  EXPECT_EQ(during.violations, 1);
  Close(r, false);
  Close(w, true);  // last writer: the tuple changed
  Verdict after = Open(r, "/f");
  EXPECT_TRUE(after.measured);
  auto l = List();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_TRUE(l[2].violation);
  EXPECT_EQ(l[3].digest, Sha(Sha256Algo(), "version 2"));
  ExpectReplayMatchesTpm();
}

TEST_F(MeasurerTest, WriterThatChangesNothingDoesNotRemeasure) {
  int r = env_.NewFile("stable");
  EXPECT_TRUE(Open(r, "/f").measured);
  Close(r, false);
  int w = env_.Dup(r);
  Open(w, "/f", true);
  Close(w, true);
  EXPECT_TRUE(Open(r, "/f").cached);
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(MeasurerTest, ChangedTupleWithoutSeenWriterIsRemeasured) {
  int r = env_.NewFile("one");
  EXPECT_TRUE(Open(r, "/f").measured);
  Close(r, false);
  env_.Write(r, "two");  // e.g. written while limd was not running
  EXPECT_TRUE(Open(r, "/f").measured);
  EXPECT_EQ(List().back().digest, Sha(Sha256Algo(), "two"));
}

// FUSE from a trusted mounter (Access::remeasure): the kernel re-measures at every access,
// because it cannot trust the change tuple; an unchanged file stays one entry (duplicate
// table), a change the tuple does not show is a new entry.
TEST_F(MeasurerTest, RemeasureHashesEveryAccessAndCatchesAChangeTheTupleHides) {
  int r = env_.NewFile("one");
  auto open = [&] {
    Access a;
    a.fd = r;
    a.path = "/fuse/f";
    a.func = ima::ImaHook::kBprmCheck;
    a.mask = ima::may::kExec;
    a.key = Key(r);
    a.remeasure = true;
    a.counts = measurer_->NoteOpen(Key(r), false, false);
    return measurer_->Process(a);
  };
  EXPECT_TRUE(open().measured);
  Verdict again = open();
  EXPECT_FALSE(again.cached);  // hashed again: the kernel clears IMA_DONE_MASK
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(measurer_->hashes(), 2u);
  env_.WriteSilently(r, "two");  // same size, same times: the tuple sees nothing
  EXPECT_TRUE(open().measured);
  EXPECT_EQ(List().back().digest, Sha(Sha256Algo(), "two"));
  // Without remeasure the same silent change stays cached (the tuple decides).
  int q = env_.NewFile("uno");
  EXPECT_TRUE(Open(q, "/g", false, ima::ImaHook::kBprmCheck).measured);
  env_.WriteSilently(q, "dos");
  EXPECT_TRUE(Open(q, "/g", false, ima::ImaHook::kBprmCheck).cached);
}

TEST_F(MeasurerTest, OpenWritersOncePerEpisode) {
  // exec 5>>f; cat f; cat f  → exactly one open_writers
  int w = env_.NewFile("log");
  Open(w, "/f", true);
  int r = env_.Dup(w);
  EXPECT_EQ(Open(r, "/f").violations, 1);
  Close(r, false);
  EXPECT_EQ(Open(r, "/f").violations, 0);
  Close(r, false);
  Close(w, true);
  // A new writer episode may emit again.
  Open(w, "/f", true);
  EXPECT_EQ(Open(r, "/f").violations, 1);
  auto l = List();
  int violations = 0;
  for (const auto& g : l) {
    if (g.violation) {
      ++violations;
      EXPECT_EQ(g.name, "/f");
      EXPECT_EQ(g.digest, Bytes(32, 0));
      EXPECT_EQ(g.algo, "sha256");
    }
  }
  EXPECT_EQ(violations, 2);
  EXPECT_EQ(list_->violations(), 2u);
  ASSERT_EQ(audit_.size(), 2u);
  EXPECT_NE(audit_[0].find("cause=open_writers"), std::string::npos);
  EXPECT_NE(audit_[0].find("name=\"/f\""), std::string::npos);
  ExpectReplayMatchesTpm();  // violations extend 0xFF, lim verify knows
}

TEST_F(MeasurerTest, ToMToUOncePerMeasureThenWrite) {
  int r = env_.NewFile("data");
  EXPECT_TRUE(Open(r, "/f").measured);  // reader stays open
  int w = env_.Dup(r);
  EXPECT_EQ(Open(w, "/f", true).violations, 1);
  Close(w, true);
  EXPECT_EQ(Open(w, "/f", true).violations, 0);  // bit consumed (6.15)
  Close(w, true);
  Close(r, false);
  // No reader open: no ToMToU.
  int r2 = env_.Dup(r);
  Open(r2, "/f");
  Close(r2, false);
  EXPECT_EQ(Open(w, "/f", true).violations, 0);
  ASSERT_EQ(audit_.size(), 1u);
  EXPECT_NE(audit_[0].find("cause=ToMToU"), std::string::npos);
}

TEST_F(MeasurerTest, XattrChoosesAlgorithm) {
  int fd = env_.NewFile("signed-ish");
  Bytes x = {0x04, 6};  // IMA_XATTR_DIGEST_NG, HASH_ALGO_SHA512
  x.resize(2 + 64, 0xaa);
  env_.file(fd).xattr = x;
  EXPECT_TRUE(Open(fd, "/s").measured);
  auto l = List();
  EXPECT_EQ(l.back().algo, "sha512");
  EXPECT_EQ(l.back().digest, Sha(*HashAlgoByName("sha512"), "signed-ish"));
}

TEST_F(MeasurerTest, ImaSigCarriesSignature) {
  Start("measure func=FILE_CHECK mask=MAY_READ template=ima-sig\n");
  int fd = env_.NewFile("x");
  Bytes sig = {0x03, 2, 4, 0xf3, 0x45, 0x2d, 0x23, 0, 2, 0xab, 0xcd};
  env_.file(fd).xattr = sig;
  EXPECT_TRUE(Open(fd, "/x").measured);
  auto l = List();
  EXPECT_EQ(l.back().tmpl, "ima-sig");
  EXPECT_EQ(l.back().extra, sig);
  EXPECT_EQ(l.back().algo, "sha256");  // from the signature header (algo 4)
  ExpectReplayMatchesTpm();
}

TEST_F(MeasurerTest, PcrRuleGoesToItsPcr) {
  Start("measure func=FILE_CHECK mask=MAY_READ pcr=11\n");
  int fd = env_.NewFile("x");
  EXPECT_TRUE(Open(fd, "/x").measured);
  auto l = List();
  EXPECT_EQ(l.back().pcr, 11u);
  auto pcrs = tpm_->ReadPcrs({{0xb, {11}}});
  ASSERT_TRUE(pcrs.ok());
  EXPECT_FALSE(ima::IsAllZero((*pcrs)[0xb][11]));
}

TEST_F(MeasurerTest, FsnameRules) {
  Start("dont_measure fsname=tmpfs\nmeasure func=FILE_CHECK mask=MAY_READ\n");
  int t = env_.NewFile("on tmpfs", 0x01021994);
  int e = env_.NewFile("on ext4");
  Access a;
  a.fd = t;
  a.path = "/t";
  a.fsname = "tmpfs";
  a.mask = ima::may::kRead;
  EXPECT_FALSE(measurer_->Process(a).measured);
  a.fd = e;
  a.path = "/e";
  a.fsname = "ext4";
  EXPECT_TRUE(measurer_->Process(a).measured);
}

TEST_F(MeasurerTest, FlushForgetsVerdicts) {
  int fd = env_.NewFile("x");
  EXPECT_TRUE(Open(fd, "/x").measured);
  measurer_->Flush();
  Verdict v = Open(fd, "/x");
  EXPECT_FALSE(v.cached);
  EXPECT_TRUE(v.duplicate);  // hashed again; the duplicate table keeps the list clean
}

TEST_F(MeasurerTest, OwnStateFilesAreNotMeasuredAtFileCheckUntilSomeoneElseWrites) {
  OwnFiles own;
  MeasurerConfig mc;
  mc.own_files = &own;
  measurer_ = std::make_unique<Measurer>(mc, matcher_.get(), list_.get(), &env_);
  int fd = env_.NewFile("limd's list\n");
  own.Add(Key(fd).dev, Key(fd).ino);
  size_t before = List().size();
  Verdict v = Open(fd, "/state/binary_runtime_measurements");
  EXPECT_FALSE(v.measure_rule);
  EXPECT_FALSE(v.measured);
  EXPECT_EQ(List().size(), before);
  // The fast path agrees, and passes the turn on.
  Access a;
  a.fd = fd;
  a.func = ima::ImaHook::kFileCheck;
  a.mask = ima::may::kRead;
  a.key = Key(fd);
  a.counts = measurer_->NoteOpen(Key(fd), false, true);
  EXPECT_EQ(measurer_->TryProcessCached(a, env_.file(fd).facts, true), Measurer::Fast::kDone);
  EXPECT_EQ(List().size(), before);
  // An exec of it is measured as usual.
  v = Open(fd, "/state/binary_runtime_measurements", false, ima::ImaHook::kBprmCheck);
  EXPECT_TRUE(v.measured) << v.status.message();
  EXPECT_EQ(List().size(), before + 1);
  // Someone else opens another of limd's files for write: no longer limd's alone, its
  // reads are measured from then on.
  int status = env_.NewFile("{\"running\":true}\n");
  own.Add(Key(status).dev, Key(status).ino);
  EXPECT_FALSE(Open(status, "/state/status.json").measure_rule);
  Open(status, "/state/status.json", true);
  Close(status, true);
  EXPECT_FALSE(own.Contains(Key(status).dev, Key(status).ino));
  EXPECT_TRUE(own.Contains(Key(fd).dev, Key(fd).ino));
  EXPECT_EQ(own.revoked(), 1u);
  v = Open(status, "/state/status.json");
  EXPECT_TRUE(v.measured) << v.status.message();
  EXPECT_EQ(List().size(), before + 2);
  EXPECT_EQ(List().back().name, "/state/status.json");
}

}  // namespace
}  // namespace lim::daemon
