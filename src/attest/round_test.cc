#include "attest/round.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "attest/attest_test_util.h"
#include "base/file.h"
#include "ima/list_reader.h"
#include "tests/testing.h"

namespace lim::attest {
namespace {

using lim::testing::Fixture;
using testing::Host;
using testing::RandomBytes;
using testing::Sha256Of;

class RoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::RebootSwtpm();
    host_.Boot();
  }

  // A policy allowing /usr/bin/a … /usr/bin/z with content "good <name>".
  RuntimePolicy GoodPolicy() {
    RuntimePolicy p;
    for (char c = 'a'; c <= 'z'; ++c) {
      std::string path = std::string("/usr/bin/") + c;
      p.AllowPath(path, Sha256Of("good " + path));
    }
    return p;
  }
  void AppendGood(char c) {
    std::string path = std::string("/usr/bin/") + c;
    host_.AppendFile(path, "good " + path);
  }

  RoundResult Round(const tpm::AkKey* other_ak = nullptr) {
    Bytes nonce = RandomBytes(20);
    EvidenceRequest req = NextRequest(state_, host_.banks());
    Evidence ev = host_.Gather(req, nonce, other_ak);
    last_ = ev;
    RoundResult r = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
    state_ = r.state;
    return r;
  }

  // A reboot into a firmware log: the swtpm's PCRs 0–9 replayed from it, the agent sends
  // it, then boot_aggregate and one good file.
  void BootWithFirmware(const Bytes& log) {
    testing::RebootSwtpm();
    host_.Reboot();
    host_.ReplayFirmware(log);
    host_.set_firmware(log);
    host_.AppendBootAggregate();
    AppendGood('a');
  }

  static std::string Describe(const RoundResult& r) {
    std::string out;
    for (const auto& f : r.findings) out += FormatFinding("test", f) + "\n";
    return out;
  }
  static const Finding* Find(const RoundResult& r, Reason reason) {
    for (const auto& f : r.findings) {
      if (f.reason == reason) return &f;
    }
    return nullptr;
  }

  Host host_;
  AgentState state_;
  RuntimePolicy policy_ = GoodPolicy();
  Evidence last_;
};

TEST_F(RoundTest, CleanHostStaysAttestedAndReplaysOnlyNewEntries) {
  host_.AppendBootAggregate();
  for (char c = 'a'; c <= 'e'; ++c) AppendGood(c);
  RoundResult r = Round();
  EXPECT_TRUE(r.attested) << Describe(r);
  EXPECT_TRUE(r.findings.empty()) << Describe(r);
  EXPECT_EQ(r.verified_entries, 6u);
  EXPECT_EQ(state_.next_index, 6u);
  EXPECT_EQ(r.next.list_from, 6u);
  for (int round = 0; round < 100; ++round) {
    AppendGood(static_cast<char>('a' + round % 26));
    AppendGood(static_cast<char>('z' - round % 26));
    RoundResult n = Round();
    ASSERT_TRUE(n.attested) << "round " << round << "\n" << Describe(n);
    EXPECT_EQ(n.verified_entries, 2u);
    // Only the new entries were sent and replayed.
    EXPECT_EQ(last_.list.first_index, 6u + 2u * static_cast<uint64_t>(round));
  }
  EXPECT_EQ(state_.next_index, 206u);
  // A round with nothing new is attested too.
  RoundResult idle = Round();
  EXPECT_TRUE(idle.attested) << Describe(idle);
  EXPECT_EQ(idle.verified_entries, 0u);
}

TEST_F(RoundTest, QuoteCoveringAPrefixKeepsTheRestForTheNextRound) {
  host_.AppendBootAggregate();
  AppendGood('a');
  Bytes nonce = RandomBytes(20);
  EvidenceRequest req = NextRequest(state_, host_.banks());
  Evidence ev = host_.Gather(req, nonce);
  // Entries appended after the quote but before the agent read the list.
  AppendGood('b');
  AppendGood('c');
  ev.list = host_.ListFrom(0);
  RoundResult r = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
  ASSERT_TRUE(r.attested) << Describe(r);
  EXPECT_EQ(r.verified_entries, 2u);
  EXPECT_EQ(r.state.pending_entries, 2u);
  EXPECT_EQ(r.next.list_from, 4u);  // the kept entries are not asked again
  state_ = r.state;
  AppendGood('d');
  RoundResult n = Round();
  ASSERT_TRUE(n.attested) << Describe(n);
  EXPECT_EQ(n.verified_entries, 3u);  // b, c (kept) and d
  EXPECT_EQ(state_.next_index, 5u);
  EXPECT_EQ(state_.pending_entries, 0u);
}

