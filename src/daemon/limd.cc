#include "daemon/limd.h"

#include <climits>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/file.h"
#include "base/own_threads.h"
#include "control/status_report.h"
#include "daemon/process_exe.h"
#include "daemon/trusted_keys.h"
#include "ima/policy_builtin.h"
#include "ima/policy_match.h"

namespace lim::daemon {

namespace {

// The one Limd of the process, for the signal handler.
std::atomic<Limd*> g_limd{nullptr};
std::atomic<bool> g_stop{false};

void OnSignal(int) {
  g_stop.store(true);
  if (auto* l = g_limd.load()) l->Stop();
}

// limd needs fanotify permission events (CAP_SYS_ADMIN): without them, stop before
// creating any state rather than after a new chain.
Status CheckFanotify() {
  if (int probe = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC); probe >= 0) {
    ::close(probe);
    return Status::Ok();
  }
  int e = errno;
  return Status::InvalidArgument("fanotify_init: " + std::string(std::strerror(e)) +
                                 (e == EPERM ? ": limd needs CAP_SYS_ADMIN (run it as root)" : "") +
                                 "; nothing was touched");
}

// Inputs read whole are bounded (a /dev/zero must be refused, not read into memory).
Result<ima::Policy> LoadPolicy(const LimdFlags& flags) {
  if (flags.policy_file.empty()) return ima::BuiltinPolicy(flags.builtin.empty() ? "tcb" : flags.builtin);
  auto text = ReadFileBounded(flags.policy_file, kMaxPolicyBytes);
  if (!text.ok()) return Status::InvalidArgument("--policy: " + text.status().message());
  return ima::ParsePolicy(std::string_view(reinterpret_cast<const char*>(text->data()), text->size()),
                          flags.policy_file);
}

// The view's boot log — --boot-log, else the kernel's when readable — read once and
// bounded, before anything touches state.
Result<std::optional<Bytes>> ReadBootLog(const LimdFlags& flags) {
  if (flags.securityfs == "none" || flags.boot_log == "none") return std::optional<Bytes>();
  const char* kKernelBootLog = "/sys/kernel/security/tpm0/binary_bios_measurements";
  std::string path = flags.boot_log;
  bool given = !path.empty();
  if (!given && ::access(kKernelBootLog, R_OK) == 0) path = kKernelBootLog;
  if (path.empty()) return std::optional<Bytes>();
  auto b = ReadFileBounded(path, kMaxBootLogBytes);
  if (!b.ok()) return given ? Status::InvalidArgument("--boot-log: " + b.status().message()) : b.status();
  return std::optional<Bytes>(std::move(*b));
}

// From the tracepoint consumer's first record on: the add_key payload is read from the caller's memory when its sys_enter record arrives, racing the caller's exit,
// so this thread runs SCHED_FIFO (best effort, needs CAP_SYS_NICE) from its first record on —
// a wake-up in tens of µs instead of milliseconds under load (docs/limd.md "Keys").
void MakeThisThreadRealtime(const std::function<void(const std::string&)>& log) {
  static thread_local bool realtime = [&] {
    sched_param sp{};
    sp.sched_priority = 1;
    bool ok = ::sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    log(ok ? std::string("tracepoint consumer runs SCHED_FIFO 1")
           : std::string("tracepoint consumer: SCHED_FIFO refused (") + strerror(errno) + ")");
    return ok;
  }();
  (void)realtime;
}

}  // namespace

Limd::Limd(const LimdFlags& flags) : flags_(flags), env_(RealEnv()) {}

Result<std::unique_ptr<Limd>> Limd::Open(const LimdFlags& flags) {
  LIM_RETURN_IF_ERROR(CheckFanotify());
  LIM_ASSIGN_OR_RETURN(ima::Policy policy, LoadPolicy(flags));
  LIM_ASSIGN_OR_RETURN(std::optional<Bytes> boot_log, ReadBootLog(flags));
  std::unique_ptr<Limd> l(new Limd(flags));
  // EVM exists before the appraisal that asks it; its HMAC key comes in LoadEvmHmacKey (a sealed
  // one needs the TPM).
  if (!flags.evm_keys.empty()) {
    auto ring = KeyRing::Load(flags.evm_keys);
    if (!ring.ok()) return ring.status().WithPrefix("--evm-keys");
    l->evm_keys_ = std::move(*ring);
  }
  l->evm_ = std::make_unique<EvmState>(SecretBytes(), l->evm_keys_ ? &l->evm_keys_->keys() : nullptr);
  for (const auto& x : flags.evm_xattrs) {
    switch (l->evm_->AddXattr(x)) {
      case ima::EvmXattrList::AddResult::kNotSecurity:
        return Status::InvalidArgument("--evm-xattr " + x + ": not a security.* xattr (the kernel's evm_xattrs takes no other)");
      case ima::EvmXattrList::AddResult::kExists:
        return Status::InvalidArgument("--evm-xattr " + x + ": protected already");
      default:
        break;
    }
  }
  std::vector<std::string> appraise_notes;
  auto hash = HashAlgoByName(flags.hash_name);  // checked while parsing
  LIM_ASSIGN_OR_RETURN(auto appraiser, LoadAppraiser({flags.appraise, flags.keys, flags.keys_explicit, flags.denylist,
                                                      hash.ok() ? *hash : Sha256Algo(), l->evm_->AsCheck()},
                                                     &appraise_notes));
  l->policy_ = std::move(policy);
  l->appraiser_ = std::move(appraiser);
  LIM_RETURN_IF_ERROR(l->OpenLogger());
  for (const auto& n : appraise_notes) l->Log(n);
  LIM_RETURN_IF_ERROR(l->SortWatches());
  LIM_RETURN_IF_ERROR(l->OpenControlSocket());
  LIM_RETURN_IF_ERROR(l->OpenTpm());
  LIM_RETURN_IF_ERROR(l->LoadEvmHmacKey());
  LIM_RETURN_IF_ERROR(l->OpenList());
  LIM_RETURN_IF_ERROR(l->OpenEvm());
  LIM_RETURN_IF_ERROR(l->MeasureOwnInputs());
  LIM_RETURN_IF_ERROR(l->StartView(std::move(boot_log)));
  LIM_RETURN_IF_ERROR(l->StartDaemon());
  l->StartKeyTrace();
  l->StartLateExecTrace();
  return l;
}

