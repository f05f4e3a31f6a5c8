// Status and Result<T>: errors as values, never exceptions across modules.
//
// A Status is OK or carries a code and a one-line message that names the place (file,
// entry index, byte offset, line:column) — the CLI prints it as is. Result<T> is a T or a
// non-OK Status. Both are plain values: copy and move freely, no thread rules of their own.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace lim {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad usage, bad flag value
  kCorrupt,          // input parsed to a point and then broke (truncated, bad length)
  kUnsupported,      // well-formed but not something lim knows (unknown template, algorithm)
  kNotFound,
  kIoError,
  kMismatch,         // a check did not hold (digest, PCR, signature)
  kUnavailable,      // a device or service (TPM) is not there
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Mismatch(std::string m) { return {StatusCode::kMismatch, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "prefix: message" (adds context while unwinding).
  Status WithPrefix(const std::string& prefix) const {
    if (ok()) return *this;
    return {code_, prefix + ": " + message_};
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lim

#define LIM_CONCAT_INNER(a, b) a##b
#define LIM_CONCAT(a, b) LIM_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when expr is not OK.
#define LIM_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::lim::Status lim_status_ = (expr);      \
    if (!lim_status_.ok()) return lim_status_; \
  } while (0)

// LIM_ASSIGN_OR_RETURN(auto x, MakeX()); — unwraps a Result or returns its Status.
#define LIM_ASSIGN_OR_RETURN(lhs, expr) \
  LIM_ASSIGN_OR_RETURN_IMPL(LIM_CONCAT(lim_result_, __LINE__), lhs, expr)
#define LIM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
