// ProcContext: what limd learns about a blocked opener from /proc, without BPF
// (design.md "How each policy func is observed"): the syscall and its raw arguments from
// /proc/<tid>/syscall (the thread is blocked in the permission event, so they cannot
// change), the open flags (openat2's struct open_how read through /proc/<tid>/mem), the
// kernel's FILE_CHECK mask for those flags, and credentials from /proc/<tid>/status. Also
// the ELF test of the tmpfs MMAP_CHECK approximation. Parsing functions are pure; the
// readers touch only /proc. Thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "daemon/env.h"

namespace lim::ima {
enum class ImaHook : uint8_t;  // ima/policy.h
}  // namespace lim::ima

namespace lim::daemon {

// x86_64 syscall numbers limd tells apart.
namespace sysno {
inline constexpr long kOpen = 2;
inline constexpr long kCreat = 85;
inline constexpr long kOpenat = 257;
inline constexpr long kOpenat2 = 437;
inline constexpr long kOpenByHandleAt = 304;
inline constexpr long kExecve = 59;
inline constexpr long kExecveat = 322;
inline constexpr long kUselib = 134;
inline constexpr long kIoUringEnter = 426;
}  // namespace sysno

struct SyscallState {
  bool blocked = false;  // false: "running" or unreadable (io_uring worker, kernel thread)
  long nr = -1;
  std::array<uint64_t, 6> args{};
  std::string line;  // the raw line: identifies one execve across its several opens
};

// "257 0xffffff9c 0x7ffd… 0x0 …" → nr and args; "running" / "-1 …" → not blocked.
SyscallState ParseSyscallLine(std::string_view line);
Result<SyscallState> ReadSyscall(pid_t tid);

// ReadSyscall() for a stream of events: keeps /proc/<tid>/syscall open for the last few
// tids and re-reads it with pread (one syscall instead of open, read, close) — a thread
// that opens many files costs one open. An fd outlives its task harmlessly: the kernel
// answers ESRCH for a dead task (even when its number is reused), and the file is opened
// again. Not thread-safe: one per reader thread.
class SyscallReader {
 public:
  SyscallReader() = default;
  ~SyscallReader();
  SyscallReader(const SyscallReader&) = delete;
  SyscallReader& operator=(const SyscallReader&) = delete;
  Result<SyscallState> Read(pid_t tid);

 private:
  static constexpr size_t kSlots = 64;
  struct Slot {
    pid_t tid = 0;
    int fd = -1;
  };
  Slot slots_[kSlots];
};

struct OpenIntent {
  bool known = false;  // flags known from the syscall
  bool exec = false;   // the thread is in execve/execveat/uselib
  int flags = 0;       // open(2) flags
};
// Flags of the open the thread is blocked in; openat2 reads open_how.flags at args[2]
// through /proc/<tid>/mem.
OpenIntent IntentOf(const SyscallState& s, pid_t tid);

// For an open whose syscall gives no open flags (IntentOf: !known): whether it may be an exec
// open. Every exec open is made by a thread in execve/execveat/uselib, or by one the kernel
// makes into a user process (a usermode helper's kernel_execve: no syscall to show). Not
// one: a thread in io_uring_enter, and kernel threads and io-wq workers (PF_KTHREAD,
// PF_IO_WORKER in /proc/<tid>/stat; kernel_execve refuses a PF_KTHREAD). Reads /proc only
// for a thread not blocked in a syscall.
bool MayBeExecOpen(const Result<SyscallState>& sc, pid_t tid);
// Pure: the flags field (the 9th) of a /proc/<tid>/stat line; nullopt when malformed.
std::optional<uint64_t> ParseStatFlags(std::string_view stat);

// The MAY_* mask the kernel passes to ima_file_check for these open flags (acc_mode
// without MAY_OPEN: read/write from O_ACCMODE, MAY_WRITE for O_TRUNC, MAY_APPEND).
uint32_t FileCheckMask(int flags);

// The name for a file whose path is longer than PATH_MAX. There the kernel's ima_d_path()
// gets no path from d_absolute_path() and records the dentry's own name instead (copied with
// strlcpy(namebuf, d_name, NAME_MAX): at most 254 bytes). /proc/self/fd/N fails the same way
// and user space cannot ask for a dentry's name, but the thread is blocked in the open: the
// last component of the pathname it passed (read through /proc/<tid>/mem) is that name (a
// symlink's own name where the kernel has the target's). Empty when the syscall has no
// pathname (mmap, open_by_handle_at) or it cannot be read.
std::string OpenedFileName(const SyscallState& s, pid_t tid);
// Pure: the last component of a pathname (trailing slashes dropped), cut to 254 bytes.
std::string LastPathComponent(std::string_view path);
bool OpensForWrite(int flags);  // FMODE_WRITE
bool OpensReadOnly(int flags);  // counts in i_readcount

struct Creds {
  uint32_t uid = 0, euid = 0, suid = 0, gid = 0, egid = 0, sgid = 0;
  bool cap_setuid = false, cap_setgid = false;
  std::string comm;
};
// Parses /proc/<tid>/status text (Name:, Uid:, Gid:, CapEff:).
Result<Creds> ParseStatus(std::string_view text);
Result<Creds> ReadCreds(pid_t tid);
struct Access;
// Copies the credentials (and comm) into an access's policy inputs.
void SetCreds(Access& a, const Creds& c);
// An access of process pid to the file open at fd: its credentials from /proc/<pid>/status
// (left zero when unreadable), the rest as given. The scans', LateExecs' and memfd execs'
// accesses.
Access ProcessAccess(int fd, pid_t pid, ima::ImaHook func, uint32_t mask, const std::string& path);

// A regular file with ELF magic and a PT_LOAD segment with PF_X (read through the fd).
bool ElfHasExecLoad(Env* env, int fd);
// The file starts with "#!".
bool IsScript(Env* env, int fd);

}  // namespace lim::daemon