Status Limd::OpenLogger() {
  LoggerOptions lo;
  lo.log_file = flags_.log_file;
  return logger_.Open(lo);
}

// Refuses bad watches before touching the state. Overlay and FUSE roots are marked in groups
// of their own (side_group.h), the rest by the main daemon.
Status Limd::SortWatches() {
  for (const auto& w : flags_.watch) {
    std::string fstype;
    LIM_RETURN_IF_ERROR(CheckWatchRoot(w, flags_.allow_root_fs, &fstype));
    if (ClassOfFs(fstype) == FsClass::kPlain) {
      plain_roots_.push_back(w);
    } else {
      side_roots_.emplace_back(w, fstype);
    }
  }
  return Status::Ok();
}

// The control socket (docs/limd.md "Control socket") is bound before the state and the marks,
// so that an explicit path that cannot be used stops limd cleanly; it serves the status document
// once the daemon runs. The default path is best effort.
Status Limd::OpenControlSocket() {
  if (flags_.control_socket == "none") return Status::Ok();
  ControlSocketOptions co;
  co.path = flags_.control_socket;
  auto c = ControlSocket::Open(co, [this] { return StatusDocument(true); }, LogFn());
  if (c.ok()) {
    control_ = std::move(*c);
  } else if (flags_.control_socket_explicit) {
    return Status::InvalidArgument("--control-socket " + flags_.control_socket + ": " + c.status().message());
  } else {
    Log("no control socket: " + c.status().message() + " (lim status falls back to " + flags_.state +
        "/status.json)");
  }
  return Status::Ok();
}

// The live policy (replaceable through the view's policy file, docs/securityfs.md) and the TPM.
Status Limd::OpenTpm() {
  LIM_ASSIGN_OR_RETURN(algo_, HashAlgoByName(flags_.hash_name));  // checked while parsing
  PolicyRecorder recorder;
  recorder.measure_file = [this](int fd, const std::string& path) -> Result<bool> {
    Access a;
    a.fd = fd;
    a.pid = ::getpid();
    a.func = ima::ImaHook::kPolicyCheck;
    a.path = path;
    a.comm = "limd";
    auto v = measurer_->Process(a);
    if (!v.status.ok()) return Status::IoError(v.status.message());
    return v.measure_rule;
  };
  recorder.record_text = [this](std::string_view bytes) { return list_->AppendBuffer("lim-policy-update", bytes); };
  recorder.install = [this](const ima::PolicyMatcher* m) { measurer_->SetMatcher(m); };
  live_policy_ = std::make_unique<LivePolicy>(*policy_, !flags_.policy_file.empty(), recorder);

  if (flags_.no_tpm) {
    tpm_ = tpm::OpenSoftwareTpm();
  } else {
    LIM_ASSIGN_OR_RETURN(tpm_, tpm::OpenTpm(flags_.tcti.empty() ? tpm::DefaultTcti() : flags_.tcti));
  }
  // The TPM server (swtpm) is treated like limd itself: limd waits on it before answering,
  // so its own file accesses must never wait on limd (docs/limd.md "The TPM server").
  if (auto server = tpm_->LocalServer(); !server.ok()) {
    Log("TPM server process not found (" + server.status().message() +
        "): its file accesses on watched filesystems wait on limd and may hit the decision timeout");
  } else if (server->has_value()) {
    trusted_peers_.push_back((*server)->pid);
    Log("TPM server pid " + std::to_string((*server)->pid) + ", " + (*server)->how +
        ": exempt like limd itself (its accesses are answered at once, never measured)");
  }
  return Status::Ok();
}

// The measurement list (recovered from STATE), limd's start entries, and the measurer.
Status Limd::OpenList() {
  ListConfig lc;
  lc.own_files = &own_files_;
  lc.log = LogFn();
  lc.state_dir = flags_.state;
  lc.pcr = flags_.pcr;
  lc.pcr_explicit = flags_.pcr_explicit;
  lc.hash = algo_;
  lc.template_name = flags_.template_name;
  LIM_ASSIGN_OR_RETURN(list_, MeasurementList::Open(lc, tpm_.get(), env_));
  const auto& rep = list_->start_report();
  Log("state " + flags_.state + ": " + (rep.new_chain ? "new chain (" + rep.new_chain_reason + ")" : "chain continued") +
      ", " + std::to_string(rep.previous_entries) + " previous entries, " + std::to_string(rep.reextended) +
      " re-extended, " + std::to_string(rep.cut_bytes) + " bytes cut; TPM: " + tpm_->Describe());
  LIM_RETURN_IF_ERROR(list_->AppendStart(env_->UptimeSeconds()));

  MeasurerConfig mc;
  mc.template_name = flags_.template_name;
  mc.hash = algo_;
  mc.pcr = flags_.pcr;
  mc.max_inodes = flags_.inode_cache;
  mc.own_files = &own_files_;
  mc.appraiser = appraiser_.get();
  mc.appraise_audit = [this](const std::string& f) { logger_.Audit(AuditType::kIntegrityData, f); };
  measurer_ = std::make_unique<Measurer>(mc, live_policy_->matcher(), list_.get(), env_, [this](const std::string& f) {
    logger_.Audit(AuditType::kIntegrityPcr, f);
  });
  return Status::Ok();
}