// A package update: a host still running the old version of /usr/bin/tool stays attested
// (old-version is a notice), a digest of no version fails with the reinstall hint.
TEST_F(RoundTest, OldPackageVersionIsANoticeUnknownDigestFails) {
  policy_.SetPackage("tool", {{"2.0-1", "1.0-1"}, "2.0-1", "deb"});
  policy_.AllowPackageFile("/usr/bin/tool", "tool", "1.0-1", Sha256Of("tool 1"));
  policy_.AllowPackageFile("/usr/bin/tool", "tool", "2.0-1", Sha256Of("tool 2"));
  host_.AppendBootAggregate();
  host_.AppendFile("/usr/bin/tool", "tool 1");
  RoundResult r = Round();
  ASSERT_TRUE(r.attested) << Describe(r);
  EXPECT_FALSE(r.retry);
  const Finding* old = Find(r, Reason::kOldVersion);
  ASSERT_NE(old, nullptr) << Describe(r);
  EXPECT_EQ(old->entry, 1u);
  host_.AppendFile("/usr/bin/tool", "tool 2");
  RoundResult n = Round();
  ASSERT_TRUE(n.attested) << Describe(n);
  EXPECT_TRUE(n.findings.empty()) << Describe(n);
  host_.AppendFile("/usr/bin/tool", "replaced");
  RoundResult bad = Round();
  EXPECT_FALSE(bad.attested);
  const Finding* f = Find(bad, Reason::kDigestNotAllowed);
  ASSERT_NE(f, nullptr) << Describe(bad);
  EXPECT_NE(f->detail.find("reinstall: `apt-get install --reinstall tool`"), std::string::npos) << f->detail;
}

TEST_F(RoundTest, TailCutBeforeTheQuotedEntriesIsAskedAgainNotFailed) {
  host_.AppendBootAggregate();
  for (char c = 'a'; c <= 'e'; ++c) AppendGood(c);
  Bytes nonce = RandomBytes(20);
  Evidence ev = host_.Gather(NextRequest(state_, host_.banks()), nonce);
  // The agent cut the tail after 3 entries (max_list_bytes); the list has 6.
  ev.list.records.resize(host_.offsets()[3]);
  RoundResult r = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
  EXPECT_FALSE(r.attested);
  EXPECT_TRUE(r.retry);
  const Finding* f = Find(r, Reason::kListIncomplete);
  ASSERT_NE(f, nullptr) << Describe(r);
  EXPECT_FALSE(f->failure());
  EXPECT_EQ(f->entry, 3u);
  EXPECT_EQ(r.next.list_from, 0u);
  EXPECT_EQ(r.next.max_list_bytes, VerifyOptions().max_list_bytes);
  EXPECT_EQ(r.verified_entries, 0u);
  RoundResult full = Round();
  EXPECT_TRUE(full.attested) << Describe(full);
  EXPECT_EQ(full.verified_entries, 6u);
}

TEST_F(RoundTest, UnknownFileAndNewDigestAreNamedToTheEntry) {
  host_.AppendBootAggregate();
  AppendGood('a');
  ASSERT_TRUE(Round().attested);
  host_.AppendFile("/tmp/evil", "malware");
  host_.AppendFile("/usr/bin/b", "trojaned b");
  RoundResult r = Round();
  EXPECT_FALSE(r.attested);
  const Finding* unknown = Find(r, Reason::kUnknownFile);
  ASSERT_NE(unknown, nullptr) << Describe(r);
  EXPECT_EQ(unknown->entry, 2u);
  EXPECT_EQ(unknown->path, "/tmp/evil");
  EXPECT_EQ(unknown->digest, "sha256:" + ToHex(Sha256Of("malware")));
  EXPECT_EQ(unknown->tmpl, "ima-ng");
  EXPECT_EQ(unknown->pcr, 10);
  const Finding* digest = Find(r, Reason::kDigestNotAllowed);
  ASSERT_NE(digest, nullptr) << Describe(r);
  EXPECT_EQ(digest->entry, 3u);
  EXPECT_NE(digest->reference.find(ToHex(Sha256Of("good /usr/bin/b"))), std::string::npos);
  EXPECT_EQ(FormatFinding("web1", *digest),
            "lim-verifier: agent=web1 reason=digest-not-allowed entry=3 pcr=10 template=ima-ng path=/usr/bin/b "
            "digest=sha256:" + ToHex(Sha256Of("trojaned b")) + " reference=\"policy: " +
                ToHex(Sha256Of("good /usr/bin/b")) + "\"");
  // The list replayed: the state moved on, and the next round is clean again.
  EXPECT_EQ(state_.next_index, 4u);
  AppendGood('c');
  EXPECT_TRUE(Round().attested);
}

