#include "daemon/process_exe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "base/file.h"
#include "daemon/proc_context.h"
#include "ima/policy.h"

namespace lim::daemon {

uint64_t MemfdDevice() {
  static const uint64_t dev = [] {
    int fd = ::memfd_create("lim-probe", MFD_CLOEXEC);
    if (fd < 0) return uint64_t{0};
    struct stat st;
    uint64_t d = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_dev) : 0;
    ::close(fd);
    return d;
  }();
  return dev;
}

std::string MemfdImaName(const std::string& link) {
  std::string n = link;
  const std::string deleted = " (deleted)";
  if (n.size() >= deleted.size() && n.compare(n.size() - deleted.size(), deleted.size(), deleted) == 0) {
    n.resize(n.size() - deleted.size());
  }
  if (!n.empty() && n[0] == '/') n.erase(0, 1);
  return n;
}

ExeOutcome MeasureProcessExe(Measurer* measurer, MeasurementList* list, pid_t pid, const ExeOptions& options) {
  ExeOutcome out;
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  out.link = ReadLink(exe);
  // stat() first: only a memfd is opened (opening a FUSE binary would wait on its server).
  struct stat st;
  int fd = -1;
  bool ok = ::stat(exe.c_str(), &st) == 0;
  uint64_t memfd_dev = MemfdDevice();
  bool memfd = ok && memfd_dev != 0 && static_cast<uint64_t>(st.st_dev) == memfd_dev && S_ISREG(st.st_mode);
  if (memfd) {
    // The fd decides: the process may have exec'd again since the stat.
    struct stat fst;
    fd = ::open(exe.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ok = fd >= 0 && ::fstat(fd, &fst) == 0;
    if (ok) memfd = fst.st_dev == st.st_dev, st = fst;
  }
  if (!ok) {
    out.error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    if (options.gap_if_gone && list) {
      std::string what = !out.link.empty() ? out.link : options.name_hint.empty() ? "unknown" : options.name_hint;
      Status s = list->AppendBuffer("lim-exe-unmeasured", "pid=" + std::to_string(pid) + ";exe=" + what +
                                                              ";why=" + options.why + ";error=" + out.error + ";",
                                    /*as_gap=*/true);
      out.gap = s.ok();
      if (!s.ok()) out.error += "; gap entry: " + s.message();
    }
    return out;
  }
  out.dev = static_cast<uint64_t>(st.st_dev);
  out.ino = static_cast<uint64_t>(st.st_ino);
  if (!memfd) {
    out.kind = ExeOutcome::Kind::kOther;
    if (fd >= 0) ::close(fd);
    return out;
  }
  out.kind = ExeOutcome::Kind::kMemfd;
  out.name = MemfdImaName(out.link);
  Access a = ProcessAccess(fd, pid, ima::ImaHook::kBprmCheck, ima::may::kExec, out.name);
  a.fsname = "tmpfs";  // the shm superblock's type (fsname= rules)
  out.verdict = measurer->Process(a);
  ::close(fd);
  return out;
}

}  // namespace lim::daemon