// The EVM HMAC key into locked memory, right after the TPM opens (a sealed key needs it)
// and before the state is touched: a key that cannot be had stops limd cleanly.
Status Limd::LoadEvmHmacKey() {
  LIM_ASSIGN_OR_RETURN(SecretBytes key, LoadEvmKey(flags_.evm_key, flags_.evm_key_sealed, tpm_.get()));
  if (!key.empty()) {
    // The key lives in this process: no core dump, no ptrace or /proc/PID/mem by anyone
    // but root (the pages themselves are locked and left out of dumps: secret_bytes.h).
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    Log("EVM HMAC key " + SecretFingerprint(key.view()) + " (" + std::to_string(key.size()) + " bytes, " +
        (flags_.evm_key.empty() ? "unsealed from " + flags_.evm_key_sealed + " by " + tpm_->Describe()
                                : "from " + flags_.evm_key) +
        ") in locked memory");
  }
  evm_->SetHmacKey(std::move(key));
  return Status::Ok();
}

// EVM: the trusted certificates recorded in the list (.ima, .evm), the attribute watch.
// Before the marks.
Status Limd::OpenEvm() {
  // The keys limd trusts, in the list as the kernel's KEY_CHECK records keys loaded into
  // .ima and .evm (trusted_keys.h).
  if (appraiser_) {
    LIM_RETURN_IF_ERROR(RecordTrustedKeys(*measurer_, list_.get(), appraiser_->keys(), kImaKeyring, LogFn()).status());
  }
  if (evm_keys_) {
    for (const auto& p : evm_keys_->problems()) Log("--evm-keys: " + p);
    LIM_RETURN_IF_ERROR(RecordTrustedKeys(*measurer_, list_.get(), evm_keys_->keys(), kEvmKeyring, LogFn()).status());
  }
  if (!evm_->enabled()) return Status::Ok();
  if (!appraiser_) {
    Log("EVM keys loaded but --appraise is off: nothing asks EVM");
    return Status::Ok();
  }
  auto w = AttribWatch::Create([this](const std::string& k) { evm_->Changed(k); },
                               [this](const std::string& why) {
                                 evm_->Overflowed();
                                 Log("EVM: " + why + ": no file verified so far is re-HMACed");
                               });
  if (!w.ok()) {
    Log("EVM: online changes are not watched (" + w.status().message() + "): a changed file fails until re-signed");
    return Status::Ok();
  }
  attrib_ = std::move(*w);
  attrib_->StartThread();
  evm_->set_watch(attrib_.get());
  return Status::Ok();
}

// The attribute watch follows the marks of the main group and of the FUSE groups (a
// filesystem it cannot mark is one where limd never re-HMACs: attrib_watch.h). Overlayfs
// gets no HMAC from limd at all, as from the kernel (evm_state.h), so it is not watched.
void Limd::MarkAttrib(const std::string& root, const std::string& fstype) {
  auto dev = DeviceOf(root);
  if (!dev.ok()) return;
  if (ClassOfFs(fstype) == FsClass::kOverlay) {
    evm_->SetHmacUnsupported(*dev);
    if (evm_->enabled()) Log("EVM: " + root + " is an overlay: limd writes no HMAC there (the kernel's SB_I_EVM_HMAC_UNSUPPORTED)");
    return;
  }
  if (!attrib_) return;
  if (Status s = attrib_->Mark(root, *dev); !s.ok()) {
    Log("EVM: " + s.message() + ": changes there are not watched");
  } else if (attrib_->PerInode(*dev)) {
    Log("EVM: " + root + " (" + fstype + ") refuses a filesystem mark for FAN_ATTRIB: its files are watched per inode");
  }
}

void Limd::MeasurePath(const std::string& path, ima::ImaHook func, uint32_t mask) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  Access a;
  a.fd = fd;
  a.pid = ::getpid();
  a.func = func;
  a.mask = mask;
  a.path = path;
  a.comm = "limd";
  auto v = measurer_->Process(a);
  if (!v.status.ok()) Log("measure " + path + ": " + v.status.message());
  ::close(fd);
}

// limd's own binary and the policy, before any mark exists (opening files is safe now).
Status Limd::MeasureOwnInputs() {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) MeasurePath(std::string(exe, static_cast<size_t>(n)), ima::ImaHook::kBprmCheck, ima::may::kExec);
  if (!flags_.policy_file.empty()) {
    MeasurePath(flags_.policy_file, ima::ImaHook::kPolicyCheck, 0);
    return Status::Ok();
  }
  // A built-in policy has no file: record the rules in force as text (docs/limd.md).
  return list_->AppendBuffer("lim-policy-update", ima::ShowPolicy(*policy_));
}

// The securityfs view, before the marks: limd never marks it (it is not a --watch mount,
// and a --watch on it is refused below), and its threads read only limd's own state.
Status Limd::StartView(std::optional<Bytes> boot_log) {
  if (flags_.securityfs != "none") {
    ViewOptions vo;
    vo.dir = flags_.securityfs;
    vo.boot_log = std::move(boot_log);
    vo.evm_flags = evm_ ? evm_->init_flags() : 0;
    vo.evm = evm_.get();
    vo.audit = [this](const std::string& f) { logger_.Audit(AuditType::kIntegrityEvmXattr, f); };
    std::string note;
    auto started = SecurityfsView::Start(vo, list_.get(), live_policy_.get(), &note);
    if (!note.empty()) Log(note);
    if (started.ok()) {
      view_ = std::move(started).value();
      Log("securityfs view at " + view_->dir());
    } else if (flags_.securityfs_explicit) {
      return started.status();
    } else {
      Log("no securityfs view: " + started.status().message());  // the default is best effort
    }
  }
  for (const auto& w : flags_.watch) {
    struct stat st;
    if (view_ && ::stat(w.c_str(), &st) == 0 && st.st_dev == view_->device()) {
      return Status::InvalidArgument("--watch " + w + ": that is limd's own securityfs view");
    }
  }
  return Status::Ok();
}

