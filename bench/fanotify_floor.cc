// lim_fanotify_floor: the floor of a fanotify permission listener — the cheapest daemon
// that takes the permission events limd takes (FAN_OPEN_PERM on a filesystem mark, one per
// open, exec opens included) and allows each at once: poll, read, write the answer, close
// the event's fd. Nothing is looked at. bench/limd_root.sh runs it beside limd and
// fapolicyd: what a spawn costs under it is what the kernel and the machine charge for the
// round trips alone, and limd's cost above it is limd's own work.
//   lim_fanotify_floor PATH     marks the filesystem PATH is on; prints "ready" once marked
// It opens no file after marking (a listener that did would wait on itself). Stopped by
// SIGTERM or SIGKILL: the kernel allows the events of a closed group. Needs root.
#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: lim_fanotify_floor PATH\n");
    return 2;
  }
  int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
  if (fd < 0) {
    std::fprintf(stderr, "fanotify_init: %s\n", std::strerror(errno));
    return 1;
  }
  if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD, argv[1]) != 0) {
    std::fprintf(stderr, "fanotify_mark %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  alignas(fanotify_event_metadata) static char buf[64 * 1024];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return 1;
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
      }
      m = FAN_EVENT_NEXT(m, n);
    }
  }
}
