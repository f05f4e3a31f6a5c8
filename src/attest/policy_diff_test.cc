#include "attest/policy_diff.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace lim::attest {
namespace {

Bytes D(uint8_t fill) { return Bytes(32, fill); }
std::string H(uint8_t fill) { return ToHex(D(fill)); }

TEST(PolicyDiffTest, IdenticalInEffectDespiteFormAndOrder) {
  RuntimePolicy a;
  a.AllowPath("/usr/bin/x", D(1));
  a.AllowPath("/usr/bin/x", D(2));
  ASSERT_TRUE(a.AddExclude("/tmp/.*").ok());
  RuntimePolicy b;
  b.AllowPath("/usr/bin/x", D(2));
  b.AllowPath("/usr/bin/x", D(1));
  ASSERT_TRUE(b.AddExclude("/tmp/.*").ok());
  // Through keylime's form and back: the same effect.
  auto k = RuntimePolicy::FromJson(b.ToKeylimeJson());
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_TRUE(DiffPolicies(a, *k).empty());
  EXPECT_EQ(DiffText({}), "");
  EXPECT_TRUE(nlohmann::json::parse(DiffJson({}))["identical"].get<bool>());
}

TEST(PolicyDiffTest, PathsDigestsAndExcludesEachWayWithEffect) {
  RuntimePolicy a, b;
  a.AllowPath("/bin/kept", D(1));
  a.AllowPath("/bin/kept", D(2));
  a.AllowPath("/bin/gone", D(3));
  b.AllowPath("/bin/kept", D(1));
  b.AllowPath("/bin/kept", D(4));
  b.AllowPath("/bin/new", D(5));
  b.AllowAnywhere(D(6));
  ASSERT_TRUE(b.AddExclude("/var/log/.*").ok());
  b.AllowImaBuf("kernel_cmdline", D(7));
  b.IgnoreKeyring(".ima");
  auto items = DiffPolicies(a, b);
  std::string text = DiffText(items);
  EXPECT_EQ(text,
            "+ anywhere digest " + H(6) + "\n"
            "+ exclude regex /var/log/.* (widens: matching paths pass unchecked)\n"
            "+ ignored_keyring name .ima\n"
            "+ ima_buf kernel_cmdline digest " + H(7) + "\n"
            "- path /bin/gone path " + H(3) + "\n"
            "- path /bin/kept digest " + H(2) + "\n"
            "+ path /bin/kept digest " + H(4) + "\n"
            "+ path /bin/new path " + H(5) + "\n");
  // Reversed: every allows becomes forbids.
  auto back = DiffPolicies(b, a);
  ASSERT_EQ(back.size(), items.size());
  for (const auto& i : back) {
    bool found = false;
    for (const auto& j : items) {
      if (j.section == i.section && j.key == i.key && j.value == i.value) {
        found = true;
        EXPECT_NE(i.effect, j.effect) << i.section << " " << i.key;
      }
    }
    EXPECT_TRUE(found) << i.section << " " << i.key << " " << i.value;
  }
}

TEST(PolicyDiffTest, PackageVersionsNameTheDigests) {
  RuntimePolicy a, b;
  a.SetPackage("tool", {{"1.0"}, "1.0", "deb"});
  a.AllowPackageFile("/usr/bin/tool", "tool", "1.0", D(1));
  b.SetPackage("tool", {{"2.0"}, "2.0", "deb"});
  b.AllowPackageFile("/usr/bin/tool", "tool", "2.0", D(2));
  std::string text = DiffText(DiffPolicies(a, b));
  EXPECT_NE(text.find("+ path /usr/bin/tool digest " + H(2) + " (tool 2.0)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("- path /usr/bin/tool digest " + H(1) + " (tool 1.0)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("+ package tool version 2.0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("- package tool version 1.0\n"), std::string::npos) << text;
  // "installed" and "source" are provenance, not effect.
  RuntimePolicy c = b;
  c.SetPackage("tool", {{"2.0"}, "", "tofu"});
  EXPECT_TRUE(DiffPolicies(b, c).empty());
}

TEST(PolicyDiffTest, KeyringsLogAlgAndOddNamesEscaped) {
  RuntimePolicy a, b;
  a.AllowKeyring(".ima", D(1));
  b.set_log_hash_alg("sha256");
  b.AllowPath(std::string("/odd\nname\xff", 10), D(9));
  auto items = DiffPolicies(a, b);
  std::string text = DiffText(items);
  EXPECT_NE(text.find("- keyring .ima digest " + H(1) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("~ log_hash_alg value \"sha1\" -> \"sha256\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("+ path /odd\\x0aname\\xff path"), std::string::npos) << text;
  auto j = nlohmann::json::parse(DiffJson(items));
  EXPECT_FALSE(j["identical"].get<bool>());
  bool odd = false;
  for (const auto& c : j["changes"]) odd |= c["key"] == "/odd\\x0aname\\xff";
  EXPECT_TRUE(odd) << j.dump();
}

}  // namespace
}  // namespace lim::attest
