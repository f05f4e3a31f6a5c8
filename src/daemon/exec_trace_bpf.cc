#include "daemon/exec_trace_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sys/sysmacros.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/bpf_load_log.h"
#include "daemon/exec_trace_bpf_obj.h"  // generated: kExecTraceBpf, the compiled object

namespace lim::daemon {
namespace {

// Where bpf/exec_trace.bpf.c writes sched_process_exec's fields.
bool FieldAt(const TraceFormat& f, const char* name, size_t offset, size_t size, bool data_loc) {
  auto it = f.fields.find(name);
  return it != f.fields.end() && it->second.offset == offset && it->second.size == size &&
         it->second.data_loc == data_loc;
}

}  // namespace

Result<std::unique_ptr<ExecTraceBpf>> ExecTraceBpf::Load(const TraceFormat& exec, bool only_fd_paths) {
  if (!FieldAt(exec, "filename", 8, 4, true) || !FieldAt(exec, "pid", 12, 4, false) ||
      !FieldAt(exec, "old_pid", 16, 4, false)) {
    return Status::Unavailable("exec trace (BPF): sched_process_exec's record layout is not the one the program writes");
  }
  if (exec.id > 0xffff) {
    return Status::Unavailable("exec trace (BPF): a tracepoint id beyond common_type's 16 bits");
  }
  std::string log;
  auto fail = [&log](const char* what, int err) -> Status {
    std::string m = std::string("exec trace (BPF): ") + what + ": " + std::strerror(err < 0 ? -err : err);
    if (!log.empty()) m += " (" + LastLines(log) + ")";
    return Status::Unavailable(m);
  };
  BpfLoadLog collect(&log);
  bpf_object_open_opts opts{};  // by hand, not LIBBPF_OPTS (a GNU extension clang -Wpedantic refuses)
  opts.sz = sizeof opts;
  opts.object_name = "lim_exec_trace";
  bpf_object* obj = bpf_object__open_mem(kExecTraceBpf, sizeof kExecTraceBpf, &opts);
  if (!obj) return fail("open the object", errno);
  std::unique_ptr<ExecTraceBpf> self(new ExecTraceBpf(obj));
  // The constants (.rodata), set before the load: libbpf freezes them into the programs.
  bpf_map* rodata = nullptr;
  bpf_map* m = nullptr;
  bpf_object__for_each_map(m, obj) {
    const char* name = bpf_map__name(m);
    if (name && std::strstr(name, ".rodata")) rodata = m;
  }
  size_t size = 0;
  if (rodata) (void)bpf_map__initial_value(rodata, &size);
  struct Consts {  // bpf/exec_trace.bpf.c's lim_consts
    uint16_t exec_type, pad;
    uint32_t only_fd_paths;
    uint32_t quiet;
  };
  if (!rodata || size != sizeof(Consts)) {
    return Status::Internal("exec trace (BPF): the embedded object's constants are not the expected " +
                            std::to_string(sizeof(Consts)) + " bytes (" + std::to_string(size) + ")");
  }
  bool quiet = !only_fd_paths && HasSuperblockWatcherCounts(KernelRelease());
  Consts c{static_cast<uint16_t>(exec.id), 0, only_fd_paths ? 1u : 0u, quiet ? 1u : 0u};
  if (int err = bpf_map__set_initial_value(rodata, &c, sizeof c); err != 0) return fail("set its constants", err);
  if (int err = bpf_object__load(obj); err != 0) return fail("load", err);
  self->quiet_ = quiet;
  return self;
}

bool ExecTraceBpf::HasSuperblockWatcherCounts(const std::string& release) {
  // "6.18.44-fc-v1272" → 6, 18. super_block.s_fsnotify_info and its watched_objects came in
  // 6.10; the program also checks the field exists (CO-RE) and wakes for every exec if not.
  unsigned major = 0, minor = 0;
  if (std::sscanf(release.c_str(), "%u.%u", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 10);
}

std::string ExecTraceBpf::KernelRelease() {
  struct utsname u;
  return ::uname(&u) == 0 ? std::string(u.release) : std::string();
}

Status ExecTraceBpf::MarkDev(uint64_t dev, bool marked) {
  bpf_map* map = bpf_object__find_map_by_name(obj_, "lim_marked_devs");
  if (!map) return Status::Internal("exec trace (BPF): the embedded object lacks lim_marked_devs");
  // The kernel's dev_t (major << 20 | minor), as super_block.s_dev has it.
  uint32_t key = (static_cast<uint32_t>(major(dev)) << 20) | (static_cast<uint32_t>(minor(dev)) & 0xfffff);
  uint8_t one = 1;
  int rc = marked ? bpf_map_update_elem(bpf_map__fd(map), &key, &one, BPF_ANY)
                  : bpf_map_delete_elem(bpf_map__fd(map), &key);
  if (rc != 0 && !(errno == ENOENT && !marked)) {
    return Status::Unavailable(std::string("exec trace (BPF): marked devices: ") + std::strerror(errno));
  }
  return Status::Ok();
}

TraceFormat ExecTraceBpf::RecordFormat(TraceFormat exec) {
  // Offsets as bpf/exec_trace.bpf.c's struct exec_record has them.
  exec.fields["lim_dev_major"] = TraceField{20, 4, false};
  exec.fields["lim_dev_minor"] = TraceField{24, 4, false};
  exec.fields["lim_flags"] = TraceField{28, 4, false};
  exec.fields["lim_ino"] = TraceField{32, 8, false};
  return exec;
}

Status ExecTraceBpf::Attach(const CpuFds& exec_out, const CpuFds& quiet_out) {
  std::string log;
  BpfLoadLog collect(&log);  // libbpf's words on a failed attach go into the error
  auto with_log = [&log](std::string m) { return log.empty() ? m : m + " (" + LastLines(log) + ")"; };
  bpf_map* map = bpf_object__find_map_by_name(obj_, "lim_exec_out");
  bpf_program* prog = bpf_object__find_program_by_name(obj_, "lim_exec_done");
  if (!map || !prog) return Status::Internal("exec trace (BPF): the embedded object lacks its program or map");
  bpf_map* quiet = bpf_object__find_map_by_name(obj_, "lim_exec_quiet");
  if (!quiet) return Status::Internal("exec trace (BPF): the embedded object lacks lim_exec_quiet");
  for (const auto& [cpu, fd] : exec_out) {
    auto key = static_cast<uint32_t>(cpu);
    auto value = static_cast<uint32_t>(fd);
    if (bpf_map_update_elem(bpf_map__fd(map), &key, &value, BPF_ANY) != 0) {
      return Status::Unavailable(
          with_log("exec trace (BPF): output of cpu " + std::to_string(cpu) + ": " + std::strerror(errno)));
    }
  }
  // The quiet outputs are an economy: a CPU without one writes to exec_out instead.
  for (const auto& [cpu, fd] : quiet_out) {
    auto key = static_cast<uint32_t>(cpu);
    auto value = static_cast<uint32_t>(fd);
    if (bpf_map_update_elem(bpf_map__fd(quiet), &key, &value, BPF_ANY) != 0) break;
  }
  link_ = bpf_program__attach(prog);
  if (!link_) return Status::Unavailable(with_log(std::string("exec trace (BPF): attaching: ") + std::strerror(errno)));
  return Status::Ok();
}

ExecTraceBpf::~ExecTraceBpf() {
  if (link_) bpf_link__destroy(link_);
  bpf_object__close(obj_);
}

}  // namespace lim::daemon
