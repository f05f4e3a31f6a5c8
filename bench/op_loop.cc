// lim_op_loop: N opens+closes or N posix_spawn+wait of one file, or N getppid() system
// calls (PATH unused: the cost every system call pays for the tracepoints a listener
// enables), timed in one process (no shell fork in the loop), for bench/limd.sh and
// bench/spawn_gap.sh. Prints microseconds per operation.
//   lim_op_loop open|spawn|syscall PATH N
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

int main(int argc, char** argv) {
  if (argc != 4 || (std::strcmp(argv[1], "open") != 0 && std::strcmp(argv[1], "spawn") != 0 &&
                    std::strcmp(argv[1], "syscall") != 0)) {
    std::fprintf(stderr, "usage: lim_op_loop open|spawn|syscall PATH N\n");
    return 2;
  }
  const bool spawn = std::strcmp(argv[1], "spawn") == 0;
  const char* path = argv[2];
  const long n = std::atol(argv[3]);
  if (n < 1) {
    std::fprintf(stderr, "N: at least 1\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  if (std::strcmp(argv[1], "syscall") == 0) {
    for (long i = 0; i < n; ++i) (void)::syscall(SYS_getppid);  // raw: no libc caching
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.4f\n", us / static_cast<double>(n));
    return 0;
  }
  for (long i = 0; i < n; ++i) {
    if (!spawn) {
      int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        std::perror("open");
        return 1;
      }
      ::close(fd);
      continue;
    }
    pid_t pid;
    char* args[] = {const_cast<char*>(path), nullptr};
    if (int e = posix_spawn(&pid, path, nullptr, nullptr, args, environ); e != 0) {
      std::fprintf(stderr, "posix_spawn: %s\n", std::strerror(e));
      return 1;
    }
    int status;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.2f\n", us / static_cast<double>(n));
  return 0;
}
