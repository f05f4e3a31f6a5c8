// Parser and replay behaviour on hand-built logs: both formats, unknown banks, messy tails,
// odd PCR indexes, digest checks. Fixture-level expectations are in replay_test.cc.
#include "tcg/event_log.h"

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "crypto/digest.h"
#include "tcg/describe.h"
#include "tcg/efi.h"
#include "tcg/event_type.h"
#include "tcg/replay.h"

namespace lim::tcg {
namespace {

Bytes Sha(const HashAlgo& a, std::string_view s) { return *Digest(a, AsBytes(s)); }

// Builds crypto-agile logs: a Spec ID header for the given banks, then events.
class AgileBuilder {
 public:
  explicit AgileBuilder(std::vector<std::pair<uint16_t, uint16_t>> banks) : banks_(std::move(banks)) {
    Bytes spec;
    ByteWriter s(&spec);
    s.Append(std::string_view("Spec ID Event03\0", 16));
    s.U32(0, ByteOrder::kLittle);
    s.U8(0);
    s.U8(2);
    s.U8(0);
    s.U8(2);
    s.U32(static_cast<uint32_t>(banks_.size()), ByteOrder::kLittle);
    for (auto [alg, size] : banks_) {
      s.U16(alg, ByteOrder::kLittle);
      s.U16(size, ByteOrder::kLittle);
    }
    s.U8(0);
    w_.U32(0, ByteOrder::kLittle);
    w_.U32(kEvNoAction, ByteOrder::kLittle);
    w_.Append(Bytes(20, 0));
    w_.U32(static_cast<uint32_t>(spec.size()), ByteOrder::kLittle);
    w_.Append(spec);
  }
  // Digest of each bank = fill byte repeated, or the real hash of data for known banks
  // when real_digest.
  AgileBuilder& Event(uint32_t pcr, uint32_t type, std::string_view data, bool real_digest = true, uint8_t fill = 0x11) {
    w_.U32(pcr, ByteOrder::kLittle);
    w_.U32(type, ByteOrder::kLittle);
    w_.U32(static_cast<uint32_t>(banks_.size()), ByteOrder::kLittle);
    for (auto [alg, size] : banks_) {
      w_.U16(alg, ByteOrder::kLittle);
      auto algo = HashAlgoByTpmAlg(alg);
      if (real_digest && algo.ok()) w_.Append(Sha(*algo, data));
      else w_.Append(Bytes(size, fill));
    }
    w_.U32(static_cast<uint32_t>(data.size()), ByteOrder::kLittle);
    w_.Append(data);
    return *this;
  }
  Bytes bytes() const { return out_; }
  Bytes out_;

 private:
  std::vector<std::pair<uint16_t, uint16_t>> banks_;
  ByteWriter w_{&out_};
};

Bytes Tcg12Event(uint32_t pcr, uint32_t type, std::string_view data) {
  Bytes out;
  ByteWriter w(&out);
  w.U32(pcr, ByteOrder::kLittle);
  w.U32(type, ByteOrder::kLittle);
  w.Append(Sha(Sha1Algo(), data));
  w.U32(static_cast<uint32_t>(data.size()), ByteOrder::kLittle);
  w.Append(data);
  return out;
}

const std::string_view kSep("\0\0\0\0", 4);

TEST(EventLog, EmptyAndTinyInputIsUnusable) {
  EXPECT_FALSE(ParseEventLog({}).ok());
  Bytes tiny(31, 0x41);
  auto r = ParseEventLog(tiny);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("32 bytes"), std::string::npos);
}

TEST(EventLog, Tcg12ReplayAndSeparatorCheck) {
  Bytes log = Tcg12Event(0, kEvSCrtmVersion, "1.0");
  Bytes sep = Tcg12Event(0, kEvSeparator, kSep);
  log.insert(log.end(), sep.begin(), sep.end());
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->format, LogFormat::kTcg12);
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[1].offset, 35u);
  ReplayResult rep = Replay(*r);
  // PCR0 = SHA1(SHA1(0^20 || d1) || d2)
  Bytes pcr(20, 0);
  for (auto d : {Sha(Sha1Algo(), "1.0"), Sha(Sha1Algo(), kSep)}) {
    Bytes in = pcr;
    in.insert(in.end(), d.begin(), d.end());
    pcr = *Digest(Sha1Algo(), in);
  }
  EXPECT_EQ(ToHex(rep.pcrs.Find("sha1")->pcrs[0]), ToHex(pcr));
  EXPECT_EQ(ToHex(rep.pcrs.Find("sha1")->pcrs[17]), std::string(40, 'f'));
  EXPECT_EQ(rep.checks[1], DigestCheck::kMatches);
  EXPECT_TRUE(rep.problems.empty());
}

