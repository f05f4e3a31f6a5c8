// BpfUnavailable (tests only): why limd's BPF programs (InodeOpenCounts, ExecTraceBpf)
// cannot load on this machine, or "" when they can: not root, no kernel BTF
// (/sys/kernel/btf/vmlinux, which CO-RE needs), lockdown in confidentiality mode (which
// refuses kernel reads to BPF), or a kernel older than 5.10 (the test run of raw-tracepoint
// programs). Tests that need the programs skip with this reason instead of failing; where
// it is "", a failure to load is a failure.
#pragma once

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/file.h"

namespace lim::daemon::testing {

inline std::string BpfUnavailable() {
  if (::geteuid() != 0) return "needs root (loading a BPF program)";
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "this kernel has no BTF (/sys/kernel/btf/vmlinux)";
  // "none [integrity] confidentiality": the bracketed word is the mode in force.
  if (auto lockdown = ReadFileText("/sys/kernel/security/lockdown");
      lockdown.ok() && lockdown->find("[confidentiality]") != std::string::npos) {
    return "the kernel is locked down for confidentiality (BPF may not read kernel memory)";
  }
  struct utsname u;
  int major = 0, minor = 0;
  if (::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
      (major < 5 || (major == 5 && minor < 10))) {
    return std::string("kernel ") + u.release + " is older than 5.10";
  }
  return "";
}

}  // namespace lim::daemon::testing
