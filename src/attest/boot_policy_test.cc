#include "attest/boot_policy.h"

#include <gtest/gtest.h>

#include "attest/runtime_policy.h"
#include "base/file.h"
#include "tcg/event_type.h"
#include "tests/testing.h"

namespace lim::attest {
namespace {

using lim::testing::Fixture;

constexpr uint16_t kSha256 = 0x000B;

// keylime's measured-boot fixtures: a RHEL 9 VM with Secure Boot on (shim → grub → kernel
// 5.14.0-503, initramfs) and a Fedora 41 one with Secure Boot off.
const char kSecureBootLog[] = "keylime/test/data/create-mb-policy/binary_bios_measurements-secureboot";
const char kPlainLog[] = "keylime/test/data/create-mb-policy/binary_bios_measurements";

struct Log {
  Bytes bytes;
  tcg::EventLog log;
};

Log Load(const std::string& rel) {
  Log l;
  auto b = ReadFileBytes(Fixture(rel));
  EXPECT_TRUE(b.ok()) << rel;
  if (!b.ok()) return l;
  l.bytes = std::move(b).value();
  auto p = tcg::ParseEventLog(l.bytes);
  EXPECT_TRUE(p.ok());
  if (p.ok()) l.log = std::move(p).value();
  return l;
}

// The index of the n-th (1-based) EV_EFI_BOOT_SERVICES_APPLICATION event in PCR 4.
size_t NthApplication(const tcg::EventLog& log, int n) {
  for (const auto& e : log.events) {
    if (e.pcr == 4 && e.type == tcg::kEvEfiBootServicesApplication && --n == 0) return e.index;
  }
  return 0;
}

std::string Lines(const std::vector<Finding>& fs) {
  std::string out;
  for (const auto& f : fs) out += FormatFinding("host", f) + "\n";
  return out;
}

TEST(BootPolicyTest, LearnedFromAGoodLogPassesIt) {
  Log good = Load(kSecureBootLog);
  auto p = LearnBootPolicy(good.log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->secure_boot());
  EXPECT_EQ(p->bank(), kSha256);
  // What the RHEL log holds, as `lim eventlog` shows it.
  EXPECT_EQ(ToHex(p->allowed("shim").at(0)), "27b12463e599b3147635f272e3722960e443def60fef088eba600697017529f2");
  EXPECT_EQ(ToHex(p->allowed("grub").at(0)), "0abc88ee4d2915c3c5c010a331be980766d6445419c22fe236867b92d254f01f");
  EXPECT_EQ(ToHex(p->allowed("kernel").at(0)), "219b8b53c54951cd07a580622e384391bbd9e113448a12ad319903fcafb81e79");
  EXPECT_EQ(ToHex(p->allowed("initrd").at(0)), "2142e3702f4aa7a2a3b218e1d924a66686895bb0b501cca8ce79ef21ab1db0e6");
  EXPECT_EQ(p->allowed("platform_firmware").size(), 2u);
  EXPECT_EQ(p->allowed("db").size(), 1u);
  std::vector<Finding> f = p->Check(good.log);
  EXPECT_TRUE(f.empty()) << Lines(f);
  // Through JSON and back, as the verifier stores it.
  auto again = BootPolicy::FromJsonText(p->ToJsonText());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->ToJsonText(), p->ToJsonText());
  EXPECT_TRUE(again->Check(good.log).empty());
}

TEST(BootPolicyTest, AChangedKernelDigestFailsNamingEventPcrTypeDigestAndReference) {
  Log good = Load(kSecureBootLog);
  auto p = LearnBootPolicy(good.log);
  ASSERT_TRUE(p.ok());
  size_t kernel = NthApplication(good.log, 3);
  ASSERT_EQ(kernel, 93u);
  ByteView d = good.log.events[kernel].DigestFor(kSha256);
  size_t at = static_cast<size_t>(d.data() - good.bytes.data());
  Bytes changed = good.bytes;
  changed[at] ^= 0x01;
  auto log = tcg::ParseEventLog(changed);
  ASSERT_TRUE(log.ok());
  std::vector<Finding> f = p->Check(*log);
  ASSERT_EQ(f.size(), 1u) << Lines(f);
  EXPECT_EQ(f[0].reason, Reason::kBootComponent);
  EXPECT_EQ(f[0].entry, 93u);
  EXPECT_EQ(f[0].pcr, 4);
  EXPECT_EQ(f[0].tmpl, "EV_EFI_BOOT_SERVICES_APPLICATION");
  EXPECT_EQ(f[0].digest, "sha256:209b8b53c54951cd07a580622e384391bbd9e113448a12ad319903fcafb81e79");
  EXPECT_EQ(f[0].reference, "policy boot.kernel: sha256:219b8b53c54951cd07a580622e384391bbd9e113448a12ad319903fcafb81e79");
  EXPECT_NE(f[0].detail.find("3rd boot application in PCR 4"), std::string::npos) << f[0].detail;
  std::string line = FormatFinding("web1", f[0]);
  EXPECT_EQ(line.rfind("lim-verifier: agent=web1 reason=boot-component entry=93 pcr=4 bank=sha256 "
                       "template=EV_EFI_BOOT_SERVICES_APPLICATION ", 0), 0u) << line;

  // The initrd grub read (PCR 9) changed.
  size_t initrd = 0;
  for (const auto& e : good.log.events) {
    if (e.pcr == 9 && std::string(reinterpret_cast<const char*>(e.data.data()), e.data.size()).find("initramfs") !=
                          std::string::npos) {
      initrd = e.index;
    }
  }
  ASSERT_EQ(initrd, 96u);
  Bytes changed_initrd = good.bytes;
  changed_initrd[static_cast<size_t>(good.log.events[initrd].DigestFor(kSha256).data() - good.bytes.data())] ^= 0x80;
  auto log2 = tcg::ParseEventLog(changed_initrd);
  ASSERT_TRUE(log2.ok());
  f = p->Check(*log2);
  ASSERT_EQ(f.size(), 1u) << Lines(f);
  EXPECT_EQ(f[0].entry, 96u);
  EXPECT_EQ(f[0].pcr, 9);
  EXPECT_EQ(f[0].reference.rfind("policy boot.initrd: sha256:2142e370", 0), 0u) << f[0].reference;
}

TEST(BootPolicyTest, RelabellingTheKernelEventDoesNotMoveItOutOfTheCheck) {
  // The event type is covered by no digest: a log can call the kernel's event an EV_EFI_ACTION.
  Log good = Load(kSecureBootLog);
  auto p = LearnBootPolicy(good.log);
  ASSERT_TRUE(p.ok());
  const tcg::Event& k = good.log.events[93];
  Bytes relabelled = good.bytes;
  size_t type_at = k.offset + 4;  // TCG_PCR_EVENT2: PCRIndex, EventType
  uint32_t action = tcg::kEvEfiAction;
  for (int i = 0; i < 4; ++i) relabelled[type_at + static_cast<size_t>(i)] = static_cast<uint8_t>(action >> (8 * i));
  auto log = tcg::ParseEventLog(relabelled);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->events[93].type, tcg::kEvEfiAction);
  std::vector<Finding> f = p->Check(*log);
  ASSERT_FALSE(f.empty());
  bool missing_kernel = false;
  for (const auto& x : f) missing_kernel |= x.detail == "no 3rd boot application in PCR 4";
  EXPECT_TRUE(missing_kernel) << Lines(f);
}

