#include "ima/verify.h"

#include <gtest/gtest.h>

#include "base/file.h"
#include "ima/boot_aggregate.h"
#include "ima/list_writer.h"
#include "ima/replay.h"
#include "ima/synthetic_list.h"
#include "tests/testing.h"

namespace lim::ima {
namespace {

using lim::testing::Fixture;

const char* kPcr10[][2] = {
    {"sha1", "9be6bac02bf18d09d17e726c2df00bca4e8831ea"},
    {"sha256", "7fac48c81837d6d29046008aef0cdad8c2745cc98c3340cbba9bfdf39b4124b8"},
    {"sha384", "e8923687b18847064ff3af89fd7ed088fa03c8b2467f7f8648bab264684575beb92e707d813ed561189492bb4b6e5c8b"},
    {"sha512",
     "698dab0fbb7c4ae0ec4ecae0d3890e9635cc2ba97b9dec459f9ef867b96d858843697c701e580931d6f2cf1e18acb2b3192eb660e871a37cf5b45392086ce807"},
};

PcrSet IbmPcrs() {
  PcrSet s;
  for (auto& [bank, hex] : kPcr10) s.Set(bank, 10, *FromHex(hex));
  return s;
}

// ibmtss: consuming any of the four per-bank lists must give all four stated PCR 10 values.
TEST(ReplayTest, IbmtssPerBankListsReplayToStatedPcr10InAllBanks) {
  for (const char* file : {"sha1.log", "sha256.log", "sha384.log", "sha512.log"}) {
    auto r = ListReader::Open(Fixture(std::string("ibmtss/utils/") + file));
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<std::pair<BankDigester, PcrReplayer>> banks;
    for (auto& [bank, hex] : kPcr10) {
      HashAlgo a = *HashAlgoByName(bank);
      banks.emplace_back(std::move(BankDigester::Create(a, (*r)->bank(), ReplayMode::kPerBank)).value(), std::move(PcrReplayer::Create(a)).value());
    }
    Entry e;
    uint8_t d[64];
    while (*(*r)->Next(&e)) {
      for (auto& [dig, rep] : banks) {
        dig.Compute(e, d);
        rep.Extend(e.pcr, d);
      }
    }
    for (size_t i = 0; i < banks.size(); ++i) {
      EXPECT_EQ(ToHex(banks[i].second.ValueView(10)), kPcr10[i][1]) << file << " bank " << kPcr10[i][0];
    }
  }
}

TEST(VerifyTest, IbmtssListsVerifyAgainstAllFourBanks) {
  VerifyOptions o;
  o.pcrs = IbmPcrs();
  for (const char* file : {"sha1.log", "sha512.log"}) {
    auto r = VerifyList(Fixture(std::string("ibmtss/utils/") + file), o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->matched) << r->mismatch;
    EXPECT_EQ(r->matched_prefix, 362u);
    EXPECT_EQ(r->unattested(), 0u);
    EXPECT_EQ(r->digest_failures, 0u);
    EXPECT_EQ(r->bank_modes.size(), 4u);
  }
}

TEST(VerifyTest, ViolationsExtendAllOnesAndPrefixMatchesWithTail) {
  SyntheticListSpec spec;
  spec.entries = 300;
  spec.violation_every = 7;
  spec.buf_every = 11;
  spec.sig_every = 5;
  auto full = MakeSyntheticList(spec);
  ASSERT_TRUE(full.ok()) << full.status().message();
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", full->list).ok());

  VerifyOptions o;
  o.pcrs = full->pcrs;
  auto r = VerifyList(dir + "/list", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->matched) << r->mismatch;
  EXPECT_EQ(r->matched_prefix, 300u);
  EXPECT_EQ(r->violations, 42u);

  // PCRs read when only 200 entries existed: the list that grew since verifies a prefix.
  spec.entries = 200;
  auto shorter = MakeSyntheticList(spec);
  o.pcrs = shorter->pcrs;
  r = VerifyList(dir + "/list", o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->matched);
  EXPECT_EQ(r->matched_prefix, 200u);
  EXPECT_EQ(r->unattested(), 100u);

  // Single-threaded gives the same answer.
  o.parallel = false;
  auto r1 = VerifyList(dir + "/list", o);
  EXPECT_EQ(r1->matched_prefix, 200u);
}

TEST(VerifyTest, WrongTemplateDigestIsNamed) {
  SyntheticListSpec spec;
  spec.entries = 50;
  auto l = MakeSyntheticList(spec);
  Bytes list = l->list;
  // Flip a byte in the file digest of entry 1 (after entry 0's record).
  auto rd = ListReader::FromBytes(list);
  Entry e;
  ASSERT_TRUE(*(*rd)->Next(&e));
  size_t second = (*rd)->next_offset();
  list[second + 4 + 20 + 4 + 6 + 4 + 4 + 8 + 3] ^= 1;
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", list).ok());
  VerifyOptions o;
  o.pcrs = l->pcrs;
  auto r = VerifyList(dir + "/list", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->digest_failures, 1u);
  ASSERT_TRUE(r->first_digest_failure);
  EXPECT_EQ(r->first_digest_failure->index, 1u);
  EXPECT_EQ(r->first_digest_failure->offset, second);
}

TEST(VerifyTest, PcrMismatchIsReported) {
  SyntheticListSpec spec;
  spec.entries = 20;
  auto l = MakeSyntheticList(spec);
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", l->list).ok());
  VerifyOptions o;
  o.pcrs = l->pcrs;
  Bytes bad = *o.pcrs.Get("sha256", 10);
  bad[0] ^= 0x80;
  o.pcrs.Set("sha256", 10, bad);
  auto r = VerifyList(dir + "/list", o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->matched);
  EXPECT_NE(r->mismatch.find("sha256 PCR 10"), std::string::npos) << r->mismatch;
  // PCRs that the list never extends are an input error, not a silent pass.
  PcrSet other;
  other.Set("sha1", 0, Bytes(20, 1));
  o.pcrs = other;
  EXPECT_FALSE(VerifyList(dir + "/list", o).ok());
}

TEST(VerifyTest, Pre58PaddedListsMatchInPaddedMode) {
  // A pre-5.8 kernel extended the SHA1 template digest zero-padded into the sha256 bank.
  SyntheticListSpec spec;
  spec.entries = 30;
  spec.violation_every = 9;
  spec.pcr_banks = {"sha1"};
  auto l = MakeSyntheticList(spec);
  auto rd = ListReader::FromBytes(l->list);
  auto dig = BankDigester::Create(Sha256Algo(), Sha1Algo(), ReplayMode::kPaddedSha1);
  auto rep = PcrReplayer::Create(Sha256Algo());
  Entry e;
  uint8_t d[64];
  while (*(*rd)->Next(&e)) {
    dig->Compute(e, d);
    if (e.violation) {
      EXPECT_EQ(ToHex(ByteView(d, 32)), std::string(40, 'f') + std::string(24, '0'));
    }
    rep->Extend(e.pcr, d);
  }
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", l->list).ok());
  VerifyOptions o;
  o.pcrs = l->pcrs;
  o.pcrs.Set("sha256", 10, Bytes(rep->ValueView(10).begin(), rep->ValueView(10).end()));
  auto r = VerifyList(dir + "/list", o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->matched) << r->mismatch;
  EXPECT_EQ(r->bank_modes["sha256"], "sha1-padded");
  EXPECT_EQ(r->bank_modes["sha1"], "per-bank");
}

TEST(BootAggregateTest, MatchesImaEvmUtilsAndIbmOracles) {
  // ima-evm-utils: sha1 PCRs 0-23 from tsspcrread; the kernel's sha1 aggregate is over 0-7.
  auto pcrs = PcrSet::Load("sha1," + Fixture("ima-evm-utils/tests/sample-tpm-2.0-pcrs-8-9"));
  ASSERT_TRUE(pcrs.ok()) << pcrs.status().message();
  auto agg = BootAggregate(*pcrs, Sha1Algo());
  ASSERT_TRUE(agg.ok());
  // Independent: SHA1 over PCR0..7 as listed in the file.
  Bytes cat;
  for (uint32_t i = 0; i < 8; ++i) {
    const Bytes* v = pcrs->Get("sha1", i);
    ASSERT_NE(v, nullptr);
    cat.insert(cat.end(), v->begin(), v->end());
  }
  EXPECT_EQ(*agg, *Digest(Sha1Algo(), cat));
  // Missing PCRs are named.
  PcrSet partial;
  partial.Set("sha256", 0, Bytes(32, 0));
  auto missing = BootAggregate(partial, Sha256Algo());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("sha256 PCR 1"), std::string::npos);
}

TEST(BootAggregateTest, KernelBankChoice) {
  HashAlgo sha1 = Sha1Algo(), sha256 = Sha256Algo(), sha384 = *HashAlgoByName("sha384");
  EXPECT_EQ(ChooseBootAggregateBank({sha1, sha256, sha384}, sha384)->kernel_id, sha384.kernel_id);
  EXPECT_EQ(ChooseBootAggregateBank({sha1, sha256, sha384}, *HashAlgoByName("sha512"))->kernel_id, sha256.kernel_id);
  EXPECT_EQ(ChooseBootAggregateBank({sha1}, sha256)->kernel_id, sha1.kernel_id);
  EXPECT_FALSE(ChooseBootAggregateBank({sha384}, sha256).ok());
}

}  // namespace
}  // namespace lim::ima
