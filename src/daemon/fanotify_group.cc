#include "daemon/fanotify_group.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>

#include "base/file.h"
#include "daemon/fanotify_uapi.h"

namespace lim::daemon {

namespace {

class KernelFanotifyGroup final : public FanotifyGroup {
 public:
  explicit KernelFanotifyGroup(int fd)
      : fd_(fd), info_fd_(::open(("/proc/self/fdinfo/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~KernelFanotifyGroup() override {
    if (info_fd_ >= 0) ::close(info_fd_);
    ::close(fd_);
  }

  int poll_fd() const override { return fd_; }

  Status Read(std::vector<FanotifyEvent>* events) override {
    alignas(struct fanotify_event_metadata) static thread_local char buf[64 * 1024];
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return Status::Ok();
      return Status::IoError(std::string("read fanotify: ") + strerror(errno));
    }
    auto* m = reinterpret_cast<struct fanotify_event_metadata*>(buf);
    while (FAN_EVENT_OK(m, n)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) return Status::Unsupported("fanotify metadata version mismatch");
      events->push_back(FanotifyEvent{m->fd, m->mask, m->pid});
      m = FAN_EVENT_NEXT(m, n);
    }
    return Status::Ok();
  }

  bool Respond(int fd, uint32_t response) override {
    struct fanotify_response resp{fd, response};
    return ::write(fd_, &resp, sizeof resp) == sizeof resp;
  }

  Status MarkFilesystem(const std::string& path, uint64_t mask) override {
    if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, path.c_str()) != 0) {
      return Status::Unavailable(strerror(errno));
    }
    return Status::Ok();
  }

  Status FlushFilesystemMarks() override {
    if (fanotify_mark(fd_, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, nullptr) != 0) {
      return Status::Unavailable(strerror(errno));
    }
    return Status::Ok();
  }

  bool AddInodeIgnore(int fd, uint64_t mask) override {
    return fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE,
                         mask, fd, nullptr) == 0;
  }

  bool RemoveInodeIgnore(int fd, uint64_t mask) override {
    return fanotify_mark(fd_, FAN_MARK_REMOVE | FAN_MARK_IGNORE, mask, fd, nullptr) == 0;
  }

  void FlushInodeMarks() override { (void)fanotify_mark(fd_, FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr); }

  // One pread of the fdinfo file kept open: a seq_file read at offset 0 is generated anew
  // (as limd's reads of /proc/<tid>/syscall), one system call instead of open, read, read
  // and close — it is asked for on every exec the tracepoint thread decides.
  Result<std::string> FdInfo() override {
    if (info_fd_ < 0) return ReadFileText("/proc/self/fdinfo/" + std::to_string(fd_));
    std::string text(4096, '\0');
    for (;;) {
      ssize_t n = ::pread(info_fd_, text.data(), text.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::IoError(std::string("read fanotify fdinfo: ") + strerror(errno));
      }
      if (static_cast<size_t>(n) < text.size()) {
        text.resize(static_cast<size_t>(n));
        return text;
      }
      // Filled: the text may go on (one line per mark). Read again, whole, into twice the room.
      if (text.size() >= kMaxFdInfo) return Status::IoError("fanotify fdinfo larger than 64 MiB");
      text.resize(text.size() * 2);
    }
  }

 private:
  static constexpr size_t kMaxFdInfo = 64u << 20;
  int fd_;
  int info_fd_;  // /proc/self/fdinfo/<fd_>, or -1 (no /proc when the group was opened)
};

}  // namespace

std::set<uint64_t> SuperblockDevsIn(const std::string& fdinfo) {
  std::set<uint64_t> out;
  static constexpr const char kTag[] = "fanotify sdev:";
  for (size_t at = fdinfo.find(kTag); at != std::string::npos; at = fdinfo.find(kTag, at + 1)) {
    unsigned long long kdev = 0;
    if (std::sscanf(fdinfo.c_str() + at + sizeof kTag - 1, "%llx", &kdev) == 1) {
      out.insert(makedev(static_cast<unsigned>(kdev >> 20), static_cast<unsigned>(kdev & 0xfffff)));
    }
  }
  return out;
}

Result<uint64_t> SuperblockDevOf(const std::string& path) {
  // No event is read: the group's queue goes with it.
  LIM_ASSIGN_OR_RETURN(auto g, OpenFanotifyGroup(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC));
  LIM_RETURN_IF_ERROR(g->MarkFilesystem(path, FAN_CLOSE_WRITE));
  LIM_ASSIGN_OR_RETURN(std::string info, g->FdInfo());
  std::set<uint64_t> devs = SuperblockDevsIn(info);
  if (devs.size() != 1) return Status::IoError("fanotify fdinfo of a mark on " + path + " lists " +
                                               std::to_string(devs.size()) + " superblocks");
  return *devs.begin();
}

std::string SuperblockMarkLine(uint64_t dev) {
  auto d = static_cast<dev_t>(dev);
  char line[64];
  std::snprintf(line, sizeof line, "fanotify sdev:%llx ",
                static_cast<unsigned long long>((static_cast<uint64_t>(major(d)) << 20) | minor(d)));
  return line;
}

Result<std::unique_ptr<FanotifyGroup>> OpenFanotifyGroup(unsigned init_flags, unsigned event_f_flags) {
  int fd = fanotify_init(init_flags, event_f_flags);
  if (fd < 0) {
    int e = errno;
    Status s = Status::Unavailable(std::string("fanotify_init: ") + strerror(e));
    errno = e;  // callers fall back on EINVAL (a flag this kernel does not know)
    return s;
  }
  return std::unique_ptr<FanotifyGroup>(new KernelFanotifyGroup(fd));
}

}  // namespace lim::daemon