TEST_F(RoundTest, KeylimeFormOfThePolicyGivesTheSameRound) {
  host_.AppendBootAggregate();
  AppendGood('a');
  host_.AppendFile("/tmp/evil", "malware");
  host_.AppendFile("/usr/bin/b", "trojaned b");
  auto keylime = RuntimePolicy::FromKeylimeJson(policy_.ToKeylimeJson());
  ASSERT_TRUE(keylime.ok()) << keylime.status().message();
  Bytes nonce = RandomBytes(20);
  Evidence ev = host_.Gather(NextRequest(state_, host_.banks()), nonce);
  RoundResult native = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
  RoundResult imported = Verify(host_.ak_pub(), state_, ev, *keylime, nonce);
  ASSERT_EQ(native.findings.size(), 2u) << Describe(native);
  EXPECT_EQ(Describe(native), Describe(imported));
  EXPECT_EQ(AgentStateToJson(native.state), AgentStateToJson(imported.state));
}

TEST_F(RoundTest, ImaSigEntriesAreJudgedByTheirSignature) {
  // keylime's test_ima_verification SIGNATURES: /usr/bin/dd (RSA, f3452d23) and /usr/bin/zmore
  // (ECDSA, 531f4025), real v2 signatures over the sha256 file digests.
  auto text = ReadFileText(Fixture("keylime/derived/test_ima_verification.SIGNATURES.ascii_runtime_measurements"));
  ASSERT_TRUE(text.ok());
  std::vector<ima::Record> signed_records = testing::AsciiRecords(*text);
  ASSERT_EQ(signed_records.size(), 2u);
  auto rsa = PublicKey::LoadFile(Fixture("keylime/derived/ima_keyring_pubkey_keyid_f3452d23.pem"));
  auto ec = PublicKey::LoadFile(Fixture("keylime/derived/ima_keyring_pubkey_keyid_531f4025.pem"));
  ASSERT_TRUE(rsa.ok() && ec.ok());
  policy_.TrustKey((*rsa)[0]);  // only the RSA key: zmore's key is untrusted
  host_.AppendBootAggregate();
  host_.Append(signed_records[0]);
  RoundResult good = Round();
  EXPECT_TRUE(good.attested) << Describe(good);  // not in the digest list: the signature decides
  host_.Append(signed_records[1]);
  RoundResult untrusted = Round();
  const Finding* u = Find(untrusted, Reason::kUntrustedKey);
  ASSERT_NE(u, nullptr) << Describe(untrusted);
  EXPECT_EQ(u->entry, 2u);
  EXPECT_EQ(u->path, "/usr/bin/zmore");
  EXPECT_NE(u->detail.find("531f4025"), std::string::npos);
  // A signature changed by one bit.
  ima::Record bad = signed_records[0];
  bad.fields.back().back() ^= 1;
  host_.Append(bad);
  RoundResult b = Round();
  const Finding* bs = Find(b, Reason::kBadSignature);
  ASSERT_NE(bs, nullptr) << Describe(b);
  EXPECT_EQ(bs->entry, 3u);
  EXPECT_EQ(bs->path, "/usr/bin/dd");
  EXPECT_NE(bs->detail.find("does not verify"), std::string::npos);
}

