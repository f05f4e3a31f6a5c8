// limd: the measuring daemon (cli.md "The daemon"). Parses flags, opens the policy, the TPM
// and the measurement list (recovering it), writes limd's own start entries, marks the
// --watch mounts and answers fanotify events until SIGTERM/SIGINT. Errors at start print
// "limd: …" and exit 2 (bad usage) or 1 (a check did not hold, e.g. the TPM disagrees).
#include <climits>
#include <fcntl.h>
#include <sched.h>
#include <sys/fanotify.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/file.h"
#include "base/own_threads.h"
#include "daemon/control_socket.h"
#include "daemon/fanotify_daemon.h"
#include "daemon/key_watch.h"
#include "daemon/late_exec.h"
#include "daemon/limd_flags.h"
#include "daemon/live_policy.h"
#include "daemon/logger.h"
#include "daemon/measurement_list.h"
#include "daemon/measurer.h"
#include "daemon/mount_watch.h"
#include "daemon/own_files.h"
#include "daemon/process_exe.h"
#include "daemon/trace_events.h"
#include "daemon/securityfs_view.h"
#include "daemon/side_group.h"
#include "daemon/startup_scan.h"
#include "daemon/trace_events.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"
#include "ima/policy_match.h"
#include "tpm/tpm.h"

namespace {

std::atomic<lim::daemon::FanotifyDaemon*> g_daemon{nullptr};
std::atomic<bool> g_stop{false};

void OnSignal(int) {
  g_stop.store(true);
  if (auto* d = g_daemon.load()) d->Stop();
}

int Fail(const lim::Status& s) {
  std::fprintf(stderr, "limd: %s\n", s.message().c_str());
  return s.code() == lim::StatusCode::kMismatch ? 1 : 2;
}

// Everything limd does; main() adds the last line of defence around it.
int Run(int argc, char** argv) {
  using namespace lim;
  OwnThreadScope main_thread;  // the main thread is limd too (its tid is also the pid)
  daemon::LimdFlags flags;
  {
    auto parsed = daemon::ParseLimdFlags(std::vector<std::string>(argv, argv + argc), &flags);
    if (parsed.exit_code >= 0) {
      std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
      return parsed.exit_code;
    }
  }
  // By name (a structured binding would silently swap two strings if LimdFlags were reordered).
  const std::string &policy_file = flags.policy_file, &builtin = flags.builtin, &template_name = flags.template_name,
                    &hash_name = flags.hash_name, &tcti = flags.tcti, &state = flags.state, &log_file = flags.log_file,
                    &securityfs = flags.securityfs, &control_socket = flags.control_socket;
  std::string& boot_log = flags.boot_log;  // the kernel's when not given
  const bool no_tpm = flags.no_tpm, allow_root_fs = flags.allow_root_fs;
  const int pcr = flags.pcr, workers = flags.workers, timeout_ms = flags.timeout_ms, reader_nice = flags.reader_nice;
  const std::vector<std::string>& watch = flags.watch;
  // limd needs fanotify permission events (CAP_SYS_ADMIN): without them, stop before
  // creating any state rather than after a new chain.
  if (int probe = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC); probe >= 0) {
    ::close(probe);
  } else {
    int e = errno;
    return Fail(Status::InvalidArgument("fanotify_init: " + std::string(std::strerror(e)) +
                                        (e == EPERM ? ": limd needs CAP_SYS_ADMIN (run it as root)" : "") +
                                        "; nothing was touched"));
  }
  // Inputs read whole are bounded (a /dev/zero must be refused, not read into memory).
  Result<ima::Policy> policy = [&]() -> Result<ima::Policy> {
    if (policy_file.empty()) return ima::BuiltinPolicy(builtin.empty() ? "tcb" : builtin);
    auto text = ReadFileBounded(policy_file, daemon::kMaxPolicyBytes);
    if (!text.ok()) return Status::InvalidArgument("--policy: " + text.status().message());
    return ima::ParsePolicy(std::string_view(reinterpret_cast<const char*>(text->data()), text->size()), policy_file);
  }();
  if (!policy.ok()) return Fail(policy.status());
  // The view's boot log — --boot-log, else the kernel's when readable — read once and bounded,
  // before anything touches state.
  std::optional<Bytes> boot_log_bytes;
  if (securityfs != "none" && boot_log != "none") {
    const char* kKernelBootLog = "/sys/kernel/security/tpm0/binary_bios_measurements";
    bool given = !boot_log.empty();
    if (!given && ::access(kKernelBootLog, R_OK) == 0) boot_log = kKernelBootLog;
    if (!boot_log.empty()) {
      auto b = ReadFileBounded(boot_log, daemon::kMaxBootLogBytes);
      if (!b.ok()) return Fail(given ? Status::InvalidArgument("--boot-log: " + b.status().message()) : b.status());
      boot_log_bytes = std::move(*b);
    }
  }
  daemon::Logger logger;
  {
    daemon::LoggerOptions lo;
    lo.log_file = log_file;
    Status ls = logger.Open(lo);
    if (!ls.ok()) return Fail(ls);
  }
  auto log = [&logger](const std::string& s) { logger.Line(s); };

