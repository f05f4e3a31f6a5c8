#include "attest/runtime_policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "attest/attest_test_util.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "tests/testing.h"

namespace lim::attest {
namespace {

using lim::testing::Fixture;

const char kDerived[] = "keylime/derived/test_ima_verification.";

// keylime's test_ima_verification lists (ascii) rebuilt as one binary sha1 list.
Bytes KeylimeList(const std::vector<std::string>& names) {
  Bytes list;
  ima::ListWriter w(Sha1Algo(), ByteOrder::kLittle);
  for (const auto& name : names) {
    auto text = ReadFileText(Fixture(std::string(kDerived) + name + ".ascii_runtime_measurements"));
    EXPECT_TRUE(text.ok()) << name;
    for (const auto& r : testing::AsciiRecords(*text)) EXPECT_TRUE(w.Append(r, &list).ok());
  }
  return list;
}

// "reason@entry path" for every entry that fails.
std::vector<std::string> Verdicts(const RuntimePolicy& p, ByteView list) {
  std::vector<std::string> out;
  auto reader = ima::ListReader::FromBytes(list);
  EXPECT_TRUE(reader.ok());
  ima::Entry e;
  LearnedKeys learned;
  while (*(*reader)->Next(&e)) {
    LearnedKeys fresh;
    auto f = p.Check(e, learned, &fresh);
    for (auto& k : fresh.keys) learned.keys.push_back(k);
    if (f) out.push_back(std::string(ReasonName(f->reason)) + "@" + std::to_string(*f->entry) + " " + f->path);
  }
  return out;
}

RuntimePolicy LoadKeylime(const std::string& fixture) {
  auto text = ReadFileText(Fixture(fixture));
  EXPECT_TRUE(text.ok());
  auto p = RuntimePolicy::FromKeylimeJson(*text);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(p).value();
}

TEST(RuntimePolicyTest, KeylimeTestPolicyAllowsItsListAndWrongOneNamesEachEntry) {
  Bytes list = KeylimeList({"MEASUREMENTS", "SIGNATURES"});
  RuntimePolicy good = LoadKeylime(std::string(kDerived) + "RUNTIME_POLICY_TEST.json");
  EXPECT_EQ(good.paths(), 6u);
  EXPECT_EQ(good.log_hash_alg(), "sha1");
  EXPECT_TRUE(Verdicts(good, list).empty());
  RuntimePolicy wrong = LoadKeylime(std::string(kDerived) + "RUNTIME_POLICY_WRONG.json");
  EXPECT_EQ(Verdicts(wrong, list),
            (std::vector<std::string>{"unknown-file@1 /lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko",
                                      "unknown-file@2 /lib/modules/5.4.48-openpower1/kernel/drivers/gpu/drm/"
                                      "drm_panel_orientation_quirks.ko",
                                      "digest-not-allowed@3 /usr/bin/dd", "digest-not-allowed@4 /usr/bin/zmore"}));
}

TEST(RuntimePolicyTest, KeylimeAndNativeFormsGiveTheSameVerdicts) {
  Bytes list = KeylimeList({"MEASUREMENTS", "KEYRINGS", "SIGNATURES"});
  for (const char* name : {"RUNTIME_POLICY_TEST.json", "RUNTIME_POLICY_WRONG.json"}) {
    RuntimePolicy k = LoadKeylime(std::string(kDerived) + name);
    auto native = RuntimePolicy::FromNativeJson(k.ToNativeJson());
    ASSERT_TRUE(native.ok()) << native.status().message();
    auto again = RuntimePolicy::FromKeylimeJson(native->ToKeylimeJson());
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(Verdicts(k, list), Verdicts(*native, list)) << name;
    EXPECT_EQ(Verdicts(k, list), Verdicts(*again, list)) << name;
    EXPECT_EQ(again->ToKeylimeJson(), k.ToKeylimeJson()) << name;
  }
}

TEST(RuntimePolicyTest, KeysLearnedFromAKeyringEntryJudgeLaterSignatures) {
  // The .ima keyring entry loads a P-256 key (CN=ecdsa-ca-signed-ec-key, SKID …2cb6058c) the
  // policy allows; neither dd (RSA f3452d23) nor zmore (secp256k1 531f4025) is signed by it.
  Bytes list = KeylimeList({"KEYRINGS", "SIGNATURES"});
  auto trimmed = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"digests":{},"excludes":[],
      "keyrings":{".ima":["a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a"]},
      "ima":{"ignored_keyrings":[],"log_hash_alg":"sha1","dm_policy":null},"ima-buf":{},"verification-keys":""})");
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().message();
  // With a key learned, signed entries are judged by their signature (keylime): both untrusted.
  EXPECT_EQ(Verdicts(*trimmed, list),
            (std::vector<std::string>{"untrusted-key@1 /usr/bin/dd", "untrusted-key@2 /usr/bin/zmore"}));
  {
    auto reader = ima::ListReader::FromBytes(list);
    ima::Entry e;
    ASSERT_TRUE(*(*reader)->Next(&e));
    LearnedKeys learned;
    EXPECT_FALSE(trimmed->Check(e, {}, &learned));
    ASSERT_EQ(learned.keys.size(), 1u);
    EXPECT_EQ(learned.keys[0].key_id(), 0x2cb6058cu);
    EXPECT_EQ(learned.certificates[0].size(), e.FieldById(ima::FieldId::kBuf).size());
  }
  // The keyring ignored: no key learned, the entries fall back to digests (none listed).
  auto ignored = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"digests":{},
      "ima":{"ignored_keyrings":[".ima"],"log_hash_alg":"sha1","dm_policy":null}})");
  ASSERT_TRUE(ignored.ok());
  EXPECT_EQ(Verdicts(*ignored, list),
            (std::vector<std::string>{"unknown-file@1 /usr/bin/dd", "unknown-file@2 /usr/bin/zmore"}));
  // A keyring digest the policy does not allow.
  auto other = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"keyrings":{".ima":["00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]}})");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Verdicts(*other, list)[0], "keyring-not-allowed@0 .ima");
}