TEST(BootPolicyTest, SecureBootOffFailsWhenRequired) {
  Log plain = Load(kPlainLog);
  // Learned from the log itself: Secure Boot is off there, so it is not required.
  auto own = LearnBootPolicy(plain.log);
  ASSERT_TRUE(own.ok());
  EXPECT_FALSE(own->secure_boot());
  EXPECT_TRUE(own->Check(plain.log).empty()) << Lines(own->Check(plain.log));
  // A policy that requires it.
  auto required = BootPolicy::FromJsonText(R"({"secure_boot": true})");
  ASSERT_TRUE(required.ok()) << required.status().message();
  std::vector<Finding> f = required->Check(plain.log);
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0].reason, Reason::kSecureBoot);
  EXPECT_EQ(f[0].pcr, 7);
  EXPECT_EQ(f[0].tmpl, "EV_EFI_VARIABLE_DRIVER_CONFIG");
  EXPECT_EQ(f[0].path, "SecureBoot=0");
  EXPECT_EQ(f[0].detail, "Secure Boot is off");
  EXPECT_EQ(f[0].reference, "policy boot.secure_boot: true (SecureBoot=1)");
  ASSERT_TRUE(f[0].entry.has_value());
  EXPECT_EQ(plain.log.events[*f[0].entry].pcr, 7u);
  // The Secure Boot log passes the same requirement; the plain log fails a policy learned from it.
  Log sb = Load(kSecureBootLog);
  EXPECT_TRUE(required->Check(sb.log).empty()) << Lines(required->Check(sb.log));
  auto sb_policy = LearnBootPolicy(sb.log);
  ASSERT_TRUE(sb_policy.ok());
  f = sb_policy->Check(plain.log);
  bool sb_off = false, shim = false;
  for (const auto& x : f) {
    sb_off |= x.reason == Reason::kSecureBoot && x.detail == "Secure Boot is off";
    shim |= x.reason == Reason::kBootComponent && x.reference.rfind("policy boot.shim:", 0) == 0;
  }
  EXPECT_TRUE(sb_off) << Lines(f);
  EXPECT_TRUE(shim) << Lines(f);
}

