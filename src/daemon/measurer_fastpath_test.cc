// The reader thread's fast path (Measurer::TryProcessCached / TrySkip / TryApplyClose,
// CredsMatter, FileKindCache): it must answer only what needs no I/O, never wait for a
// turn, and leave a step it declines exactly as a worker's Process() expects it.
#include <gtest/gtest.h>

#include "daemon/fake_env_test_util.h"
#include "daemon/file_kind_cache.h"
#include "daemon/measurer.h"
#include "daemon/measurer_test_util.h"
#include "ima/policy.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

class FastPathTest : public testing::MeasurerFixture {
 protected:
  void SetUp() override { Use("measure func=FILE_CHECK mask=MAY_READ\nmeasure func=BPRM_CHECK\n"); }
  void Use(std::string_view policy_text) {
    ASSERT_NO_FATAL_FAILURE(OpenParts(policy_text));
    measurer_ = std::make_unique<Measurer>(MeasurerConfig{}, matcher_.get(), list_.get(), &env_);
  }
  // A FILE_CHECK open noted in event order (ticket taken), not yet processed.
  Access Noted(int fd, bool write = false) {
    Access a;
    a.fd = fd;
    a.path = "/f";
    a.mask = write ? ima::may::kWrite : ima::may::kRead;
    a.open_for_write = write;
    a.key = Key(fd);
    a.counts = measurer_->NoteOpen(a.key, write, !write);
    return a;
  }
  // A reader's open, processed and closed again.
  void ReadOnce(int fd) {
    measurer_->Process(Noted(fd));
    measurer_->ApplyClose(Key(fd), measurer_->NoteClose(Key(fd), false), env_.file(fd).facts);
  }
  bool Try(const Access& a, Verdict* v) {
    return measurer_->TryProcessCached(a, env_.file(a.fd).facts, true, v) == Measurer::Fast::kDone;
  }
  // The reader's first try, without the opener's credentials.
  Measurer::Fast TryWithoutCreds(const Access& a) {
    return measurer_->TryProcessCached(a, env_.file(a.fd).facts, false);
  }

};

TEST_F(FastPathTest, AnswersCachedVerdictsAndDeclinesHashing) {
  int fd = env_.NewFile("content");
  Verdict v;
  Access first = Noted(fd);
  EXPECT_FALSE(Try(first, &v));  // not measured yet: a worker hashes
  EXPECT_EQ(list_->entries(), 1u);  // boot_aggregate only: nothing happened
  Verdict w = measurer_->Process(first);  // the declined ticket is still the worker's turn
  EXPECT_TRUE(w.measured);
  EXPECT_EQ(list_->entries(), 2u);
  Access again = Noted(fd);
  ASSERT_TRUE(Try(again, &v));
  EXPECT_TRUE(v.cached);
  EXPECT_EQ(list_->entries(), 2u);
  EXPECT_EQ(measurer_->hashes(), 1u);
}

TEST_F(FastPathTest, NoRuleIsAnsweredWithoutHashing) {
  int fd = env_.NewFile("written");
  Verdict v;
  ASSERT_TRUE(Try(Noted(fd, true), &v));  // a write open: no measure rule, nothing to do
  EXPECT_FALSE(v.measure_rule);
  EXPECT_EQ(measurer_->hashes(), 0u);
}

TEST_F(FastPathTest, NeverWaitsForAnEarlierTicket) {
  int fd = env_.NewFile("content");
  measurer_->Process(Noted(fd));  // measured: later reads are cached
  Access a = Noted(fd), b = Noted(fd);
  Verdict v;
  EXPECT_FALSE(Try(b, &v));  // a's turn first: declined at once, not blocked
  ASSERT_TRUE(Try(a, &v));
  ASSERT_TRUE(Try(b, &v));
  EXPECT_TRUE(v.cached);
}

TEST_F(FastPathTest, LeavesViolationsToWorkers) {
  int fd = env_.NewFile("log");
  ReadOnce(fd);
  Access writer = Noted(fd, true);
  Verdict v;
  ASSERT_TRUE(Try(writer, &v));  // no reader open: no ToMToU
  Access reader = Noted(fd);
  EXPECT_FALSE(Try(reader, &v));  // open_writers needs an entry: a worker's job
  EXPECT_EQ(list_->violations(), 0u);
  EXPECT_EQ(measurer_->Process(reader).violations, 1);
  EXPECT_EQ(list_->violations(), 1u);
}

TEST_F(FastPathTest, LeavesToMToUToWorkers) {
  int fd = env_.NewFile("log");
  measurer_->Process(Noted(fd));  // a measured reader still open
  Access writer = Noted(fd, true);
  Verdict v;
  EXPECT_FALSE(Try(writer, &v));
  EXPECT_EQ(measurer_->Process(writer).violations, 1);  // ToMToU, by the worker
}

TEST_F(FastPathTest, CloseOfTheLastWriterEndsTheCachedVerdict) {
  int fd = env_.NewFile("v1");
  ReadOnce(fd);
  Access writer = Noted(fd, true);
  Verdict v;
  ASSERT_TRUE(Try(writer, &v));
  env_.Write(fd, "v2");
  CloseNote note = measurer_->NoteClose(Key(fd), true);
  ASSERT_TRUE(measurer_->TryApplyClose(Key(fd), note, fd));
  EXPECT_FALSE(Try(Noted(fd), &v));  // changed tuple: hash again
}

