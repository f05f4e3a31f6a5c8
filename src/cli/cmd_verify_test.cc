// CLI tests of lim log / replay / verify / boot-aggregate, including the cross-check with
// evmctl (ima-evm-utils): on lists inside evmctl's limits, `evmctl ima_measurement
// --ignore-violations` accepts a whole list exactly when `lim verify` does.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>

#include "base/file.h"
#include "crypto/digest.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "ima/synthetic_list.h"
#include "tests/testing.h"

namespace lim {
namespace {

using lim::testing::Fixture;
using lim::testing::LimBinary;
using lim::testing::RunCommand;
using lim::testing::ShellQuote;

std::string Lim(const std::string& args) { return ShellQuote(LimBinary()) + " " + args; }

TEST(LogCommandTest, AsciiIsByteIdenticalToTheKernelFile) {
  auto r = RunCommand(Lim("log " + Fixture("embrave/37d16c0/binary_runtime_measurements")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, *ReadFileText(Fixture("embrave/37d16c0/ascii_runtime_measurements")));
}

TEST(LogCommandTest, JsonAndTableShapes) {
  auto j = RunCommand(Lim("log --format json " + Fixture("ibmtss/utils/imatest.log")));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find(R"({"index":0,"pcr":10,"template":"d-ng|sig","template_digest":")"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find(R"("fields":{"d-ng":{"algo":"sha1","digest":")"), std::string::npos);
  EXPECT_NE(j.out.find(R"("violation":true)"), std::string::npos);
  auto t = RunCommand(Lim("log --format table " + Fixture("ibmtss/utils/sha256.log")));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out.substr(0, t.out.find('\n')), "  Idx PCR Type       Digest EventData");
  // The table shows SHA1 template digests even for a sha256 list: same as the sha1 list.
  auto t1 = RunCommand(Lim("log --format table " + Fixture("ibmtss/utils/sha1.log")));
  EXPECT_EQ(t.out, t1.out);
  EXPECT_NE(t.out.find("\n    0  10 0x00000000 "), std::string::npos) << t.out.substr(0, 200);
  EXPECT_NE(t.out.find("[IMA:boot_aggregate]"), std::string::npos);
}

TEST(LogCommandTest, IntegratedTableRunsFromFirmwareToIma) {
  std::string boot = Fixture("ima-evm-utils/tests/sample-binary_bios_measurements-pcrs-8-9");
  auto r = RunCommand(Lim("log --format table --boot-log " + boot + " " + Fixture("ibmtss/utils/sha1.log")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 1u + 162 + 362);  // header, 162 events, 362 IMA entries
  EXPECT_NE(lines[1].find("[BIOS:EV_NO_ACTION"), std::string::npos) << lines[1];
  EXPECT_NE(lines[159].find("[GRUB:KERNEL_CMDLINE /boot/vmlinuz"), std::string::npos) << lines[159];
  EXPECT_EQ(lines[163].substr(0, 25), "  162  10 0x00000000 0668") << lines[163];
  EXPECT_NE(lines[163].find("[IMA:boot_aggregate]"), std::string::npos);
  EXPECT_NE(lines.back().find("  523  10 0x00000000 "), std::string::npos) << lines.back();
  // Only the table can be integrated.
  EXPECT_EQ(RunCommand(Lim("log --format json --boot-log " + boot + " " + Fixture("ibmtss/utils/sha1.log"))).exit_code, 2);
}

TEST(LogCommandTest, PerBankAsciiMatchesPerBankFile) {
  // --bank sha256 on the sha1 list shows what the kernel's _sha256 file shows.
  auto a = RunCommand(Lim("log --bank sha256 " + Fixture("ibmtss/utils/sha1.log")));
  auto b = RunCommand(Lim("log " + Fixture("ibmtss/utils/sha256.log")));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(LogCommandTest, BadInputExitsTwoWithPlace) {
  auto r = RunCommand(Lim("log " + Fixture("tpm2-tss/test/data/fapi/eventlog/sml-ima-ng-sha1.bin")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("entry 6 at byte offset 558"), std::string::npos) << r.err;
  auto missing = RunCommand(Lim("log /nonexistent/list"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("/nonexistent/list"), std::string::npos);
  auto usage = RunCommand(Lim("log --format nope x"));
  EXPECT_EQ(usage.exit_code, 2);
}

TEST(LogCommandTest, FollowShowsAppendedEntriesAndWaitsForTornRecords) {
  ima::SyntheticListSpec spec;
  spec.entries = 30;
  auto l = ima::MakeSyntheticList(spec);
  // Split after entry 9, and once more in the middle of entry 20 (a record being written).
  auto rd = ima::ListReader::FromBytes(l->list);
  ima::Entry e;
  uint64_t cut10 = 0, cut20 = 0;
  while (*(*rd)->Next(&e)) {
    if (e.index == 10) cut10 = e.offset;
    if (e.index == 20) cut20 = e.offset + 17;
  }
  std::string dir = lim::testing::MakeTempDir();
  std::string list = dir + "/list";
  ASSERT_TRUE(WriteFileBytes(list, ByteView(l->list.data(), cut10)).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/full", l->list).ok());
  auto append = [&](uint64_t from, uint64_t to) {
    return "dd if=" + dir + "/full bs=1 skip=" + std::to_string(from) + " count=" + std::to_string(to - from) +
           " status=none >> " + list;
  };
  // The follower runs under timeout -k, so it ends even if this test fails midway.
  auto r = RunCommand("(timeout -k 1 5 " + Lim("log --follow " + list) + " > " + dir + "/out 2>&1 &) ; sleep 0.8; " +
                      append(cut10, cut20) + "; sleep 0.8; " + append(cut20, l->list.size()) + "; sleep 1.2; cat " +
                      dir + "/out");
  auto full = RunCommand(Lim("log " + dir + "/full"));
  EXPECT_EQ(r.out, full.out);
  RunCommand("pkill -f " + ShellQuote("log --follow " + list));
}

TEST(LogCommandTest, BinaryReencodesPerBankFilesByteForByte) {
  // The kernel's _sha256/_sha384/_sha512 files are the sha1 list with each bank's digests.
  for (const char* bank : {"sha256", "sha384", "sha512"}) {
    std::string dir = lim::testing::MakeTempDir();
    auto r = RunCommand(Lim(std::string("log --format binary --bank ") + bank + " " + Fixture("ibmtss/utils/sha1.log")) +
                        " > " + dir + "/out");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(*ReadFileBytes(dir + "/out"), *ReadFileBytes(Fixture(std::string("ibmtss/utils/") + bank + ".log"))) << bank;
  }
}

TEST(LogCommandTest, BigEndianRoundTripKeepsEveryField) {
  std::string dir = lim::testing::MakeTempDir();
  std::string src = Fixture("ibmtss/utils/imatest.log");
  ASSERT_EQ(RunCommand(Lim("log --format binary --out-byte-order be " + src) + " > " + dir + "/be").exit_code, 0);
  // Detected as big-endian; fields identical; template digests differ (lengths hashed BE).
  auto be = RunCommand(Lim("log --format json " + dir + "/be"));
  auto le = RunCommand(Lim("log --format json " + src));
  ASSERT_EQ(be.exit_code, 0) << be.err;
  auto strip = [](std::string s) {
    std::string out;
    size_t pos = 0;
    while ((pos = s.find("\"template_digest\":\"")) != std::string::npos) {
      out += s.substr(0, pos);
      s = s.substr(s.find('"', pos + 19) + 1);
    }
    return out + s;
  };
  // xattrlengths is shown as its raw bytes, which follow the list's byte order.
  std::string be_out = be.out, le_out = le.out;
  size_t at = be_out.find("0000002500000022");
  ASSERT_NE(at, std::string::npos);
  be_out.replace(at, 16, "2500000022000000");
  EXPECT_EQ(strip(be_out), strip(le_out));
  EXPECT_NE(be.out, le.out);
  auto back = RunCommand(Lim("log --format binary --out-byte-order le " + dir + "/be") + " > " + dir + "/le");
  ASSERT_EQ(back.exit_code, 0);
  EXPECT_EQ(*ReadFileBytes(dir + "/le"), *ReadFileBytes(src));
}

TEST(ReplayCommandTest, IbmtssReplaysToStatedValues) {
  auto r = RunCommand(Lim("replay --bank sha384 --bank sha1 " + Fixture("ibmtss/utils/sha256.log")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            R"({"sha1":{"10":"9be6bac02bf18d09d17e726c2df00bca4e8831ea"},"sha384":{"10":"e8923687b18847064ff3af89fd7ed088fa03c8b2467f7f8648bab264684575beb92e707d813ed561189492bb4b6e5c8b"}})"
            "\n");
}

TEST(BootAggregateCommandTest, MatchesEvmctlOnTheSamePcrs) {
  // evmctl reads only its PCR-NN text format: convert the ima-evm-utils tsspcrread dump.
  auto pcrs = PcrSet::Load("sha1," + Fixture("ima-evm-utils/tests/sample-tpm-2.0-pcrs-8-9"));
  ASSERT_TRUE(pcrs.ok()) << pcrs.status().message();
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/pcrs", AsBytes(pcrs->ToEvmctlText("sha1"))).ok());
  auto lim = RunCommand(Lim("boot-aggregate --pcrs sha1," + dir + "/pcrs"));
  auto evm = RunCommand("evmctl ima_boot_aggregate --pcrs sha1," + dir + "/pcrs");
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  ASSERT_EQ(evm.exit_code, 0) << evm.err;
  EXPECT_EQ(lim.out, evm.out);
  EXPECT_EQ(lim.out.substr(0, 5), "sha1:");
  // The original dump format parses too and gives the same value.
  auto direct = RunCommand(Lim("boot-aggregate --pcrs sha1," + Fixture("ima-evm-utils/tests/sample-tpm-2.0-pcrs-8-9")));
  EXPECT_EQ(direct.out, lim.out);
}

TEST(BootAggregateCommandTest, FromBootLogMatchesImaEvmUtilsOracles) {
  // tests/boot_aggregate.test: the boot_aggregate record of the sample ascii list.
  auto r = RunCommand(Lim("boot-aggregate --bank sha256 --boot-log " +
                          Fixture("ima-evm-utils/tests/sample-binary_bios_measurements-pcrs-8-9")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "sha256:83d19723ef3b3c05bb8ae70d86b3886c158f2408f1b71ed265886a7b79eb700e\n");
  EXPECT_NE(ReadFileText(Fixture("ima-evm-utils/tests/sample-ascii_runtime_measurements-pcrs-8-9"))->find(
                "sha256:83d19723ef3b3c05bb8ae70d86b3886c158f2408f1b71ed265886a7b79eb700e boot_aggregate"),
            std::string::npos);
  // The older pair: a pre-5.8 kernel hashed PCR 0-7 of the sha256 bank.
  auto old = RunCommand(Lim("boot-aggregate --pre-5.8 --bank sha256 --boot-log " +
                            Fixture("ima-evm-utils/tests/test_binary_bios_measurements")));
  ASSERT_EQ(old.exit_code, 0) << old.err;
  EXPECT_EQ(old.out, "sha256:f1b4c7c9b27e94569f4c2b64051c452bc609c3cb891dd7fae06b758f8bc83d14\n");
  auto v58 = RunCommand(Lim("boot-aggregate --bank sha256 --boot-log " +
                            Fixture("ima-evm-utils/tests/test_binary_bios_measurements")));
  EXPECT_NE(v58.out, old.out);
  EXPECT_EQ(RunCommand(Lim("boot-aggregate --boot-log /nonexistent")).exit_code, 2);
  EXPECT_EQ(RunCommand(Lim("boot-aggregate")).exit_code, 2);
}

// ---- evmctl cross-check -------------------------------------------------------------


struct Scenario {
  std::string name;
  Bytes list;
  PcrSet pcrs;
};

// Lists inside evmctl's limits: sha1 list, sha1/sha256 PCRs, template data ≤ 4096 bytes,
// 'ima' not mixed with other templates.
std::vector<Scenario> Scenarios() {
  std::vector<Scenario> out;
  std::minstd_rand rng(7);  // 32-bit results
  for (int i = 0; i < 10; ++i) {
    ima::SyntheticListSpec spec;
    spec.entries = 20 + rng() % 200;
    spec.seed = static_cast<uint32_t>(rng());
    spec.violation_every = (i % 3 == 0) ? 0u : static_cast<unsigned>(3 + rng() % 9);
    spec.buf_every = static_cast<unsigned>(4 + rng() % 7);
    spec.sig_every = static_cast<unsigned>(3 + rng() % 5);
    auto l = ima::MakeSyntheticList(spec);
    Scenario good{"good" + std::to_string(i), l->list, l->pcrs};
    out.push_back(good);
    // Wrong PCR value in one bank.
    Scenario badpcr = good;
    badpcr.name = "badpcr" + std::to_string(i);
    std::string bank = (i % 2) ? "sha1" : "sha256";
    Bytes v = *badpcr.pcrs.Get(bank, 10);
    v[v.size() - 1] ^= 1;
    badpcr.pcrs.Set(bank, 10, v);
    out.push_back(badpcr);
    // A corrupted file digest (template digest no longer matches).
    Scenario baddigest = good;
    baddigest.name = "baddigest" + std::to_string(i);
    auto rd = ima::ListReader::FromBytes(baddigest.list);
    ima::Entry e;
    uint64_t target = 1 + rng() % (spec.entries - 1), off = 0;
    while (*(*rd)->Next(&e)) {
      if (e.index >= target && !e.violation && off == 0) off = e.offset;  // violations are not digest-checked
    }
    if (off) baddigest.list[off + 4 + 20 + 4 + 7 + 4 + 4 + 9] ^= 0x40;
    out.push_back(baddigest);
  }
  // Legacy 'ima' template list (a pre-ima-ng kernel).
  {
    Scenario s{"legacy-ima", {}, {}};
    ima::ListWriter w(Sha1Algo());
    Bytes pcr1(20, 0), pcr256(32, 0);
    for (int i = 0; i < 40; ++i) {
      ima::Record r{10, "ima", {Bytes(20, static_cast<uint8_t>(i)), {}}, false};
      std::string name = "/bin/prog" + std::to_string(i);
      r.fields[1].assign(name.begin(), name.end());
      EXPECT_TRUE(w.Append(r, &s.list).ok());
      Bytes in = *ima::TemplateDigestInputOf(r, kNativeOrder);
      Bytes c1 = pcr1;
      auto d1 = *Digest(Sha1Algo(), in);
      c1.insert(c1.end(), d1.begin(), d1.end());
      pcr1 = *Digest(Sha1Algo(), c1);
      Bytes c2 = pcr256;
      auto d2 = *Digest(Sha256Algo(), in);
      c2.insert(c2.end(), d2.begin(), d2.end());
      pcr256 = *Digest(Sha256Algo(), c2);
    }
    s.pcrs.Set("sha1", 10, pcr1);
    s.pcrs.Set("sha256", 10, pcr256);
    out.push_back(s);
    Scenario bad = s;
    bad.name = "legacy-ima-badpcr";
    pcr1[0] ^= 1;
    bad.pcrs.Set("sha1", 10, pcr1);
    out.push_back(bad);
  }
  return out;
}

TEST(EvmctlCrossCheckTest, AcceptsExactlyWhenLimDoes) {
  std::string dir = lim::testing::MakeTempDir();
  int agreed = 0, accepted = 0;
  for (const auto& s : Scenarios()) {
    std::string list = dir + "/" + s.name + ".bin";
    ASSERT_TRUE(WriteFileBytes(list, s.list).ok());
    ASSERT_TRUE(WriteFileBytes(dir + "/p1", AsBytes(s.pcrs.ToEvmctlText("sha1"))).ok());
    ASSERT_TRUE(WriteFileBytes(dir + "/p256", AsBytes(s.pcrs.ToEvmctlText("sha256"))).ok());
    ASSERT_TRUE(WriteFileBytes(dir + "/pcrs.json", AsBytes(s.pcrs.ToJson())).ok());
    // evmctl 1.4 decides on the last comparison it made (the last bank's), so with both
    // banks at once it accepts a list whose sha1 PCR is wrong when sha256 matches. Asked
    // one bank at a time (--verify-bank) its verdicts are sound; it accepts when all do.
    std::string pcr_args = " --pcrs sha1," + dir + "/p1 --pcrs sha256," + dir + "/p256 ";
    auto evm1 = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=sha1" + pcr_args + list);
    auto evm256 = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=sha256" + pcr_args + list);
    lim::testing::CommandResult evm = evm1.exit_code != 0 ? evm1 : evm256;
    auto lim = RunCommand(Lim("verify " + list + " --pcrs " + dir + "/pcrs.json"));
    // And with the same evmctl-format PCR files.
    auto lim_txt = RunCommand(Lim("verify " + list + " --pcrs sha1," + dir + "/p1 --pcrs sha256," + dir + "/p256"));
    ASSERT_NE(lim.exit_code, 2) << s.name << ": " << lim.err;
    EXPECT_EQ(evm.exit_code == 0, lim.exit_code == 0)
        << s.name << "\nevmctl(" << evm.exit_code << "): " << evm.out << evm.err << "\nlim(" << lim.exit_code
        << "): " << lim.out << lim.err;
    EXPECT_EQ(lim.exit_code, lim_txt.exit_code) << s.name << lim_txt.err;
    if (evm.exit_code == 0) ++accepted;
    if ((evm.exit_code == 0) == (lim.exit_code == 0)) ++agreed;
  }
  EXPECT_EQ(accepted, 11);  // the 10 good synthetic lists and the good legacy one
  EXPECT_GE(agreed, 32);
}

// lim is stricter than evmctl 1.4 run on both banks at once (see the cross-check above).
TEST(EvmctlCrossCheckTest, LimRejectsAWrongSha1PcrThatEvmctlBothBanksAccepts) {
  ima::SyntheticListSpec spec;
  spec.entries = 40;
  auto l = ima::MakeSyntheticList(spec);
  Bytes v = *l->pcrs.Get("sha1", 10);
  v[0] ^= 1;
  l->pcrs.Set("sha1", 10, v);
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", l->list).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/p1", AsBytes(l->pcrs.ToEvmctlText("sha1"))).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/p256", AsBytes(l->pcrs.ToEvmctlText("sha256"))).ok());
  auto both = RunCommand("evmctl ima_measurement --ignore-violations --pcrs sha1," + dir + "/p1 --pcrs sha256," + dir +
                         "/p256 " + dir + "/list");
  auto sha1 = RunCommand("evmctl ima_measurement --ignore-violations --verify-bank=sha1 --pcrs sha1," + dir +
                         "/p1 --pcrs sha256," + dir + "/p256 " + dir + "/list");
  auto lim = RunCommand(Lim("verify " + dir + "/list --pcrs sha1," + dir + "/p1 --pcrs sha256," + dir + "/p256"));
  EXPECT_EQ(both.exit_code, 0);   // the evmctl 1.4 quirk this documents
  EXPECT_NE(sha1.exit_code, 0);   // per bank it sees the mismatch
  EXPECT_EQ(lim.exit_code, 1);
}

TEST(VerifyCommandTest, TailNeedsAllowTail) {
  ima::SyntheticListSpec spec;
  spec.entries = 120;
  auto full = ima::MakeSyntheticList(spec);
  spec.entries = 100;
  auto prefix = ima::MakeSyntheticList(spec);
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", full->list).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/pcrs.json", AsBytes(prefix->pcrs.ToJson())).ok());
  auto strict = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/pcrs.json"));
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_NE(strict.out.find("unattested: 20"), std::string::npos) << strict.out;
  auto tail = RunCommand(Lim("verify " + dir + "/list --allow-tail --pcrs " + dir + "/pcrs.json"));
  EXPECT_EQ(tail.exit_code, 0) << tail.out << tail.err;
  // evmctl also accepts: records after the match point are ignored.
  ASSERT_TRUE(WriteFileBytes(dir + "/p1", AsBytes(prefix->pcrs.ToEvmctlText("sha1"))).ok());
  auto evm = RunCommand("evmctl ima_measurement --ignore-violations --pcrs sha1," + dir + "/p1 " + dir + "/list");
  EXPECT_EQ(evm.exit_code, 0) << evm.err;
}

// Where each record of a list starts and ends.
std::vector<std::pair<size_t, size_t>> RecordSpans(const Bytes& list) {
  std::vector<std::pair<size_t, size_t>> out;
  auto rd = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(rd.ok());
  ima::Entry e;
  while (*(*rd)->Next(&e)) out.emplace_back(e.offset, (*rd)->next_offset());
  return out;
}

// An entry for a PCR that no --pcrs value covers is attested by nothing, wherever it sits.
TEST(VerifyCommandTest, EntryForAPcrNoFileCoversIsUnattested) {
  const std::string real = Fixture("ibmtss/utils/sha1.log");
  Bytes list = *ReadFileBytes(real);
  auto spans = RecordSpans(list);
  ASSERT_EQ(spans.size(), 362u);
  std::string dir = lim::testing::MakeTempDir();
  auto rep = RunCommand(Lim("replay --bank sha1 --bank sha256 " + real));  // PCR 10 only
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  ASSERT_TRUE(WriteFileBytes(dir + "/pcrs.json", AsBytes(rep.out)).ok());
  // A copy of a real entry set to PCR 11: its template digest stays valid (the PCR index is
  // not hashed), and it leaves PCR 10 as it was.
  Bytes rec(list.begin() + static_cast<long>(spans[5].first), list.begin() + static_cast<long>(spans[5].second));
  const uint32_t pcr11 = 11;
  std::memcpy(rec.data(), &pcr11, 4);
  for (size_t at : {spans[100].first, list.size()}) {
    SCOPED_TRACE("inserted at byte " + std::to_string(at));
    Bytes changed = list;
    changed.insert(changed.begin() + static_cast<long>(at), rec.begin(), rec.end());
    ASSERT_TRUE(WriteFileBytes(dir + "/list", changed).ok());
    auto v = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/pcrs.json"));
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    EXPECT_NE(v.out.find("template digests: ok"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("unattested: 1 (0 after the match; 1 of PCR 11, which no given value covers)"),
              std::string::npos) << v.out;
    EXPECT_NE(v.out.find("result: FAILED"), std::string::npos) << v.out;
    EXPECT_NE(v.err.find("extends PCR 11"), std::string::npos) << v.err;
    // --allow-tail is about entries after the match, not these.
    EXPECT_EQ(RunCommand(Lim("verify " + dir + "/list --allow-tail --pcrs " + dir + "/pcrs.json")).exit_code, 1);
    auto allowed = RunCommand(Lim("verify " + dir + "/list --allow-uncovered-pcrs --pcrs " + dir + "/pcrs.json"));
    EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
    EXPECT_NE(allowed.out.find("result: ok"), std::string::npos) << allowed.out;
  }
  // PCR values that cover PCR 11 too (as a TPM read gives every PCR) attest the entry.
  Bytes changed = list;
  changed.insert(changed.end(), rec.begin(), rec.end());
  ASSERT_TRUE(WriteFileBytes(dir + "/list", changed).ok());
  auto all = RunCommand(Lim("replay --bank sha1 --bank sha256 " + dir + "/list"));
  ASSERT_TRUE(WriteFileBytes(dir + "/all.json", AsBytes(all.out)).ok());
  auto v = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/all.json"));
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("unattested: 0\n"), std::string::npos) << v.out;
}

// Two PCR files that disagree on one PCR: an error naming both, whatever their order.
TEST(VerifyCommandTest, ConflictingPcrFilesAreBadInput) {
  ima::SyntheticListSpec spec;
  spec.entries = 30;
  auto l = ima::MakeSyntheticList(spec);
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", l->list).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/good.json", AsBytes(l->pcrs.ToJson())).ok());
  PcrSet other;
  Bytes v = *l->pcrs.Get("sha1", 10);
  v[0] ^= 1;
  other.Set("sha1", 10, v);
  ASSERT_TRUE(WriteFileBytes(dir + "/other.json", AsBytes(other.ToJson())).ok());
  for (auto [first, second] : {std::pair{"good.json", "other.json"}, std::pair{"other.json", "good.json"}}) {
    auto r = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/" + first + " --pcrs " + dir + "/" + second));
    EXPECT_EQ(r.exit_code, 2) << first << " then " << second << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("sha1 PCR 10"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(dir + "/" + first), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(dir + "/" + second), std::string::npos) << r.err;
  }
  // The same values twice (also through another format) agree.
  ASSERT_TRUE(WriteFileBytes(dir + "/p1", AsBytes(l->pcrs.ToEvmctlText("sha1"))).ok());
  auto same = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/good.json --pcrs " + dir + "/good.json --pcrs sha1," +
                             dir + "/p1"));
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
}

// keylime's test_ima_verification data: ima-sig entries with real v2 signatures (RSA keyid
// f3452d23, ECDSA secp256k1 keyid 531f4025) and the two public keys.
struct SignedList {
  std::string dir;
  std::string list;
  std::string pcrs;
};

// check_digests: the fixture's template digests are genuine (keylime's BAD_SIGNATURES keeps
// the good entry's digest beside a corrupted signature).
SignedList WriteSignedList(const std::string& ascii_fixture, bool flip_sig_byte = false, bool check_digests = true) {
  SignedList out;
  out.dir = lim::testing::MakeTempDir();
  out.list = out.dir + "/list";
  out.pcrs = out.dir + "/pcrs.json";
  std::istringstream in(*ReadFileText(Fixture(ascii_fixture)));
  Bytes list;
  ima::ListWriter w(Sha1Algo());
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string pcr, tdigest, tmpl, dng, path, sig;
    f >> pcr >> tdigest >> tmpl >> dng >> path >> sig;
    Bytes sigb = *FromHex(sig);
    if (flip_sig_byte) sigb.back() ^= 1;
    ima::Record r = ima::ImaSigRecord(Sha256Algo(), *FromHex(dng.substr(7)), path, sigb);
    // The record rebuilt from the ASCII line has the template digest the list shows.
    if (!flip_sig_byte && check_digests) {
      EXPECT_EQ(ToHex(*ima::TemplateDigestOf(r, Sha1Algo(), kNativeOrder)), tdigest) << path;
    }
    EXPECT_TRUE(w.Append(r, &list).ok());
  }
  EXPECT_TRUE(WriteFileBytes(out.list, list).ok());
  auto rep = RunCommand(Lim("replay --bank sha1 --bank sha256 " + out.list));
  EXPECT_TRUE(WriteFileBytes(out.pcrs, AsBytes(rep.out)).ok());
  return out;
}

TEST(VerifyCommandTest, VerifiesImaSigSignaturesWithKeys) {
  const std::string rsa = Fixture("keylime/derived/ima_keyring_pubkey_keyid_f3452d23.pem");
  const std::string ec = Fixture("keylime/derived/ima_keyring_pubkey_keyid_531f4025.pem");
  SignedList l = WriteSignedList("keylime/derived/test_ima_verification.SIGNATURES.ascii_runtime_measurements");
  auto both = RunCommand(Lim("verify " + l.list + " --pcrs " + l.pcrs + " --key " + rsa + " --key " + ec));
  EXPECT_EQ(both.exit_code, 0) << both.out << both.err;
  EXPECT_NE(both.out.find("signatures: 2 checked, 0 bad, 0 unknown key"), std::string::npos) << both.out;
  // Only the RSA key: the ECDSA entry's key id is reported as unknown, not as bad.
  auto one = RunCommand(Lim("verify " + l.list + " --pcrs " + l.pcrs + " --key " + rsa));
  EXPECT_EQ(one.exit_code, 0) << one.out;
  EXPECT_NE(one.out.find("1 unknown key"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("first unknown key id 531f4025 at entry 1"), std::string::npos) << one.out;
  // A signature changed by one bit fails, named by entry.
  SignedList bad = WriteSignedList("keylime/derived/test_ima_verification.SIGNATURES.ascii_runtime_measurements", true);
  auto b = RunCommand(Lim("verify " + bad.list + " --pcrs " + bad.pcrs + " --key " + rsa + " --key " + ec));
  EXPECT_EQ(b.exit_code, 1) << b.out;
  EXPECT_NE(b.err.find("entry 0"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("does not verify"), std::string::npos) << b.err;
  // keylime's BAD_SIGNATURES: the signature's length field disagrees with its size.
  SignedList malformed =
      WriteSignedList("keylime/derived/test_ima_verification.BAD_SIGNATURES.ascii_runtime_measurements", false, false);
  auto m = RunCommand(Lim("verify " + malformed.list + " --pcrs " + malformed.pcrs + " --key " + rsa + " --key " + ec));
  EXPECT_EQ(m.exit_code, 1) << m.out;
  EXPECT_NE(m.err.find("malformed signature"), std::string::npos) << m.err;
}

TEST(VerifyCommandTest, NamesTheFirstBadEntry) {
  auto r = RunCommand(Lim("verify " + Fixture("ibmtss/utils/sha1.log") + " --pcrs " + Fixture("ibmtss/utils/sha1.log")));
  EXPECT_EQ(r.exit_code, 2);  // a list is not a PCR file
  ima::SyntheticListSpec spec;
  spec.entries = 10;
  auto l = ima::MakeSyntheticList(spec);
  Bytes list = l->list;
  auto rd = ima::ListReader::FromBytes(list);
  ima::Entry e;
  uint64_t off4 = 0;
  while (*(*rd)->Next(&e)) {
    if (e.index == 4) off4 = e.offset;
  }
  list[off4 + 4] ^= 0xff;  // the stored template digest itself
  std::string dir = lim::testing::MakeTempDir();
  ASSERT_TRUE(WriteFileBytes(dir + "/list", list).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/pcrs.json", AsBytes(l->pcrs.ToJson())).ok());
  auto v = RunCommand(Lim("verify " + dir + "/list --pcrs " + dir + "/pcrs.json"));
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find("entry 4 (byte offset " + std::to_string(off4) + ")"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("template digest mismatch"), std::string::npos) << v.err;
}

}  // namespace
}  // namespace lim
