#include "daemon/inode_open_counts.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

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

// libbpf reports through one process-wide print callback. Load() collects its warnings (the
// verifier's log, a missing BTF) into the error it returns instead of letting them reach
// limd's stderr; loads are serialized so the collected text is theirs.
std::mutex g_load_mu;
std::string* g_load_log = nullptr;  // under g_load_mu

int CollectLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || !g_load_log) return 0;
  char line[512];
  int n = std::vsnprintf(line, sizeof line, format, args);
  if (n > 0 && g_load_log->size() < 4096) g_load_log->append(line);
  return 0;
}

std::string LastLines(const std::string& log) {
  // The verifier's log can be long; its end says what failed.
  std::string s = log;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > 600) s = "..." + s.substr(s.size() - 600);
  for (char& c : s)
    if (c == '\n') c = ';';
  return s;
}

}  // namespace

Result<std::unique_ptr<InodeOpenCounts>> InodeOpenCounts::Load() {
  std::lock_guard<std::mutex> lk(g_load_mu);
  std::string log;
  g_load_log = &log;
  libbpf_print_fn_t previous = libbpf_set_print(CollectLibbpfPrint);
  auto fail = [&](const char* what, int err) -> Status {
    libbpf_set_print(previous);
    g_load_log = nullptr;
    std::string m = std::string("inode open counts (BPF): ") + what + ": " + std::strerror(err < 0 ? -err : err);
    if (!log.empty()) m += " (" + LastLines(log) + ")";
    return Status::Unavailable(m);
  };
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "lim_inode_open_counts");
  bpf_object* obj = bpf_object__open_mem(kInodeOpenCountsBpf, sizeof kInodeOpenCountsBpf, &opts);
  if (!obj) return fail("open the object", errno);
  int err = bpf_object__load(obj);
  if (err) {
    bpf_object__close(obj);
    return fail("load", err);
  }
  libbpf_set_print(previous);
  g_load_log = nullptr;
  bpf_program* prog = bpf_object__find_program_by_name(obj, "lim_read_open_counts");
  bpf_map* map = bpf_object__find_map_by_name(obj, "lim_open_counts_out");
  if (!prog || !map || bpf_map__value_size(map) != sizeof(WireCounts)) {
    bpf_object__close(obj);
    return Status::Internal("inode open counts (BPF): the embedded object lacks its program or map");
  }
  return std::unique_ptr<InodeOpenCounts>(new InodeOpenCounts(obj, bpf_program__fd(prog), bpf_map__fd(map)));
}

InodeOpenCounts::~InodeOpenCounts() { bpf_object__close(obj_); }

Result<InodeOpenCounts::Counts> InodeOpenCounts::Read(int fd) {
  if (fd < 0) return Status::InvalidArgument("inode open counts: descriptor " + std::to_string(fd));
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t args[1] = {static_cast<uint64_t>(fd)};
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = args, .ctx_size_in = sizeof args);
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