TEST_F(FastPathTest, CloseWaitsForNothingAndSkipTakesItsTurn) {
  int fd = env_.NewFile("content");
  Access open = Noted(fd);
  CloseNote note = measurer_->NoteClose(Key(fd), false);
  EXPECT_FALSE(measurer_->TryApplyClose(Key(fd), note, fd));  // the open is ahead
  uint64_t elf = measurer_->NoteOpen(Key(fd), false, false).ticket;
  measurer_->Process(open);
  measurer_->ApplyClose(Key(fd), note, env_.file(fd).facts);
  EXPECT_TRUE(measurer_->TrySkip(Key(fd), elf));
  Verdict v;
  EXPECT_TRUE(Try(Noted(fd), &v));  // every earlier ticket served
}

TEST_F(FastPathTest, CredsMatterOnlyForRulesWithIdConditions) {
  Use("measure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=BPRM_CHECK mask=MAY_EXEC\n");
  EXPECT_TRUE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kRead));
  EXPECT_FALSE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kExec));
  EXPECT_FALSE(measurer_->CredsMatter(ima::ImaHook::kBprmCheck, ima::may::kExec));
  EXPECT_FALSE(measurer_->CredsMatter(ima::ImaHook::kMmapCheck, ima::may::kExec));
  Use("dont_measure fsmagic=0x9fa0\nmeasure egid=100\n");  // any func, any mask
  EXPECT_TRUE(measurer_->CredsMatter(ima::ImaHook::kBprmCheck, ima::may::kExec));
  EXPECT_TRUE(measurer_->CredsMatter(ima::ImaHook::kMmapCheck, ima::may::kExec));
  Use("measure func=FILE_CHECK mask=^MAY_READ euid=0\n");  // inmask: any mask with MAY_READ
  EXPECT_TRUE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kRead | ima::may::kWrite));
  EXPECT_FALSE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kWrite));
}

TEST_F(FastPathTest, CredsIndependentAnswerOnlyWhenEveryOutcomeIsTheSame) {
  Use("measure func=FILE_CHECK mask=MAY_READ uid=0\n");
  int fd = env_.NewFile("content");
  Access first = Noted(fd);
  EXPECT_EQ(TryWithoutCreds(first), Measurer::Fast::kNeedsCreds);  // not measured yet
  EXPECT_TRUE(measurer_->Process(first).measured);  // uid 0: measured by the worker
  Access again = Noted(fd);
  again.uid = 1000;  // whatever the opener's uid: allowed, nothing to record
  EXPECT_EQ(TryWithoutCreds(again), Measurer::Fast::kDone);
  EXPECT_EQ(list_->entries(), 2u);
  // Both readers close, a writer opens: a matching rule would record open_writers.
  for (int i = 0; i < 2; ++i) {
    measurer_->ApplyClose(Key(fd), measurer_->NoteClose(Key(fd), false), env_.file(fd).facts);
  }
  Access writer = Noted(fd, true);
  Verdict v;
  ASSERT_TRUE(Try(writer, &v));
  EXPECT_EQ(TryWithoutCreds(Noted(fd)), Measurer::Fast::kNeedsCreds);
}

TEST_F(FastPathTest, CredsIndependentAnswerNeedsEveryPolicyPcr) {
  Use("measure func=FILE_CHECK mask=MAY_READ uid=1000 pcr=11\nmeasure func=FILE_CHECK mask=MAY_READ\n");
  int fd = env_.NewFile("content");
  measurer_->Process(Noted(fd));  // uid 0: the second rule, PCR 10 only
  EXPECT_EQ(TryWithoutCreds(Noted(fd)), Measurer::Fast::kNeedsCreds);  // uid 1000 means PCR 11
}

TEST_F(FastPathTest, CredsTablesFollowAPolicyReplacement) {
  Use("measure func=FILE_CHECK mask=MAY_READ\n");
  EXPECT_FALSE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kRead));
  auto p = ima::ParsePolicy("measure func=FILE_CHECK mask=MAY_READ uid=0\n", "test");
  ASSERT_TRUE(p.ok());
  ima::PolicyMatcher next(*p);
  measurer_->SetMatcher(&next);
  EXPECT_TRUE(measurer_->CredsMatter(ima::ImaHook::kFileCheck, ima::may::kRead));
  int fd = env_.NewFile("content");
  EXPECT_EQ(TryWithoutCreds(Noted(fd)), Measurer::Fast::kNeedsCreds);  // decided with the new policy
}

TEST(FileKindCache, HitsOnlyForTheSameContentTuple) {
  FileKindCache c;
  FileFacts f;
  f.mtime_ns = 5;
  f.size = 10;
  InodeKey k{1, 2};
  EXPECT_FALSE(c.Get(k, f));
  c.Put(k, f, FileKindCache::kElf);
  ASSERT_TRUE(c.Get(k, f));
  EXPECT_EQ(*c.Get(k, f), FileKindCache::kElf);
  FileFacts changed = f;
  changed.mtime_ns = 6;
  EXPECT_FALSE(c.Get(k, changed));
  EXPECT_FALSE(c.Get(InodeKey{1, 3}, f));
}

}  // namespace
}  // namespace lim::daemon
