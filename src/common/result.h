// Errors as values. A Status says what went wrong, in words for people, and with its Code
// whether the caller may retry (kUnavailable), must restart a transaction (kAborted) or needs
// a person to act (kFailedPrecondition, kPermissionDenied, kUnauthenticated). Integrity
// failures are kCorruption: never retried, always reported.
//
// Messages are lowercase, name the object in quotes, and may end with "HINT: ..." when the
// user can act. Add context on the way up with WithContext("reading 'index/ab12'").
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace reprise {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // bad input from the user: plan, flag, path
  kNotFound,            // object, point, file does not exist
  kAlreadyExists,       // refusing to overwrite
  kPermissionDenied,    // the OS or server refused
  kUnauthenticated,     // wrong passphrase, bad credentials
  kCorruption,          // integrity check failed: never retry
  kIOError,             // a local I/O call failed
  kUnavailable,         // transient: retry the call
  kFailedPrecondition,  // state does not allow it: a person must act
  kAborted,             // conflict: retry the whole operation
  kLocked,              // the repository is locked by someone else
  kCancelled,           // interrupted by signal or user
  kUnimplemented,       // not built yet: said plainly
  kInternal,            // a bug in reprise
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // True when calling again may succeed without anyone changing anything.
  bool retryable() const { return code_ == Code::kUnavailable; }

  // "context: message", keeping the code.
  Status WithContext(std::string_view context) const;
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status Locked(std::string m) { return {Code::kLocked, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
// IOError from errno, naming the call and the path: "open '/x/y': No such file or directory".
// ENOENT maps to kNotFound, EACCES/EPERM to kPermissionDenied.
Status ErrnoError(std::string_view what, std::string_view path, int err);

// Holds a T or a non-OK Status; never OK without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kInternal, "ok status without a value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace reprise

#define REPRISE_CONCAT_INNER(a, b) a##b
#define REPRISE_CONCAT(a, b) REPRISE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::reprise::Status _st = (expr);                  \
    if (!_st.ok()) return _st;                       \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(REPRISE_CONCAT(_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(res, lhs, expr) \
  auto res = (expr);                          \
  if (!res.ok()) return res.status();         \
  lhs = std::move(res).value()
