#include "common/result.h"

#include <cerrno>
#include <cstring>

namespace reprise {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "i/o error";
    case Code::kUnavailable: return "unavailable";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kAborted: return "aborted";
    case Code::kLocked: return "locked";
    case Code::kCancelled: return "cancelled";
    case Code::kUnimplemented: return "unimplemented";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_;
}

Status ErrnoError(std::string_view what, std::string_view path, int err) {
  std::string msg = std::string(what) + " '" + std::string(path) + "': " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(std::move(msg));
    case EACCES:
    case EPERM: return PermissionDenied(std::move(msg));
    case EEXIST: return AlreadyExists(std::move(msg));
    default: return IOError(std::move(msg));
  }
}

}  // namespace reprise
