#include "daemon/inode_open_counts.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "daemon/bpf_load_log.h"
#include "daemon/inode_open_counts_bpf.h"  // generated: kInodeOpenCountsBpf, the compiled object

namespace lim::daemon {
namespace {

// Same layout as struct lim_open_counts in bpf/inode_open_counts.bpf.c.
struct WireCounts {
  int32_t readers;
  int32_t writers;
  uint64_t ino;
};
static_assert(sizeof(WireCounts) == 16);

}  // namespace

Result<std::unique_ptr<InodeOpenCounts>> InodeOpenCounts::Load() {
  std::string log;
  auto fail = [&log](const char* what, int err) -> Status {
    std::string m = std::string("inode open counts (BPF): ") + what + ": " + std::strerror(err < 0 ? -err : err);
    if (!log.empty()) m += " (" + LastLines(log) + ")";
    return Status::Unavailable(m);
  };
  std::unique_ptr<InodeOpenCounts> loaded;
  {
    BpfLoadLog collect(&log);
    // Filled by hand, not with LIBBPF_OPTS: its statement expression is a GNU extension
    // that -Wpedantic refuses under clang.
    bpf_object_open_opts opts{};
    opts.sz = sizeof opts;
    opts.object_name = "lim_inode_open_counts";
    bpf_object* obj = bpf_object__open_mem(kInodeOpenCountsBpf, sizeof kInodeOpenCountsBpf, &opts);
    if (!obj) return fail("open the object", errno);
    if (int err = bpf_object__load(obj); err != 0) {
      bpf_object__close(obj);
      return fail("load", err);
    }
    bpf_program* prog = bpf_object__find_program_by_name(obj, "lim_read_open_counts");
    bpf_map* map = bpf_object__find_map_by_name(obj, "lim_open_counts_out");
    if (!prog || !map || bpf_map__value_size(map) != sizeof(WireCounts)) {
      bpf_object__close(obj);
      return Status::Internal("inode open counts (BPF): the embedded object lacks its program or map");
    }
    loaded.reset(new InodeOpenCounts(obj, bpf_program__fd(prog), bpf_map__fd(map)));
  }
  // A kernel may load the program and still not run it on demand (the test run of raw
  // tracepoint programs came in 5.10), or relocate a field wrongly: one reading of a file
  // of limd's own must give that file's inode before the program is trusted.
  int fd = ::memfd_create("lim-open-counts-check", MFD_CLOEXEC);
  if (fd < 0) return fail("a file to check the program on", errno);
  struct stat st;
  auto c = ::fstat(fd, &st) == 0 ? loaded->Read(fd) : Result<Counts>(Status::IoError(std::strerror(errno)));
  ::close(fd);
  if (!c.ok()) return Status::Unavailable("inode open counts (BPF): checking the program: " + c.status().message());
  if (c->ino != static_cast<uint64_t>(st.st_ino)) {
    return Status::Unavailable("inode open counts (BPF): checking the program: it read inode " + std::to_string(c->ino) +
                               ", not " + std::to_string(st.st_ino));
  }
  return loaded;
}

InodeOpenCounts::~InodeOpenCounts() { bpf_object__close(obj_); }

Result<InodeOpenCounts::Counts> InodeOpenCounts::Read(int fd) {
  if (fd < 0) return Status::InvalidArgument("inode open counts: descriptor " + std::to_string(fd));
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t args[1] = {static_cast<uint64_t>(fd)};
  bpf_test_run_opts run{};  // by hand: see Load()
  run.sz = sizeof run;
  run.ctx_in = args;
  run.ctx_size_in = sizeof args;
  if (int err = bpf_prog_test_run_opts(prog_fd_, &run); err != 0) {
    return Status::IoError(std::string("inode open counts: running the program: ") + std::strerror(-err));
  }
  switch (run.retval) {
    case 0:
      break;
    case 2:
    case 3:
      return Status::InvalidArgument("inode open counts: descriptor " + std::to_string(fd) + " is not open");
    default:
      return Status::Internal("inode open counts: the program returned " + std::to_string(run.retval));
  }
  uint32_t key = 0;
  WireCounts w{};
  if (bpf_map_lookup_elem(map_fd_, &key, &w) != 0) {
    return Status::IoError(std::string("inode open counts: reading the result: ") + std::strerror(errno));
  }
  return Counts{w.readers, w.writers, w.ino};
}

}  // namespace lim::daemon