TEST(EventLog, TruncatedTailKeepsEarlierEvents) {
  Bytes log = Tcg12Event(4, kEvEfiAction, "Calling EFI Application from Boot Option");
  Bytes more = Tcg12Event(5, kEvEfiAction, "Exit Boot Services Invocation");
  log.insert(log.end(), more.begin(), more.end() - 7);
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->events.size(), 1u);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0].event_index, 1u);
  EXPECT_EQ(r->problems[0].offset, 72u);
  EXPECT_TRUE(r->problems[0].flagged);
  EXPECT_NE(r->problems[0].ToString().find("event 1 (offset 0x48)"), std::string::npos);
}

TEST(EventLog, ZeroPaddingIsANoteNotAFlag) {
  Bytes log = Tcg12Event(0, kEvSeparator, kSep);
  log.resize(log.size() + 100, 0);
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 1u);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_FALSE(r->problems[0].flagged);
  EXPECT_FALSE(r->HasFlaggedProblems());
}

TEST(EventLog, OddPcrIndexIsFlaggedAndNotReplayed) {
  Bytes log = Tcg12Event(0xFFFFFFFF, kEvNoAction, "x");
  Bytes sep = Tcg12Event(7, kEvSeparator, kSep);
  log.insert(log.end(), sep.begin(), sep.end());
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 2u);
  EXPECT_TRUE(r->HasFlaggedProblems());
  EXPECT_NE(r->problems[0].message.find("4294967295"), std::string::npos);
  ReplayResult rep = Replay(*r);  // must not index PCR 0xFFFFFFFF
  EXPECT_NE(ToHex(rep.pcrs.Find("sha1")->pcrs[7]), std::string(40, '0'));
}

TEST(EventLog, CryptoAgileWithSm3AndUnknownBank) {
  // tpm_alg 0x00AA is unknown to lim: framed by the header's size, reported, not replayed.
  AgileBuilder b({{0x0004, 20}, {0x0012, 32}, {0x00AA, 24}});
  b.Event(0, kEvSeparator, kSep);
  Bytes bytes = b.bytes();  // the log's views point into it
  auto r = ParseEventLog(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->format, LogFormat::kCryptoAgile);
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_TRUE(r->events[0].spec_id_header);
  EXPECT_EQ(r->events[1].DigestFor(0x00AA).size(), 24u);
  ReplayResult rep = Replay(*r);
  ASSERT_NE(rep.pcrs.Find("sm3_256"), nullptr);
  EXPECT_EQ(rep.pcrs.Find("tpm_alg_0x00aa"), nullptr);
  bool noted = false;
  for (const auto& p : rep.problems) noted |= p.message.find("tpm_alg_0x00aa") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(rep.checks[1], DigestCheck::kMatches);  // sha1 and sm3 both recomputed
}

TEST(EventLog, DigestMismatchIsFlagged) {
  AgileBuilder b({{0x0004, 20}, {0x000B, 32}});
  b.Event(4, kEvEfiAction, "Calling EFI Application from Boot Option", /*real_digest=*/false);
  b.Event(4, kEvEfiBootServicesApplication, std::string(40, 'A'), /*real_digest=*/false);  // not checkable
  Bytes bytes = b.bytes();  // the log's views point into it
  auto r = ParseEventLog(bytes);
  ASSERT_TRUE(r.ok());
  ReplayResult rep = Replay(*r);
  EXPECT_EQ(rep.checks[1], DigestCheck::kMismatch);
  EXPECT_EQ(rep.checks[2], DigestCheck::kNotCheckable);
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.problems[0].event_index, 1u);
}

TEST(EventLog, StartupLocalitySetsInitialPcr0) {
  AgileBuilder b({{0x000B, 32}});
  b.Event(0, kEvNoAction, std::string_view("StartupLocality\0\3", 17), false, 0);
  Bytes bytes = b.bytes();  // the log's views point into it
  auto r = ParseEventLog(bytes);
  ASSERT_TRUE(r.ok());
  ReplayResult rep = Replay(*r);
  EXPECT_EQ(rep.startup_locality, 3);
  EXPECT_EQ(ToHex(rep.pcrs.Find("sha256")->pcrs[0]), std::string(62, '0') + "03");
  EXPECT_EQ(DescribeEventData(r->events[1]), "StartupLocality=3");
}

TEST(EventLog, UnknownDigestAlgorithmStopsFramingWithProblem) {
  AgileBuilder b({{0x0004, 20}});
  b.Event(0, kEvSeparator, kSep);
  Bytes log = b.bytes();
  // An event whose digest uses alg 0x00BB, which neither the header nor lim knows.
  ByteWriter w(&log);
  w.U32(1, ByteOrder::kLittle);
  w.U32(kEvSeparator, ByteOrder::kLittle);
  w.U32(1, ByteOrder::kLittle);
  w.U16(0x00BB, ByteOrder::kLittle);
  w.Append(Bytes(40, 1));
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 2u);
  ASSERT_FALSE(r->problems.empty());
  EXPECT_EQ(r->problems.back().event_index, 2u);
  EXPECT_NE(r->problems.back().message.find("0xbb"), std::string::npos);
}

