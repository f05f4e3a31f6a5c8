#include "daemon/logger.h"

#include "daemon/safe_files.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace lim::daemon {

const char* AuditTypeName(AuditType t) {
  switch (t) {
    case AuditType::kIntegrityData:
      return "INTEGRITY_DATA";
    case AuditType::kIntegrityPcr:
      return "INTEGRITY_PCR";
    case AuditType::kIntegrityRule:
      return "INTEGRITY_RULE";
    case AuditType::kIntegrityEvmXattr:
      return "INTEGRITY_EVM_XATTR";
  }
  return "UNKNOWN";
}

std::string FormatAuditRecord(AuditType type, int64_t unix_ms, uint64_t serial, const std::string& fields) {
  char head[96];
  std::snprintf(head, sizeof head, "type=%s msg=audit(%lld.%03lld:%llu): ", AuditTypeName(type),
                static_cast<long long>(unix_ms / 1000), static_cast<long long>(unix_ms % 1000),
                static_cast<unsigned long long>(serial));
  return head + fields;
}

Logger::~Logger() {
  if (file_) std::fclose(file_);
  if (syslog_) closelog();
}

Status Logger::Open(const LoggerOptions& o) {
  struct stat st;
  if (o.use_syslog && ::stat(o.dev_log.c_str(), &st) == 0) {
    openlog("limd", LOG_PID, LOG_DAEMON);
    syslog_ = true;
  }
  if (!o.log_file.empty()) {
    LIM_ASSIGN_OR_RETURN(int fd, OpenAppendFileSafely("--log-file", o.log_file));  // no links, no foreign file
    file_ = ::fdopen(fd, "a");
    if (!file_) {
      ::close(fd);
      return Status::IoError("--log-file " + o.log_file + ": " + std::strerror(errno));
    }
    file_name_ = o.log_file;
  }
  return Status::Ok();
}

std::string Logger::Describe() const {
  if (syslog_ && file_) return "syslog + " + file_name_;
  if (syslog_) return "syslog";
  if (file_) return file_name_;
  return "stderr";
}

void Logger::Emit(int priority, const std::string& text) {
  if (syslog_) syslog(priority, "%s", text.c_str());
  if (!file_ && syslog_) return;
  FILE* out = file_ ? file_ : stderr;
  std::time_t now = std::time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(out, "%s limd[%d]: %s\n", ts, static_cast<int>(::getpid()), text.c_str());
  std::fflush(out);
}

void Logger::Line(const std::string& text) {
  std::lock_guard<std::mutex> lk(mu_);
  Emit(LOG_NOTICE, text);
}

void Logger::Audit(AuditType type, const std::string& fields) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::lock_guard<std::mutex> lk(mu_);
  Emit(LOG_WARNING, FormatAuditRecord(type, ms.count(), ++serial_, fields));
}

}  // namespace lim::daemon
