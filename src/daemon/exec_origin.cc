#include "daemon/exec_origin.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "base/file.h"

namespace lim::daemon {

namespace {

constexpr long kSysExecve = 59, kSysExecveat = 322;  // x86_64

// The NUL-terminated string at addr in tid's memory (at most PATH_MAX bytes).
std::optional<std::string> ReadString(pid_t tid, uint64_t addr) {
  if (addr == 0) return std::nullopt;
  int fd = ::open(("/proc/" + std::to_string(tid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[256];
  while (out.size() < PATH_MAX) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(addr + out.size()));
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\0') {
        ::close(fd);
        return out;
      }
      out.push_back(buf[i]);
    }
  }
  ::close(fd);
  return std::nullopt;  // unreadable, or no end within PATH_MAX
}

}  // namespace

std::optional<ExecTarget> ResolveExecTarget(pid_t pid, pid_t tid, const SyscallState& sc) {
  if (!sc.blocked || (sc.nr != kSysExecve && sc.nr != kSysExecveat)) return std::nullopt;
  bool at = sc.nr == kSysExecveat;
  auto name = ReadString(tid, at ? sc.args[1] : sc.args[0]);
  if (!name) return std::nullopt;
  std::string proc = "/proc/" + std::to_string(pid);
  auto dirfd = static_cast<int>(static_cast<int32_t>(sc.args[0]));
  if (!name->empty() && (*name)[0] == '/') return ExecTarget{proc + "/root" + *name, *name};
  std::string dir = at && dirfd != AT_FDCWD ? proc + "/fd/" + std::to_string(dirfd) : proc + "/cwd";
  std::string seen = ReadLink(dir);
  if (name->empty()) {  // execveat(fd, "", AT_EMPTY_PATH): the fd itself
    if (!at || !(sc.args[4] & AT_EMPTY_PATH)) return std::nullopt;
    return ExecTarget{dir, seen};
  }
  std::string named = seen.empty() ? *name : seen + (seen.back() == '/' ? "" : "/") + *name;
  return ExecTarget{dir + "/" + *name, named};
}

void InterpreterSet::Learn(uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  if (keys_.size() < 64) keys_.insert({dev, ino});
}

bool InterpreterSet::Contains(uint64_t dev, uint64_t ino) const {
  std::lock_guard<std::mutex> lk(mu_);
  return keys_.count({dev, ino}) > 0;
}

}  // namespace lim::daemon
