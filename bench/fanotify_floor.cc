// lim_fanotify_floor: the floor of a fanotify permission listener — the cheapest daemon
// that takes the permission events limd takes (FAN_OPEN_PERM on a filesystem mark, one per
// open, exec opens included) and allows each at once: poll, read, write the answer, close
// the event's fd. Nothing is looked at. bench/limd_root.sh runs it beside limd and
// fapolicyd: what a spawn costs under it is what the kernel and the machine charge for the
// round trips alone, and limd's cost above it is limd's own work.
//   lim_fanotify_floor PATH [--lease-ignore FILE]...
// marks the filesystem PATH is on; prints "ready" once marked. With --lease-ignore, each
// FILE gets what a cached file would get under the read-lease design weighed for issue 19
// (docs/performance.md): a read lease on an O_RDONLY fd (the kernel then makes a write-open
// or truncate wait for this process) and an inode ignore mark for FAN_OPEN_PERM, so its
// opens cost no round trip. A lease break releases the lease and removes the ignore mark
// (the writer then proceeds and later opens are events again). The floor of that design.
// It opens no file after marking (a listener that did would wait on itself). SIGTERM prints
// "events N" (the permission events answered) on stderr and exits; SIGKILL is fine too: the
// kernel allows the events of a closed group. Needs root.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The lease-break signal: a real-time one, so each break is queued with its fd (si_fd).
int LeaseSignal() { return SIGRTMIN + 1; }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> leased;
  for (int i = 2; i < argc; i += 2) {
    if (std::strcmp(argv[i], "--lease-ignore") != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "usage: lim_fanotify_floor PATH [--lease-ignore FILE]...\n");
      return 2;
    }
    leased.push_back(argv[i + 1]);
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: lim_fanotify_floor PATH [--lease-ignore FILE]...\n");
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, LeaseSignal());
  if (sigprocmask(SIG_BLOCK, &sigs, nullptr) != 0) return 1;
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
  if (fd < 0 || sfd < 0) {
    std::fprintf(stderr, "fanotify_init/signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  for (const auto& path : leased) {
    int lfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lfd < 0 || fcntl(lfd, F_SETSIG, LeaseSignal()) != 0 || fcntl(lfd, F_SETLEASE, F_RDLCK) != 0 ||
        fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN_PERM, lfd,
                      nullptr) != 0) {
      std::fprintf(stderr, "lease and ignore mark on %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
  }
  if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD, argv[1]) != 0) {
    std::fprintf(stderr, "fanotify_mark %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  unsigned long long events = 0;
  alignas(fanotify_event_metadata) static char buf[64 * 1024];
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return 1;
    if (p[1].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (static_cast<int>(si.ssi_signo) == SIGTERM) {
          std::fprintf(stderr, "events %llu\n", events);
          return 0;
        }
        // A write-open or truncate of a leased file: its opens are events again, then the
        // writer may go on. (limd would count the writer and re-measure here.)
        int lfd = si.ssi_fd;
        fanotify_mark(fd, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, FAN_OPEN_PERM, lfd, nullptr);
        fcntl(lfd, F_SETLEASE, F_UNLCK);
      }
    }
    if (!(p[0].revents & POLLIN)) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      std::fprintf(stderr, "read: %s\n", std::strerror(errno));
      return 1;
    }
    auto* m = reinterpret_cast<fanotify_event_metadata*>(buf);
    while (FAN_EVENT_OK(m, n)) {
      if (m->fd >= 0) {
        fanotify_response r{m->fd, FAN_ALLOW};
        // A refused answer would leave the opener waiting until this process exits.
        if (::write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
          std::fprintf(stderr, "answer: %s\n", std::strerror(errno));
          return 1;
        }
        ::close(m->fd);
        events++;
      }
      m = FAN_EVENT_NEXT(m, n);
    }
  }
}
