// Round trips of a dynamic spawn (issue 19): an exec open is one FAN_OPEN_PERM (no
// FAN_OPEN_EXEC_PERM mark), so a cached spawn of a dynamic /bin/true costs four answers —
// the binary, its ELF interpreter, ld.so.cache, libc — and every guarantee stays: the
// binary is BPRM_CHECK and the interpreter MMAP_CHECK (issue 13's hook point), a changed
// binary is measured again (also one written through a shared mapping), and the reader
// and writer counts stay exact (ToMToU and open_writers, none too many). Root: a loop ext4
// of the test's own (pre-content events, as on `/`) holding the binaries, their libraries
// and an ld.so.cache, entered with chroot; limd under `timeout -k`, stopped by its own pid.
#include <gtest/gtest.h>
#include <sys/fanotify.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::ShellQuote;

class LimdSpawn : public testing::Ext4LimdTest {
 protected:
  void SetUp() override {
    testing::Ext4LimdTest::SetUp();
    if (IsSkipped()) return;
    // /bin/true and /bin/sleep with every library they load, at the same paths, and the
    // cache ld.so reads: a spawn in the chroot touches nothing outside the mount.
    auto r = Sh(
        "set -e; for f in /bin/true /bin/sleep $(ldd /bin/true /bin/sleep | grep -o '/[^ ]*' | sort -u); do"
        "  [ -e \"$f\" ] || continue; mkdir -p \".$(dirname \"$f\")\"; cp -L \"$f\" \".$f\"; done;"
        " mkdir -p etc; ldconfig -r . ; test -s etc/ld.so.cache; chroot . /bin/true");
    if (r.exit_code != 0) GTEST_SKIP() << "no chroot layout: " << r.err;
    // Each func into its own PCR: a row's PCR says which hook measured it.
    ASSERT_TRUE(WriteFileBytes(state_ + "/policy", AsBytes("measure func=BPRM_CHECK mask=MAY_EXEC\n"
                                                            "measure func=MMAP_CHECK mask=MAY_EXEC pcr=11\n"
                                                            "measure func=FILE_CHECK mask=MAY_READ uid=0 pcr=12\n"))
                    .ok());
    auto rc = limd_.Start(
        testing::LimdCommand(state_, mnt_, "--no-tpm --policy " + ShellQuote(state_ + "/policy")), state_);
    ASSERT_FALSE(rc.has_value()) << "limd exited: " << *rc;
  }
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line, 60); }
  // A status.json field once the file (rewritten every second) shows a value that holds
  // across two rewrites: every event before the call is in it.
  uint64_t Settled(const std::string& field) {
    uint64_t last = UINT64_MAX;
    int same = 0;
    for (int i = 0; i < 60 && same < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      auto text = ReadFileText(state_ + "/status.json");
      if (!text.ok() || text->empty()) continue;
      uint64_t v = nlohmann::json::parse(*text)[field].get<uint64_t>();
      same = v == last ? same + 1 : 0;
      last = v;
    }
    return last;
  }
  // Violation rows (ToMToU, open_writers) of files on the test's mount, once the status
  // counter has settled. Not the counter itself: it counts the host's, and a test running
  // beside this one may put its own files where this limd's --watch reaches (a namespace
  // whose root is its tmpfs: the watched path then lies on that tmpfs) and write them while
  // this limd reads them.
  int OwnViolations() {
    Settled("violations");
    int n = 0;
    for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
      if (r.violation && r.name.rfind(mnt_ + "/", 0) == 0) n++;
    }
    return n;
  }
  // Measurement rows of the list per (name relative to the mount, PCR); violations (always
  // PCR 10, as the kernel's) left out.
  std::map<std::pair<std::string, uint32_t>, int> Rows() {
    std::map<std::pair<std::string, uint32_t>, int> out;
    for (const auto& r : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
      if (!r.violation && r.name.rfind(mnt_ + "/", 0) == 0) out[{r.name.substr(mnt_.size()), r.pcr}]++;
    }
    return out;
  }
  std::string Log() {
    auto t = ReadFileText(state_ + "/log");
    return t.ok() ? *t : t.status().message();
  }
  std::string Libc() {
    auto r = Sh("ldd /bin/true | grep -o '/[^ ]*libc.so[^ ]*'");
    std::string s = r.out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
};

