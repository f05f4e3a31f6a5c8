// Logger: limd's log sinks. syslog (ident "limd", facility daemon) when /dev/log exists;
// the --log-file when one is given (always: a supervisor or test that asked for a file gets
// it); stderr only when neither. Plain lines read "TIME limd[PID]: text" in the file;
// audit events use the kernel's audit record form
//   type=INTEGRITY_PCR msg=audit(1764745200.123:7): pid=345 uid=0 op=invalid_pcr cause=…
// so tools that parse the kernel's IMA audit messages read limd's unchanged.
// Thread-safe: every method may be called from any thread after Open().
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "base/status.h"

namespace lim::daemon {

// Kernel audit record types limd emits (include/uapi/linux/audit.h).
enum class AuditType : int {
  kIntegrityData = 1800,
  kIntegrityPcr = 1804,
  kIntegrityRule = 1805,
  kIntegrityEvmXattr = 1807,  // a name written to evm_xattrs
};
const char* AuditTypeName(AuditType t);

// "type=NAME msg=audit(SEC.MSEC:SERIAL): FIELDS" — the kernel's record layout.
std::string FormatAuditRecord(AuditType type, int64_t unix_ms, uint64_t serial, const std::string& fields);

struct LoggerOptions {
  std::string log_file;              // empty: none
  std::string dev_log = "/dev/log";  // syslog is used when this exists (a seam for tests)
  bool use_syslog = true;            // false: never call openlog/syslog (tests)
};

class Logger {
 public:
  Logger() = default;
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Opens the sinks; an unwritable log file is an error (named in the message).
  Status Open(const LoggerOptions& options);
  void Line(const std::string& text);
  void Audit(AuditType type, const std::string& fields);
  // "syslog", "syslog + FILE", "FILE" or "stderr": for limd's first log line.
  std::string Describe() const;

 private:
  void Emit(int priority, const std::string& text);

  std::mutex mu_;
  bool syslog_ = false;
  FILE* file_ = nullptr;
  std::string file_name_;
  uint64_t serial_ = 0;
};

}  // namespace lim::daemon