TEST(RuntimePolicyTest, VerificationKeysRoundTripAndDecideSignatures) {
  Bytes list = KeylimeList({"SIGNATURES"});
  RuntimePolicy p;
  auto rsa = PublicKey::LoadFile(Fixture("keylime/derived/ima_keyring_pubkey_keyid_f3452d23.pem"));
  auto ec = PublicKey::LoadFile(Fixture("keylime/derived/ima_keyring_pubkey_keyid_531f4025.pem"));
  ASSERT_TRUE(rsa.ok() && ec.ok());
  p.TrustKey((*rsa)[0]);
  p.TrustKey((*ec)[0]);
  EXPECT_TRUE(Verdicts(p, list).empty());
  std::vector<std::string> lost;
  std::string exported = p.ToKeylimeJson(&lost);
  EXPECT_TRUE(lost.empty());
  auto j = nlohmann::json::parse(exported);
  ASSERT_TRUE(j.contains("ima"));  // keylime refuses a policy without it
  EXPECT_EQ(j["ima"]["log_hash_alg"], "sha1");
  ASSERT_TRUE(j["verification-keys"].is_string());
  auto vk = nlohmann::json::parse(j["verification-keys"].get<std::string>());
  EXPECT_EQ(vk["pubkeys"].size(), 2u);
  auto back = RuntimePolicy::FromKeylimeJson(exported);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->keys().size(), 2u);
  EXPECT_EQ(back->keys()[0].key_id(), 0xf3452d23u);
  EXPECT_TRUE(Verdicts(*back, list).empty());
}

TEST(RuntimePolicyTest, ExcludesArePythonRegexesMatchedAtTheStart) {
  RuntimePolicy p;
  ASSERT_TRUE(p.AddExclude("/tmp/.*").ok());
  ASSERT_TRUE(p.AddExclude(R"((?P<dir>/var/log)/[^/]+\Z)").ok());
  ASSERT_TRUE(p.AddExclude("(?i)/OPT/").ok());
  EXPECT_TRUE(p.Excluded("/tmp/x"));
  EXPECT_FALSE(p.Excluded("/home/tmp/x"));  // re.match: anchored at the start only
  EXPECT_TRUE(p.Excluded("/var/log/messages"));
  EXPECT_FALSE(p.Excluded("/var/log/a/b"));
  EXPECT_TRUE(p.Excluded("/opt/tool"));
  Status bad = p.AddExclude("([unclosed");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("excludes[3]"), std::string::npos) << bad.message();
  EXPECT_TRUE(p.Excluded("/tmp/x"));  // the good ones still hold
  // A pathological pattern on a long path ends (match limit) and counts as not excluded.
  RuntimePolicy slow;
  ASSERT_TRUE(slow.AddExclude("(a+)+$").ok());
  EXPECT_FALSE(slow.Excluded(std::string(4000, 'a') + "b"));
}

