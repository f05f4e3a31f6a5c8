// Limd: the measuring daemon put together (cli.md "The daemon"), the composition root of
// src/daemon. Open() checks the flags against the system and builds the rooms in dependency
// order — logger, control socket (bound early so that an unusable explicit path stops limd
// before any state is touched), policy, TPM, measurement list, measurer, securityfs view,
// overlay/FUSE side groups, the fanotify daemon with its marks, the mount watch, the
// tracepoint consumers — and Run() answers fanotify events until Stop().
//
// The members are declared in that same order, so destruction is the shutdown order: what
// uses a room is gone before the room is. The few steps that are not a destructor (the
// final status.json, the side groups answering what they hold before the main group closes,
// the ready file) are Run()'s epilogue, in the order docs/limd.md "Shutdown" gives.
//
// One Limd per process: Open() installs SIGTERM/SIGINT handlers (from the point the first
// mark can exist) that call Stop(). Threading: Open() and Run() from the main thread;
// Stop() from any thread or a signal handler (it only stores flags).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "crypto/hash_algo.h"
#include "crypto/key_ring.h"
#include "daemon/attrib_watch.h"
#include "daemon/control_socket.h"
#include "daemon/evm_state.h"
#include "daemon/exec_trace_bpf.h"
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
#include "daemon/securityfs_view.h"
#include "daemon/side_group.h"
#include "daemon/startup_scan.h"
#include "daemon/trace_events.h"
#include "ima/policy.h"
#include "tpm/tpm.h"

namespace lim::daemon {

class Limd {
 public:
  // Everything up to "ready" but the reader thread: the marks exist when this returns.
  // Errors name the flag or the step; kMismatch means a check did not hold (the TPM
  // disagrees with the state), anything else is bad usage or an unusable system.
  static Result<std::unique_ptr<Limd>> Open(const LimdFlags& flags);
  ~Limd();
  Limd(const Limd&) = delete;
  Limd& operator=(const Limd&) = delete;

  // Answers events until Stop(), then shuts down in order (every event answered first).
  Status Run();
  // Signal-safe.
  void Stop();

 private:
  explicit Limd(const LimdFlags& flags);
  void Log(const std::string& s) { logger_.Line(s); }
  std::function<void(const std::string&)> LogFn() {
    return [this](const std::string& s) { Log(s); };
  }

  // Open()'s steps, in order.
  Status OpenLogger();
  Status SortWatches();
  Status OpenControlSocket();
  Status OpenTpm();
  Status OpenList();
  Status LoadEvmHmacKey();
  Status OpenEvm();
  void MarkAttrib(const std::string& root, const std::string& fstype);
  Status MeasureOwnInputs();
  void MeasurePath(const std::string& path, ima::ImaHook func, uint32_t mask);
  Status StartView(std::optional<Bytes> boot_log);
  Status StartDaemon();
  Status StartMountWatch(MountWatchOptions mwo);
  // Whether the superblock now under dev carries the mark limd placed under that number:
  // asked of the group that marked it (the content group, or an overlay or FUSE side
  // group); true when neither did (nothing to tell). path (optional): where dev is mounted
  // (FanotifyDaemon::MarkedHere). Any thread.
  bool StillMarked(uint64_t dev, const std::string& path = "");
  void StartKeyTrace();
  void OnKeyOrMemfdRecord(const TraceRecord& r);
  // The memfd exec of pid (filename as the exec named it): its memfd:NAME entry, or a gap.
  void MeasureMemfdExec(pid_t pid, const std::string& filename);
  void StartLateExecTrace();
  void OnLateExecRecord(const TraceRecord& r);

  // STATE/status.json and the control socket's answer.
  std::string StatusDocument(bool running);
  void WriteStatus(bool running);

  LimdFlags flags_;
  Logger logger_;
  std::vector<std::pair<std::string, std::string>> side_roots_;  // overlay/FUSE --watch: path, fstype
  std::vector<std::string> plain_roots_;                         // the rest: the main daemon's
  std::vector<pid_t> trusted_peers_;                             // the TPM server
  HashAlgo algo_ = Sha256Algo();  // --hash
  std::optional<ima::Policy> policy_;  // as loaded (the live one may be replaced)
  std::unique_ptr<LivePolicy> live_policy_;
  std::unique_ptr<tpm::Tpm> tpm_;
  Env* env_ = nullptr;
  OwnFiles own_files_;  // limd's own state files: never measured at FILE_CHECK
  // EVM (docs/appraisal.md "EVM in limd"): the certificates, the per-run state (outlives
  // the appraisal's check) and the attribute watch that feeds it.
  std::optional<KeyRing> evm_keys_;
  std::unique_ptr<EvmState> evm_;
  std::unique_ptr<AttribWatch> attrib_;
  std::unique_ptr<MeasurementList> list_;
  std::unique_ptr<Appraiser> appraiser_;  // null: --appraise off
  std::unique_ptr<Measurer> measurer_;
  std::unique_ptr<SecurityfsView> view_;
  ScanReport scan_;  // what already ran from the watched filesystems, before the marks
  std::unique_ptr<SideGroups> sides_;  // outlives the daemon: it reads sides_->overlay_opens()
  std::unique_ptr<FanotifyDaemon> daemon_;
  std::unique_ptr<ExecutableScanner> exe_scanner_;
  MarkedDevs marked_;
  std::unique_ptr<MountWatch> mounts_;
  // Tracepoint consumers (perf_event_open rings; exec completions from BPF where it loads):
  // keys and memfd execs; mounts and late execs.
  std::unique_ptr<KeyWatch> keys_;
  std::unique_ptr<TraceEvents> key_trace_;
  std::unique_ptr<ExecTraceBpf> memfd_bpf_;  // after key_trace_: detached before its outputs close
  int exec_event_ = -1;
  std::atomic<uint64_t> memfd_execs_{0}, memfd_gaps_{0};
  std::unique_ptr<LateExecs> late_execs_;
  std::atomic<LateExecs*> late_ptr_{nullptr};  // read by the daemon's workers
  std::unique_ptr<TraceEvents> trace_;
  // The exec completions' program when it loads (declared after trace_: detached before its
  // outputs close).
  std::unique_ptr<ExecTraceBpf> exec_bpf_;
  std::string trace_state_ = "off";
  std::set<int> mount_events_, exec_enter_, fd_events_;  // event indexes; fixed before the thread starts
  int exec_done_ = -1, attach_event_ = -1;
  std::atomic<uint64_t> exec_records_quiet_{0};  // completions read without a wake-up of their own
  static constexpr int kQuietPassMs = 50;
  std::unique_ptr<ControlSocket> control_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> stop_{false};
};

}  // namespace lim::daemon
