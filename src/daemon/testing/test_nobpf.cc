// lim_test_nobpf: runs a command with the bpf() system call refused (EPERM), as a seccomp
// filter of the systemd unit or a container runtime would refuse it. For the root tests of
// limd --open-counts: `kernel` must stop limd, `auto` must fall back to the write lease.
//
//   lim_test_nobpf COMMAND [ARG]...
//
// Installs a classic-BPF seccomp filter (SECCOMP_RET_ERRNO | EPERM for __NR_bpf, allow
// everything else; other architectures are killed) and execs COMMAND. Exits 2 for bad
// use, 1 when the filter cannot be installed or COMMAND cannot be run.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lim_test_nobpf COMMAND [ARG]...\n");
    return 2;
  }
#if defined(__x86_64__)
  constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "lim_test_nobpf: add this architecture's AUDIT_ARCH_*"
#endif
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(struct seccomp_data, arch))),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(struct seccomp_data, nr))),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  // Root may install a filter without no_new_privs, so limd keeps what it has (CAP_SYS_ADMIN).
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::fprintf(stderr, "lim_test_nobpf: seccomp: %s\n", std::strerror(errno));
    return 1;
  }
  ::execvp(argv[1], argv + 1);
  std::fprintf(stderr, "lim_test_nobpf: %s: %s\n", argv[1], std::strerror(errno));
  return 1;
}
