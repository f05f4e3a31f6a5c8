#include "daemon/config_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing.h"

namespace lim::daemon {
namespace {

Status AnyKey(const std::string&) { return Status::Ok(); }

TEST(ConfigText, KeysValuesCommentsAndRepeats) {
  auto r = ParseConfigText("# comment\n; also\n\nwatch = /a\n  watch=/b  \nstate = \"/var/lib/x y\"\nno-tpm = true\n", AnyKey);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].line, 4);
  EXPECT_EQ((*r)[1].key, "watch");
  EXPECT_EQ((*r)[1].value, "/b");
  EXPECT_EQ((*r)[2].value, "/var/lib/x y");
  EXPECT_EQ((*r)[3].key, "no-tpm");
}

TEST(ConfigText, MalformedLinesNameTheirLine) {
  auto msg = [](const std::string& text) {
    auto r = ParseConfigText(text, AnyKey);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(msg("watch = /a\njunk\n"), "2: expected 'key = value', got 'junk'");
  EXPECT_EQ(msg("[limd]\n"), "1: sections are not used: write 'key = value' lines");
  EXPECT_EQ(msg("\n\n--watch = /a\n"), "3: write the key without dashes: 'watch'");
  EXPECT_EQ(msg("watch =\n"), "1: missing value for 'watch'");
  EXPECT_EQ(msg("watch = [\"/a\", \"/b\"]\n"), "1: one value per line: repeat the key for a list");
  EXPECT_EQ(msg("state = \"/x\n"), "1: unterminated quote in value");
  EXPECT_EQ(msg("= 3\n"), "1: missing key before '='");
  auto r = ParseConfigText("a = 1\nb = 2\n", [](const std::string& k) {
    return k == "b" ? Status::InvalidArgument("unknown key 'b'") : Status::Ok();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "2: unknown key 'b'");
}

// The CLI11 side: flags override the file, unknown keys and bad values point at FILE:LINE,
// a missing default file is fine and a missing explicit one is not.
class ConfigApp : public ::testing::Test {
 protected:
  void SetUp() override {
    app_.add_option("--watch", watch_);
    app_.add_option("--state", state_);
    app_.add_option("--workers", workers_);
    app_.add_flag("--no-tpm", no_tpm_);
    dir_ = lim::testing::MakeTempDir();
    AddConfigOption(&app_, dir_ + "/default.conf");
  }
  // Parses args; returns "" or the error message.
  std::string Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "limd");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    try {
      app_.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    } catch (const CLI::ParseError& e) {
      return DescribeParseError(app_, e);
    }
    return "";
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  CLI::App app_;
  std::vector<std::string> watch_;
  std::string state_ = "/var/lib/lim", dir_;
  int workers_ = 2;
  bool no_tpm_ = false;
};

TEST_F(ConfigApp, FileValuesAndFlagOverrides) {
  std::string f = Write("a.conf", "watch = /a\nwatch = /b\nstate = /s\nworkers = 4\nno-tpm = true\n");
  ASSERT_EQ(Parse({"--config", f, "--state", "/flag"}), "");
  EXPECT_EQ(watch_, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(state_, "/flag");
  EXPECT_EQ(workers_, 4);
  EXPECT_TRUE(no_tpm_);
}

TEST_F(ConfigApp, AFlagOverridesTheKeysItExcludes) {
  std::string policy, builtin;
  auto* p = app_.add_option("--policy", policy);
  app_.add_option("--builtin", builtin)->excludes(p);
  std::string f = Write("b.conf", "builtin = tcb\n");
  ASSERT_EQ(Parse({"--config", f, "--policy", "/etc/p"}), "");
  EXPECT_EQ(policy, "/etc/p");
  EXPECT_EQ(builtin, "");
  ASSERT_EQ(Parse({"--config", f}), "");
  EXPECT_EQ(builtin, "tcb");
  f = Write("c.conf", "builtin = tcb\npolicy = /etc/p\n");
  std::string m = Parse({"--config", f});
  EXPECT_NE(m.find("excludes"), std::string::npos) << "both in the file is still an error: " << m;
}

TEST_F(ConfigApp, DefaultFileIsReadWhenPresentAndOptionalWhenAbsent) {
  ASSERT_EQ(Parse({}), "");
  EXPECT_EQ(state_, "/var/lib/lim");
  Write("default.conf", "state = /from-default\n");
  ASSERT_EQ(Parse({}), "");
  EXPECT_EQ(state_, "/from-default");
}

TEST_F(ConfigApp, ErrorsNameFileAndLine) {
  std::string f = Write("bad.conf", "# x\nwatch = /a\nbogus = 1\n");
  EXPECT_EQ(Parse({"--config", f}), f + ":3: unknown key 'bogus' (keys are limd's long flags without --)");
  f = Write("bad2.conf", "workers = many\n");
  std::string m = Parse({"--config", f});
  EXPECT_EQ(m.rfind(f + ":1: ", 0), 0u) << m;
  EXPECT_NE(m.find("--workers"), std::string::npos) << m;
  f = Write("bad3.conf", "config = /etc/other\n");
  EXPECT_EQ(Parse({"--config", f}), f + ":1: 'config' cannot be set in a config file");
  std::string missing = dir_ + "/missing.conf";
  m = Parse({"--config", missing});
  EXPECT_NE(m.find(missing), std::string::npos) << m;
}

}  // namespace
// The file is read in chunks up to one byte past the cap (not into a zero-filled buffer of
// the cap's size, which made reading any config file cost a megabyte): a file of exactly
// the cap is read whole, its last line included; one byte more is refused.
TEST_F(ConfigApp, FileOfExactlyTheCapIsReadWholeAndOneByteMoreIsRefused) {
  std::string tail = "state = /at-the-end\n";
  std::string text(kMaxConfigBytes - tail.size(), '\n');
  for (size_t i = 0; i + 1 < text.size(); i += 4096) text[i] = '#';  // comment lines
  text += tail;
  ASSERT_EQ(text.size(), kMaxConfigBytes);
  ASSERT_EQ(Parse({"--config", Write("cap.conf", text)}), "");
  EXPECT_EQ(state_, "/at-the-end");
  std::string m = Parse({"--config", Write("over.conf", text + "\n")});
  EXPECT_NE(m.find("larger than 1048576 bytes"), std::string::npos) << m;
}

}  // namespace lim::daemon