  // Refuse bad watches before touching the state. Overlay and FUSE roots are marked in
  // groups of their own (side_group.h), the rest by the main daemon.
  std::vector<std::pair<std::string, std::string>> side_roots;  // path, fstype
  std::vector<std::string> plain_roots;
  for (const auto& w : watch) {
    std::string fstype;
    Status s = daemon::CheckWatchRoot(w, allow_root_fs, &fstype);
    if (!s.ok()) return Fail(s);
    if (daemon::ClassOfFs(fstype) == daemon::FsClass::kPlain) {
      plain_roots.push_back(w);
    } else {
      side_roots.emplace_back(w, fstype);
    }
  }
  // The control socket (docs/limd.md "Control socket") is bound before the state and the marks,
  // so that an explicit path that cannot be used stops limd cleanly; it serves the status document
  // once the daemon runs. The default path is best effort.
  std::function<std::string()> live_status;  // set once the daemon exists, before Start()
  std::unique_ptr<daemon::ControlSocket> control;
  if (control_socket != "none") {
    daemon::ControlSocketOptions co;
    co.path = control_socket;
    auto c = daemon::ControlSocket::Open(co, [&] { return live_status(); }, log);
    if (c.ok()) {
      control = std::move(*c);
    } else if (flags.control_socket_explicit) {
      return Fail(Status::InvalidArgument("--control-socket " + control_socket + ": " + c.status().message()));
    } else {
      log("no control socket: " + c.status().message() + " (lim status falls back to " + state + "/status.json)");
    }
  }

  auto algo = HashAlgoByName(hash_name);  // checked while parsing
  if (!algo.ok()) return Fail(algo.status());
  // The live policy: replaceable through the view's policy file (docs/securityfs.md).
  daemon::Measurer* measurer_ptr = nullptr;  // set once the measurer exists
  daemon::MeasurementList* list_ptr = nullptr;
  daemon::PolicyRecorder recorder;
  recorder.measure_file = [&](int fd, const std::string& path) -> Result<bool> {
    daemon::Access a;
    a.fd = fd;
    a.pid = ::getpid();
    a.func = ima::ImaHook::kPolicyCheck;
    a.path = path;
    a.comm = "limd";
    auto v = measurer_ptr->Process(a);
    if (!v.error.empty()) return Status::IoError(v.error);
    return v.measure_rule;
  };
  recorder.record_text = [&](std::string_view bytes) { return list_ptr->AppendBuffer("lim-policy-update", bytes); };
  recorder.install = [&](const ima::PolicyMatcher* m) { measurer_ptr->SetMatcher(m); };
  daemon::LivePolicy live_policy(*policy, !policy_file.empty(), recorder);

