// CLI tests of `lim scan`: outputs that lim's policy import takes back, exit codes (0 all
// hashed, 1 a file named on stderr could not be, 2 bad usage or a PATH that is not there),
// progress only on a terminal, --root, --exclude.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "attest/runtime_policy.h"
#include "base/file.h"
#include "tests/testing.h"

namespace lim {
namespace {

using json = nlohmann::json;
using lim::testing::LimCommand;
using lim::testing::RunCommand;
using lim::testing::ShellQuote;

class ScanCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lim::testing::MakeTempDir();
    chmod(dir_.c_str(), 0755);
    mkdir(P("tree").c_str(), 0755);
    mkdir(P("tree/bin").c_str(), 0755);
    Write("tree/bin/run", "#!/bin/sh\nexit 0\n");
    Write("tree/bin/odd name\n", "odd");
    Write("tree/app.log", "log");
    Write("tree/data", std::string(3 << 20, 'd'));
  }
  std::string P(const std::string& n) const { return dir_ + "/" + n; }
  void Write(const std::string& n, const std::string& text) { std::ofstream(P(n), std::ios::binary) << text; }
  lim::testing::CommandResult Scan(const std::string& args) { return RunCommand(LimCommand("scan " + args)); }

  std::string dir_;
};

TEST_F(ScanCliTest, NativeAndKeylimeOutputsImportBackWithTheSameDigests) {
  auto native = Scan(ShellQuote(P("tree")) + " -o " + ShellQuote(P("native.json")));
  ASSERT_EQ(native.exit_code, 0) << native.err;
  EXPECT_EQ(native.out, "");
  EXPECT_NE(native.err.find("lim: scanned 4 files (3.0 MiB)"), std::string::npos) << native.err;
  EXPECT_NE(native.err.find("4 digests (sha256), 4 policy paths"), std::string::npos) << native.err;
  EXPECT_EQ(native.err.find('\r'), std::string::npos);  // no progress: stderr is no terminal
  auto keylime = Scan("--format keylime " + ShellQuote(P("tree")));
  ASSERT_EQ(keylime.exit_code, 0) << keylime.err;
  auto text = ReadFileText(P("native.json"));
  ASSERT_TRUE(text.ok());
  auto a = attest::RuntimePolicy::FromJson(*text);
  auto b = attest::RuntimePolicy::FromJson(keylime.out);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  json paths = json::parse(a->ToNativeJson())["paths"];
  EXPECT_EQ(paths, json::parse(b->ToNativeJson())["paths"]);
  EXPECT_EQ(paths.size(), 4u);
  EXPECT_TRUE(paths.contains(P("tree/bin/odd name\n")));
  auto sum = RunCommand("sha256sum < " + ShellQuote(P("tree/data")));
  EXPECT_EQ(paths[P("tree/data")][0], sum.out.substr(0, 64));
  json files = json::parse(*text)["files"];
  EXPECT_EQ(files[P("tree/bin/run")]["kind"], "script");
  EXPECT_EQ(files[P("tree/bin/odd name\\x0a")]["size"], 3);
}

TEST_F(ScanCliTest, BadUsageAndMissingPathsExitTwo) {
  auto missing = Scan(ShellQuote(P("tree")) + " " + ShellQuote(P("nothing")));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "lim: " + P("nothing") + ": No such file or directory\n");
  EXPECT_EQ(missing.out, "");
  EXPECT_EQ(Scan("--hash md9 " + ShellQuote(P("tree"))).exit_code, 2);
  EXPECT_EQ(Scan("--format yaml " + ShellQuote(P("tree"))).exit_code, 2);
  EXPECT_EQ(Scan("").exit_code, 2);
  auto outside = Scan("--root " + ShellQuote(P("tree/bin")) + " " + ShellQuote(P("tree")));
  EXPECT_EQ(outside.exit_code, 2);
  EXPECT_NE(outside.err.find("not under --root"), std::string::npos) << outside.err;
}

TEST_F(ScanCliTest, NamesThatNoPolicyCanHoldExitOne) {
  Write("tree/bad\xff", "b");
  auto r = Scan("-q " + ShellQuote(P("tree")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "lim: " + P("tree/bad\\xff") + ": name is not UTF-8: no JSON policy can hold it (listed in the manifest only)\n");
  json j = json::parse(r.out);
  EXPECT_EQ(j["paths"].size(), 4u);
  EXPECT_TRUE(j["files"].contains(P("tree/bad\\xff")));
}

TEST_F(ScanCliTest, UnreadableFileIsNamedAndExitsOne) {
  Write("tree/bin/locked", "secret");
  chmod(P("tree/bin/locked").c_str(), 0);
  std::string as_nobody = geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  if (!as_nobody.empty() && RunCommand("command -v setpriv").exit_code != 0) GTEST_SKIP() << "needs setpriv";
  auto r = RunCommand(as_nobody + LimCommand("scan -q " + ShellQuote(P("tree"))));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "lim: " + P("tree/bin/locked") + ": open: Permission denied\n");
  json j = json::parse(r.out);
  EXPECT_EQ(j["paths"].size(), 4u);  // every other file is there
  EXPECT_EQ(j["files"][P("tree/bin/locked")]["error"], "open: Permission denied");
}

