// The Measurer's appraise step on the FakeEnv: which rules appraise (appraise /
// dont_appraise, appraise_algos=, appraise_flag=, appraise_tcb), the answer per mode, and
// the outcome cached with the measurement (same invalidation; a denial stays a denial).
#include <gtest/gtest.h>

#include "crypto/digest.h"
#include "daemon/appraiser.h"
#include "daemon/measurer_test_util.h"
#include "ima/ima_xattr.h"
#include "ima/policy_builtin.h"

namespace lim::daemon {
namespace {

class MeasurerAppraiseTest : public testing::MeasurerFixture {
 protected:
  void Start(std::string_view policy_text, AppraiseMode mode = AppraiseMode::kEnforce) {
    ASSERT_NO_FATAL_FAILURE(OpenParts(policy_text));
    Install(mode);
  }
  void StartBuiltin(const std::string& name) {
    ASSERT_NO_FATAL_FAILURE(OpenParts("measure func=BPRM_CHECK\n"));
    auto p = ima::BuiltinPolicy(name);
    ASSERT_TRUE(p.ok()) << p.status().message();
    policy_ = *p;
    matcher_ = std::make_unique<ima::PolicyMatcher>(policy_);
    Install(AppraiseMode::kEnforce);
  }
  void Install(AppraiseMode mode) {
    appraiser_ = std::make_unique<Appraiser>(AppraiserConfig{mode}, std::vector<PublicKey>{}, DigestDenylist{}, nullptr);
    MeasurerConfig mc;
    mc.appraiser = appraiser_.get();
    mc.appraise_audit = [this](const std::string& line) { audit_.push_back(line); };
    measurer_ = std::make_unique<Measurer>(mc, matcher_.get(), list_.get(), &env_);
  }
  Verdict Open(int fd, bool write = false, bool answerable = true) {
    Access a;
    a.fd = fd;
    a.path = "/f";
    a.func = ima::ImaHook::kFileCheck;
    a.open_for_write = write;
    a.mask = write ? ima::may::kWrite : ima::may::kRead;
    a.answerable = answerable;
    a.key = Key(fd);
    a.counts = measurer_->NoteOpen(Key(fd), write, !write);
    Verdict v = measurer_->Process(a);
    if (!v.allow) measurer_->UndoOpen(Key(fd), write, !write);  // as the daemon does for a denied open
    return v;
  }
  void Close(int fd, bool was_write) {
    measurer_->ApplyClose(Key(fd), measurer_->NoteClose(Key(fd), was_write), env_.file(fd).facts);
  }
  void SetDigest(int fd, std::string_view content) {
    Bytes d = *Digest(Sha256Algo(), AsBytes(content));
    env_.file(fd).xattr = ima::MakeImaDigestXattr(Sha256Algo(), d);
    env_.file(fd).facts.ctime_ns += 1;  // setxattr moves ctime
  }
  std::string Cause(const Verdict& v) { return v.appraisal ? v.appraisal->cause : "(not appraised)"; }

