#include "daemon/proc_context.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/file.h"
#include "ima/policy.h"

namespace lim::daemon {

SyscallState ParseSyscallLine(std::string_view line) {
  SyscallState s;
  s.line = std::string(line);
  while (!s.line.empty() && s.line.back() == '\n') s.line.pop_back();
  if (line.empty() || line[0] < '0' || line[0] > '9') return s;  // "running", "-1 …"
  std::string buf(line);
  const char* p = buf.c_str();
  char* end = nullptr;
  s.nr = std::strtol(p, &end, 10);
  if (end == p) return s;
  for (int i = 0; i < 6; ++i) {
    p = end;
    while (*p == ' ') ++p;
    if (*p == '\0' || *p == '\n') return s;  // too few fields
    s.args[i] = std::strtoull(p, &end, 16);
    if (end == p) return s;
  }
  s.blocked = true;
  return s;
}

Result<SyscallState> ReadSyscall(pid_t tid) {
  LIM_ASSIGN_OR_RETURN(std::string t, ReadFileText("/proc/" + std::to_string(tid) + "/syscall"));
  return ParseSyscallLine(t);
}

OpenIntent IntentOf(const SyscallState& s, pid_t tid) {
  OpenIntent in;
  if (!s.blocked) return in;
  switch (s.nr) {
    case sysno::kOpen: in.known = true; in.flags = static_cast<int>(s.args[1]); break;
    case sysno::kOpenat: in.known = true; in.flags = static_cast<int>(s.args[2]); break;
    case sysno::kCreat: in.known = true; in.flags = O_CREAT | O_WRONLY | O_TRUNC; break;
    case sysno::kOpenByHandleAt: in.known = true; in.flags = static_cast<int>(s.args[2]); break;
    case sysno::kOpenat2: {
      // struct open_how { u64 flags; u64 mode; u64 resolve; }: flags first.
      std::string mem = "/proc/" + std::to_string(tid) + "/mem";
      int fd = ::open(mem.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        uint64_t flags = 0;
        if (::pread(fd, &flags, sizeof flags, static_cast<off_t>(s.args[2])) == static_cast<ssize_t>(sizeof flags)) {
          in.known = true;
          in.flags = static_cast<int>(flags);
        }
        ::close(fd);
      }
      break;
    }
    case sysno::kExecve:
    case sysno::kExecveat:
    case sysno::kUselib:
      in.known = true;
      in.exec = true;
      in.flags = O_RDONLY;
      break;
    default: break;
  }
  return in;
}

uint32_t FileCheckMask(int flags) {
  uint32_t m = 0;
  switch (flags & O_ACCMODE) {
    case O_RDONLY: m = ima::may::kRead; break;
    case O_WRONLY: m = ima::may::kWrite; break;
    default: m = ima::may::kRead | ima::may::kWrite; break;
  }
  if (flags & O_TRUNC) m |= ima::may::kWrite;
  if (flags & O_APPEND) m |= ima::may::kAppend;
  return m;
}

bool OpensForWrite(int flags) { return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR; }
bool OpensReadOnly(int flags) { return (flags & O_ACCMODE) == O_RDONLY; }

Result<Creds> ParseStatus(std::string_view text) {
  Creds c;
  int found = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    auto value = [&](std::string_view key) -> std::string {
      if (line.substr(0, key.size()) != key) return {};
      return std::string(line.substr(key.size()));
    };
    if (auto v = value("Name:\t"); !v.empty()) c.comm = v;
    if (auto v = value("Uid:"); !v.empty()) {
      unsigned a = 0, b = 0, d = 0;
      if (std::sscanf(v.c_str(), "%u %u %u", &a, &b, &d) == 3) {
        c.uid = a, c.euid = b, c.suid = d;
        found |= 1;
      }
    }
    if (auto v = value("Gid:"); !v.empty()) {
      unsigned a = 0, b = 0, d = 0;
      if (std::sscanf(v.c_str(), "%u %u %u", &a, &b, &d) == 3) {
        c.gid = a, c.egid = b, c.sgid = d;
        found |= 2;
      }
    }
    if (auto v = value("CapEff:\t"); !v.empty()) {
      uint64_t caps = std::strtoull(v.c_str(), nullptr, 16);
      c.cap_setgid = caps & (1ull << 6);
      c.cap_setuid = caps & (1ull << 7);
    }
  }
  if (found != 3) return Status::Corrupt("status without Uid:/Gid: lines");
  return c;
}

Result<Creds> ReadCreds(pid_t tid) {
  LIM_ASSIGN_OR_RETURN(std::string t, ReadFileText("/proc/" + std::to_string(tid) + "/status"));
  return ParseStatus(t);
}

bool IsScript(Env* env, int fd) {
  uint8_t b[2];
  auto n = env->Pread(fd, b, 2, 0);
  return n.ok() && *n == 2 && b[0] == '#' && b[1] == '!';
}

namespace {

// Reads the program headers in one pread and looks for an executable PT_LOAD.
template <typename Ehdr, typename Phdr>
bool HasExecLoad(Env* env, int fd, const uint8_t* head, size_t head_len) {
  Ehdr eh;
  if (head_len < sizeof eh) return false;
  std::memcpy(&eh, head, sizeof eh);
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) return false;
  std::vector<uint8_t> buf(size_t{eh.e_phnum} * sizeof(Phdr));
  auto r = env->Pread(fd, buf.data(), buf.size(), eh.e_phoff);
  if (!r.ok() || *r != buf.size()) return false;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    std::memcpy(&ph, buf.data() + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) return true;
  }
  return false;
}

}  // namespace

bool ElfHasExecLoad(Env* env, int fd) {
  uint8_t head[sizeof(Elf64_Ehdr)];
  auto n = env->Pread(fd, head, sizeof head, 0);
  if (!n.ok() || *n < EI_NIDENT || std::memcmp(head, ELFMAG, SELFMAG) != 0) return false;
  if (head[EI_CLASS] == ELFCLASS32) return HasExecLoad<Elf32_Ehdr, Elf32_Phdr>(env, fd, head, *n);
  if (head[EI_CLASS] == ELFCLASS64) return HasExecLoad<Elf64_Ehdr, Elf64_Phdr>(env, fd, head, *n);
  return false;
}

}  // namespace lim::daemon