TEST_F(ScanCliTest, ProgressOnlyOnATerminal) {
  if (RunCommand("command -v script").exit_code != 0) GTEST_SKIP() << "needs script(1) for a terminal";
  std::string cmd = LimCommand("scan -o /dev/null " + ShellQuote(P("tree")));
  auto tty = RunCommand("script -qec " + ShellQuote(cmd) + " /dev/null");
  EXPECT_EQ(tty.exit_code, 0) << tty.out;
  EXPECT_NE(tty.out.find("\r\033[Klim scan: "), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("lim: scanned 4 files"), std::string::npos) << tty.out;
  auto quiet = RunCommand("script -qec " + ShellQuote(cmd + " -q") + " /dev/null");
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.out, "");
}

TEST_F(ScanCliTest, OutputIntoAFifoWritesThroughItNeverReplacesIt) {
  // As -o /dev/null or /dev/stdout: a device or pipe is written into (once, a regular file
  // was renamed over /dev/null).
  std::string fifo = P("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto r = RunCommand("cat " + ShellQuote(fifo) + " > " + ShellQuote(P("got")) + " & " +
                      LimCommand("scan -q -o " + ShellQuote(fifo) + " " + ShellQuote(P("tree"))) + "; rc=$?; wait; exit $rc");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  auto got = ReadFileText(P("got"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(json::parse(*got)["paths"].size(), 4u);
  auto dash = Scan("-q -o - " + ShellQuote(P("tree/data")));
  EXPECT_EQ(dash.exit_code, 0);
  EXPECT_EQ(json::parse(dash.out)["paths"].size(), 1u);
}

TEST_F(ScanCliTest, RootAndExcludeShapeThePaths) {
  auto r = Scan("-q --root " + ShellQuote(P("tree")) + " --exclude '*.log' " + ShellQuote(P("tree/bin")) + " " +
                ShellQuote(P("tree/app.log")) + " " + ShellQuote(P("tree/data")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json paths = json::parse(r.out)["paths"];
  // A PATH given by name is scanned even when an exclude would match it below a directory.
  EXPECT_EQ(paths.size(), 4u) << paths.dump();
  EXPECT_TRUE(paths.contains("/bin/run"));
  EXPECT_TRUE(paths.contains("/data"));
  auto ex = Scan("-q --exclude '*.log' --exclude " + ShellQuote(P("tree/bin")) + " " + ShellQuote(P("tree")));
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  paths = json::parse(ex.out)["paths"];
  EXPECT_EQ(paths.size(), 1u) << paths.dump();
  EXPECT_TRUE(paths.contains(P("tree/data")));
}

// The owner column comes from the dpkg database: the host's when it has one, or --admindir's;
// an --admindir that cannot be read is an error (exit 2), and "" leaves the column out.
TEST_F(ScanCliTest, OwnersComeFromTheDpkgDatabase) {
  if (access("/var/lib/dpkg/status", F_OK) != 0 || access("/usr/bin/ls", F_OK) != 0) {
    GTEST_SKIP() << "no dpkg database on this host";
  }
  auto r = Scan("-q /usr/bin/ls " + ShellQuote(P("tree/data")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json files = json::parse(r.out)["files"];
  EXPECT_EQ(files["/usr/bin/ls"]["owner"]["package"], "coreutils") << files.dump();
  EXPECT_FALSE(files["/usr/bin/ls"]["owner"]["version"].get<std::string>().empty());
  EXPECT_TRUE(files[P("tree/data")]["owner"].is_null()) << files.dump();
  auto none = Scan("-q --admindir '' /usr/bin/ls");
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_FALSE(json::parse(none.out)["files"]["/usr/bin/ls"].contains("owner")) << none.out;
  auto bad = Scan("-q --admindir " + ShellQuote(P("no-such-db")) + " /usr/bin/ls");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--admindir " + P("no-such-db")), std::string::npos) << bad.err;
  // A database that is there but cannot be parsed is found out while the tree is scanned (it
  // loads beside the walk): still exit 2, named, and no output.
  ASSERT_EQ(mkdir(P("broken-db").c_str(), 0755), 0);
  {
    std::ofstream f(P("broken-db/status"));
    f << "Status: install ok installed\nVersion: 1\n";  // a stanza without Package
  }
  auto broken = Scan("--admindir " + ShellQuote(P("broken-db")) + " " + ShellQuote(P("tree")));
  EXPECT_EQ(broken.exit_code, 2) << broken.err;
  EXPECT_NE(broken.err.find("--admindir " + P("broken-db")), std::string::npos) << broken.err;
  EXPECT_EQ(broken.out, "");
}

}  // namespace
}  // namespace lim