TEST_F(RoundTest, EditedListsDoNotReplay) {
  host_.AppendBootAggregate();
  AppendGood('a');
  ASSERT_TRUE(Round().attested);
  AppendGood('b');
  AppendGood('c');
  AppendGood('d');
  const Bytes original = host_.list();
  const std::vector<size_t> offsets = host_.offsets();

  // A file digest changed (the stored template digest left as it was).
  // pcr, template digest, name length, "ima-ng", data length, field length, "sha256:\\0".
  host_.list()[offsets[3] + 4 + 20 + 4 + 6 + 4 + 4 + 8 + 5] ^= 0x01;
  RoundResult changed = Round();
  EXPECT_FALSE(changed.attested);
  const Finding* td = Find(changed, Reason::kTemplateDigest);
  ASSERT_NE(td, nullptr) << Describe(changed);
  EXPECT_EQ(td->entry, 3u);
  const Finding* nr = Find(changed, Reason::kListDoesNotReplay);
  ASSERT_NE(nr, nullptr) << Describe(changed);
  EXPECT_EQ(nr->entry, 2u);
  EXPECT_EQ(state_.next_index, 2u);  // nothing past the verified part was accepted

  // An entry removed.
  host_.list() = original;
  host_.list().erase(host_.list().begin() + static_cast<ptrdiff_t>(offsets[3]),
                     host_.list().begin() + static_cast<ptrdiff_t>(offsets[4]));
  host_.offsets() = {offsets[0], offsets[1], offsets[2], offsets[3], offsets[4] - (offsets[4] - offsets[3])};
  host_.offsets().pop_back();
  host_.offsets().push_back(offsets[3]);
  host_.offsets().resize(4);
  RoundResult removed = Round();
  EXPECT_NE(Find(removed, Reason::kListDoesNotReplay), nullptr) << Describe(removed);
  EXPECT_EQ(Find(removed, Reason::kTemplateDigest), nullptr) << Describe(removed);

  // Two entries swapped.
  Bytes swapped(original.begin(), original.begin() + static_cast<ptrdiff_t>(offsets[2]));
  swapped.insert(swapped.end(), original.begin() + static_cast<ptrdiff_t>(offsets[3]),
                 original.begin() + static_cast<ptrdiff_t>(offsets[4]));
  swapped.insert(swapped.end(), original.begin() + static_cast<ptrdiff_t>(offsets[2]),
                 original.begin() + static_cast<ptrdiff_t>(offsets[3]));
  swapped.insert(swapped.end(), original.begin() + static_cast<ptrdiff_t>(offsets[4]), original.end());
  host_.list() = swapped;
  host_.offsets() = offsets;
  RoundResult reordered = Round();
  EXPECT_NE(Find(reordered, Reason::kListDoesNotReplay), nullptr) << Describe(reordered);

  // The original list still verifies: nothing was accepted from the edited ones.
  host_.list() = original;
  RoundResult back = Round();
  EXPECT_TRUE(back.attested) << Describe(back);
  EXPECT_EQ(state_.next_index, 5u);

  // Truncated below what was verified: rewound.
  host_.list().resize(offsets[3]);
  host_.offsets().resize(3);
  RoundResult truncated = Round();
  const Finding* rw = Find(truncated, Reason::kListRewound);
  ASSERT_NE(rw, nullptr) << Describe(truncated);
  EXPECT_EQ(rw->entry, 3u);
}

TEST_F(RoundTest, TruncatedTailIsNotReplayedToTheQuote) {
  host_.AppendBootAggregate();
  AppendGood('a');
  ASSERT_TRUE(Round().attested);
  AppendGood('b');
  AppendGood('c');
  // The agent's list lost its last entry (the TPM has it).
  host_.list().resize(host_.offsets().back());
  host_.offsets().pop_back();
  RoundResult r = Round();
  const Finding* f = Find(r, Reason::kListDoesNotReplay);
  ASSERT_NE(f, nullptr) << Describe(r);
  EXPECT_EQ(f->entry, 2u);
  EXPECT_EQ(f->pcr, 10);
}

TEST_F(RoundTest, Pcr10ExtendedBehindTheListsBack) {
  host_.AppendBootAggregate();
  AppendGood('a');
  ASSERT_TRUE(Round().attested);
  ASSERT_TRUE(tpm::ExtendWithData(host_.tpm(), 10, AsBytes("hidden")).ok());
  AppendGood('b');
  RoundResult r = Round();
  EXPECT_FALSE(r.attested);
  const Finding* f = Find(r, Reason::kListDoesNotReplay);
  ASSERT_NE(f, nullptr) << Describe(r);
  EXPECT_NE(f->reference.find("quote: "), std::string::npos);
  EXPECT_FALSE(f->bank.empty());
}

TEST_F(RoundTest, ReplayedQuoteAndAnotherAkFail) {
  host_.AppendBootAggregate();
  AppendGood('a');
  ASSERT_TRUE(Round().attested);
  // The last evidence again, against a fresh nonce.
  Evidence old = last_;
  Bytes nonce = RandomBytes(20);
  RoundResult replayed = Verify(host_.ak_pub(), state_, old, policy_, nonce);
  EXPECT_FALSE(replayed.attested);
  const Finding* n = Find(replayed, Reason::kNonce);
  ASSERT_NE(n, nullptr) << Describe(replayed);
  EXPECT_EQ(n->reference, "nonce sent: " + ToHex(nonce));
  EXPECT_EQ(replayed.state.next_index, state_.next_index);
  // A quote by another AK of the same TPM.
  auto other = host_.tpm().CreateAk(tpm::EkType::kEcc, tpm::AkAlg::kEccP256);
  ASSERT_TRUE(other.ok());
  RoundResult foreign = Round(&*other);
  EXPECT_NE(Find(foreign, Reason::kQuoteSignature), nullptr) << Describe(foreign);
  // The PCR values sent are not the quoted ones.
  Bytes n2 = RandomBytes(20);
  Evidence ev = host_.Gather(NextRequest(state_, host_.banks()), n2);
  ev.pcrs.begin()->second[10][0] ^= 1;
  RoundResult altered = Verify(host_.ak_pub(), state_, ev, policy_, n2);
  EXPECT_NE(Find(altered, Reason::kPcrDigest), nullptr) << Describe(altered);
}

