#include "daemon/write_probe.h"

#include <fcntl.h>

#include <cerrno>
#include <csignal>

namespace lim::daemon {

OpenForWrite ProbeOpenForWrite(int fd) {
  // SIGURG first: a lease break in the window signals limd with a signal ignored by default.
  if (::fcntl(fd, F_SETSIG, SIGURG) != 0) return OpenForWrite::kUnknown;
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
    return OpenForWrite::kNo;
  }
  return errno == EAGAIN ? OpenForWrite::kYes : OpenForWrite::kUnknown;
}

}  // namespace lim::daemon