  std::unique_ptr<tpm::Tpm> tpm;
  if (no_tpm) {
    tpm = tpm::OpenSoftwareTpm();
  } else {
    auto opened = tpm::OpenTpm(tcti.empty() ? tpm::DefaultTcti() : tcti);
    if (!opened.ok()) return Fail(opened.status());
    tpm = std::move(*opened);
  }
  // The TPM server (swtpm) is treated like limd itself: limd waits on it before answering,
  // so its own file accesses must never wait on limd (docs/limd.md "The TPM server").
  std::vector<pid_t> trusted_peers;
  if (auto server = tpm->LocalServer(); !server.ok()) {
    log("TPM server process not found (" + server.status().message() +
        "): its file accesses on watched filesystems wait on limd and may hit the decision timeout");
  } else if (server->has_value()) {
    trusted_peers.push_back((*server)->pid);
    log("TPM server pid " + std::to_string((*server)->pid) + ", " + (*server)->how +
        ": exempt like limd itself (its accesses are answered at once, never measured)");
  }
  daemon::Env* env = daemon::RealEnv();
  // limd's own state files are its securityfs: never measured at FILE_CHECK (OwnFiles).
  daemon::OwnFiles own_files;
  daemon::ListConfig lc;
  lc.own_files = &own_files;
  lc.state_dir = state;
  lc.pcr = pcr;
  lc.pcr_explicit = flags.pcr_explicit;
  lc.hash = *algo;
  lc.template_name = template_name;
  auto list = daemon::MeasurementList::Open(lc, tpm.get(), env);
  if (!list.ok()) return Fail(list.status());
  const auto& rep = (*list)->start_report();
  log("state " + state + ": " + (rep.new_chain ? "new chain (" + rep.new_chain_reason + ")" : "chain continued") +
      ", " + std::to_string(rep.previous_entries) + " previous entries, " + std::to_string(rep.reextended) +
      " re-extended, " + std::to_string(rep.cut_bytes) + " bytes cut; TPM: " + tpm->Describe());
  Status s = (*list)->AppendStart(env->UptimeSeconds());
  if (!s.ok()) return Fail(s);

  daemon::MeasurerConfig mc;
  mc.template_name = template_name;
  mc.hash = *algo;
  mc.pcr = pcr;
  mc.max_inodes = flags.inode_cache;
  mc.own_files = &own_files;
  daemon::Measurer measurer(mc, live_policy.matcher(), list->get(), env, [&](const std::string& fields) {
    logger.Audit(daemon::AuditType::kIntegrityPcr, fields);
  });
  measurer_ptr = &measurer;
  list_ptr = list->get();