// The start scan (what already runs from the watched filesystems, before the marks, threat
// model), then the groups and their marks, then the mount watch.
Status Limd::StartDaemon() {
  std::set<uint64_t> devs;
  MountWatchOptions mwo;
  mwo.allow_root_fs = flags_.allow_root_fs;
  // FUSE is not start-scanned: reading a running program's file there asks its server, and
  // a stopped server would keep limd from starting (docs/limd.md "FUSE").
  bool fuse_unscanned = false;
  for (const auto& w : flags_.watch) {
    auto dev = DeviceOf(w);
    std::string fstype;
    (void)CheckWatchRoot(w, flags_.allow_root_fs, &fstype);
    bool fuse = ClassOfFs(fstype) == FsClass::kFuse;
    fuse_unscanned |= fuse;
    if (dev.ok()) {
      mwo.already_marked.insert(static_cast<dev_t>(*dev));
      if (!fuse) devs.insert(*dev);
    }
    char real[PATH_MAX];
    mwo.watch.push_back(::realpath(w.c_str(), real) ? real : w);
  }
  if (flags_.watch.empty()) {  // the default set: what is mounted now, found before any mark
    for (const auto& [dev, m] : MountWatch(mwo, nullptr, LogFn()).Discover()) {
      bool fuse = ClassOfFs(m.fstype) == FsClass::kFuse;
      fuse_unscanned |= fuse;
      if (!fuse) devs.insert(dev);
    }
  }
  if (fuse_unscanned) Log("FUSE filesystems are not start-scanned: programs already running from them are not measured");
  scan_ = StartupScan(measurer_.get(), devs, ::getpid(), LogFn());

  DaemonOptions opts;
  opts.watch = plain_roots_;
  opts.allow_root_fs = flags_.allow_root_fs;
  opts.precontent = PolicyMeasuresMmap(*policy_);  // else reads would pay for nothing
  opts.workers = flags_.workers;
  opts.trusted_peers = trusted_peers_;
  // The binary behind an ELF interpreter's exec-open, on a superblock without a mark yet:
  // LateExecs measures it before it runs (set once LateExecs exists).
  opts.unmarked_exec = [this](pid_t tid, const ExecTarget& t, uint64_t dev, uint64_t ino) {
    if (auto* l = late_ptr_.load()) l->MeasureBeforeRun(tid, t, dev, ino);
  };
  opts.may_resolve = [this](pid_t tid, const ExecTarget& t) {
    auto* l = late_ptr_.load();
    return l && l->MayResolve(tid, t);
  };
  opts.decision_timeout = std::chrono::milliseconds(flags_.timeout_ms);
  opts.reader_nice = flags_.reader_nice;
  opts.open_counts = flags_.open_counts == "kernel"  ? DaemonOptions::OpenCounts::kKernel
                     : flags_.open_counts == "lease" ? DaemonOptions::OpenCounts::kLease
                                                     : DaemonOptions::OpenCounts::kAuto;
  // From the first mark on, SIGTERM/SIGINT stop limd cleanly (every event answered).
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // Overlay and FUSE groups, started at their first mark; the main group recognises the
  // backing files of overlay opens through them.
  sides_ = std::make_unique<SideGroups>(opts, measurer_.get(), list_.get(), env_, LogFn(),
                                        view_ ? static_cast<uint64_t>(view_->device()) : 0);
  opts.overlay_opens = sides_->overlay_opens();
  LIM_ASSIGN_OR_RETURN(daemon_, FanotifyDaemon::Create(opts, measurer_.get(), list_.get(), env_, LogFn()));
  for (const auto& w : plain_roots_) MarkAttrib(w, "");
  for (const auto& [w, fstype] : side_roots_) {
    LIM_RETURN_IF_ERROR(sides_->Mark(w, fstype));
    MarkAttrib(w, fstype);
  }
  g_limd.store(this);
  daemon_->LearnReaderHandles(scan_.reader_handles);
  if (g_stop.load()) daemon_->Stop();
  return StartMountWatch(std::move(mwo));
}

bool Limd::StillMarked(uint64_t dev, const std::string& path) {
  // Anonymous device numbers go round overlay, FUSE and tmpfs superblocks alike: the group
  // that marked this number answers for it, and a side group's answer counts as much as the
  // content group's (before, a side group's device always counted as marked, and a tmpfs
  // that took a gone overlay's number was never marked).
  std::optional<bool> content = daemon_->MarkedHere(dev, path);
  std::optional<bool> side = sides_->MarkedHere(dev);
  if (!content && !side) return true;
  return content.value_or(false) || side.value_or(false);
}

// Marks the default set (no --watch) and, from then on, filesystems attached later; what
// already runs from a filesystem marked later is measured right after its mark.
Status Limd::StartMountWatch(MountWatchOptions mwo) {
  // When each superblock was marked: an exec that began before its superblock's mark was
  // not seen by fanotify (LateExecs).
  mwo.still_marked = [this](dev_t dev, const std::string& path) { return StillMarked(dev, path); };
  mwo.refused = [sides = sides_.get()](dev_t dev) { return sides->Refused(dev); };
  mwo.nice = flags_.reader_nice;
  // What already runs from a superblock marked later, off the discovery thread.
  exe_scanner_ = std::make_unique<ExecutableScanner>(measurer_.get(), ::getpid(), LogFn());
  mwo.after_mark = [sc = exe_scanner_.get()](const std::string&, dev_t dev) { sc->Add(dev); };
  for (uint64_t dev : mwo.already_marked) {
    marked_.Add(dev, 0);
    // A btrfs: its exec records carry the superblock's own device (RecordDevMarked).
    if (uint64_t sdev = daemon_->ForeignSdevOf(dev)) marked_.Add(sdev, 0);
  }
  mounts_ = std::make_unique<MountWatch>(
      mwo,
      [this](const std::string& path, const std::string& fstype) {
        marked_.BeginMark();  // whatever the device: no exec record settles meanwhile
        auto dev = DeviceOf(path);
        if (dev.ok()) marked_.Marking(*dev);  // late_exec.h: no stale mark time meanwhile
        uint64_t placed = 0;  // the device the content group marked (its own stat of path)
        uint64_t placed_sdev = 0;  // its superblock's kernel device, when new and not st_dev (btrfs)
        Status ms = ClassOfFs(fstype) == FsClass::kPlain
                        ? daemon_->MarkFilesystem(path, fstype, false, &placed, &placed_sdev)
                        : sides_->Mark(path, fstype);
        if (dev.ok()) ms.ok() ? marked_.Add(*dev, MonotonicNs()) : marked_.Forget(*dev);
        // The path changed under the two stats (mounted over): the superblock marked is the
        // one whose time counts.
        if (ms.ok() && placed != 0 && (!dev.ok() || placed != *dev)) marked_.Add(placed, MonotonicNs());
        // A plain superblock marked under the number: any side group kept under it is stale.
        if (ms.ok() && placed != 0) sides_->Forget(placed);
        // Exec records name a btrfs by its superblock's device: its mark time is this one.
        if (ms.ok() && placed_sdev != 0) marked_.Add(placed_sdev, MonotonicNs());
        marked_.EndMark();
        if (ms.ok()) MarkAttrib(path, fstype);
        return ms;
      },
      LogFn());
  return mounts_->Start();
}