TEST_F(RoundTest, FirmwareLogIsReplayedAndComparedEventByEvent) {
  auto log = ReadFileBytes(Fixture("rust-keylime/keylime/test-data/uefi_log.bin"));
  ASSERT_TRUE(log.ok());
  testing::RebootSwtpm();
  host_.Boot();
  host_.ReplayFirmware(*log);
  host_.set_firmware(*log);
  host_.AppendBootAggregate();
  AppendGood('a');
  RoundResult r = Round();
  ASSERT_TRUE(r.attested) << Describe(r);
  EXPECT_TRUE(state_.firmware_checked);
  EXPECT_FALSE(r.next.want_event_log);
  // A log with one event's sha256 digest changed.
  size_t victim = 0;
  Bytes changed = testing::WithOnePcr7EventChanged(*log, &victim);
  ASSERT_GT(victim, 0u);
  host_.set_firmware(changed);
  Bytes nonce = RandomBytes(20);
  EvidenceRequest req = NextRequest(state_, host_.banks());
  req.want_event_log = true;
  Evidence ev = host_.Gather(req, nonce);
  RoundResult bad = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
  EXPECT_FALSE(bad.attested);
  const Finding* ed = Find(bad, Reason::kFirmwareEventDiffers);
  ASSERT_NE(ed, nullptr) << Describe(bad);
  EXPECT_EQ(ed->entry, victim);
  const Finding* ld = Find(bad, Reason::kFirmwareLogDiffers);
  ASSERT_NE(ld, nullptr) << Describe(bad);
  EXPECT_EQ(ld->pcr, 7);
  EXPECT_EQ(ld->bank, "sha256");
}

// Measured-boot references ("boot"): checked after the log replays to the quoted PCRs 0–7.
// keylime's RHEL 9 Secure Boot log: a policy learned from it passes; the same host booting a
// kernel with another Authenticode hash (the log replays — the TPM measured that kernel —
// but the digest is not the reference) fails naming event, PCR, type, digest and reference,
// and keeps failing every round (the log is asked for again) until the policy allows it.
TEST_F(RoundTest, BootComponentsAreHeldAgainstThePolicyAfterTheReplay) {
  auto log = ReadFileBytes(Fixture("keylime/test/data/create-mb-policy/binary_bios_measurements-secureboot"));
  ASSERT_TRUE(log.ok());
  auto parsed = tcg::ParseEventLog(*log);
  ASSERT_TRUE(parsed.ok());
  auto boot = LearnBootPolicy(*parsed);
  ASSERT_TRUE(boot.ok());
  policy_.SetBoot(*boot);
  BootWithFirmware(*log);
  RoundResult r = Round();
  ASSERT_TRUE(r.attested) << Describe(r);
  EXPECT_TRUE(state_.firmware_checked);

  // Another kernel: event 93's sha256 digest differs, and the TPM measured that one.
  Bytes other = *log;
  other[static_cast<size_t>(parsed->events[93].DigestFor(TPM2_ALG_SHA256).data() - log->data())] ^= 0xff;
  BootWithFirmware(other);
  RoundResult retry = Round();  // the reboot: asks again from entry 0
  EXPECT_TRUE(retry.reboot) << Describe(retry);
  RoundResult bad = retry.retry ? Round() : retry;
  EXPECT_FALSE(bad.attested);
  EXPECT_EQ(Find(bad, Reason::kFirmwareLogDiffers), nullptr) << Describe(bad);
  const Finding* k = Find(bad, Reason::kBootComponent);
  ASSERT_NE(k, nullptr) << Describe(bad);
  EXPECT_EQ(k->entry, 93u);
  EXPECT_EQ(k->pcr, 4);
  EXPECT_EQ(k->tmpl, "EV_EFI_BOOT_SERVICES_APPLICATION");
  EXPECT_EQ(k->digest.rfind("sha256:de9b8b53", 0), 0u) << k->digest;
  EXPECT_EQ(k->reference, "policy boot.kernel: sha256:219b8b53c54951cd07a580622e384391bbd9e113448a12ad319903fcafb81e79");
  EXPECT_FALSE(state_.firmware_checked);
  EXPECT_TRUE(bad.next.want_event_log);
  RoundResult again = Round();
  EXPECT_NE(Find(again, Reason::kBootComponent), nullptr) << Describe(again);
  // The operator allows the new kernel: the next round passes.
  BootPolicy both = *boot;
  both.Allow("kernel", Bytes(parsed->events[93].DigestFor(TPM2_ALG_SHA256).begin(),
                             parsed->events[93].DigestFor(TPM2_ALG_SHA256).end()));
  auto op = tcg::ParseEventLog(other);
  ASSERT_TRUE(op.ok());
  ByteView nd = op->events[93].DigestFor(TPM2_ALG_SHA256);
  both.Allow("kernel", Bytes(nd.begin(), nd.end()));
  policy_.SetBoot(both);
  RoundResult ok = Round();
  EXPECT_TRUE(ok.attested) << Describe(ok);
  EXPECT_TRUE(state_.firmware_checked);
}