TEST(EventLog, EventsAfterExitBootServicesAreNoted) {
  Bytes log = Tcg12Event(5, kEvEfiAction, "Exit Boot Services Invocation");
  for (const Bytes& b : {Tcg12Event(5, kEvEfiAction, "Exit Boot Services Returned with Success"),
                         Tcg12Event(4, kEvEfiAction, "Late"), Tcg12Event(4, kEvSeparator, kSep)}) {
    log.insert(log.end(), b.begin(), b.end());
  }
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  ReplayResult rep = Replay(*r);
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.problems[0].event_index, 2u);
  EXPECT_FALSE(rep.problems[0].flagged);  // replayed normally; a note, not a failure
  EXPECT_NE(rep.problems[0].message.find("2 event(s) follow"), std::string::npos);
}

TEST(EventLog, DescribesBlob2AndHandoffTables2) {
  std::string blob2 = std::string("\x08", 1) + "Fv(XXXX)" + std::string("\x00\x00\x82\xff\x00\x00\x00\x00", 8) +
                      std::string("\x00\x00\x10\x00\x00\x00\x00\x00", 8);
  Bytes log = Tcg12Event(0, kEvEfiPlatformFirmwareBlob2, blob2);
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(TaggedEventText(r->events[0]), "[BIOS:EV_EFI_PLATFORM_FIRMWARE_BLOB2 Fv(XXXX) base 0xff820000 length 0x100000]");
}

TEST(EventLog, GrubLegacyTypesAreNamed) {
  EXPECT_EQ(EventTypeName(kEvGrubKernel), "GRUB:KERNEL");
  EXPECT_EQ(EventTypeName(0x1105), "GRUB:KERNEL_OPT");
  EXPECT_EQ(EventTypeName(0x80000010), "EV_EFI_HCRTM_EVENT");
  EXPECT_EQ(EventTypeName(0x12345), "EV_UNKNOWN_0x00012345");
  EXPECT_EQ(Tpm2ToolsEventTypeName(0x80000010), "Unknown event type");
  Bytes log = Tcg12Event(8, kEvGrubKernel, "/boot/vmlinuz-2.6.32 ro root=/dev/sda1");
  auto r = ParseEventLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(TaggedEventText(r->events[0]), "[GRUB:KERNEL /boot/vmlinuz-2.6.32 ro root=/dev/sda1]");
}

TEST(Efi, DevicePathText) {
  Bytes dp = *FromHex(
      "02010c00d041030a0000000001010600001703120a000100ffff000004012a0001000000000800000000000000000800000000001346501a"
      "b519444ba83dd926d40daa1c0202040446005c004500460049005c00530059005300540045004d0044005c00530059005300540045004d"
      "0044002d0042004f004f0054005800360034002e0045004600490000007fff0400");
  EXPECT_EQ(DevicePathToText(dp),
            "PciRoot(0x0)/Pci(0x17,0x0)/Sata(1,65535,0)/HD(1,GPT,1a504613-19b5-4b44-a83d-d926d40daa1c,0x800,0x80000)/"
            "File(\\EFI\\SYSTEMD\\SYSTEMD-BOOTX64.EFI)");
  EXPECT_EQ(DevicePathToText(*FromHex("00081100000c1100cc")), "");  // malformed first node
  EXPECT_EQ(DevicePathToText(*FromHex("7fff0400")), "");
  EXPECT_EQ(DevicePathToText(*FromHex("0909080001020304")), "Path(9,9,01020304)");
}

TEST(Efi, UefiVariableAndUtf16) {
  Bytes v = *FromHex("61dfe48bca93d211aa0d00e098032b8c0a000000000000000100000000000000530065006300750072006500420"
                     "06f006f007400" "01");
  auto var = ParseUefiVariable(v);
  ASSERT_TRUE(var.has_value());
  EXPECT_EQ(var->name, "SecureBoot");
  EXPECT_EQ(GuidToString(var->guid), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
  EXPECT_TRUE(IsGlobalVariableGuid(var->guid));
  ASSERT_EQ(var->data.size(), 1u);
  EXPECT_FALSE(ParseUefiVariable(ByteView(v).first(20)).has_value());
  // A name length that runs past the event is rejected, not read.
  Bytes bad = v;
  bad[16] = 0xff;
  bad[17] = 0xff;
  EXPECT_FALSE(ParseUefiVariable(bad).has_value());
  EXPECT_EQ(Utf16ToUtf8(*FromHex("4e003100ac200000")), "N1\xe2\x82\xac");
}

}  // namespace
}  // namespace lim::tcg
