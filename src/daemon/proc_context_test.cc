#include "daemon/proc_context.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "base/file.h"
#include "daemon/fake_env_test_util.h"
#include "ima/policy.h"

namespace lim::daemon {
namespace {

TEST(ProcContext, ParsesSyscallLines) {
  SyscallState s = ParseSyscallLine("257 0xffffff9c 0x7ffd1234 0x241 0x1b6 0x0 0x0 0x7ffd0000 0x7f0000\n");
  EXPECT_TRUE(s.blocked);
  EXPECT_EQ(s.nr, 257);
  EXPECT_EQ(s.args[2], 0x241u);
  EXPECT_FALSE(ParseSyscallLine("running\n").blocked);
  EXPECT_FALSE(ParseSyscallLine("-1 0x7ffd 0x7f00\n").blocked);  // not in a syscall
  EXPECT_FALSE(ParseSyscallLine("59 0x1 0x2").blocked);          // too few fields
}

TEST(ProcContext, OpenIntentAndKernelMask) {
  SyscallState at = ParseSyscallLine("257 0xffffff9c 0x7ffd 0x441 0x1b6 0x0 0x0 0x1 0x2");  // O_WRONLY|O_CREAT|O_APPEND
  OpenIntent in = IntentOf(at, 1);
  ASSERT_TRUE(in.known);
  EXPECT_FALSE(in.exec);
  EXPECT_TRUE(OpensForWrite(in.flags));
  EXPECT_EQ(FileCheckMask(in.flags), ima::may::kWrite | ima::may::kAppend);
  EXPECT_EQ(FileCheckMask(O_RDONLY), ima::may::kRead);
  EXPECT_EQ(FileCheckMask(O_RDWR), ima::may::kRead | ima::may::kWrite);
  EXPECT_EQ(FileCheckMask(O_RDONLY | O_TRUNC), ima::may::kRead | ima::may::kWrite);
  EXPECT_TRUE(OpensReadOnly(O_RDONLY | O_CLOEXEC));
  EXPECT_FALSE(OpensReadOnly(O_RDWR));
  OpenIntent ex = IntentOf(ParseSyscallLine("59 0x1 0x2 0x3 0x0 0x0 0x0 0x1 0x2"), 1);
  EXPECT_TRUE(ex.exec);
  EXPECT_FALSE(IntentOf(ParseSyscallLine("running"), 1).known);
  EXPECT_FALSE(IntentOf(ParseSyscallLine("426 0x1 0x2 0x3 0x0 0x0 0x0 0x1 0x2"), 1).known);  // io_uring
}

TEST(ProcContext, Openat2FlagsFromProcMem) {
  // Our own memory stands in for the blocked thread's: open_how.flags is read at args[2].
  struct {
    uint64_t flags, mode, resolve;
  } how{O_RDWR | O_APPEND, 0, 0};
  char line[128];
  std::snprintf(line, sizeof line, "437 0xffffff9c 0x1 0x%llx 0x18 0x0 0x0 0x1 0x2",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(&how)));
  OpenIntent in = IntentOf(ParseSyscallLine(line), ::getpid());
  ASSERT_TRUE(in.known);
  EXPECT_EQ(in.flags, O_RDWR | O_APPEND);
}

// A path longer than PATH_MAX: the name is the last component of the pathname the thread
// passed (the kernel's dentry-name fallback), at most 254 bytes.
TEST(ProcContext, OpenedFileNameFromProcMem) {
  EXPECT_EQ(LastPathComponent("a/b/target"), "target");
  EXPECT_EQ(LastPathComponent("target"), "target");
  EXPECT_EQ(LastPathComponent("/dir/sub//"), "sub");
  EXPECT_EQ(LastPathComponent("/"), "/");
  EXPECT_EQ(LastPathComponent("d/" + std::string(300, 'x')), std::string(254, 'x'));
  // Our own memory stands in for the blocked thread's: the pathname is at args[1] (openat).
  std::string path = std::string(3000, 'd') + "/" + std::string(1000, 'e') + "/target-file";
  char line[128];
  std::snprintf(line, sizeof line, "257 0xffffff9c 0x%llx 0x0 0x0 0x0 0x0 0x1 0x2",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(path.c_str())));
  EXPECT_EQ(OpenedFileName(ParseSyscallLine(line), ::getpid()), "target-file");
  std::snprintf(line, sizeof line, "2 0x%llx 0x0 0x0 0x0 0x0 0x0 0x1 0x2",  // open: args[0]
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(path.c_str())));
  EXPECT_EQ(OpenedFileName(ParseSyscallLine(line), ::getpid()), "target-file");
  EXPECT_EQ(OpenedFileName(ParseSyscallLine("9 0x0 0x1000 0x5 0x2 0x3 0x0 0x1 0x2"), ::getpid()), "");  // mmap
  EXPECT_EQ(OpenedFileName(ParseSyscallLine("running"), ::getpid()), "");
}