// "secure_boot": true against a host whose log says SecureBoot=0 (keylime-tests' mb_log.bin,
// which keylime's own policy tool refuses unless told Secure Boot is off).
TEST_F(RoundTest, SecureBootOffFailsTheRoundWhenThePolicyRequiresIt) {
  auto log = ReadFileBytes(Fixture("keylime-tests/functional/keylime-policy-commands/mb_log.bin"));
  ASSERT_TRUE(log.ok());
  auto sb = BootPolicy::FromJsonText(R"({"secure_boot": true})");
  ASSERT_TRUE(sb.ok());
  policy_.SetBoot(*sb);
  BootWithFirmware(*log);
  RoundResult r = Round();
  EXPECT_FALSE(r.attested);
  const Finding* f = Find(r, Reason::kSecureBoot);
  ASSERT_NE(f, nullptr) << Describe(r);
  EXPECT_EQ(f->detail, "Secure Boot is off");
  EXPECT_EQ(f->pcr, 7);
  // Without a firmware log the boot references cannot be held: a failure, not a pass.
  host_.firmware().reset();
  RoundResult none = Round();
  EXPECT_FALSE(none.attested);
  EXPECT_NE(Find(none, Reason::kBootComponent), nullptr) << Describe(none);
}

// dm_policy across rounds: the devices a verified round saw are kept in the agent state
// (through its JSON, as the store keeps it), so a resume in a later round is held against
// the load of an earlier one. Real LVM entries from keylime-tests.
TEST_F(RoundTest, DeviceMapperStateCarriesAcrossRounds) {
  auto text = ReadFileText(
      Fixture("keylime-tests/functional/keylime_create_policy-static-data/test2/ascii_runtime_measurements-2"));
  ASSERT_TRUE(text.ok());
  std::string dm;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" dm_") != std::string::npos) dm += line + "\n";
  }
  std::vector<ima::Record> records = testing::AsciiRecords(dm);
  ASSERT_EQ(records.size(), 4u);  // root load, root resume, swap load, swap resume
  auto p = RuntimePolicy::FromNativeJson(R"json({"lim_runtime_policy": 1, "dm_policy": {"match_on": "name", "rules": {
      "lvm": {"required": true, "table_load": {"name": "rhel-(root|swap)", "num_targets": 1,
              "targets": [{"target_name": "linear", "device_name": "252:3"}]}}}}})json");
  ASSERT_TRUE(p.ok()) << p.status().message();
  policy_ = std::move(p).value();
  host_.AppendBootAggregate();
  host_.Append(records[0]);
  RoundResult r1 = Round();
  ASSERT_TRUE(r1.attested) << Describe(r1);
  ASSERT_EQ(state_.dm.devices.count("rhel-root"), 1u);
  EXPECT_FALSE(state_.dm.devices["rhel-root"].active);
  auto stored = AgentStateFromJson(AgentStateToJson(state_));
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  state_ = *stored;
  host_.Append(records[1]);
  RoundResult r2 = Round();
  ASSERT_TRUE(r2.attested) << Describe(r2);
  EXPECT_TRUE(state_.dm.devices["rhel-root"].active);
  // The swap volume resumed twice: the second resume fails, naming the entry.
  host_.Append(records[2]);
  host_.Append(records[3]);
  host_.Append(records[3]);
  RoundResult r3 = Round();
  EXPECT_FALSE(r3.attested);
  const Finding* f = Find(r3, Reason::kDmPolicy);
  ASSERT_NE(f, nullptr) << Describe(r3);
  EXPECT_EQ(f->entry, 5u);
  EXPECT_EQ(f->path, "dm_device_resume");
  EXPECT_EQ(f->detail, "device rhel-swap: resumed twice (already active)");
}

