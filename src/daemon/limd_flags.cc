#include "daemon/limd_flags.h"

#include <sys/un.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <sstream>

#include "crypto/hash_algo.h"
#include "daemon/measurement_list.h"
#include "ima/list_writer.h"
#include "ima/policy_builtin.h"

namespace lim::daemon {
namespace {

// A validator from a check that returns "" or why the value is refused.
CLI::Validator Check(std::function<std::string(const std::string&)> why, const std::string& desc) {
  return CLI::Validator([why = std::move(why)](std::string& v) { return why(v); }, desc);
}

std::string PathProblem(const std::string& v) {
  if (v.empty()) return "empty path";
  if (v.size() >= PATH_MAX) return "path longer than " + std::to_string(PATH_MAX - 1) + " bytes";
  return "";
}

// A path, or "none" for off.
CLI::Validator PathOrNone() {
  return Check([](const std::string& v) { return v == "none" ? "" : PathProblem(v); }, "PATH|none");
}

CLI::Validator PathValue() { return Check(PathProblem, "PATH"); }

void AddOptions(CLI::App& app, LimdFlags& f) {
  auto* pol = app.add_option("--policy", f.policy_file, "IMA policy file (kernel syntax, at most 4 MiB)")
                  ->check(PathValue());
  app.add_option("--builtin", f.builtin, "built-in policy (tcb, ima_tcb, …); default tcb")
      ->excludes(pol)
      ->check(Check(
          [](const std::string& v) {
            auto p = ima::BuiltinPolicy(v);
            return p.ok() ? "" : p.status().message();
          },
          "NAME"));
  app.add_option("--template", f.template_name, "default template: ima-ng, ima-sig, ima-ngv2, ima-sigv2")
      ->check(Check(
          [](const std::string& v) {
            return ima::FileRecordTemplate(v) ? "" : "'" + v + "': one of ima-ng, ima-sig, ima-ngv2, ima-sigv2";
          },
          "TEMPLATE"));
  app.add_option("--hash", f.hash_name, "ima_hash: file and template hash algorithm")
      ->check(Check(
          [](const std::string& v) {
            auto a = HashAlgoByName(v);
            return a.ok() && HashAlgoAvailable(*a) ? "" : "'" + v + "': unknown hash algorithm";
          },
          "ALG"));
  auto* t = app.add_option("--tpm", f.tcti, "TCTI string (default $LIM_TCTI, then device:/dev/tpmrm0)")
                ->check(Check([](const std::string& v) { return v.empty() ? "empty TCTI" : ""; }, "TCTI"));
  app.add_flag("--no-tpm", f.no_tpm, "software PCR bank (no TPM: no tamper evidence)")->excludes(t);
  app.add_option("--pcr", f.pcr, "PCR for measurements (0-23, default 10)")->check(CLI::Range(0, 23));
  app.add_option("--state", f.state, "state directory (list, chain.json, lock; mode 0700, refused if others can write it)")
      ->check(PathValue());
  app.add_option("--watch", f.watch,
                 "mount root to mark (repeatable); mounts attached below it later are marked too. Default: every "
                 "filesystem of the default type set, in every mount namespace")
      ->check(PathValue());
  app.add_flag("--allow-root-fs", f.allow_root_fs, "allow marking the root filesystem");
  app.add_option("--mode", f.mode, "measure (appraise and enforce: not yet)")
      ->check(Check([](const std::string& v) { return v == "measure" ? "" : "'" + v + "': only measure is implemented"; },
                    "MODE"));
  app.add_option("--appraise", f.appraise,
                 "appraisal mode, as the kernel's ima_appraise=: off (default), log, enforce (deny with EPERM), fix")
      ->check(Check(
          [](const std::string& v) {
            auto m = ParseAppraiseMode(v);
            return m.ok() ? "" : m.status().message();
          },
          "MODE"));
  app.add_option("--keys", f.keys, "directory of trusted X.509 certificates for security.ima signatures (default " +
                                        std::string(kDefaultKeyDir) + ")")
      ->check(PathValue());
  app.add_option("--denylist", f.denylist, "file of digests never allowed under appraisal (ALGO:HEX per line)")
      ->check(PathValue());
  auto* evm_key = app.add_option("--evm-key", f.evm_key,
                                 "EVM HMAC key file (root's, mode 0600, 1-128 bytes), held in locked memory")
                      ->check(PathValue());
  app.add_option("--evm-key-sealed", f.evm_key_sealed,
                 "EVM HMAC key sealed to this TPM's PCRs (lim evm key seal), unsealed at start")
      ->check(PathValue())
      ->excludes(evm_key);
  app.add_option("--evm-keys", f.evm_keys, "certificates for EVM signatures (0x03, portable 0x05): a directory or a file")
      ->check(PathValue());
  app.add_option("--evm-xattr", f.evm_xattrs,
                 "a security.* xattr EVM protects beside the defaults, as if written to the kernel's evm_xattrs "
                 "at boot (repeatable; hashed after security.capability, in the order given)");
  app.add_option("--log-file", f.log_file,
                 "also log to FILE, never through a link (default: syslog when /dev/log exists, else stderr)")
      ->check(PathValue());
  app.add_flag("--foreground", f.foreground, "accepted: limd never forks itself (run it under systemd or setsid)");
  app.add_option("--workers", f.workers, "hashing threads (1-64, default 2)")->check(CLI::Range(1, kMaxWorkers));
  app.add_option("--decision-timeout-ms", f.timeout_ms,
                 "answer bound per event, 1-600000 (default 2000; measure: record, then allow)")
      ->check(CLI::Range(1, kMaxDecisionTimeoutMs));
  app.add_option("--reader-nice", f.reader_nice,
                 "nice value of the threads that read and answer fanotify events, discover mounts and read tracepoints "
                 "(default -10; 0: unchanged)")
      ->check(CLI::Range(-20, 19));
  app.add_option("--inode-cache", f.inode_cache,
                 "inodes whose state (verdict, counts) limd keeps, " + std::to_string(MeasurerConfig::kMinInodes) +
                     "-" + std::to_string(MeasurerConfig::kMaxInodes) + " (default " +
                     std::to_string(MeasurerConfig::kDefaultMaxInodes) +
                     ", about 360 bytes each); beyond, the least recently used one nobody has open is forgotten "
                     "and hashed again at its next access")
      ->check(CLI::Range(MeasurerConfig::kMinInodes, MeasurerConfig::kMaxInodes));
  app.add_option("--open-counts", f.open_counts,
                 "how limd checks whether anyone still holds a file whose closes fanotify merged: kernel (a BPF "
                 "program reads the inode's counters; needs BTF and CAP_SYS_ADMIN), lease (a write lease, which "
                 "makes others' opens of that file wait or fail with EWOULDBLOCK while it is held), auto (kernel "
                 "where it loads, else lease; default)")
      ->check(CLI::IsMember({"auto", "kernel", "lease"}));
  app.add_option("--securityfs", f.securityfs,
                 "mount the kernel's securityfs files here (FUSE; default /run/lim/securityfs; none: off)")
      ->check(PathOrNone());
  app.add_option("--boot-log", f.boot_log,
                 "TCG event log (at most 16 MiB) shown as tpm0/binary_bios_measurements in the view "
                 "(default: the kernel's, if present; none: off)")
      ->check(PathOrNone());
  // sun_path holds the path and its NUL: a longer path cannot be bound at all.
  constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
  app.add_option("--control-socket", f.control_socket, "root-only status socket for `lim status` (none: off)")
      ->capture_default_str()
      ->check(Check(
          [](const std::string& v) {
            if (v == "none") return std::string();
            if (v.empty()) return std::string("empty path (none: no control socket)");
            if (v.size() > kMaxSocketPath) {
              return "path of " + std::to_string(v.size()) + " bytes; a unix socket path holds at most " +
                     std::to_string(kMaxSocketPath);
            }
            return std::string();
          },
          "PATH|none"));
  app.set_version_flag("--version", "limd 0.1.0");
}

void Describe(CLI::App& app) {
  app.description(
      "limd: measures files before use (user-space IMA) into a kernel-format list and a TPM PCR.\n"
      "Settings come from /etc/lim/limd.conf (if present) and flags, flags winning. See limd(8).");
  app.footer(
      "Examples:\n"
      "  limd --watch /srv --tpm swtpm:path=/run/lim/swtpm/sock   # measure what runs from /srv into PCR 10\n"
      "  limd --watch /mnt/data --no-tpm --log-file /var/log/limd.log  # software PCR bank: no tamper evidence\n"
      "  lim status; lim log /var/lib/lim/binary_runtime_measurements --follow\n"
      "Files: /etc/lim/limd.conf (settings), STATE/binary_runtime_measurements (the list),\n"
      "  STATE/limd.ready (pid, once watching), /run/lim/limd.sock (status, root only).\n"
      "Signals: SIGTERM/SIGINT stop limd after answering every pending access.\n"
      "Exit: 0 stopped cleanly, 1 a check did not hold (e.g. the TPM disagrees with the list), 2 bad usage.\n"
      "More: man limd (docs/man/limd.8), docs/limd.md.");
}

// Parses args into f with a fresh app; "" or the error message. *help: help/version text.
std::string ParseOnce(const std::vector<std::string>& args, LimdFlags& f, const std::string& default_config,
                      std::string* help, std::string* hidden_config) {
  CLI::App app;
  Describe(app);
  AddOptions(app, f);
  AddConfigOption(&app, default_config);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      std::ostringstream out, err;
      app.exit(e, out, err);
      *help = out.str();
      return "";
    }
    return DescribeParseError(app, e);
  }
  f.pcr_explicit = app.get_option("--pcr")->count() > 0;
  f.securityfs_explicit = app.get_option("--securityfs")->count() > 0;
  f.control_socket_explicit = app.get_option("--control-socket")->count() > 0;
  f.keys_explicit = app.get_option("--keys")->count() > 0;
  if (hidden_config) *hidden_config = ConfigFileWithHiddenEntries(app);
  return "";
}

}  // namespace

ParseOutcome ParseLimdFlags(const std::vector<std::string>& args, LimdFlags* flags, const std::string& default_config) {
  ParseOutcome out;
  std::string help, hidden;
  std::string err = ParseOnce(args, *flags, default_config, &help, &hidden);
  if (err.empty() && help.empty() && !hidden.empty()) {
    // The command line hid some of the file's lines: the file must still be valid on its own
    // (a bad line would surface the day the flag is dropped). Parse it alone.
    LimdFlags file_only;
    err = ParseOnce({args.empty() ? "limd" : args[0], "--config", hidden}, file_only, default_config, &help, nullptr);
  }
  if (!err.empty()) {
    out.exit_code = 2;
    out.output = "limd: " + err + "\nRun with --help for more information.\n";
  } else if (!help.empty()) {
    out.exit_code = 0;
    out.output = help;
  }
  return out;
}

}  // namespace lim::daemon