namespace {

// Exec completions (sched_process_exec) into t through an ExecTraceBpf of their own
// (exec_trace_bpf.h); without bpf, the caller opens the perf tracepoint instead.
struct ExecBpfOutcome {
  std::unique_ptr<ExecTraceBpf> bpf;
  int index = -1;          // the records' event index in t
  bool mmaps_on = false;   // t already reports executable mappings
  bool quiet = false;      // completions of execs fanotify saw wake nobody (ExecTraceBpf::quiet())
  std::string source;      // for the log
};

ExecBpfOutcome AttachExecTraceBpf(TraceEvents* t, bool only_fd_paths, bool exec_mmaps) {
  ExecBpfOutcome o;
  auto fallback = [&o](const std::string& why) {
    o.source = "perf, which another tool's tracepoint program can silence (" + why + ")";
    return std::move(o);
  };
  auto exec = t->ReadFormat("sched/sched_process_exec");
  if (!exec.ok()) return fallback(exec.status().message());
  auto loaded = ExecTraceBpf::Load(*exec, only_fd_paths);
  if (!loaded.ok()) return fallback(loaded.status().message());
  ExecTraceBpf::CpuFds out, quiet;
  const TraceFormat format = ExecTraceBpf::RecordFormat(*exec);
  auto done = t->AddBpfOutput(format, exec_mmaps, TraceEvents::Wake::kEach, &out);
  if (!done.ok()) return fallback(done.status().message());
  o.mmaps_on = exec_mmaps;  // the outputs stay, and report mappings, whatever follows
  // The completions of execs fanotify saw, read without a wake-up of their own
  // (ExecTraceBpf::quiet()); without these outputs every completion wakes.
  if ((*loaded)->quiet() &&
      !t->AddBpfOutput(format, false, TraceEvents::Wake::kWithOthers, &quiet).ok()) {
    quiet.clear();
  }
  if (Status a = (*loaded)->Attach(out, quiet); !a.ok()) return fallback(a.message());
  o.quiet = !quiet.empty();
  o.bpf = std::move(*loaded);
  o.index = *done;
  o.source = "BPF raw tracepoint";
  return o;
}

}  // namespace

// What fanotify never shows, from tracepoints (perf_event_open rings; the memfd execs'
// completions from a raw-tracepoint BPF program where it loads): KEY_CHECK (asymmetric keys
// added to keyrings: add_key) and memfd execs (sched_process_exec).
void Limd::StartKeyTrace() {
  keys_ = std::make_unique<KeyWatch>(measurer_.get(), list_.get(), LogFn());
  auto tracefs = TracefsDir();
  if (!tracefs.ok()) {
    Log("keys and memfd execs are not measured while running: " + tracefs.status().message());
    return;
  }
  key_trace_ = std::make_unique<TraceEvents>(
      *tracefs, [this](const TraceRecord& r) { OnKeyOrMemfdRecord(r); },
      [this](uint64_t dropped) { Log("tracepoints: the kernel dropped " + std::to_string(dropped) + " records"); });
  Status ts = keys_->Attach(key_trace_.get());
  if (ts.ok()) {
    // A memfd has no name on any mounted filesystem: it is run through an fd —
    // fexecve/execveat(AT_EMPTY_PATH) ("/dev/fd/N") or a /proc/<pid>/fd/N path. The
    // kernel filters (the BPF program or perf's filter), so ordinary execs never wake
    // limd here. Through BPF where it loads, as the late path's (exec_trace_bpf.h).
    ExecBpfOutcome o = AttachExecTraceBpf(key_trace_.get(), /*only_fd_paths=*/true, /*exec_mmaps=*/false);
    Log("memfd exec tracepoint: " + o.source);
    memfd_bpf_ = std::move(o.bpf);
    if (memfd_bpf_) {
      exec_event_ = o.index;
    } else {
      auto e = key_trace_->Add("sched/sched_process_exec", kMemfdPathFilter);
      if (e.ok()) exec_event_ = *e;
      else ts = e.status();
    }
  }
  if (ts.ok()) ts = key_trace_->Start(0);  // its priority: SCHED_FIFO from its first record
  if (!ts.ok()) {
    memfd_bpf_.reset();
    Log("keys and memfd execs are not measured while running: " + ts.message());
    key_trace_.reset();
  }
}

void Limd::OnKeyOrMemfdRecord(const TraceRecord& r) {
  MakeThisThreadRealtime(LogFn());
  if (r.event != exec_event_) {
    keys_->OnRecord(r);
    return;
  }
  // A memfd exec raised no fanotify event (process_exe.h). Only execs through an fd reach
  // here (the filter in StartKeyTrace); others from a memfd come through the late path
  // (LateExecHooks::memfd_exec).
  MeasureMemfdExec(static_cast<pid_t>(r.Int("pid").value_or(r.pid)), r.Str("filename").value_or(""));
}