TEST(RuntimePolicyTest, ImportErrorsNameTheKey) {
  auto e1 = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"digests":{"/x":["zz"]}})");
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("digests./x[0]"), std::string::npos) << e1.status().message();
  auto e2 = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":2}})");
  EXPECT_FALSE(e2.ok());
  auto e3 = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"allowlist":{}})");
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.status().message().find("allowlist"), std::string::npos);
  auto e4 = RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"ima":{"log_hash_alg":"md17"}})");
  EXPECT_FALSE(e4.ok());
  auto e5 = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy":1,"boot_pcrs":{"sha256":{"9":["00"]}}})");
  EXPECT_FALSE(e5.ok());
  EXPECT_FALSE(RuntimePolicy::FromJson("not json").ok());
  EXPECT_FALSE(RuntimePolicy::FromKeylimeJson(R"({"meta":{"version":1},"verification-keys":"{\"pubkeys\":[\"!!\"]}"})").ok());
}

TEST(RuntimePolicyTest, KeylimeFixturePoliciesImportAndExportWithTheWholeSchema) {
  for (const char* f : {"keylime/test/data/runtime-policy-test.json", "keylime/test/data/sign-runtime-policy/runtime-policy.json",
                        "keylime/test/data/sign-runtime-policy/runtime-policy-empty.json"}) {
    RuntimePolicy p = LoadKeylime(f);
    auto j = nlohmann::json::parse(p.ToKeylimeJson());
    for (const char* key : {"meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf", "verification-keys"}) {
      EXPECT_TRUE(j.contains(key)) << f << " " << key;
    }
    auto src = nlohmann::json::parse(*ReadFileText(Fixture(f)));
    EXPECT_EQ(j["digests"].size(), src["digests"].size()) << f;
    EXPECT_EQ(j["meta"], src["meta"]) << f;
  }
  // boot_aggregate's "sha256:" prefix is read as the digest it names.
  RuntimePolicy p = LoadKeylime("keylime/test/data/runtime-policy-test.json");
  EXPECT_NE(p.ToNativeJson().find("4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2"), std::string::npos);
}

TEST(RuntimePolicyTest, NativeOnlyFeaturesAreReportedLostInKeylimeExport) {
  RuntimePolicy p;
  p.AllowAnywhere(Bytes(32, 1));
  p.AllowBootPcr(0x000b, 0, Bytes(32, 2));
  std::vector<std::string> lost;
  p.ToKeylimeJson(&lost);
  EXPECT_EQ(lost.size(), 2u);
  auto back = RuntimePolicy::FromNativeJson(p.ToNativeJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->anywhere(), 1u);
  EXPECT_TRUE(back->has_boot_pcrs());
  std::map<uint16_t, std::map<int, Bytes>> quoted;
  quoted[0x000b][0] = Bytes(32, 3);
  auto f = back->CheckBootPcrs(quoted);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].reason, Reason::kMeasuredBoot);
  EXPECT_EQ(f[0].pcr, 0);
  quoted[0x000b][0] = Bytes(32, 2);
  EXPECT_TRUE(back->CheckBootPcrs(quoted).empty());
}

TEST(RuntimePolicyTest, LearnedPolicyAllowsItsOwnList) {
  Bytes list = KeylimeList({"MEASUREMENTS", "SIGNATURES"});
  uint64_t n = 0;
  auto p = LearnPolicy(list, &n);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(p->paths(), 4u);  // boot_aggregate is held against the quote, not learned
  EXPECT_TRUE(Verdicts(*p, list).empty());
  ima::Record evil = ima::ImaNgRecord(Sha256Algo(), Bytes(32, 9), "/usr/bin/dd");
  ASSERT_TRUE(ima::ListWriter(Sha1Algo(), ByteOrder::kLittle).Append(evil, &list).ok());
  auto v = Verdicts(*p, list);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "digest-not-allowed@5 /usr/bin/dd");
}

