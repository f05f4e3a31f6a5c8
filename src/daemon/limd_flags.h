// limd's settings: every flag (and config-file key) with its range, parsed in one place.
// A value out of range, a config file that is invalid on its own (also where the command
// line overrides the bad line) or an explicit request limd cannot honour (a control socket
// path longer than sun_path) is an error naming the flag or FILE:LINE; limd exits 2.
// Parsing is pure apart from reading the config file (bounded: kMaxConfigBytes).
// Thread-compatible.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "crypto/key_ring.h"
#include "daemon/config_file.h"
#include "daemon/control_socket.h"
#include "daemon/measurer.h"
#include "ima/policy.h"
#include "tcg/event_log.h"

namespace lim::daemon {

// Ranges (docs/limd.md "Flags").
inline constexpr int kMaxWorkers = 64;                     // --workers 1..64
inline constexpr int kMaxDecisionTimeoutMs = 10 * 60'000;  // --decision-timeout-ms 1..600000
inline constexpr size_t kMaxPolicyBytes = ima::kMaxPolicyFileSize;  // --policy file: 4 MiB, as lim policy
inline constexpr size_t kMaxBootLogBytes = tcg::kMaxEventLogSize;   // --boot-log file: 16 MiB, as lim eventlog

struct LimdFlags {
  std::string policy_file, builtin, template_name = "ima-ng", hash_name = "sha256", tcti, state = "/var/lib/lim",
                                    mode = "measure", log_file, securityfs = "/run/lim/securityfs", boot_log,
                                    control_socket = kDefaultControlSocket;
  bool no_tpm = false, allow_root_fs = false, foreground = false;
  int pcr = 10, workers = 2, timeout_ms = 2000, reader_nice = -10;
  size_t inode_cache = MeasurerConfig::kDefaultMaxInodes;  // --inode-cache
  // --open-counts: how the count probe asks whether anyone still holds a file (auto,
  // kernel: InodeOpenCounts, lease: a write lease; open_count_probe.h).
  std::string open_counts = "auto";
  std::vector<std::string> watch;
  // Appraisal (docs/appraisal.md "limd"): --appraise off|log|enforce|fix, --keys DIR (the
  // trusted certificates), --denylist FILE (digests never allowed; empty: none).
  std::string appraise = "off", keys = kDefaultKeyDir, denylist;
  bool keys_explicit = false;
  // EVM (docs/appraisal.md "EVM in limd"): the HMAC key from a root-only file or sealed in
  // the TPM (exclusive), and the EVM signature certificates (empty: none).
  std::string evm_key, evm_key_sealed, evm_keys;
  std::vector<std::string> evm_xattrs;  // --evm-xattr: protected names added at start
  // Given on the command line or in the config file (not the default).
  bool pcr_explicit = false, securityfs_explicit = false, control_socket_explicit = false;
};

struct ParseOutcome {
  int exit_code = -1;   // -1: run limd; 0: --help/--version printed; 2: bad usage
  std::string output;   // what to print: help/version text (stdout) or the error (stderr)
};

// Parses argv (argv[0] is the program name) into *flags. default_config: the config file
// read when --config is absent (a missing one is fine).
ParseOutcome ParseLimdFlags(const std::vector<std::string>& args, LimdFlags* flags,
                            const std::string& default_config = kDefaultConfigPath);

}  // namespace lim::daemon
