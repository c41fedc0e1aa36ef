// Status and Result<T>: the one error model of the enlace core.
//
// Every fallible call in the core returns a Status or a Result<T>; the core
// never throws. Exceptions raised by libraries (cereal, the standard library)
// are caught at the module edge and turned into a Status.
#ifndef ENLACE_STATUS_H_
#define ENLACE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace enlace {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller passed something malformed or out of range
  kNotFound,            // the record, key or file does not exist
  kAlreadyExists,       // creating something that is already there
  kWrongPassphrase,     // the vault did not open with this passphrase; nothing changed
  kUnauthenticated,     // a signature did not verify
  kPermissionDenied,    // a known party may not do this (unknown device, other team)
  kCorruption,          // stored or received bytes are malformed or tampered
  kDecryptFailed,       // an AEAD open failed: wrong key or tampered ciphertext
  kFailedPrecondition,  // the state does not allow this now (e.g. editing a deleted record)
  kResourceExhausted,   // a length or size limit was exceeded
  kUnavailable,         // a resource is busy or temporarily unreachable
  kIoError,             // the file system or SQLite failed
  kInternal,            // a bug or an unexpected library failure
};

// Returns a stable lower-case name for `code`, e.g. "wrong passphrase".
const char* StatusCodeName(StatusCode code) noexcept;

// A success or an error code with a human-readable message. Messages never
// contain secrets or plaintext record values. Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return Of(StatusCode::kInvalidArgument, m); }
  static Status NotFound(std::string m) { return Of(StatusCode::kNotFound, m); }
  static Status AlreadyExists(std::string m) { return Of(StatusCode::kAlreadyExists, m); }
  static Status WrongPassphrase(std::string m) { return Of(StatusCode::kWrongPassphrase, m); }
  static Status Unauthenticated(std::string m) { return Of(StatusCode::kUnauthenticated, m); }
  static Status PermissionDenied(std::string m) { return Of(StatusCode::kPermissionDenied, m); }
  static Status Corruption(std::string m) { return Of(StatusCode::kCorruption, m); }
  static Status DecryptFailed(std::string m) { return Of(StatusCode::kDecryptFailed, m); }
  static Status FailedPrecondition(std::string m) { return Of(StatusCode::kFailedPrecondition, m); }
  static Status ResourceExhausted(std::string m) { return Of(StatusCode::kResourceExhausted, m); }
  static Status Unavailable(std::string m) { return Of(StatusCode::kUnavailable, m); }
  static Status IoError(std::string m) { return Of(StatusCode::kIoError, m); }
  static Status Internal(std::string m) { return Of(StatusCode::kInternal, m); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or "<code name>: <message>".
  std::string ToString() const;

  // Returns a copy with `context` prefixed to the message ("context: message").
  Status WithContext(std::string_view context) const;

 private:
  static Status Of(StatusCode code, std::string& message) { return {code, std::move(message)}; }

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or an error Status (never ok).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "Result built from an ok Status has no value");
    if (status_.ok()) status_ = Status::Internal("Result built from an ok Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace enlace

// Returns early from the enclosing function with the error of `expr`.
#define ENLACE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::enlace::Status enlace_status_ = (expr);        \
    if (!enlace_status_.ok()) return enlace_status_; \
  } while (0)

#define ENLACE_CONCAT_INNER_(a, b) a##b
#define ENLACE_CONCAT_(a, b) ENLACE_CONCAT_INNER_(a, b)

// Declares `lhs` from a Result, or returns its error from the enclosing function.
#define ENLACE_ASSIGN_OR_RETURN(lhs, expr) \
  ENLACE_ASSIGN_OR_RETURN_IMPL_(ENLACE_CONCAT_(enlace_result_, __LINE__), lhs, expr)
#define ENLACE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // ENLACE_STATUS_H_