TEST(RuntimePolicyTest, PathsThatAreNotUtf8StillExport) {
  RuntimePolicy p;
  p.AllowPath("/tmp/\xff\xfe", Bytes(32, 1));
  std::string native = p.ToNativeJson();
  EXPECT_NE(native.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_TRUE(RuntimePolicy::FromNativeJson(native).ok());
  EXPECT_TRUE(RuntimePolicy::FromKeylimeJson(p.ToKeylimeJson()).ok());
}

// Package provenance in the native form: versions newest first, old-version a notice,
// digests of no version and unowned paths with hints; malformed provenance names the key.
TEST(RuntimePolicyTest, PackageVersionsTellOldFromUnknown) {
  std::string v1 = ToHex(testing::Sha256Of("v1")), v2 = ToHex(testing::Sha256Of("v2"));
  auto p = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy":1,
      "packages":{"tool":{"versions":["2.0-1","1.0-1"],"installed":"2.0-1","source":"deb"}},
      "owners":{"/usr/bin/tool":{"package":"tool","versions":{"1.0-1":["sha256:)" + v1 +
                                         R"("],"2.0-1":[")" + v2 + R"("]}}}})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_TRUE(p->PathDigests("/usr/bin/tool"));
  EXPECT_EQ(p->PathDigests("/usr/bin/tool")->size(), 2u);  // owners fill paths
  auto check = [&](const std::string& path, const std::string& content) {
    Bytes list;
    ima::ListWriter w(Sha1Algo(), ByteOrder::kLittle);
    EXPECT_TRUE(w.Append(ima::ImaNgRecord(Sha256Algo(), testing::Sha256Of(content), path), &list).ok());
    auto reader = ima::ListReader::FromBytes(list);
    ima::Entry e;
    EXPECT_TRUE(*(*reader)->Next(&e));
    return p->Check(e, {}, nullptr);
  };
  EXPECT_FALSE(check("/usr/bin/tool", "v2"));
  auto old = check("/usr/bin/tool", "v1");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->reason, Reason::kOldVersion);
  EXPECT_FALSE(old->failure());
  EXPECT_EQ(old->reference, "policy: tool 1.0-1, newest 2.0-1");
  EXPECT_EQ(FormatFinding("h", *old).rfind("lim-verifier: agent=h reason=old-version entry=0 pcr=10 template=ima-ng "
                                           "path=/usr/bin/tool digest=sha256:",
                                           0),
            0u);
  auto bad = check("/usr/bin/tool", "v3");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->reason, Reason::kDigestNotAllowed);
  EXPECT_EQ(bad->detail, "`/usr/bin/tool` has a digest of no version of tool (installed 2.0-1); "
                         "reinstall: `apt-get install --reinstall tool`");
  auto stray = check("/opt/x", "v1");
  ASSERT_TRUE(stray);
  EXPECT_EQ(stray->reason, Reason::kUnknownFile);
  EXPECT_EQ(stray->detail, "`/opt/x` is not owned by any package in the policy");
  // Without provenance nothing changes: no detail on unknown files.
  auto plain = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy":1,"paths":{"/usr/bin/tool":[")" + v1 + R"("]}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ReasonFromName("old-version"), Reason::kOldVersion);
  // Round trip, and malformed provenance.
  auto again = RuntimePolicy::FromNativeJson(p->ToNativeJson());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->ToNativeJson(), p->ToNativeJson());
  auto orphan = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy":1,"owners":{"/a":{"package":"x","versions":{}}}})");
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().message(), "owners./a.package: \"x\" is not in packages");
  auto wrong = RuntimePolicy::FromNativeJson(R"({"lim_runtime_policy":1,"packages":{"x":{"versions":["1"]}},
      "owners":{"/a":{"package":"x","versions":{"2":[")" + v1 + R"("]}}}})");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "owners./a.versions.2: not a version of x in packages");
}