TEST(ProcContext, ParsesStatus) {
  auto c = ParseStatus("Name:\tcat\nUmask:\t0022\nUid:\t1000\t0\t1001\t0\nGid:\t100\t100\t100\t100\n"
                       "CapEff:\t00000000000000c0\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->comm, "cat");
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->euid, 0u);
  EXPECT_EQ(c->suid, 1001u);
  EXPECT_EQ(c->gid, 100u);
  EXPECT_TRUE(c->cap_setuid);
  EXPECT_TRUE(c->cap_setgid);
  EXPECT_FALSE(ParseStatus("Name:\tx\n").ok());
  auto self = ReadCreds(::getpid());
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->uid, ::getuid());
}

TEST(ProcContext, ElfAndScriptDetection) {
  testing::FakeEnv env;
  auto real = ReadFileBytes("/bin/true");
  ASSERT_TRUE(real.ok());
  int elf = env.NewFile(std::string_view(reinterpret_cast<const char*>(real->data()), real->size()));
  int script = env.NewFile("#!/bin/sh\necho\n");
  int text = env.NewFile("hello");
  int fake = env.NewFile(std::string("\x7f" "ELF\x02\x01\x01", 7) + std::string(100, '\0'));  // no phdrs
  EXPECT_TRUE(ElfHasExecLoad(&env, elf));
  EXPECT_FALSE(ElfHasExecLoad(&env, script));
  EXPECT_FALSE(ElfHasExecLoad(&env, text));
  EXPECT_FALSE(ElfHasExecLoad(&env, fake));
  EXPECT_TRUE(IsScript(&env, script));
  EXPECT_FALSE(IsScript(&env, elf));
}

}  // namespace
}  // namespace lim::daemon

namespace lim::daemon {
namespace {

TEST(ProcContext, StatFlagsAreTheNinthFieldWhateverTheCommHolds) {
  EXPECT_EQ(ParseStatFlags("1234 (sh) S 1 1234 1234 0 -1 4194560 120 0 0 0"), 4194560u);
  // A comm with spaces and parentheses: fields count from its last ')'.
  EXPECT_EQ(ParseStatFlags("77 (a) b (c)) R 1 77 77 0 -1 2097216 0 0"), 2097216u);
  EXPECT_EQ(ParseStatFlags("77 (x) S 1 2 3"), std::nullopt);           // too short
  EXPECT_EQ(ParseStatFlags("77 (x) S 1 2 3 4 5 0x10 6"), std::nullopt);  // not decimal
  EXPECT_EQ(ParseStatFlags("no comm"), std::nullopt);
}

TEST(ProcContext, OnlyThreadsThatMayExecCanMakeAnExecOpenWithoutASyscall) {
  SyscallState uring;
  uring.blocked = true;
  uring.nr = sysno::kIoUringEnter;
  EXPECT_FALSE(MayBeExecOpen(uring, ::getpid()));
  // Unreadable /proc (no such thread): cannot be ruled out.
  EXPECT_TRUE(MayBeExecOpen(Status::NotFound("gone"), 4194000));
  // A user thread not in a syscall: may be one the kernel makes into a process.
  SyscallState none;
  EXPECT_TRUE(MayBeExecOpen(none, ::getpid()));
  // A kernel thread (kthreadd, pid 2): never.
  EXPECT_FALSE(MayBeExecOpen(none, 2));
}

}  // namespace
}  // namespace lim::daemon