TEST(BootPolicyTest, KernelCommandLineIsAFullMatchOfPythonRegexes) {
  Log good = Load(kSecureBootLog);
  auto p = BootPolicy::FromJsonText(R"({"kernel_cmdline": ["\\(hd0,gpt2\\)/vmlinuz-5\\.14\\..* ro .*"]})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->Check(good.log).empty()) << Lines(p->Check(good.log));
  auto strict = BootPolicy::FromJsonText(R"({"kernel_cmdline": ["\\(hd0,gpt2\\)/vmlinuz-5\\.14\\..* ro"]})");
  ASSERT_TRUE(strict.ok());
  std::vector<Finding> f = strict->Check(good.log);
  ASSERT_EQ(f.size(), 1u) << Lines(f);
  EXPECT_EQ(f[0].pcr, 8);
  EXPECT_EQ(f[0].entry, 94u);
  EXPECT_EQ(f[0].path.rfind("(hd0,gpt2)/vmlinuz-5.14.0-503.11.1.el9_5.x86_64 root=", 0), 0u) << f[0].path;
  // The learned pattern is the escaped literal and matches exactly that line.
  auto learned = LearnBootPolicy(good.log);
  ASSERT_TRUE(learned.ok());
  EXPECT_NE(learned->ToJsonText().find("vmlinuz\\\\-5\\\\.14"), std::string::npos) << learned->ToJsonText();
}

TEST(BootPolicyTest, BadPolicyJsonIsRefusedNamingTheKey) {
  auto unknown = BootPolicy::FromJsonText(R"({"shimm": []})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("boot: unknown key \"shimm\""), std::string::npos);
  auto size = BootPolicy::FromJsonText(R"({"kernel": ["00112233445566778899aabbccddeeff00112233"]})");
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.status().message().find("boot.kernel[0]: not a sha256 digest"), std::string::npos)
      << size.status().message();
  auto re = BootPolicy::FromJsonText(R"({"kernel_cmdline": ["(unclosed"]})");
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.status().message().find("boot.kernel_cmdline[0]"), std::string::npos) << re.status().message();
  EXPECT_FALSE(BootPolicy::FromJsonText(R"({"secure_boot": "yes"})").ok());
  // Inside a native runtime policy, and exported to keylime as lost.
  auto rp = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy": 1, "boot": {"secure_boot": true}})");
  ASSERT_TRUE(rp.ok()) << rp.status().message();
  ASSERT_NE(rp->boot(), nullptr);
  EXPECT_TRUE(rp->boot()->secure_boot());
  std::vector<std::string> lost;
  rp->ToKeylimeJson(&lost);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_NE(lost[0].find("\"boot\""), std::string::npos);
  auto back = RuntimePolicy::FromNativeJson(rp->ToNativeJson());
  ASSERT_TRUE(back.ok());
  ASSERT_NE(back->boot(), nullptr);
  EXPECT_TRUE(back->boot()->secure_boot());
}

}  // namespace
}  // namespace lim::attest