// A policy with every member the exporters write and the names that need care in JSON:
// quotes, backslashes, control bytes, DEL, non-UTF-8 bytes, valid multi-byte UTF-8, several
// digests per path, an owner with two versions, a path with an empty version list.
RuntimePolicy OddPolicy() {
  RuntimePolicy p;
  auto d = [](uint8_t b) { return Bytes(16, b); };
  for (const char* path : {"/usr/bin/a b", "/q\"uote", "/back\\slash", "/nl\nname", "/bad\xff\xfe", "/ctl\x01\x1f",
                           "/del\x7f", "/caf\xc3\xa9", "/trunc\xc3", "/surrogate\xed\xa0\x80", "/"}) {
    p.AllowPath(path, d(static_cast<uint8_t>(std::string_view(path).size())));
  }
  p.AllowPath("/usr/bin/a b", d(0xab));
  p.AllowPath("/usr/bin/a b", d(0x01));
  p.AllowAnywhere(d(0x77));
  p.AllowAnywhere(d(0x11));
  EXPECT_TRUE(p.AddExclude("/tmp/.*").ok());
  EXPECT_TRUE(p.AddExclude("^/var/log/\"x\"$").ok());
  p.AllowKeyring(".ima", d(0x22));
  p.IgnoreKeyring(".builtin_trusted_keys");
  p.AllowImaBuf("kernel_cmdline", d(0x33));
  p.AllowBootPcr(0x000b, 0, Bytes(32, 2));
  p.AllowBootPcr(0x000b, 7, Bytes(32, 3));
  p.set_log_hash_alg("sha256");
  p.SetPackage("tool", PackageInfo{{"2.0-1", "1:1.0-1"}, "2.0-1", "deb"});
  p.SetPackage("t\xffol", PackageInfo{{"0"}, "", "tofu"});
  p.AllowPackageFile("/usr/bin/tool", "tool", "2.0-1", d(0x44));
  p.AllowPackageFile("/usr/bin/tool", "tool", "1:1.0-1", d(0x45));
  p.AllowPackageFile("/usr/bin/t\xffol", "t\xffol", "0", d(0x46));
  return p;
}

// The exporters write exactly what the nlohmann-document exporters before them wrote (the
// files in testdata/ were written by those): byte for byte, including the U+FFFD that
// replaces bytes that are not UTF-8.
TEST(RuntimePolicyTest, ExportsEqualTheEarlierDocumentExportsByteForByte) {
  RuntimePolicy p = OddPolicy();
  std::vector<std::string> lost;
  EXPECT_EQ(p.ToNativeJson(), lim::testing::Slurp(lim::testing::SourcePath("src/attest/testdata/odd_policy.native.json")));
  EXPECT_EQ(p.ToKeylimeJson(&lost), lim::testing::Slurp(lim::testing::SourcePath("src/attest/testdata/odd_policy.keylime.json")));
  EXPECT_EQ(lost.size(), 3u);
  // And what nlohmann itself writes for the same document (a parse and a dump leave it as is).
  for (const std::string& text : {p.ToNativeJson(), p.ToKeylimeJson()}) {
    nlohmann::json j = nlohmann::json::parse(text);
    EXPECT_EQ(j.dump(1, ' ', false), text);
  }
  auto back = RuntimePolicy::FromNativeJson(p.ToNativeJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->paths(), p.paths());
  // Empty: every member in its empty form.
  EXPECT_EQ(nlohmann::json::parse(RuntimePolicy().ToNativeJson()).dump(1, ' ', false), RuntimePolicy().ToNativeJson());
  EXPECT_EQ(nlohmann::json::parse(RuntimePolicy().ToKeylimeJson()).dump(1, ' ', false),
            RuntimePolicy().ToKeylimeJson());
}

TEST(VerdictTest, OneStableLinePerFindingWhateverThePath) {
  Finding f;
  f.reason = Reason::kUnknownFile;
  f.entry = 7;
  f.pcr = 10;
  f.tmpl = "ima-ng";
  f.path = "/tmp/a b\n\"c\"";
  f.digest = "sha256:00";
  EXPECT_EQ(FormatFinding("h1", f),
            "lim-verifier: agent=h1 reason=unknown-file entry=7 pcr=10 template=ima-ng path=\"/tmp/a b\\x0a\\x22c\\x22\" "
            "digest=sha256:00");
  EXPECT_EQ(ReasonFromName("list-does-not-replay"), Reason::kListDoesNotReplay);
  EXPECT_FALSE(ReasonFromName("nope"));
  for (int r = 0; r <= static_cast<int>(Reason::kUnreachable); ++r) {
    EXPECT_EQ(ReasonFromName(ReasonName(static_cast<Reason>(r))), static_cast<Reason>(r));
  }
}

}  // namespace
}  // namespace lim::attest