TEST_F(RoundTest, RebootStartsOverFromEntryZeroAndSaysSo) {
  host_.AppendBootAggregate();
  AppendGood('a');
  AppendGood('b');
  ASSERT_TRUE(Round().attested);
  ASSERT_EQ(state_.next_index, 3u);
  uint32_t resets = state_.reset_count;
  // The host reboots: new reset count, new boot_id, a new list.
  testing::RebootSwtpm();
  host_.Reboot();  // same AK (its blob loads under the same EK after the reboot)
  host_.AppendBootAggregate();
  AppendGood('c');
  RoundResult r = Round();
  EXPECT_TRUE(r.reboot);
  EXPECT_TRUE(r.retry);
  EXPECT_FALSE(r.attested);  // nothing of the new boot verified yet
  const Finding* rb = Find(r, Reason::kReboot);
  ASSERT_NE(rb, nullptr) << Describe(r);
  EXPECT_FALSE(rb->failure());
  EXPECT_GT(r.state.reset_count, resets);
  EXPECT_EQ(r.state.reboots, 1u);
  // The evidence was for entry 3 of the old boot: nothing was verified, entry 0 is asked.
  EXPECT_EQ(r.verified_entries, 0u);
  EXPECT_EQ(r.next.list_from, 0u);
  EXPECT_FALSE(state_.started);
  RoundResult again = Round();
  EXPECT_TRUE(again.attested) << Describe(again);
  EXPECT_FALSE(again.reboot);
  EXPECT_EQ(again.verified_entries, 2u);
  EXPECT_EQ(state_.next_index, 2u);
}

TEST_F(RoundTest, RewoundResetCountAndDeadLimdFail) {
  host_.AppendBootAggregate();
  ASSERT_TRUE(Round().attested);
  AgentState future = state_;
  future.reset_count += 5;
  Bytes nonce = RandomBytes(20);
  Evidence ev = host_.Gather(NextRequest(state_, host_.banks()), nonce);
  RoundResult r = Verify(host_.ak_pub(), future, ev, policy_, nonce);
  EXPECT_NE(Find(r, Reason::kResetCount), nullptr) << Describe(r);
  // A boot_id that is not a printable token (found by attest_evidence_fuzz: it reached the
  // state JSON and threw there).
  Evidence odd = ev;
  odd.boot_id = "\xff\xfe";
  RoundResult malformed = Verify(host_.ak_pub(), state_, odd, policy_, nonce);
  EXPECT_NE(Find(malformed, Reason::kEvidenceMalformed), nullptr) << Describe(malformed);
  EXPECT_FALSE(AgentStateToJson(malformed.state).empty());
  // A tail over the limit is refused before it is parsed.
  VerifyOptions small;
  small.max_list_bytes = 16;
  Evidence big = ev;
  big.list.records.assign(1000, 0);
  RoundResult refused = Verify(host_.ak_pub(), state_, big, policy_, nonce, small);
  const Finding* over = Find(refused, Reason::kEvidenceMalformed);
  ASSERT_NE(over, nullptr) << Describe(refused);
  EXPECT_NE(over->detail.find("over the limit"), std::string::npos);
  ev.limd.running = false;
  ev.limd.detail = "no answer on /run/lim/control";
  RoundResult dead = Verify(host_.ak_pub(), state_, ev, policy_, nonce);
  const Finding* d = Find(dead, Reason::kLimdNotRunning);
  ASSERT_NE(d, nullptr) << Describe(dead);
  EXPECT_FALSE(dead.attested);
  // A host whose first rounds came from limd cannot shed the check by claiming the kernel's list.
  EXPECT_EQ(state_.list_source, "limd");
  Evidence claims_kernel = ev;
  claims_kernel.list.source = "kernel";
  RoundResult still_dead = Verify(host_.ak_pub(), state_, claims_kernel, policy_, nonce);
  EXPECT_NE(Find(still_dead, Reason::kLimdNotRunning), nullptr) << Describe(still_dead);
  // One that served the kernel's list from its first round needs no limd.
  AgentState kernel_state = state_;
  kernel_state.list_source = "kernel";
  RoundResult kernel_host = Verify(host_.ak_pub(), kernel_state, claims_kernel, policy_, nonce);
  EXPECT_EQ(Find(kernel_host, Reason::kLimdNotRunning), nullptr) << Describe(kernel_host);
  EXPECT_EQ(AgentStateFromJson(AgentStateToJson(kernel_state))->list_source, "kernel");
}

