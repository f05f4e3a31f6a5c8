#include "daemon/proc_context.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "daemon/measurer.h"
#include "ima/policy.h"

namespace lim::daemon {

SyscallState ParseSyscallLine(std::string_view line) {
  SyscallState s;
  s.line = std::string(line);
  while (!s.line.empty() && s.line.back() == '\n') s.line.pop_back();
  if (line.empty() || line[0] < '0' || line[0] > '9') return s;  // "running", "-1 …"
  const char* p = s.line.c_str();  // NUL-terminated copy for strtol
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

namespace {

// Reads a small /proc/<tid>/<name> file into buf (one open, reads until EOF, no heap
// allocation: this runs for every event). Returns the length; the text is truncated at
// cap - 1 bytes.
Result<size_t> ReadProcFile(pid_t tid, const char* name, char* buf, size_t cap) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(tid), name);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(std::string("open ") + path + ": " + std::strerror(errno));
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IoError(std::string("read ") + path + ": " + std::strerror(errno));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    // seq_file hands out whole records: a short read ending a line is the whole file,
    // which saves the read that would return 0.
    if (len + 1 < cap && buf[len - 1] == '\n') break;
  }
  ::close(fd);
  buf[len] = '\0';
  return len;
}

}  // namespace

Result<SyscallState> ReadSyscall(pid_t tid) {
  char buf[256];  // "nr" + 8 hex fields: under 200 bytes
  LIM_ASSIGN_OR_RETURN(size_t n, ReadProcFile(tid, "syscall", buf, sizeof buf));
  return ParseSyscallLine(std::string_view(buf, n));
}

