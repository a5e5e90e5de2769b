#include "base/error.h"

#include <cerrno>
#include <cstring>

namespace monolake {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kClosed:
      return "closed";
    case ErrorCode::kConnectionReset:
      return "connection_reset";
    case ErrorCode::kConnectionRefused:
      return "connection_refused";
    case ErrorCode::kLimitExceeded:
      return "limit_exceeded";
    case ErrorCode::kProtocol:
      return "protocol";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

static ErrorCode code_for_errno(int err) {
  switch (err) {
    case ECONNRESET:
    case EPIPE:
      return ErrorCode::kConnectionReset;
    case ECONNREFUSED:
      return ErrorCode::kConnectionRefused;
    case ETIMEDOUT:
    case ETIME:
      return ErrorCode::kTimeout;
    case ECANCELED:
      return ErrorCode::kCancelled;
    case EINVAL:
      return ErrorCode::kInvalidArgument;
    case ENOENT:
      return ErrorCode::kNotFound;
    case ENOSYS:
    case EOPNOTSUPP:
      return ErrorCode::kUnsupported;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return ErrorCode::kLimitExceeded;
    default:
      return ErrorCode::kIo;
  }
}

Error Error::from_errno(int err, std::string_view context) {
  return Error(code_for_errno(err), std::string(context), err);
}

std::string Error::to_string() const {
  std::string out(error_code_name(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  if (sys_errno_ != 0) {
    out += " (";
    out += std::strerror(sys_errno_);
    out += ")";
  }
  return out;
}

}  // namespace monolake
