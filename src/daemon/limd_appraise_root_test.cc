// Root tests of limd's appraisal (--appraise log|enforce|fix) on an ext4 loop mount of the
// test's own: files signed with evmctl ima_sign pass; an unsigned binary, the tamper matrix
// of issue 13 and a write-open of a signed file are denied under enforce (EPERM, exit 126
// from sh) with the kernel's audit causes and allowed under log; new and edited files are
// never denied after fix. On tmpfs (no pre-content events), an unsigned library under an
// MMAP_CHECK appraise rule cannot be loaded while a signed one can; through io_uring, a
// signed file's write-open is denied and a hashed file's edit gets its digest rewritten.
// Execs elsewhere on the host (every one reaches limd's exec tracepoint) do no appraisal
// work and read no mountinfo each.
// Skipped without root, fanotify, loop ext4 (tmpfs) or evmctl.
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "base/file.h"
#include "daemon/limd_test_util.h"
#include "daemon/list_rows_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

using lim::testing::RunCommand;
using lim::testing::ShellQuote;
using testing::LimdChild;
using testing::LimdCommand;
using testing::ScratchMounts;

class LimdAppraiseRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::FanotifyUnavailable(FAN_CLASS_CONTENT);
    if (why.empty() && RunCommand("command -v evmctl && command -v setfattr").exit_code != 0) {
      why = "evmctl or setfattr missing (scripts/deps.sh installs them)";
    }
    if (why.empty()) why = OnTmpfs() ? mounts_.AddTmpfs(&mnt_) : mounts_.AddExt4(&mnt_);
    if (!why.empty()) GTEST_SKIP() << why;
    state_ = lim::testing::MakeTempDir();
    keys_ = lim::testing::MakeTempDir();
    ASSERT_EQ(::mkdir((keys_ + "/trusted").c_str(), 0700), 0);
    // RSA (this kernel has no ECDSA for keyrings; evmctl and lim take both). The
    // certificate's SKID is openssl's default hash, so lim's key id is evmctl's.
    for (const char* k : {"good", "evil"}) {
      std::string dir = std::string(k) == "good" ? keys_ + "/trusted" : keys_;
      Ok("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + keys_ + "/" + k + ".key -out " + dir + "/" + k +
         ".pem -subj /CN=" + k + " -days 2 2>&1");
    }
  }
  void TearDown() override { limd_.Stop(SIGTERM); }
  // The mount: a loop ext4 (pre-content events), or tmpfs (none: MMAP_CHECK by ELF-at-open).
  virtual bool OnTmpfs() const { return false; }

  void Ok(const std::string& line) {
    auto r = RunCommand(line);
    ASSERT_EQ(r.exit_code, 0) << line << "\n" << r.out;
  }
  // A root-owned file on the mount, signed with key ("" for none).
  void Make(const std::string& name, const std::string& content, const std::string& key = "good") {
    ASSERT_TRUE(WriteFileBytes(mnt_ + "/" + name, AsBytes(content)).ok());
    if (!key.empty()) Ok("evmctl ima_sign -a sha256 --key " + keys_ + "/" + key + ".key " + ShellQuote(mnt_ + "/" + name) + " 2>&1");
  }
  void Start(const std::string& mode, const std::string& policy_text, const std::string& extra = "") {
    limd_.Stop(SIGTERM);
    std::string policy = state_ + "/policy";
    ASSERT_TRUE(WriteFileBytes(policy, AsBytes(policy_text)).ok());
    std::string flags = "--no-tpm --policy " + policy + " --appraise " + mode + " --keys " + keys_ + "/trusted " + extra;
    auto rc = limd_.Start(LimdCommand(state_, mnt_, flags) + " 2>>" + ShellQuote(state_ + "/stderr"), state_);
    ASSERT_FALSE(rc.has_value()) << "limd exited " << *rc << ": " << Text(state_ + "/stderr");
  }
  void StartBuiltin(const std::string& mode, const std::string& builtin) {
    limd_.Stop(SIGTERM);
    auto rc = limd_.Start(LimdCommand(state_, mnt_, "--no-tpm --builtin " + builtin + " --appraise " + mode + " --keys " +
                                                        keys_ + "/trusted") +
                              " 2>>" + ShellQuote(state_ + "/stderr"),
                          state_);
    ASSERT_FALSE(rc.has_value()) << "limd exited " << *rc;
  }
  lim::testing::CommandResult Sh(const std::string& line) { return testing::ShIn(mnt_, line); }
  static std::string Text(const std::string& path) {
    auto t = ReadFileText(path);
    return t.ok() ? *t : std::string();
  }
  std::string Log() { return Text(state_ + "/log"); }
  // The audit line of a failed appraisal of name with cause, as limd logs it.
  bool Audited(const std::string& name, const std::string& cause) {
    std::string want = "op=appraise_data cause=" + cause + " ";
    std::string path = "name=\"" + mnt_ + "/" + name + "\"";
    size_t pos = 0;
    std::string log = Log();
    while ((pos = log.find(want, pos)) != std::string::npos) {
      size_t end = log.find('\n', pos);
      if (log.substr(pos, end - pos).find(path) != std::string::npos) return true;
      pos = end;
    }
    return false;
  }
  std::string Status() { return Text(state_ + "/status.json"); }

  std::string mnt_, state_, keys_;
  ScratchMounts mounts_;
  LimdChild limd_;  // after the mounts: stopped before they go
};