TEST_F(RoundTest, WrongBootAggregateFails) {
  host_.Append(ima::ImaNgRecord(Sha256Algo(), Sha256Of("not the PCRs"), "boot_aggregate"));
  AppendGood('a');
  RoundResult r = Round();
  const Finding* f = Find(r, Reason::kBootAggregate);
  ASSERT_NE(f, nullptr) << Describe(r);
  EXPECT_EQ(f->entry, 0u);
  EXPECT_NE(f->reference.find("PCR 0-9"), std::string::npos);
}

TEST(AgentStateTest, JsonRoundTripsAndRefusesDamage) {
  AgentState s;
  s.started = true;
  s.next_index = 42;
  s.pcr10[TPM2_ALG_SHA256] = Bytes(32, 7);
  s.replay_mode = "per-bank";
  s.list_bank = "sha1";
  s.boot_id = "abc";
  s.reset_count = 3;
  s.restart_count = 1;
  s.clock = 123456;
  s.boot_pcrs[TPM2_ALG_SHA256][0] = Bytes(32, 1);
  s.firmware_events = {Bytes(32, 2)};
  s.firmware_checked = true;
  s.pending = {1, 2, 3};
  s.pending_entries = 1;
  s.learned_certificates = {{0x30, 0x01}};
  s.rounds = 9;
  s.reboots = 2;
  std::string j = AgentStateToJson(s);
  auto back = AgentStateFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(AgentStateToJson(*back), j);
  EXPECT_FALSE(AgentStateFromJson("{}").ok());
  EXPECT_FALSE(AgentStateFromJson("[1]").ok());
  std::string bad = j;
  bad.replace(bad.find("\"next_index\":42"), 15, "\"next_index\":-1");
  EXPECT_FALSE(AgentStateFromJson(bad).ok());
}

// The state is written without building a DOM; it must be exactly what nlohmann's dump of
// the same document gives (the form stored before, and the one any reader re-dumps), for
// states with every part filled: banks whose decimal keys sort apart ("11" before "4"),
// PCR indices 10+, dm devices, strings that need escaping or are not UTF-8.
TEST(AgentStateTest, JsonIsNlohmannsCanonicalDump) {
  AgentState empty;
  AgentState full;
  full.started = true;
  full.next_index = 1ull << 40;
  full.pcr10[TPM2_ALG_SHA1] = Bytes(20, 0xab);
  full.pcr10[TPM2_ALG_SHA256] = Bytes(32, 0xcd);
  full.replay_mode = "sha1-padded";
  full.list_bank = "sha256";
  full.boot_id = "quote\" back\\slash \x01 ctl \xff\xfe not utf-8";
  full.reset_count = 0xffffffffu;
  full.restart_count = 7;
  full.clock = ~0ull;
  for (int p : {0, 1, 2, 9, 10, 11, 23}) {
    full.boot_pcrs[TPM2_ALG_SHA1][p] = Bytes(20, static_cast<uint8_t>(p));
    full.boot_pcrs[TPM2_ALG_SHA256][p] = Bytes(32, static_cast<uint8_t>(p + 1));
    full.boot_pcrs[TPM2_ALG_SHA384][p] = Bytes(48, static_cast<uint8_t>(p + 2));
  }
  full.firmware_events = {Bytes(32, 1), Bytes(32, 2), Bytes(32, 3)};
  full.firmware_checked = true;
  full.pending = Bytes(300, 0x5a);
  full.pending_entries = 4;
  full.learned_certificates = {{0x30, 0x82, 0x01}, {}};
  full.dm.devices["vg-root"] = DmDevice{"root \"verity\"", true, true, "sha256:00ff", false};
  full.rounds = 12;
  full.reboots = 1;
  full.list_source = "kernel";
  for (const AgentState* s : {&empty, &full}) {
    std::string j = AgentStateToJson(*s);
    auto doc = nlohmann::json::parse(j, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(doc.is_discarded()) << j;
    EXPECT_EQ(doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), j);
    auto back = AgentStateFromJson(j);
    ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << j;
    EXPECT_EQ(AgentStateToJson(*back), j);
  }
  std::string j = AgentStateToJson(full);
  EXPECT_LT(j.find("\"11\":{"), j.find("\"4\":{")) << "banks in the order of their keys as strings";
  EXPECT_NE(j.find("\"dm_devices\":"), std::string::npos);
  EXPECT_NE(j.find("\xef\xbf\xbd"), std::string::npos) << "invalid UTF-8 replaced by U+FFFD";
  EXPECT_EQ(AgentStateToJson(empty).find("list_source"), std::string::npos);
}

}  // namespace
}  // namespace lim::attest