  std::unique_ptr<Appraiser> appraiser_;
  std::vector<std::string> audit_;
};

// Only an appraise rule that can match a PROT_EXEC mmap keeps the daemon's pre-content
// ignore marks away; the hook hears every policy change.
TEST_F(MeasurerAppraiseTest, AppraisesMmapOnlyWithAnAppraiseRuleThatCanMatchOne) {
  auto mmap = [&](std::string_view text, AppraiseMode mode = AppraiseMode::kEnforce) {
    Start(text, mode);
    return measurer_->AppraisesMmap();
  };
  EXPECT_FALSE(mmap("measure func=MMAP_CHECK\nappraise func=BPRM_CHECK\nappraise func=FILE_CHECK\n"));
  EXPECT_FALSE(mmap("dont_appraise func=MMAP_CHECK\nappraise func=BPRM_CHECK\n"));
  EXPECT_TRUE(mmap("appraise func=MMAP_CHECK\n"));
  EXPECT_TRUE(mmap("appraise func=MMAP_CHECK_REQPROT\n"));
  EXPECT_TRUE(mmap("appraise fowner=0\n"));  // no func=: every hook
  EXPECT_TRUE(mmap("appraise func=MMAP_CHECK\n", AppraiseMode::kLog));
  EXPECT_FALSE(mmap("appraise func=MMAP_CHECK\n", AppraiseMode::kOff));
  StartBuiltin("appraise_tcb");
  EXPECT_TRUE(measurer_->AppraisesMmap());

  Start("appraise func=BPRM_CHECK\n");
  int calls = 0;
  bool seen = true;
  measurer_->SetPublishHook([&] {
    calls++;
    seen = measurer_->AppraisesMmap();
  });
  auto p = ima::ParsePolicy("appraise func=MMAP_CHECK\n", "test");
  ASSERT_TRUE(p.ok());
  ima::Policy policy = *p;
  ima::PolicyMatcher m(policy);
  measurer_->SetMatcher(&m);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen);
  measurer_->SetMatcher(matcher_.get());
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(seen);
  measurer_->SetPublishHook(nullptr);
  measurer_->SetMatcher(&m);
  EXPECT_EQ(calls, 2);
}

TEST_F(MeasurerAppraiseTest, EnforceDeniesAndADenialStaysCachedUntilTheFileChanges) {
  Start("appraise func=FILE_CHECK\n");
  int fd = env_.NewFile("content");
  Verdict v = Open(fd);
  EXPECT_FALSE(v.allow);
  EXPECT_TRUE(v.appraised);
  EXPECT_EQ(Cause(v), "missing-hash");
  ASSERT_EQ(audit_.size(), 1u);
  EXPECT_NE(audit_[0].find("op=appraise_data cause=missing-hash "), std::string::npos) << audit_[0];
  Verdict again = Open(fd);
  EXPECT_FALSE(again.allow);     // never cached as allowed
  EXPECT_FALSE(again.appraised);  // from the cache
  EXPECT_EQ(measurer_->appraise_counts().denied.load(), 2u);
  EXPECT_EQ(measurer_->appraise_counts().failures.load(), 1u);
  SetDigest(fd, "content");
  Verdict fixed = Open(fd);
  EXPECT_TRUE(fixed.allow) << Cause(fixed);
  EXPECT_TRUE(fixed.appraised);
  EXPECT_EQ(measurer_->Readers(Key(fd)), 1);  // the denied opens were taken back
}

TEST_F(MeasurerAppraiseTest, AnOutcomeIsDroppedWithTheMeasurementAtTheLastWritersClose) {
  Start("measure func=FILE_CHECK\nappraise func=FILE_CHECK\n");
  int fd = env_.NewFile("v1");
  SetDigest(fd, "v1");
  EXPECT_TRUE(Open(fd).allow);
  Close(fd, false);
  int w = env_.Dup(fd);
  EXPECT_TRUE(Open(w, true).allow);
  env_.Write(w, "v2");
  EXPECT_TRUE(Open(fd).allow);  // while the writer is open the verdict stands (kernel)
  Close(fd, false);
  Close(w, true);  // no fd: no security.ima rewrite here, so v2 no longer matches
  Verdict after = Open(fd);
  EXPECT_TRUE(after.appraised);
  EXPECT_FALSE(after.allow);
  EXPECT_EQ(Cause(after), "invalid-hash");
  EXPECT_EQ(measurer_->hashes(), 2u);  // one hash per content, shared by measurement and appraisal
}

TEST_F(MeasurerAppraiseTest, LogAndFixModesAllow) {
  Start("appraise func=FILE_CHECK\n", AppraiseMode::kLog);
  int fd = env_.NewFile("x");
  Verdict v = Open(fd);
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(Cause(v), "missing-hash");
  EXPECT_EQ(audit_.size(), 1u);
  EXPECT_EQ(measurer_->appraise_counts().denied.load(), 0u);
}

TEST_F(MeasurerAppraiseTest, RulesDecideWhatIsAppraised) {
  // appraise_algos=: a sha256 digest where only sha512 is allowed.
  Start("appraise func=FILE_CHECK appraise_algos=sha512\n");
  int fd = env_.NewFile("x");
  SetDigest(fd, "x");
  EXPECT_EQ(Cause(Open(fd)), "denied-hash-algorithm");
  // appraise_flag= is accepted and ignored; imasig needs a signature.
  Start("appraise func=FILE_CHECK appraise_type=imasig appraise_flag=check_blacklist\n");
  fd = env_.NewFile("y");
  SetDigest(fd, "y");
  EXPECT_EQ(Cause(Open(fd)), "IMA-signature-required");
  // dont_appraise first: not appraised, allowed.
  Start("dont_appraise fsmagic=0x1234\nappraise func=FILE_CHECK\n");
  fd = env_.NewFile("z", 0x1234);
  Verdict v = Open(fd);
  EXPECT_TRUE(v.allow);
  EXPECT_FALSE(v.appraise_rule);
  // Another hook's rule does not apply to FILE_CHECK.
  Start("appraise func=BPRM_CHECK appraise_type=imasig\n");
  fd = env_.NewFile("w");
  EXPECT_FALSE(Open(fd).appraise_rule);
}

TEST_F(MeasurerAppraiseTest, AppraiseTcbAppraisesRootsFilesOnly) {
  StartBuiltin("appraise_tcb");
  int root = env_.NewFile("r");
  EXPECT_EQ(Cause(Open(root)), "missing-hash");
  int user = env_.NewFile("u");
  env_.file(user).facts.uid = 1000;
  Verdict v = Open(user);
  EXPECT_TRUE(v.allow);
  EXPECT_FALSE(v.appraise_rule);
}

// The reader's fast path without the opener's credentials: a measure rule looks at uid, no
// appraise rule does, so a cached outcome is answered there — a denial as a denial.
TEST_F(MeasurerAppraiseTest, TheFastPathAnswersACachedOutcomeWithoutCredentials) {
  Start("measure func=FILE_CHECK uid=0\nappraise func=FILE_CHECK\n");
  int bad = env_.NewFile("no xattr");
  int good = env_.NewFile("good");
  SetDigest(good, "good");
  EXPECT_FALSE(Open(bad).allow);
  EXPECT_TRUE(Open(good).allow);
  for (int fd : {bad, good}) {
    Access a;
    a.fd = fd;
    a.path = "/f";
    a.func = ima::ImaHook::kFileCheck;
    a.mask = ima::may::kRead;
    a.answerable = true;
    a.key = Key(fd);
    a.counts = measurer_->NoteOpen(Key(fd), false, true);
    Verdict v;
    ASSERT_EQ(measurer_->TryProcessCached(a, env_.file(fd).facts, /*creds_known=*/false, &v), Measurer::Fast::kDone);
    EXPECT_EQ(v.allow, fd == good);
  }
  // An appraise rule with uid= makes the credentials matter.
  Start("measure func=FILE_CHECK uid=0\nappraise func=FILE_CHECK uid=0\n");
  int fd = env_.NewFile("x");
  Open(fd);
  Access a;
  a.fd = fd;
  a.func = ima::ImaHook::kFileCheck;
  a.mask = ima::may::kRead;
  a.answerable = true;
  a.key = Key(fd);
  a.counts = measurer_->NoteOpen(Key(fd), false, true);
  EXPECT_EQ(measurer_->TryProcessCached(a, env_.file(fd).facts, false), Measurer::Fast::kNeedsCreds);
  measurer_->Skip(Key(fd), a.counts.ticket);
}

TEST_F(MeasurerAppraiseTest, WhatNobodyWaitsOnIsNeverAppraised) {
  Start("appraise func=FILE_CHECK\n");
  int fd = env_.NewFile("ran already");
  Verdict v = Open(fd, false, /*answerable=*/false);  // the startup scan, a late exec
  EXPECT_TRUE(v.allow);
  EXPECT_FALSE(v.appraise_rule);
  EXPECT_TRUE(audit_.empty());
}

}  // namespace
}  // namespace lim::daemon
