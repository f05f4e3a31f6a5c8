// Silencer (tests only): another tool's tracepoint-type BPF programs on sched_process_exec
// and sys_enter_execve that return 0 — perf then records neither event for anyone
// (exec_trace_bpf.h) — limited to the execs of the calling process's descendants, so that
// tests running beside it are not touched. Attached from Attach() until destruction.
#pragma once

#include <bpf/libbpf.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "daemon/silencing_tracepoints_bpf.h"  // generated: kSilencingTracepointsBpf

namespace lim::daemon::testing {

class Silencer {
 public:
  // Why the silencing cannot be limited to this process's descendants here, or "": its
  // program compares global pids (task->tgid) with getpid(), which differ inside a PID
  // namespace (/proc/self/status NSpid has more than one field).
  static std::string Unavailable() {
    auto status = ReadFileText("/proc/self/status");
    if (!status.ok()) return "no /proc/self/status";
    size_t at = status->find("\nNSpid:");
    if (at == std::string::npos) return "";
    std::string line = status->substr(at + 7, status->find('\n', at + 1) - at - 7);
    size_t fields = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] != ' ' && line[i] != '\t' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) fields++;
    }
    return fields > 1 ? "the test runs in a PID namespace (the silencing program compares global pids)" : "";
  }
  Silencer() = default;
  Silencer(const Silencer&) = delete;
  Silencer& operator=(const Silencer&) = delete;
  Status Attach() {
    bpf_object_open_opts opts{};  // by hand: LIBBPF_OPTS is a GNU extension
    opts.sz = sizeof opts;
    obj_ = bpf_object__open_mem(kSilencingTracepointsBpf, sizeof kSilencingTracepointsBpf, &opts);
    if (!obj_) return Status::Unavailable("open the silencing object");
    bpf_map* m = nullptr;
    bpf_map* rodata = nullptr;
    bpf_object__for_each_map(m, obj_) {
      if (std::string(bpf_map__name(m)).find(".rodata") != std::string::npos) rodata = m;
    }
    int self = static_cast<int>(::getpid());
    if (!rodata || bpf_map__set_initial_value(rodata, &self, sizeof self) != 0) {
      return Status::Unavailable("set the silenced ancestor");
    }
    if (bpf_object__load(obj_) != 0) return Status::Unavailable("load the silencing programs");
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, obj_) {
      bpf_link* l = bpf_program__attach(p);
      if (!l) return Status::Unavailable(std::string("attach ") + bpf_program__name(p));
      links_.push_back(l);
    }
    return Status::Ok();
  }
  ~Silencer() {
    for (bpf_link* l : links_) bpf_link__destroy(l);
    if (obj_) bpf_object__close(obj_);
  }

 private:
  bpf_object* obj_ = nullptr;
  std::vector<bpf_link*> links_;
};

}  // namespace lim::daemon::testing