TEST_F(LimdAppraiseRoot, AnUnsignedBinaryIsDeniedUnderEnforceAndTheShellKeepsWorking) {
  Ok("cp /bin/true " + mnt_ + "/unsigned && cp /bin/true " + mnt_ + "/signed");
  Ok("evmctl ima_sign -a sha256 --key " + keys_ + "/good.key " + mnt_ + "/signed 2>&1");
  Start("enforce", "measure func=BPRM_CHECK\nappraise func=BPRM_CHECK appraise_type=imasig\n");
  auto r = Sh("sh -c './unsigned; echo rc=$?; ./signed; echo signed=$?; echo alive' 2>&1");
  EXPECT_NE(r.out.find("rc=126"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("signed=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("alive"), std::string::npos) << r.out;
  EXPECT_TRUE(Audited("unsigned", "IMA-signature-required")) << Log();
  EXPECT_FALSE(Audited("signed", "IMA-signature-required"));
  // Denied, yet measured first (the kernel measures before it appraises).
  int unsigned_entries = 0;
  for (const auto& row : testing::ReadListRows(state_ + "/binary_runtime_measurements")) unsigned_entries += row.name == mnt_ + "/unsigned";
  EXPECT_EQ(unsigned_entries, 1);
  // Cached: a second attempt is denied again without a second appraisal.
  r = Sh("sh -c './unsigned; echo rc=$?' 2>&1");
  EXPECT_NE(r.out.find("rc=126"), std::string::npos) << r.out;
  limd_.Stop(SIGTERM);
  std::string status = Status();
  EXPECT_NE(status.find("\"appraise\": \"enforce\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"appraise_denied\": 2"), std::string::npos) << status;
  EXPECT_NE(status.find("\"appraise_failures\": 1"), std::string::npos) << status;
  // Log mode: recorded, allowed.
  Start("log", "appraise func=BPRM_CHECK appraise_type=imasig\n");
  r = Sh("sh -c './unsigned; echo rc=$?' 2>&1");
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out;
  // lim status says enforce fails open when limd is down.
  limd_.Stop(SIGTERM);
  Start("enforce", "appraise func=BPRM_CHECK appraise_type=imasig\n");
  limd_.Stop(SIGTERM);
  auto st = RunCommand(lim::testing::LimBinary() + " status --state " + state_ + " 2>&1");
  EXPECT_NE(st.out.find("NOT ENFORCED: limd is not running"), std::string::npos) << st.out;
}

TEST_F(LimdAppraiseRoot, ASignedFileIsReadAndExecutedButNotOpenedForWrite) {
  Ok("cp /bin/true " + mnt_ + "/prog");
  Ok("evmctl ima_sign -a sha256 --key " + keys_ + "/good.key " + mnt_ + "/prog 2>&1");
  Make("data", "signed data\n");
  Start("enforce", "measure func=FILE_CHECK template=ima-sig\nappraise func=BPRM_CHECK appraise_type=imasig\n"
                   "appraise func=FILE_CHECK appraise_type=imasig\n");
  auto r = Sh("./prog && echo ran; cat data; (echo more >> data) 2>&1 || echo denied; cat data");
  EXPECT_EQ(r.out, "ran\nsigned data\nsh: 1: cannot create data: Operation not permitted\ndenied\nsigned data\n");
  // The ima-sig entry carries the signature that was checked.
  Bytes sig(4096);
  ssize_t n = ::getxattr((mnt_ + "/data").c_str(), "security.ima", sig.data(), sig.size());
  ASSERT_GT(n, 0);
  sig.resize(static_cast<size_t>(n));
  int with_sig = 0;
  for (const auto& row : testing::ReadListRows(state_ + "/binary_runtime_measurements")) {
    with_sig += row.name == mnt_ + "/data" && row.tmpl == "ima-sig" && row.extra == sig;
  }
  EXPECT_EQ(with_sig, 1);
  EXPECT_FALSE(Audited("data", "IMA-signature-required"));
  limd_.Stop(SIGTERM);
  EXPECT_NE(Status().find("\"appraise_write_denied\": 1"), std::string::npos) << Status();
}

TEST_F(LimdAppraiseRoot, TheTamperMatrixIsDeniedUnderEnforceWithItsCauseAndAllowedUnderLog) {
  struct Case {
    std::string name, cause;
  } cases[] = {
      {"changed", "invalid-signature"},       {"untrusted", "invalid-signature"},
      {"copied", "invalid-signature"},        {"removed", "IMA-signature-required"},
      {"digest_only", "IMA-signature-required"}, {"denylisted", "denylisted-hash"},
      {"hostile", "unknown-ima-data"},
  };
  Make("changed", "original\n");
  Ok("printf x >> " + mnt_ + "/changed");  // a byte changed after signing
  Make("untrusted", "untrusted\n", "evil");
  Make("donor", "donor\n");
  Make("copied", "copied\n", "");
  Ok("setfattr -n security.ima -v $(getfattr -e hex --only-values -n security.ima " + mnt_ + "/donor | xxd -p | tr -d '\\n' | sed 's/^/0x/') " +
     mnt_ + "/copied");
  Make("removed", "removed\n");
  Ok("setfattr -x security.ima " + mnt_ + "/removed");
  Make("digest_only", "digest only\n", "");
  Ok("evmctl ima_hash -a sha256 " + mnt_ + "/digest_only 2>&1");
  Make("denylisted", "denylisted\n");
  Ok("printf 'sha256:%s\\n' $(sha256sum " + mnt_ + "/denylisted | cut -d' ' -f1) > " + state_ + "/deny");
  Make("hostile", "hostile\n", "");
  Ok("setfattr -n security.ima -v 0x0302040000000100ff " + mnt_ + "/hostile");  // size says 255, 0 bytes follow
  Make("good", "good\n");
  const std::string policy = "appraise func=FILE_CHECK appraise_type=imasig\n";
  Start("enforce", policy, "--denylist " + state_ + "/deny");
  for (const auto& c : cases) {
    auto r = Sh("cat " + c.name + " >/dev/null 2>&1; echo rc=$?");
    EXPECT_NE(r.out.find("rc=1"), std::string::npos) << c.name << ": " << r.out;
    EXPECT_TRUE(Audited(c.name, c.cause)) << c.name << " " << c.cause << "\n" << Log();
  }
  EXPECT_EQ(Sh("cat good").out, "good\n");
  EXPECT_EQ(Sh("cat donor").out, "donor\n");
  Start("log", policy, "--denylist " + state_ + "/deny");
  for (const auto& c : cases) {
    auto r = Sh("cat " + c.name + " >/dev/null 2>&1; echo rc=$?");
    EXPECT_NE(r.out.find("rc=0"), std::string::npos) << c.name << " under log: " << r.out;
  }
}

TEST_F(LimdAppraiseRoot, NewAndEditedFilesAreNeverDeniedAfterFix) {
  Make("old.sh", "#!/bin/sh\necho old\n", "");
  Make("never_fixed", "not seen by fix\n", "");
  Ok("chmod +x " + mnt_ + "/old.sh");
  StartBuiltin("fix", "appraise_tcb");
  EXPECT_EQ(Sh("./old.sh").out, "old\n");
  limd_.Stop(SIGTERM);
  auto x = RunCommand("getfattr -e hex -n security.ima " + mnt_ + "/old.sh 2>&1");
  EXPECT_NE(x.out.find("security.ima=0x0404"), std::string::npos) << x.out;  // sha256 digest written by fix
  StartBuiltin("enforce", "appraise_tcb");
  EXPECT_EQ(Sh("./old.sh").out, "old\n");
  // Edited in place: allowed, its digest rewritten at the close.
  EXPECT_EQ(Sh("echo 'echo edited' >> old.sh && ./old.sh").out, "old\nedited\n");
  EXPECT_EQ(Sh("cat old.sh").out, "#!/bin/sh\necho old\necho edited\n");
  // Created, written, closed, then executed and read.
  auto r = Sh("printf '#!/bin/sh\\necho new\\n' > new.sh && chmod +x new.sh && ./new.sh && cat new.sh >/dev/null && echo read");
  EXPECT_EQ(r.out, "new\nread\n");
  // Replaced through a new file and a rename (sed -i).
  EXPECT_EQ(Sh("sed -i s/new/renamed/ new.sh && ./new.sh").out, "renamed\n");
  // Enforce still denies what fix never saw.
  EXPECT_NE(Sh("cat never_fixed 2>&1; echo rc=$?").out.find("rc=1"), std::string::npos);
  EXPECT_TRUE(Audited("never_fixed", "missing-hash")) << Log();
  EXPECT_FALSE(Audited("old.sh", "invalid-hash")) << Log();
  EXPECT_FALSE(Audited("new.sh", "missing-hash")) << Log();
  EXPECT_FALSE(Audited("new.sh", "invalid-hash")) << Log();
}

// io_uring opens (lim_test_uring: IORING_OP_OPENAT, inline in io_uring_enter and on an
// io-wq worker) show limd no open flags; the kernel's count of writers does
// (write_probe.h): a signed file's write-open is denied, its read-open allowed.
TEST_F(LimdAppraiseRoot, IoUringWriteOpensOfASignedFileAreDeniedAndReadsAllowed) {
  Make("data", "signed data\n");
  Start("enforce", "measure func=FILE_CHECK mask=MAY_READ\nappraise func=FILE_CHECK appraise_type=imasig\n");
  const std::string uring = LIM_TEST_URING_BIN;
  for (const char* how : {"inline", "async"}) {
    SCOPED_TRACE(how);
    EXPECT_EQ(Sh(uring + " data r " + how).out, "opened\nread 12\n");
    for (const char* mode : {"w", "rw", "wt"}) {
      auto r = Sh(uring + " data " + mode + " " + how + " changed 2>&1");
      EXPECT_EQ(r.out, "open failed: EPERM\n") << mode;
      EXPECT_EQ(r.exit_code, 1) << mode;
    }
  }
  EXPECT_EQ(Sh("cat data").out, "signed data\n");  // unchanged, still readable
  limd_.Stop(SIGTERM);
  std::string status = Status();
  EXPECT_NE(status.find("\"appraise_write_denied\": 6"), std::string::npos) << status;
  EXPECT_NE(status.find("\"unknown_syscall_writes\": 6"), std::string::npos) << status;
  EXPECT_NE(status.find("\"unknown_syscall_reads\": 2"), std::string::npos) << status;
  EXPECT_FALSE(Audited("data", "IMA-signature-required")) << Log();
}

// A hash-appraised file edited through io_uring is a writer's edit (IMA_UPDATE_XATTR): its
// digest is rewritten at the close, so it is read again under enforce — as an unseen
// writer's edit it would be invalid-hash.
// Execs from a filesystem limd does not watch reach its exec tracepoint (late-exec
// machinery) but are not limd's: no appraisal, no hash, no fanotify answer — and, for a
// process that shares limd's mount namespace and root, its mountinfo is limd's own text,
// read again only when the mount table changes, not once per exec (docs/performance.md).
TEST_F(LimdAppraiseRoot, ExecsElsewhereDoNoAppraisalWorkAndReadNoMountinfoEach) {
  std::string other;
  std::string why = mounts_.AddTmpfs(&other);
  ASSERT_TRUE(why.empty()) << why;
  Ok("cp /bin/sleep " + other + "/sleep && cp /bin/true " + mnt_ + "/signed");
  Ok("evmctl ima_sign -a sha256 --key " + keys_ + "/good.key " + mnt_ + "/signed 2>&1");
  Start("enforce", "measure func=BPRM_CHECK\nappraise func=BPRM_CHECK appraise_type=imasig\n");
  ASSERT_EQ(Sh("./signed && echo ok").out, "ok\n");
  auto snapshot = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // status.json: every second
    return nlohmann::json::parse(Status(), nullptr, false);
  };
  nlohmann::json before = snapshot();
  ASSERT_FALSE(before.is_discarded()) << Status();
  // Each lives 20 ms, so limd finds most of them running (a process gone before limd looks
  // is placed by its mappings instead, no mountinfo at all).
  constexpr int kExecs = 200;
  auto r = testing::ShIn(other, "i=0; while [ $i -lt " + std::to_string(kExecs) + " ]; do ./sleep 0.02 || exit 1; i=$((i+1)); done; echo done", 60);
  ASSERT_EQ(r.out, "done\n") << r.err;
  nlohmann::json after = snapshot();
  ASSERT_FALSE(after.is_discarded()) << Status();
  auto delta = [&](const char* k) { return after.value(k, uint64_t{0}) - before.value(k, uint64_t{0}); };
  for (const char* k : {"appraised", "appraise_failures", "appraise_denied", "cache_hits", "answered",
                        "permission_events", "late_execs", "late_exec_gaps"}) {
    EXPECT_EQ(delta(k), 0u) << k << "\n" << after.dump();
  }
  // A memfd exec anywhere on the machine is limd's to hash (it has no filesystem to mark),
  // and other tests running beside this one exec memfds (ctest -j2 in CI: 4 of them once):
  // every hash in the window must be one of those, none of the test's 200 execs.
  EXPECT_LE(delta("hashes"), delta("memfd_execs")) << after.dump();
  EXPECT_EQ(after.value("appraised", uint64_t{0}), 1u);  // ./signed, once
  // The test's execs placed by limd's own mountinfo (most: on a loaded machine some wake-ups
  // of limd come late); other users' execs may add.
  EXPECT_GE(delta("execs_placed_by_own_mountinfo"), uint64_t{kExecs / 2}) << after.dump();
  // Read again only after mounts (other tests on the machine mount too): far fewer reads
  // than execs.
  EXPECT_LT(delta("own_mountinfo_reads"), uint64_t{kExecs / 3}) << after.dump();
}

TEST_F(LimdAppraiseRoot, AFileEditedThroughIoUringGetsItsDigestRewrittenAtTheClose) {
  Make("hashed", "first\n", "");
  Ok("evmctl ima_hash -a sha256 " + mnt_ + "/hashed 2>&1");
  Start("enforce", "appraise func=FILE_CHECK\n");
  const std::string uring = LIM_TEST_URING_BIN;
  EXPECT_EQ(Sh("cat hashed").out, "first\n");
  EXPECT_EQ(Sh(uring + " hashed w inline second").out, "opened\nwrote 6\n");
  EXPECT_EQ(Sh("cat hashed").out, "second");
  EXPECT_EQ(Sh(uring + " hashed wt async third").out, "opened\nwrote 5\n");
  EXPECT_EQ(Sh("cat hashed").out, "third");
  limd_.Stop(SIGTERM);
  EXPECT_NE(Status().find("\"appraise_xattr_updates\": 2"), std::string::npos) << Status();
  EXPECT_FALSE(Audited("hashed", "invalid-hash")) << Log();
  // The control: an edit limd did not see (written while it was stopped) is denied.
  Ok("printf fourth > " + mnt_ + "/hashed");
  Start("enforce", "appraise func=FILE_CHECK\n");
  EXPECT_NE(Sh("cat hashed 2>&1; echo rc=$?").out.find("rc=1"), std::string::npos);
  EXPECT_TRUE(Audited("hashed", "invalid-hash")) << Log();
}

class LimdAppraiseTmpfsRoot : public LimdAppraiseRoot {
 protected:
  bool OnTmpfs() const override { return true; }
};

// tmpfs has no pre-content events: a library's PROT_EXEC mapping is never seen, so the
// MMAP_CHECK appraisal is taken at the read-open of an ELF file with an executable PT_LOAD
// (dlopen and ld.so open libraries O_RDONLY). An unsigned library cannot be dlopen()ed and
// an unsigned libc on LD_LIBRARY_PATH is never mapped; signed copies load.
TEST_F(LimdAppraiseTmpfsRoot, AnUnsignedLibraryCannotBeLoadedAndASignedOneCan) {
  Ok("mkdir " + mnt_ + "/bad " + mnt_ + "/good && libc=$(ldd /bin/cat | awk '/libc.so.6/{print $3}') && for d in bad good; do "
     "cp -L $libc /lib/x86_64-linux-gnu/libz.so.1 " + mnt_ + "/$d/ || exit 1; done && printf 'not elf\\n' > " + mnt_ + "/bad/notes");
  for (const char* lib : {"libc.so.6", "libz.so.1"}) {
    Ok("evmctl ima_sign -a sha256 --key " + keys_ + "/good.key " + mnt_ + "/good/" + lib + " 2>&1");
  }
  Start("enforce", "measure func=MMAP_CHECK\nappraise func=MMAP_CHECK appraise_type=imasig\n");
  auto dlopen = [&](const std::string& dir) {
    return Sh("/usr/bin/python3 -c \"import ctypes; ctypes.CDLL('" + mnt_ + "/" + dir + "/libz.so.1')\" 2>&1; echo rc=$?");
  };
  auto r = dlopen("bad");
  EXPECT_NE(r.out.find("libz.so.1: cannot open shared object file: Operation not permitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
  EXPECT_TRUE(Audited("bad/libz.so.1", "IMA-signature-required")) << Log();
  EXPECT_EQ(dlopen("good").out, "rc=0\n");
  // Linked against: ld.so's open of the unsigned libc on LD_LIBRARY_PATH fails, and it goes
  // on to the system's; the signed copy is mapped from the mount.
  r = Sh("LD_LIBRARY_PATH=$PWD/bad /bin/cat /proc/self/maps 2>&1; echo rc=$?");
  EXPECT_EQ(r.out.find(mnt_ + "/bad/libc.so.6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out;
  EXPECT_TRUE(Audited("bad/libc.so.6", "IMA-signature-required")) << Log();
  r = Sh("LD_LIBRARY_PATH=$PWD/good /bin/cat /proc/self/maps 2>&1; echo rc=$?");
  EXPECT_NE(r.out.find(mnt_ + "/good/libc.so.6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out;
  // Stricter than the kernel: the bad ELF file cannot be read or opened O_RDWR either; a
  // file that is not ELF is not an MMAP_CHECK.
  EXPECT_NE(Sh("cat bad/libz.so.1 >/dev/null 2>&1; echo rc=$?").out.find("rc=1"), std::string::npos);
  EXPECT_NE(Sh("(exec 3<>bad/libz.so.1) 2>/dev/null; echo rc=$?").out.find("rc=2"), std::string::npos);
  EXPECT_EQ(Sh("cat bad/notes").out, "not elf\n");
  // Measured before it was appraised, once, as the kernel measures before it appraises.
  int entries = 0;
  for (const auto& row : testing::ReadListRows(state_ + "/binary_runtime_measurements")) entries += row.name == mnt_ + "/bad/libz.so.1";
  EXPECT_EQ(entries, 1);
  // Log mode: recorded, loaded.
  Start("log", "appraise func=MMAP_CHECK appraise_type=imasig\n");
  EXPECT_EQ(dlopen("bad").out, "rc=0\n");
  EXPECT_NE(Sh("LD_LIBRARY_PATH=$PWD/bad /bin/cat /proc/self/maps").out.find(mnt_ + "/bad/libc.so.6"), std::string::npos);
}
}  // namespace
}  // namespace lim::daemon