TEST_F(LimdSpawn, ACachedDynamicSpawnIsFourRoundTripsAndEachFileKeepsItsHook) {
  ASSERT_EQ(Sh("chroot . /bin/true && chroot . /bin/true").exit_code, 0);  // verdicts cached
  uint64_t before = Settled("answered");
  constexpr int kSpawns = 20;
  ASSERT_EQ(Sh("i=0; while [ $i -lt " + std::to_string(kSpawns) + " ]; do chroot . /bin/true; i=$((i+1)); done").exit_code, 0);
  uint64_t after = Settled("answered");
  // The binary, the ELF interpreter, ld.so.cache, libc: one answer each (six before:
  // the two exec opens raised OPEN_EXEC_PERM and OPEN_PERM each). Pre-content events of
  // measured files are spared by their ignore marks.
  EXPECT_EQ(after - before, 4u * kSpawns);
  auto rows = Rows();
  EXPECT_EQ((rows[{"/bin/true", 10}]), 1);  // BPRM_CHECK
  EXPECT_EQ((rows[{"/bin/true", 12}]), 0);  // its open is FILE_CHECK with MAY_EXEC: no rule
  std::string interp;
  for (const auto& [k, n] : rows) {
    if (k.first.find("ld-linux") != std::string::npos && k.second == 11) interp = k.first;
  }
  EXPECT_FALSE(interp.empty()) << "no MMAP_CHECK row for the ELF interpreter";  // issue 13's hook point
  EXPECT_EQ((rows[{interp, 11}]), 1);
  EXPECT_EQ((rows[{interp, 10}]), 0);  // never BPRM_CHECK
  EXPECT_EQ((rows[{"/etc/ld.so.cache", 12}]), 1);
  std::string libc = Libc();
  ASSERT_FALSE(libc.empty());
  // Read by root first (FILE_CHECK), which puts the pre-content ignore mark on libc: its
  // PROT_EXEC mmap is then not seen (no pcr 11 row here, where the kernel, measuring per
  // PCR, would add one; with one PCR for all rules, as tcb, the two agree).
  EXPECT_EQ((rows[{libc, 12}]), 1);
  auto status = nlohmann::json::parse(*ReadFileText(state_ + "/status.json"));
  EXPECT_EQ(status["exec_opens_unsure"].get<uint64_t>(), 0u);
  EXPECT_EQ(OwnViolations(), 0) << Log();
}

TEST_F(LimdSpawn, AChangedBinaryIsMeasuredAgainAlsoWhenWrittenThroughASharedMapping) {
  ASSERT_EQ(Sh("chroot . /bin/true && chroot . /bin/true").exit_code, 0);
  EXPECT_EQ((Rows()[{"/bin/true", 10}]), 1);
  // write(): one more byte at the end (ELF loaders read only what the headers point at).
  ASSERT_EQ(Sh("printf x >> bin/true && chroot . /bin/true && chroot . /bin/true").exit_code, 0);
  EXPECT_EQ((Rows()[{"/bin/true", 10}]), 2);
  // A shared writable mapping: the last byte changed through memory, no write().
  ASSERT_EQ(Sh("python3 -c \"import mmap,os; f=os.open('bin/true',os.O_RDWR); m=mmap.mmap(f,0); "
               "m[len(m)-1]=ord('y'); m.flush(); m.close(); os.close(f)\" && chroot . /bin/true && chroot . /bin/true")
                .exit_code,
            0);
  EXPECT_EQ((Rows()[{"/bin/true", 10}]), 3);
  // The interpreter changed: its MMAP_CHECK again, before it runs.
  ASSERT_EQ(Sh("f=$(ls lib64/ld-linux* lib/ld-linux* 2>/dev/null | head -n1); printf z >> \"$f\" && chroot . /bin/true")
                .exit_code,
            0);
  int interp_rows = 0;
  for (const auto& [k, n] : Rows()) {
    if (k.first.find("ld-linux") != std::string::npos && k.second == 11) interp_rows += n;
  }
  EXPECT_EQ(interp_rows, 2);
  EXPECT_EQ(OwnViolations(), 0) << Log();
}

TEST_F(LimdSpawn, ExecOpensKeepReaderAndWriterCountsExact) {
  // A running binary is one open reader (its exec open, one event) until it exits; a
  // measured read meanwhile; after both are gone a write is no ToMToU — a reader counted
  // twice for the exec open would leave one behind and make it one.
  ASSERT_EQ(Sh("chroot . /bin/sleep 0.5 & sleep 0.2; cat bin/sleep >/dev/null; wait; printf x >> bin/sleep; "
               "cp bin/sleep copy").exit_code,
            0);
  EXPECT_EQ(OwnViolations(), 0) << Log();
  // A measured read held open while a writer opens: exactly one ToMToU.
  ASSERT_EQ(Sh("exec 3<copy; cat copy >/dev/null; printf y >> copy; exec 3<&-").exit_code, 0);
  EXPECT_EQ(OwnViolations(), 1) << Log();
  // A writer holds the binary: a measured read meanwhile is one open_writers; the exec is
  // no violation (BPRM_CHECK has none). It fails with ETXTBSY — except on a filesystem
  // with pre-content marks, where the kernel lets a file open for write be executed
  // (FMODE_FSNOTIFY_HSM: exe_file_deny_write_access steps aside), as on this ext4.
  // Once the writer is gone the binary runs, unchanged: no new entry, no violation.
  ASSERT_EQ(Sh("exec 3>>bin/true; cat bin/true >/dev/null; chroot . /bin/true; exec 3>&-").exit_code, 0);
  EXPECT_EQ(OwnViolations(), 2) << Log();
  ASSERT_EQ(Sh("chroot . /bin/true && chroot . /bin/true").exit_code, 0);
  EXPECT_EQ(OwnViolations(), 2) << Log();
  EXPECT_EQ((Rows()[{"/bin/true", 10}]), 1);
}

}  // namespace
}  // namespace lim::daemon