void Limd::MeasureMemfdExec(pid_t pid, const std::string& filename) {
  // A process already gone leaves the gap.
  ExeOutcome o = MeasureProcessExe(measurer_.get(), list_.get(), pid, ExeOptions{"exec", filename, true});
  if (o.kind == ExeOutcome::Kind::kMemfd) {
    memfd_execs_++;
    if (!o.verdict.status.ok()) Log("memfd exec of pid " + std::to_string(pid) + ": " + o.verdict.status.message());
  }
  if (o.gap) memfd_gaps_++;
}

// Tracepoints where fanotify has no event (docs/limd.md "New superblocks and late execs"):
// a mount in any namespace wakes discovery at once; an exec from a superblock not marked
// when it began is measured late, flagged as such.
void Limd::StartLateExecTrace() {
  LateExecHooks hooks;
  struct stat root_st;
  uint64_t root_dev = ::stat("/", &root_st) == 0 ? static_cast<uint64_t>(root_st.st_dev) : 0;
  hooks.never_marked = [allow = flags_.allow_root_fs, root_dev](uint64_t dev) { return !allow && dev == root_dev; };
  hooks.still_marked = [this](uint64_t dev, const std::string& path) { return StillMarked(dev, path); };
  hooks.record_dev_marked = [dp = daemon_.get()](uint64_t dev) { return dp->RecordDevMarked(dev); };
  hooks.qualifies = [this](const std::string& mountinfo, pid_t pid, uint64_t dev, std::string* fstype) {
    auto m = mounts_->QualifyingMount(mountinfo, pid, static_cast<dev_t>(dev));
    if (m) *fstype = m->fstype;
    return m.has_value();
  };
  hooks.poke = [this](pid_t pid) { mounts_->Poke(pid); };
  hooks.memfd_exec = [this](pid_t pid, const std::string& filename) { MeasureMemfdExec(pid, filename); };
  hooks.may_be_watched = [this](const std::string& path) {
    return mounts_->watch().empty() || MountQualifies("", path, mounts_->watch());
  };
  hooks.may_read = [](const std::string& fstype) { return ClassOfFs(fstype) != FsClass::kFuse; };
  hooks.log = LogFn();
  late_execs_ = std::make_unique<LateExecs>(measurer_.get(), list_.get(), &marked_, ::getpid(), hooks);
  late_ptr_ = late_execs_.get();
  auto tracefs = TracefsDir();
  if (!tracefs.ok()) {
    trace_state_ = "off: " + tracefs.status().message();
  } else {
    trace_ = std::make_unique<TraceEvents>(
        *tracefs, [this](const TraceRecord& r) { OnLateExecRecord(r); },
        [this](uint64_t dropped) {
          Log("tracepoints: " + std::to_string(dropped) + " records lost (ring full): rescanning mount namespaces");
          mounts_->Poke(0);
          late_execs_->OnLost(dropped);
        });
    std::vector<std::string> missing;
    // With the execs' own executable mappings (dev, ino, path): what ran, for a process
    // gone before limd looked. First: it sizes the rings for them.
    trace_->OnMmap([this](const MmapRecord& m) {
      late_execs_->OnExecMmap(static_cast<pid_t>(m.pid), m.time_ns, m.dev, m.ino, m.filename);
    });
    trace_->AfterDrain([this] { late_execs_->AfterDrain(); });
    // An exec's completion: from a raw-tracepoint BPF program where it loads
    // (exec_trace_bpf.h: no other tool's tracepoint program can hide it), else from the
    // perf tracepoint.
    // The completions' outputs carry the executable mappings too (they size the rings).
    ExecBpfOutcome o = AttachExecTraceBpf(trace_.get(), /*only_fd_paths=*/false, /*exec_mmaps=*/true);
    Log("exec tracepoints: " + o.source);
    exec_bpf_ = std::move(o.bpf);
    if (exec_bpf_) {
      exec_done_ = o.index;
    } else if (auto e = trace_->Add("sched/sched_process_exec", "", /*exec_mmaps=*/!o.mmaps_on); e.ok()) {
      exec_done_ = *e;
    } else {
      missing.push_back(e.status().message());
    }
    if (o.quiet) {
      // The program's map of marked devices follows marked_; a quiet record waits at most
      // kQuietPassMs to be read.
      marked_.Observe([bpf = exec_bpf_.get()](uint64_t dev, bool marked) { (void)bpf->MarkDev(dev, marked); });
      trace_->PassEvery(kQuietPassMs);
      Log("exec tracepoints: completions of execs from marked superblocks are read every " +
          std::to_string(kQuietPassMs) + " ms, without a wake-up each");
    }
    // After the syscall (the mount exists by then); unshare/setns: a namespace to mark.
    for (const char* e : {"syscalls/sys_exit_mount", "syscalls/sys_exit_fsmount", "syscalls/sys_exit_move_mount",
                          "syscalls/sys_exit_open_tree", "syscalls/sys_exit_open_tree_attr", "syscalls/sys_exit_unshare",
                          "syscalls/sys_exit_setns"}) {
      auto i = trace_->Add(e);
      if (i.ok()) mount_events_.insert(*i); else missing.push_back(i.status().message());
      // fsmount/open_tree return a mount's fd (detached: LateExecs pins it).
      std::string name = e;
      if (i.ok() && (name.find("fsmount") != std::string::npos || name.find("open_tree") != std::string::npos)) {
        fd_events_.insert(*i);
      }
      if (i.ok() && name.find("move_mount") != std::string::npos) attach_event_ = *i;
    }
    // An execve's start matters only beside its completion (sched_process_exec), which
    // wakes the consumer and is written after it: the pass that completion starts reads the
    // start too, from whichever CPU's ring. No wake-up of its own, one per exec less.
    for (const char* e : {"syscalls/sys_enter_execve", "syscalls/sys_enter_execveat"}) {
      auto i = trace_->Add(e, "", /*exec_mmaps=*/false, TraceEvents::Wake::kWithOthers);
      if (i.ok()) exec_enter_.insert(*i); else missing.push_back(i.status().message());
    }
    for (const auto& m : missing) Log("tracepoint unavailable: " + m);
    Status ts = trace_->Start(flags_.reader_nice);
    if (ts.ok()) {
      trace_state_ = missing.empty() ? "on" : "partial";
    } else {
      trace_state_ = "off: " + ts.message();
      marked_.Observe(nullptr);
      exec_bpf_.reset();
      trace_.reset();
    }
  }
  if (!trace_) {
    Log("tracepoints " + trace_state_ + ": new mounts are found by the 500 ms rescan, late execs are not measured");
  }
}