SyscallReader::~SyscallReader() {
  for (Slot& s : slots_) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

namespace {

// The whole file from offset 0 (seq_file regenerates it for a read at 0).
ssize_t PreadFromStart(int fd, char* buf, size_t cap) {
  ssize_t n;
  do {
    n = ::pread(fd, buf, cap - 1, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace

Result<SyscallState> SyscallReader::Read(pid_t tid) {
  Slot& slot = slots_[static_cast<size_t>(tid) % kSlots];
  char buf[256];
  if (slot.fd >= 0 && slot.tid == tid) {
    ssize_t n = PreadFromStart(slot.fd, buf, sizeof buf);
    if (n > 0 && buf[n - 1] == '\n') return ParseSyscallLine(std::string_view(buf, static_cast<size_t>(n)));
    // A dead task (ESRCH) or a short answer: open afresh.
  }
  if (slot.fd >= 0) ::close(slot.fd);
  slot = Slot{};
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/syscall", static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(std::string("open ") + path + ": " + std::strerror(errno));
  slot = Slot{tid, fd};
  ssize_t n = PreadFromStart(fd, buf, sizeof buf);
  if (n < 0) return Status::IoError(std::string("read ") + path + ": " + std::strerror(errno));
  return ParseSyscallLine(std::string_view(buf, static_cast<size_t>(n)));
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

std::optional<uint64_t> ParseStatFlags(std::string_view stat) {
  // "pid (comm) state ppid pgrp session tty_nr tpgid flags …": comm may hold anything,
  // so count fields after its last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3; field <= 9; ++field) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest = rest.substr(start);
    size_t end = std::min(rest.find(' '), rest.size());
    if (field == 9) {
      uint64_t flags = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + end, flags);
      if (ec != std::errc() || ptr != rest.data() + end) return std::nullopt;
      return flags;
    }
    rest = rest.substr(end);
  }
  return std::nullopt;
}

bool MayBeExecOpen(const Result<SyscallState>& sc, pid_t tid) {
  if (sc.ok() && sc->blocked && sc->nr == sysno::kIoUringEnter) return false;  // IORING_OP_OPENAT inline
  constexpr uint64_t kPfIoWorker = 0x10, kPfKthread = 0x00200000;  // include/linux/sched.h
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return true;
  auto flags = ParseStatFlags(std::string_view(buf, static_cast<size_t>(n)));
  return !flags || !(*flags & (kPfIoWorker | kPfKthread));
}

std::string LastPathComponent(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos || path.size() == 1 ? path : path.substr(slash + 1);
  return std::string(name.substr(0, NAME_MAX - 1));
}

std::string OpenedFileName(const SyscallState& s, pid_t tid) {
  if (!s.blocked) return "";
  uint64_t addr = 0;
  switch (s.nr) {
    case sysno::kOpen: case sysno::kCreat: case sysno::kExecve: case sysno::kUselib: addr = s.args[0]; break;
    case sysno::kOpenat: case sysno::kOpenat2: case sysno::kExecveat: addr = s.args[1]; break;
    default: return "";
  }
  std::string mem = "/proc/" + std::to_string(tid) + "/mem";
  int fd = ::open(mem.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  // The kernel takes at most PATH_MAX bytes with the NUL; read page by page, as the string
  // may end just before an unmapped page.
  std::string path;
  while (path.size() < PATH_MAX) {
    char buf[4096];
    size_t want = 4096 - (addr + path.size()) % 4096;
    ssize_t n = ::pread(fd, buf, want, static_cast<off_t>(addr + path.size()));
    if (n <= 0) break;
    size_t len = ::strnlen(buf, static_cast<size_t>(n));
    path.append(buf, len);
    if (len < static_cast<size_t>(n)) {
      ::close(fd);
      return LastPathComponent(path);
    }
  }
  ::close(fd);
  return "";
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

namespace {

// "1000\t0\t1001\t0" → the first three ids; false if fewer parse.
bool ParseIds(std::string_view v, uint32_t* a, uint32_t* b, uint32_t* c) {
  uint32_t* out[3] = {a, b, c};
  const char* p = v.data();
  const char* end = v.data() + v.size();
  for (uint32_t* o : out) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    auto r = std::from_chars(p, end, *o);
    if (r.ec != std::errc()) return false;
    p = r.ptr;
  }
  return true;
}

}  // namespace

Result<Creds> ParseStatus(std::string_view text) {
  // Allocation-free but for comm; stops once Name, Uid, Gid and CapEff are seen.
  Creds c;
  int found = 0;
  size_t pos = 0;
  while (pos < text.size() && found != 15) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    auto value = [&](std::string_view key, std::string_view* v) {
      if (line.substr(0, key.size()) != key) return false;
      *v = line.substr(key.size());
      return !v->empty();
    };
    std::string_view v;
    if (value("Name:\t", &v)) {
      c.comm = std::string(v);
      found |= 4;
    } else if (value("Uid:", &v)) {
      if (ParseIds(v, &c.uid, &c.euid, &c.suid)) found |= 1;
    } else if (value("Gid:", &v)) {
      if (ParseIds(v, &c.gid, &c.egid, &c.sgid)) found |= 2;
    } else if (value("CapEff:\t", &v)) {
      uint64_t caps = 0;
      std::from_chars(v.data(), v.data() + v.size(), caps, 16);
      c.cap_setgid = caps & (1ull << 6);
      c.cap_setuid = caps & (1ull << 7);
      found |= 8;
    }
  }
  if ((found & 3) != 3) return Status::Corrupt("status without Uid:/Gid: lines");
  return c;
}

Result<Creds> ReadCreds(pid_t tid) {
  char buf[8192];  // status is about 1.5 KiB; Name, Uid, Gid and CapEff come early
  LIM_ASSIGN_OR_RETURN(size_t n, ReadProcFile(tid, "status", buf, sizeof buf));
  return ParseStatus(std::string_view(buf, n));
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

void SetCreds(Access& a, const Creds& c) {
  a.uid = c.uid, a.euid = c.euid, a.suid = c.suid;
  a.gid = c.gid, a.egid = c.egid, a.sgid = c.sgid;
  a.cap_setuid = c.cap_setuid, a.cap_setgid = c.cap_setgid;
  a.comm = c.comm;
}

Access ProcessAccess(int fd, pid_t pid, ima::ImaHook func, uint32_t mask, const std::string& path) {
  Access a;
  a.fd = fd;
  a.pid = pid;
  a.func = func;
  a.mask = mask;
  a.path = path;
  if (auto creds = ReadCreds(pid); creds.ok()) SetCreds(a, *creds);
  return a;
}

}  // namespace lim::daemon
