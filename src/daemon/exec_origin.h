// ExecOrigin: where an execve's binary is, read from the blocked thread — for the one case
// where fanotify shows an exec only through its ELF interpreter. A dynamically linked
// binary on a superblock limd has not marked yet raises no event itself; its interpreter
// (ld.so, on a marked filesystem) then arrives as the *first* FAN_OPEN_EXEC_PERM of the
// execve, before the binary has run an instruction (load_elf_binary opens the interpreter
// before the point of no return: the caller's memory is still the old program's). The
// execve's path is read from /proc/<tid>/syscall's argument and /proc/<tid>/mem and
// resolved as the process sees it (/proc/<pid>/root, /proc/<pid>/cwd, or the execveat dirfd
// under /proc/<pid>/fd). A rename can race that read: what ran is confirmed from
// /proc/<pid>/exe when the exec completes (LateExecs: a different inode gets a late entry).
//
// Which exec-opens are looked at: those of inodes seen as an ELF interpreter before (the
// second exec-open of an execve whose first was ELF) — one set lookup per exec, the /proc
// reads only for `ld.so` run directly and for binaries on unmarked superblocks.
//
// Threading: Learn/IsInterpreter from any thread (a mutex); Resolve from any thread.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "daemon/proc_context.h"

namespace lim::daemon {

struct ExecTarget {
  std::string open_path;  // reachable from limd: /proc/<pid>/root/…, /proc/<pid>/cwd/…
  std::string path;       // as the process named it, absolute where it can be told
};

// The execve/execveat target of tid (thread of pid) blocked in sc; nullopt when sc is not
// an exec or the path cannot be read.
std::optional<ExecTarget> ResolveExecTarget(pid_t pid, pid_t tid, const SyscallState& sc);

class InterpreterSet {
 public:
  void Learn(uint64_t dev, uint64_t ino);
  bool Contains(uint64_t dev, uint64_t ino) const;

 private:
  mutable std::mutex mu_;
  std::set<std::pair<uint64_t, uint64_t>> keys_;  // bounded: a handful of ld.so copies
};

}  // namespace lim::daemon