void Limd::OnLateExecRecord(const TraceRecord& r) {
  if (mount_events_.count(r.event)) {
    if (r.Int("ret").value_or(-1) >= 0) mounts_->Poke(static_cast<pid_t>(r.pid));
    late_execs_->OnMountExit(static_cast<pid_t>(r.pid), r.Int("ret").value_or(-1), fd_events_.count(r.event) > 0,
                             r.event == attach_event_, r.time_ns);
  } else if (exec_enter_.count(r.event)) {
    late_execs_->OnExecEnter(static_cast<pid_t>(r.tid), r.time_ns);
  } else if (r.event == exec_done_) {
    auto pid = r.Int("pid"), old_pid = r.Int("old_pid");
    // The BPF path's record names the file that ran (ExecTraceBpf::RecordFormat); perf's
    // has no such fields.
    std::optional<LateExecs::ExecFile> file;
    auto major = r.Int("lim_dev_major"), minor = r.Int("lim_dev_minor"), ino = r.Int("lim_ino");
    if (exec_bpf_ && (r.Int("lim_flags").value_or(0) & 1)) exec_records_quiet_++;
    if (exec_bpf_ && major && minor && ino) {
      file = LateExecs::ExecFile{makedev(static_cast<unsigned>(*major), static_cast<unsigned>(*minor)),
                                 static_cast<uint64_t>(*ino)};
    }
    if (pid && old_pid) {
      late_execs_->OnExec(static_cast<pid_t>(*pid), static_cast<pid_t>(*old_pid), r.Str("filename").value_or(""),
                          r.time_ns, file);
    }
  }
}

void Limd::Stop() {
  // Only a flag (a signal handler calls this): Run() stops the tracepoint consumers while
  // the reader still answers and the marks are still in place, then the reader.
  stop_.store(true);
}