  // limd's own binary and the policy, before any mark exists (opening files is safe now).
  auto measure_path = [&](const std::string& path, ima::ImaHook func, uint32_t mask) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    daemon::Access a;
    a.fd = fd;
    a.pid = ::getpid();
    a.func = func;
    a.mask = mask;
    a.path = path;
    a.comm = "limd";
    auto v = measurer.Process(a);
    if (!v.error.empty()) log("measure " + path + ": " + v.error);
    ::close(fd);
  };
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) measure_path(std::string(exe, static_cast<size_t>(n)), ima::ImaHook::kBprmCheck, ima::may::kExec);
  if (!policy_file.empty()) {
    measure_path(policy_file, ima::ImaHook::kPolicyCheck, 0);
  } else {
    // A built-in policy has no file: record the rules in force as text (docs/limd.md).
    s = (*list)->AppendBuffer("lim-policy-update", ima::ShowPolicy(*policy));
    if (!s.ok()) return Fail(s);
  }

  // The securityfs view, before the marks: limd never marks it (it is not a --watch mount,
  // and a --watch on it is refused below), and its threads read only limd's own state.
  std::unique_ptr<daemon::SecurityfsView> view;
  if (securityfs != "none") {
    daemon::ViewOptions vo;
    vo.dir = securityfs;
    vo.boot_log = std::move(boot_log_bytes);
    std::string note;
    auto started = daemon::SecurityfsView::Start(vo, list->get(), &live_policy, &note);
    if (!note.empty()) log(note);
    if (started.ok()) {
      view = std::move(started).value();
      log("securityfs view at " + view->dir());
    } else if (flags.securityfs_explicit) {
      return Fail(started.status());
    } else {
      log("no securityfs view: " + started.status().message());  // the default is best effort
    }
  }
  for (const auto& w : watch) {
    struct stat st;
    if (view && ::stat(w.c_str(), &st) == 0 && st.st_dev == view->device()) {
      return Fail(Status::InvalidArgument("--watch " + w + ": that is limd's own securityfs view"));
    }
  }

  // What already runs from the watched filesystems, before the marks (threat model).
  std::set<uint64_t> devs;
  daemon::MountWatchOptions mwo;
  mwo.allow_root_fs = allow_root_fs;
  // FUSE is not start-scanned: reading a running program's file there asks its server, and
  // a stopped server would keep limd from starting (docs/limd.md "FUSE").
  bool fuse_unscanned = false;
  for (const auto& w : watch) {
    auto dev = daemon::DeviceOf(w);
    std::string fstype;
    (void)daemon::CheckWatchRoot(w, allow_root_fs, &fstype);
    bool fuse = daemon::ClassOfFs(fstype) == daemon::FsClass::kFuse;
    fuse_unscanned |= fuse;
    if (dev.ok()) {
      mwo.already_marked.insert(static_cast<dev_t>(*dev));
      if (!fuse) devs.insert(*dev);
    }
    char real[PATH_MAX];
    mwo.watch.push_back(::realpath(w.c_str(), real) ? real : w);
  }
  if (watch.empty()) {  // the default set: what is mounted now, found before any mark
    for (const auto& [dev, m] : daemon::MountWatch(mwo, nullptr, log).Discover()) {
      bool fuse = daemon::ClassOfFs(m.fstype) == daemon::FsClass::kFuse;
      fuse_unscanned |= fuse;
      if (!fuse) devs.insert(dev);
    }
  }
  if (fuse_unscanned) log("FUSE filesystems are not start-scanned: programs already running from them are not measured");
  daemon::ScanReport scan = daemon::StartupScan(&measurer, devs, ::getpid(), log);

  daemon::DaemonOptions opts;
  opts.watch = plain_roots;
  opts.allow_root_fs = allow_root_fs;
  opts.precontent = daemon::PolicyMeasuresMmap(*policy);  // else reads would pay for nothing
  opts.workers = workers;
  opts.trusted_peers = trusted_peers;
  // The binary behind an ELF interpreter's exec-open, on a superblock without a mark yet:
  // LateExecs measures it before it runs (set once LateExecs exists, below).
  std::atomic<daemon::LateExecs*> late_ptr{nullptr};
  opts.unmarked_exec = [&late_ptr](pid_t tid, const daemon::ExecTarget& t, uint64_t dev, uint64_t ino) {
    if (auto* l = late_ptr.load()) l->MeasureBeforeRun(tid, t, dev, ino);
  };
  opts.may_resolve = [&late_ptr](pid_t tid, const daemon::ExecTarget& t) {
    auto* l = late_ptr.load();
    return l && l->MayResolve(tid, t);
  };
  opts.decision_timeout = std::chrono::milliseconds(timeout_ms);
  opts.reader_nice = reader_nice;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // Overlay and FUSE groups, started at their first mark; the main group recognises the
  // backing files of overlay opens through them.
  auto sides = std::make_unique<daemon::SideGroups>(opts, &measurer, list->get(), env, log,
                                                    view ? static_cast<uint64_t>(view->device()) : 0);
  opts.overlay_opens = sides->overlay_opens();
  auto d = daemon::FanotifyDaemon::Create(opts, &measurer, list->get(), env, log);
  if (!d.ok()) return Fail(d.status());
  for (const auto& [w, fstype] : side_roots) {
    s = sides->Mark(w, fstype);
    if (!s.ok()) return Fail(s);
  }
  g_daemon.store(d->get());
  (*d)->LearnReaderHandles(scan.reader_handles);
  if (g_stop.load()) (*d)->Stop();
  // When each superblock was marked: an exec that began before its superblock's mark was
  // not seen by fanotify (LateExecs).
  mwo.still_marked = [dp = d->get()](dev_t dev) { return dp->SuperblockMarked(dev); };
  mwo.nice = reader_nice;
  // What already runs from a superblock marked later, off the discovery thread.
  auto exe_scanner = std::make_unique<daemon::ExecutableScanner>(&measurer, ::getpid(), log);
  mwo.after_mark = [sc = exe_scanner.get()](const std::string&, dev_t dev) { sc->Add(dev); };
  daemon::MarkedDevs marked;
  for (uint64_t dev : mwo.already_marked) marked.Add(dev, 0);
  // Marks the default set (no --watch) and, from then on, filesystems attached later; what
  // already runs from a filesystem marked later is measured right after its mark.
  auto mounts = std::make_unique<daemon::MountWatch>(
      mwo,
      [&, dp = d->get(), sp = sides.get()](const std::string& path, const std::string& fstype) {
        Status ms = daemon::ClassOfFs(fstype) == daemon::FsClass::kPlain ? dp->MarkFilesystem(path, fstype)
                                                                         : sp->Mark(path, fstype);
        auto dev = daemon::DeviceOf(path);
        if (ms.ok() && dev.ok()) marked.Add(*dev, daemon::MonotonicNs());
        return ms;
      },
      log);
  s = mounts->Start();
  if (!s.ok()) return Fail(s);
  // What fanotify never shows, from tracepoints (perf_event_open, no BPF): KEY_CHECK
  // (asymmetric keys added to keyrings: add_key) and memfd execs (sched_process_exec).
  daemon::KeyWatch keys(&measurer, list->get(), log);
  std::unique_ptr<daemon::TraceEvents> key_trace;
  int exec_event = -1;
  std::atomic<uint64_t> memfd_execs{0}, memfd_gaps{0};
  if (auto tracefs = daemon::TracefsDir(); !tracefs.ok()) {
    log("keys and memfd execs are not measured while running: " + tracefs.status().message());
  } else {
    key_trace = std::make_unique<daemon::TraceEvents>(
        *tracefs,
        [&](const daemon::TraceRecord& r) {
          // The add_key payload is read from the caller's memory when its sys_enter record
          // arrives, racing the caller's exit: this thread runs SCHED_FIFO (best effort,
          // needs CAP_SYS_NICE) from its first record on — a wake-up in tens of µs
          // instead of milliseconds under load (docs/limd.md "Keys").
          static thread_local bool realtime = [&] {
            sched_param sp{};
            sp.sched_priority = 1;
            bool ok = ::sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
            log(ok ? std::string("tracepoint consumer runs SCHED_FIFO 1")
                   : std::string("tracepoint consumer: SCHED_FIFO refused (") + strerror(errno) + ")");
            return ok;
          }();
          (void)realtime;
          if (r.event != exec_event) {
            keys.OnRecord(r);
            return;
          }
          // A memfd exec raised no fanotify event (process_exe.h). Only execs through an fd
          // reach here (the filter below); a process already gone leaves the gap.
          std::string filename = r.Str("filename").value_or("");
          pid_t pid = static_cast<pid_t>(r.Int("pid").value_or(r.pid));
          daemon::ExeOutcome o =
              daemon::MeasureProcessExe(&measurer, list->get(), pid, daemon::ExeOptions{"exec", filename, true});
          if (o.kind == daemon::ExeOutcome::Kind::kMemfd) {
            memfd_execs++;
            if (!o.verdict.error.empty()) log("memfd exec of pid " + std::to_string(pid) + ": " + o.verdict.error);
          }
          if (o.gap) memfd_gaps++;
        },
        [&](uint64_t dropped) { log("tracepoints: the kernel dropped " + std::to_string(dropped) + " records"); });
    Status ts = keys.Attach(key_trace.get());
    if (ts.ok()) {
      // A memfd has no name on any mounted filesystem: it is run through an fd —
      // fexecve/execveat(AT_EMPTY_PATH) ("/dev/fd/N") or a /proc/<pid>/fd/N path. The
      // kernel filters, so ordinary execs never wake limd here.
      auto e = key_trace->Add("sched/sched_process_exec", "filename ~ \"/dev/fd/*\" || filename ~ \"/proc/*\"");
      if (e.ok()) exec_event = *e;
      else ts = e.status();
    }
    if (ts.ok()) ts = key_trace->Start(0);  // its priority: SCHED_FIFO from its first record (below)
    if (!ts.ok()) {
      log("keys and memfd execs are not measured while running: " + ts.message());
      key_trace.reset();
      }
    }
  // Tracepoints where fanotify has no event (docs/limd.md "New superblocks and late execs"):
  // a mount in any namespace wakes discovery at once; an exec from a superblock not marked
  // when it began is measured late, flagged as such.
  daemon::LateExecHooks hooks;
  struct stat root_st;
  uint64_t root_dev = ::stat("/", &root_st) == 0 ? static_cast<uint64_t>(root_st.st_dev) : 0;
  hooks.never_marked = [&](uint64_t dev) { return !allow_root_fs && dev == root_dev; };
  hooks.still_marked = [dp = d->get()](uint64_t dev) { return dp->SuperblockMarked(dev); };
  hooks.qualifies = [&](const std::string& mountinfo, pid_t pid, uint64_t dev, std::string* fstype) {
    auto m = mounts->QualifyingMount(mountinfo, pid, static_cast<dev_t>(dev));
    if (m) *fstype = m->fstype;
    return m.has_value();
  };
  hooks.poke = [&](pid_t pid) { mounts->Poke(pid); };
  hooks.may_read = [](const std::string& fstype) { return daemon::ClassOfFs(fstype) != daemon::FsClass::kFuse; };
  hooks.log = log;
  daemon::LateExecs late_execs(&measurer, list->get(), &marked, ::getpid(), hooks);
  late_ptr = &late_execs;
  std::string trace_state = "off";
  std::set<int> mount_events, exec_enter;  // event indexes; fixed before the thread starts
  int exec_done = -1;
  std::unique_ptr<daemon::TraceEvents> trace;
  {
    auto tracefs = daemon::TracefsDir();
    if (tracefs.ok()) {
      trace = std::make_unique<daemon::TraceEvents>(
          *tracefs,
          [&](const daemon::TraceRecord& r) {
            if (mount_events.count(r.event)) {
              if (r.Int("ret").value_or(-1) >= 0) mounts->Poke(static_cast<pid_t>(r.pid));
            } else if (exec_enter.count(r.event)) {
              late_execs.OnExecEnter(static_cast<pid_t>(r.tid), r.time_ns);
            } else if (r.event == exec_done) {
              auto pid = r.Int("pid"), old_pid = r.Int("old_pid");
              if (pid && old_pid) {
                late_execs.OnExec(static_cast<pid_t>(*pid), static_cast<pid_t>(*old_pid), r.Str("filename").value_or(""),
                                  r.time_ns);
              }
            }
          },
          [&](uint64_t dropped) {
            log("tracepoints: " + std::to_string(dropped) + " records lost (ring full): rescanning mount namespaces");
            mounts->Poke(0);
          });
      std::vector<std::string> missing;
      // After the syscall (the mount exists by then); unshare/setns: a namespace to mark.
      for (const char* e : {"syscalls/sys_exit_mount", "syscalls/sys_exit_fsmount", "syscalls/sys_exit_move_mount",
                            "syscalls/sys_exit_open_tree", "syscalls/sys_exit_unshare", "syscalls/sys_exit_setns"}) {
        auto i = trace->Add(e);
        if (i.ok()) mount_events.insert(*i); else missing.push_back(i.status().message());
      }
      for (const char* e : {"syscalls/sys_enter_execve", "syscalls/sys_enter_execveat"}) {
        auto i = trace->Add(e);
        if (i.ok()) exec_enter.insert(*i); else missing.push_back(i.status().message());
      }
      auto i = trace->Add("sched/sched_process_exec");
      if (i.ok()) exec_done = *i; else missing.push_back(i.status().message());
      for (const auto& m : missing) log("tracepoint unavailable: " + m);
      Status ts = trace->Start(reader_nice);
      if (ts.ok()) {
        trace_state = missing.empty() ? "on" : "partial";
      } else {
        trace_state = "off: " + ts.message();
        trace.reset();
      }
    } else {
      trace_state = "off: " + tracefs.status().message();
    }
    if (!trace) {
      log("tracepoints " + trace_state + ": new mounts are found by the 500 ms rescan, late execs are not measured");
    }
  }
  log("watching " + std::to_string((*d)->marks() + sides->marks()) + " filesystem mark(s) (" +
      std::to_string(sides->marks()) + " overlay/FUSE), " +
      std::to_string((*d)->precontent_marks()) + " with pre-content; FAN_REPORT_TID " +
      ((*d)->report_tid() ? "on" : "off") + "; ready");
  // The reader runs on its own thread, and every other thread may touch files (also on a
  // watched mount: limd's own accesses are answered at once by the reader). The reader
  // thread itself must never open a file on a watched mount: it would wait on itself.
  Status run_status;
  std::thread reader = StartOwnThread([&] { run_status = (*d)->Run(); });
  // STATE/status.json for `lim status`, refreshed every second and at exit.
  auto started = std::chrono::steady_clock::now();
  auto status_json = [&, dp = d->get(), lp = list->get()](bool running) {
    const auto& ds = dp->stats();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json j;
    j["running"] = running;
    j["pid"] = ::getpid();
    j["tpm"] = tpm::TpmKindName(tpm->kind());
    // swtpm and the software bank are no root of trust: root can reset and re-extend them.
    j["root_of_trust"] = tpm->kind() == tpm::TpmKind::kDevice ? "tpm" : "none";
    j["tpm_describe"] = tpm->Describe();
    j["pcr"] = pcr;
    std::vector<std::string> banks;
    for (uint16_t b : lp->banks()) banks.push_back(TpmBankName(b));
    j["banks"] = banks;
    j["entries"] = lp->entries();
    j["violations"] = lp->violations();
    j["duplicates"] = lp->duplicates();
    j["write_failures"] = lp->write_failures();
    j["overflows"] = ds.overflows.load();
    j["events"] = ds.events.load();
    j["permission_events"] = ds.perm_events.load();
    j["own_events"] = ds.own_events.load();
    j["answered"] = ds.answered.load();
    j["timeouts"] = ds.timeouts.load();
    j["reply_errors"] = ds.reply_errors.load();
    j["measure_errors"] = ds.measure_errors.load();
    j["unknown_syscall"] = ds.unknown_syscall.load();
    j["hashes"] = measurer.hashes();
    j["cache_hits"] = measurer.cache_hits();
    uint64_t looked = measurer.cache_hits() + measurer.hashes();
    j["cache_hit_rate"] = looked ? static_cast<double>(measurer.cache_hits()) / static_cast<double>(looked) : 0.0;
    j["tracked_inodes"] = measurer.tracked_inodes();
    j["inode_evictions"] = measurer.evictions();
    j["marks"] = dp->marks() + sides->marks();
    j["overlay_fuse_marks"] = sides->marks();
    j["overlay_fuse_events"] = sides->events();
    j["overlay_fuse_permission_events"] = sides->perm_events();
    j["overlay_backing_events"] = sides->overlay_opens()->backing_events();
    j["mount_namespaces"] = mounts->namespaces();
    j["mount_pokes"] = mounts->pokes();
    j["poke_to_mark_us"] = {{"p50", mounts->PokeToMarkPercentile(0.5)}, {"p99", mounts->PokeToMarkPercentile(0.99)}};
    j["tracepoints"] = trace_state;
    j["trace_records"] = trace ? trace->records() : 0;
    j["trace_lost"] = trace ? trace->lost() : 0;
    j["late_execs"] = late_execs.late();
    j["execs_measured_before_run"] = late_execs.before_run();
    j["late_exec_gaps"] = late_execs.unmeasured();
    j["late_exec_missed"] = late_execs.missed();
    j["late_exec_delay_us"] = {{"p50", late_execs.DelayPercentile(0.5)}, {"p99", late_execs.DelayPercentile(0.99)}};
    j["precontent_marks"] = dp->precontent_marks();
    j["precontent_events"] = ds.precontent_events.load();
    j["precontent_quick"] = ds.precontent_quick.load();
    j["ignore_marks_added"] = ds.ignores_added.load();
    j["reader_closes"] = ds.reader_closes.load();
    j["reader_close_drains"] = ds.reader_close_drains.load();
    j["exec_open_reuses"] = ds.exec_open_reuses.load();
    j["ignore_marks_removed"] = ds.ignores_removed.load();
    j["keys_measured"] = keys.measured();
    j["key_gaps"] = keys.gaps();
    j["key_delay_us"] = {{"p50", keys.DelayPercentile(0.5)}, {"p99", keys.DelayPercentile(0.99)}};
    j["memfd_execs"] = memfd_execs.load();
    j["memfd_exec_gaps"] = memfd_gaps.load();
    j["own_files"] = own_files.size();
    j["own_files_revoked"] = own_files.revoked();
    j["uptime_seconds"] = secs;
    j["events_per_second"] = secs > 0 ? static_cast<double>(ds.events.load()) / secs : 0.0;
    j["latency_us"] = {{"p50", ds.Percentile(0.5)},
                       {"p90", ds.Percentile(0.9)},
                       {"p99", ds.Percentile(0.99)},
                       {"max", ds.latency_max_us.load()}};
    j["state"] = std::filesystem::absolute(state).string();
    j["control_socket"] = control_socket;
    j["log"] = logger.Describe();
    return j.dump(2) + "\n";
  };
  auto write_status = [&](bool running) {
    (void)own_files.Write(state + "/status.json", AsBytes(status_json(running)), 0600);
  };
  live_status = [&] { return status_json(true); };
  if (control) {
    control->Start();
    log("control socket " + control_socket);
  }
  {
    // A ready file for supervisors and tests: written once the marks (and the control
    // socket) are in place.
    Status ready = own_files.Write(state + "/limd.ready", AsBytes(std::to_string(::getpid()) + "\n"), 0600);
    if (!ready.ok()) log("no ready file: " + ready.message());
  }
  std::atomic<bool> status_stop{false};
  std::thread status_thread = StartOwnThread([&] {
    while (!status_stop.load()) {
      write_status(true);
      for (int i = 0; i < 10 && !status_stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  reader.join();
  s = run_status;
  if (key_trace) key_trace->Stop();
  if (trace) trace->Stop();  // before what its callback uses goes
  g_daemon.store(nullptr);
  status_stop = true;
  status_thread.join();
  control.reset();
  write_status(false);
  mounts.reset();  // no new marks while the daemon drains
  exe_scanner.reset();
  sides->Stop();   // each side reader answers what it holds; the main marks are gone by now
  uint64_t perm_events = (*d)->stats().perm_events.load();
  d->reset();  // answers everything still queued, then closes the group
  ::unlink((state + "/limd.ready").c_str());
  if (view) view->Stop();  // fuse_session_unmount
  log("stopped: " + std::to_string(perm_events) + " permission events");
  if (!s.ok()) return Fail(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Every failure limd can foresee is a Status and a message; this catches the rest at start
  // (an allocation, a thread that cannot be had) so that limd does not abort with exit 134.
  // It is the last line of defence, not the check: the ranges are (limd_flags.cc).
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "limd: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "limd: internal error: unknown exception\n");
  }
  return 2;
}
