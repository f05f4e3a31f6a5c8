// --kernel-list on a real kernel list: lim-agent's agent core serving a kernel IMA list from
// a real machine (embrave's fixture: 922 ima-ng entries, kernel byte order, sha1 template
// digests) as the kernel's list (source "kernel"), on a test swtpm whose PCR 10 is made to
// match (every entry extended per bank, as the kernel does), verified by lim's rounds: first
// a prefix of 600 entries, then the rest incrementally.
#include <gtest/gtest.h>

#include <openssl/rand.h>

#include <filesystem>

#include "agent/agent.h"
#include "attest/attest_test_util.h"
#include "attest/round.h"
#include "attest/runtime_policy.h"
#include "base/file.h"
#include "crypto/hash_algo.h"
#include "ima/list_reader.h"
#include "ima/replay.h"
#include "tests/testing.h"
#include "tpm/swtpm_test_util.h"

namespace lim::agent {
namespace {

// Extends the entries [from, to) of list into PCR 10 of every bank (per-bank template hashes).
void ExtendEntries(tpm::Tpm& tpm, ByteView list, uint64_t from, uint64_t to) {
  auto banks = tpm.AllocatedBanks();
  ASSERT_TRUE(banks.ok());
  std::vector<std::pair<uint16_t, ima::BankDigester>> digesters;
  for (uint16_t alg : *banks) {
    auto algo = HashAlgoByTpmAlg(alg);
    if (!algo.ok() || !HashAlgoAvailable(*algo)) continue;
    auto d = ima::BankDigester::Create(*algo, Sha1Algo(), ima::ReplayMode::kPerBank);
    ASSERT_TRUE(d.ok());
    digesters.emplace_back(alg, std::move(d).value());
  }
  auto reader = ima::ListReader::FromBytes(list);
  ASSERT_TRUE(reader.ok());
  ima::Entry e;
  for (uint64_t i = 0; *(*reader)->Next(&e); ++i) {
    if (i < from) continue;
    if (i >= to) break;
    std::map<uint16_t, Bytes> d;
    for (auto& [alg, dg] : digesters) {
      Bytes v(dg.bank().size);
      dg.Compute(e, v.data());
      d[alg] = std::move(v);
    }
    ASSERT_TRUE(tpm.Extend(10, d).ok());
  }
}

TEST(KernelList, ARealKernelListServedAsTheKernelsIsVerifiedIncrementally) {
  auto real = ReadFileBytes(lim::testing::Fixture("embrave/37d16c0/binary_runtime_measurements"));
  ASSERT_TRUE(real.ok());
  std::vector<size_t> at{0};
  {
    auto r = ima::ListReader::FromBytes(*real);
    ASSERT_TRUE(r.ok());
    ima::Entry e;
    while (*(*r)->Next(&e)) at.push_back((*r)->next_offset());
  }
  ASSERT_EQ(at.size(), 923u);  // 922 entries
  auto policy = attest::LearnPolicy(*real);
  ASSERT_TRUE(policy.ok()) << policy.status().message();

  attest::testing::RebootSwtpm();  // PCR 10 back to zero
  std::string d = lim::testing::MakeTempDir();
  const std::string list_path = d + "/binary_runtime_measurements";
  ASSERT_TRUE(WriteFileBytes(list_path, Bytes(real->begin(), real->begin() + static_cast<ptrdiff_t>(at[600]))).ok());
  {
    auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
    ASSERT_TRUE(t.ok());
    ExtendEntries(**t, *real, 0, 600);
  }
  auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
  ASSERT_TRUE(t.ok());
  auto banks = (*t)->AllocatedBanks();
  ASSERT_TRUE(banks.ok());
  AgentOptions o;
  o.agent_id = "kernel-list";
  o.ak_dir = d + "/ak";
  o.list_path = list_path;  // what --kernel-list serves, here from the fixture
  o.list_source = "kernel";
  o.event_log_path = "";
  o.control_socket = "";
  auto a = Agent::Create(o, std::move(*t));
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto ak = tpm::PublicKey::FromTpmPublic((*a)->ak().pub);
  ASSERT_TRUE(ak.ok());

  attest::AgentState state;
  auto round = [&](uint64_t* verified) {
    attest::EvidenceRequest req = attest::NextRequest(state, *banks);
    req.nonce = attest::testing::RandomBytes(32);
    req.max_list_bytes = 1 << 20;
    auto ev = (*a)->Gather(req);
    EXPECT_TRUE(ev.ok()) << ev.status().message();
    attest::RoundResult r = attest::Verify(*ak, state, *ev, *policy, req.nonce);
    state = r.state;
    *verified = r.verified_entries;
    EXPECT_EQ(ev->list.source, "kernel");
    EXPECT_EQ(ev->list.first_index, req.list_from);
    return r;
  };
  uint64_t verified = 0;
  attest::RoundResult r1 = round(&verified);
  EXPECT_EQ(verified, 600u);
  EXPECT_EQ(state.next_index, 600u);
  EXPECT_EQ(state.replay_mode, "per-bank");
  // Attested: the list replays to the quoted PCR 10 in every bank, every entry is in the
  // learned policy, and entry 0's boot_aggregate equals the one over this swtpm's PCRs 0–9
  // (all zero after the reboot: the fixture's machine had them zero as well). No limd on
  // a kernel-list host, and none needed.
  EXPECT_TRUE(r1.attested) << (r1.findings.empty() ? "" : attest::FormatFinding("kernel-list", r1.findings[0]));
  EXPECT_TRUE(r1.findings.empty());
  EXPECT_EQ(r1.next.list_from, 600u);

  // The kernel appends the rest: the next round asks from entry 600 and gets exactly those.
  ASSERT_TRUE(WriteFileBytes(list_path, *real).ok());
  {
    // The agent holds its TPM connection only while quoting: extend in between.
    auto t2 = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
    ASSERT_TRUE(t2.ok());
    ExtendEntries(**t2, *real, 600, 922);
  }
  attest::RoundResult r2 = round(&verified);
  EXPECT_TRUE(r2.attested) << (r2.findings.empty() ? "" : attest::FormatFinding("kernel-list", r2.findings[0]));
  EXPECT_EQ(verified, 322u);
  EXPECT_EQ(state.next_index, 922u);
  // Nothing new: a round over an empty tail.
  attest::RoundResult r3 = round(&verified);
  EXPECT_TRUE(r3.attested);
  EXPECT_EQ(verified, 0u);
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace lim::agent