Status Limd::Run() {
  Log("watching " + std::to_string(daemon_->marks() + sides_->marks()) + " filesystem mark(s) (" +
      std::to_string(sides_->marks()) + " overlay/FUSE), " + std::to_string(daemon_->precontent_marks()) +
      " with pre-content; FAN_REPORT_TID " + (daemon_->report_tid() ? "on" : "off") + "; ready");
  // The reader runs on its own thread, and every other thread may touch files (also on a
  // watched mount: limd's own accesses are answered at once by the reader). The reader
  // thread itself must never open a file on a watched mount: it would wait on itself.
  Status run_status;
  std::atomic<bool> reader_done{false};
  std::thread reader = StartOwnThread([&] {
    run_status = daemon_->Run();
    reader_done.store(true);
  });
  started_ = std::chrono::steady_clock::now();
  if (control_) {
    control_->Start();
    Log("control socket " + flags_.control_socket);
  }
  // A ready file for supervisors and tests: written once the marks (and the control socket)
  // are in place.
  const std::string ready_file = flags_.state + "/limd.ready";
  Status ready = own_files_.Write(ready_file, AsBytes(std::to_string(::getpid()) + "\n"), 0600);
  if (!ready.ok()) Log("no ready file: " + ready.message());
  // STATE/status.json for `lim status`, refreshed every second and at exit.
  std::atomic<bool> status_stop{false};
  std::thread status_thread = StartOwnThread([&] {
    while (!status_stop.load()) {
      WriteStatus(true);
      for (int i = 0; i < 10 && !status_stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  while (!stop_.load() && !g_stop.load() && !reader_done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Shutdown (docs/limd.md "Shutdown"): the tracepoint consumers first, while the marks are
  // in place and the reader answers (their last records are decided against the marks that
  // saw those execs, and a late hash's own open is answered); then the reader, which
  // removes the marks and drains; no status reader; no new marks while the daemon drains;
  // each side group answers what it holds (the main marks are gone by now); the main group
  // answers everything still queued and closes; the view last.
  if (key_trace_) key_trace_->Stop();
  if (trace_) trace_->Stop();
  daemon_->Stop();
  reader.join();
  g_limd.store(nullptr);
  status_stop = true;
  status_thread.join();
  control_.reset();
  WriteStatus(false);
  mounts_.reset();
  exe_scanner_.reset();
  sides_->Stop();
  uint64_t perm_events = daemon_->stats().perm_events.load();
  daemon_.reset();
  ::unlink(ready_file.c_str());
  if (view_) view_->Stop();  // fuse_session_unmount
  Log("stopped: " + std::to_string(perm_events) + " permission events");
  // A side group left waiting on a FUSE server still uses the measurer and the list: end
  // here without destroying them (docs/limd.md "FUSE"); the exit codes are main's.
  if (sides_->leaked() > 0) {
    if (!run_status.ok()) std::fprintf(stderr, "limd: %s\n", run_status.message().c_str());
    ::_exit(run_status.ok() ? 0 : run_status.code() == StatusCode::kMismatch ? 1 : 2);
  }
  return run_status;
}

Limd::~Limd() {
  // Open() failed part way, or Run() ended: the members go in reverse declaration order.
  if (g_limd.load() == this) g_limd.store(nullptr);
  marked_.Observe(nullptr);  // exec_bpf_ goes before mounts_, which may still mark
}

void Limd::WriteStatus(bool running) {
  (void)own_files_.Write(flags_.state + "/status.json", AsBytes(StatusDocument(running)), 0600);
}

std::string Limd::StatusDocument(bool running) {
  const auto& ds = daemon_->stats();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  control::StatusReport r;
  r.running = running;
  r.pid = static_cast<uint64_t>(::getpid());
  r.tpm = tpm::TpmKindName(tpm_->kind());
  // swtpm and the software bank are no root of trust: root can reset and re-extend them.
  r.root_of_trust = tpm_->kind() == tpm::TpmKind::kDevice ? "tpm" : "none";
  r.tpm_describe = tpm_->Describe();
  r.pcr = static_cast<uint64_t>(flags_.pcr);
  for (uint16_t b : list_->banks()) r.banks.push_back(TpmBankName(b));
  r.entries = list_->entries();
  r.violations = list_->violations();
  r.duplicates = list_->duplicates();
  r.write_failures = list_->write_failures();
  r.overflows = ds.overflows.load();
  r.events = ds.events.load();
  r.permission_events = ds.perm_events.load();
  r.own_events = ds.own_events.load();
  r.answered = ds.answered.load();
  r.timeouts = ds.timeouts.load();
  r.reply_errors = ds.reply_errors.load();
  r.measure_errors = ds.measure_errors.load();
  r.unknown_syscall = ds.unknown_syscall.load();
  r.unknown_syscall_reads = ds.unknown_syscall_reads.load();
  r.unknown_syscall_writes = ds.unknown_syscall_writes.load();
  r.hashes = measurer_->hashes();
  r.cache_hits = measurer_->cache_hits();
  r.tracked_inodes = measurer_->tracked_inodes();
  r.inode_evictions = measurer_->evictions();
  r.marks = daemon_->marks() + sides_->marks();
  r.overlay_fuse_marks = sides_->marks();
  r.overlay_fuse_retired = sides_->retired();
  r.overlay_fuse_events = sides_->events();
  r.overlay_fuse_permission_events = sides_->perm_events();
  r.fuse_stalls = sides_->fuse_stalls();  // lim-fuse-unresponsive entries
  r.overlay_backing_events = sides_->overlay_opens()->backing_events();
  r.mount_namespaces = mounts_->namespaces();
  r.mount_pokes = mounts_->pokes();
  r.poke_to_mark_us = {mounts_->PokeToMarkPercentile(0.5), mounts_->PokeToMarkPercentile(0.99)};
  r.tracepoints = trace_state_;
  r.exec_trace = !trace_ ? "off" : exec_bpf_ ? "bpf" : "perf";
  r.memfd_exec_trace = !key_trace_ ? "off" : memfd_bpf_ ? "bpf" : "perf";
  r.trace_records = trace_ ? trace_->records() : 0;
  r.trace_lost = trace_ ? trace_->lost() : 0;
  r.trace_passes = trace_ ? trace_->passes() : 0;
  r.exec_records_quiet = exec_records_quiet_.load();
  r.late_execs = late_execs_->late();
  r.execs_measured_before_run = late_execs_->before_run();
  r.execs_seen_by_record = late_execs_->seen_by_record();
  r.late_exec_gaps = late_execs_->unmeasured();
  r.late_exec_missed = late_execs_->missed();
  r.execs_placed_by_own_mountinfo = late_execs_->own_view_places();
  r.own_mountinfo_reads = late_execs_->own_mountinfo_reads();
  r.late_execs_after_exit = late_execs_->after_exit();
  r.late_exec_delay_us = {late_execs_->DelayPercentile(0.5), late_execs_->DelayPercentile(0.99)};
  r.precontent_marks = daemon_->precontent_marks();
  r.precontent_events = ds.precontent_events.load();
  r.precontent_quick = ds.precontent_quick.load();
  r.ignore_marks_added = ds.ignores_added.load();
  r.reader_closes = ds.reader_closes.load();
  r.reader_close_drains = ds.reader_close_drains.load();
  r.count_probes = daemon_->count_probes();
  r.count_probes_by_kernel_counts = daemon_->count_probes_by_kernel_counts();
  r.count_resets = daemon_->count_resets();
  r.appraise = std::string(appraiser_ ? AppraiseModeName(appraiser_->mode()) : "off");
  if (appraiser_) {
    const AppraiseCounts& ac = measurer_->appraise_counts();
    r.appraise_keys = appraiser_->keys().size();
    r.appraised = ac.appraised;
    r.appraise_failures = ac.failures;
    r.appraise_denied = ac.denied;
    r.appraise_write_denied = ac.write_denied;
    r.appraise_fixed = ac.fixed;
    r.appraise_xattr_updates = ac.xattr_updates;
    r.appraise_update_errors = ac.update_errors;
  }
  if (evm_) {
    const EvmState::Counts& ec = evm_->counts();
    r.evm_flags = evm_->init_flags();
    r.evm_verified = ec.verified.load();
    r.evm_failed = ec.failed.load();
    r.evm_rewritten = ec.rewritten.load();
    r.evm_signatures_replaced = ec.signatures_replaced.load();
    r.evm_refused = ec.refused.load();
    r.evm_write_errors = ec.write_errors.load();
    r.evm_forgotten = ec.forgotten.load();
  }
  r.exec_open_reuses = ds.exec_open_reuses.load();
  r.exec_opens_unsure = ds.exec_unsure.load();
  r.ignore_marks_removed = ds.ignores_removed.load();
  r.keys_measured = keys_->measured();
  r.key_gaps = keys_->gaps();
  r.key_delay_us = {keys_->DelayPercentile(0.5), keys_->DelayPercentile(0.99)};
  r.memfd_execs = memfd_execs_.load();
  r.memfd_exec_gaps = memfd_gaps_.load();
  r.own_files = own_files_.size();
  r.own_files_revoked = own_files_.revoked();
  r.uptime_seconds = secs;
  r.events_per_second = secs > 0 ? static_cast<double>(ds.events.load()) / secs : 0.0;
  r.latency_us = control::DecisionLatency{ds.latency.Percentile(0.5), ds.latency.Percentile(0.9),
                                          ds.latency.Percentile(0.99), ds.latency.max_us()};
  r.state = std::filesystem::absolute(flags_.state).string();
  r.control_socket = flags_.control_socket;
  r.log = logger_.Describe();
  return r.ToJson().dump(2) + "\n";
}

}  // namespace lim::daemon
