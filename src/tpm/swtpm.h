// The embedded default TPM: Debian's swtpm run as a daemon on a unix socket in a root-only
// directory (TCP loopback only on request: any local user could reset and re-extend its
// PCRs there). swtpm is an emulator: it gives a TPM without hardware, not a hardware root
// of trust — SwtpmNotice() says so and the CLI prints it. Functions here start, stop and
// inspect one swtpm instance described by SwtpmConfig; not thread-safe against each other
// for the same config.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/status.h"

namespace lim::tpm {

struct SwtpmConfig {
  std::string state_dir = "/var/lib/lim/swtpm";
  std::string run_dir = "/run/lim/swtpm";  // socket, control socket, pid file, log
  int tcp_port = 0;                        // 0: unix socket; else 127.0.0.1:port (+1 control)
  bool create_ek_cert = true;              // swtpm_setup manufactures EK + certificates
  // Run swtpm as a child of this process that the kernel kills when this thread exits
  // (PR_SET_PDEATHSIG) instead of as a daemon: tests and benchmarks never leave a swtpm
  // behind, even when they crash. SwtpmStop reaps it.
  bool die_with_parent = false;
};

// Paths and the TCTI string for a config. The swtpm TCTI of tpm2-tss 3.2 finds the control
// channel at "<path>.ctrl", so the control socket is placed there.
std::string SwtpmSocketPath(const SwtpmConfig& c);
std::string SwtpmPidPath(const SwtpmConfig& c);
std::string SwtpmTcti(const SwtpmConfig& c);
const char* SwtpmNotice();

struct SwtpmState {
  bool running = false;
  pid_t pid = 0;
  std::string tcti;
  bool ek_cert = false;  // state was manufactured by swtpm_setup with an EK certificate
};

// Starts swtpm (manufacturing the state with swtpm_setup first if it is new and
// create_ek_cert is set; a failing swtpm_setup is reported in *note and swtpm starts
// without certificates). Returns the daemon's pid once the socket accepts connections.
// Already running → the existing pid.
Result<pid_t> SwtpmStart(const SwtpmConfig& c, std::string* note = nullptr);
Status SwtpmStop(const SwtpmConfig& c);
SwtpmState SwtpmStatus(const SwtpmConfig& c);

}  // namespace lim::tpm
