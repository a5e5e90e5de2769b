// Error: what went wrong, as a code a caller can branch on plus a message a person can read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace monolake {

enum class ErrorCode : uint8_t {
  kInvalidArgument,
  kIo,                 // an OS call failed; sys_errno() says how
  kTimeout,            // a deadline passed (with_timeout, connect timeout...)
  kCancelled,          // the operation was cancelled before it finished
  kClosed,             // the peer closed, or the object was already closed
  kConnectionReset,    // ECONNRESET / EPIPE
  kConnectionRefused,  // ECONNREFUSED
  kLimitExceeded,      // a configured limit was hit
  kProtocol,           // the peer broke the protocol
  kNotFound,
  kUnsupported,
  kInternal,
};

// Lower-case name of a code ("timeout", "connection_reset"...), for messages and metrics.
std::string_view error_code_name(ErrorCode code);

// An error value. Cheap to move; the message is empty for most data-path errors, where the
// code and errno say enough.
class Error {
 public:
  explicit Error(ErrorCode code, std::string message = {}, int sys_errno = 0)
      : code_(code), sys_errno_(sys_errno), message_(std::move(message)) {}

  // Maps an errno value to the closest code; `context` says what was being done.
  static Error from_errno(int err, std::string_view context = {});

  ErrorCode code() const { return code_; }
  int sys_errno() const { return sys_errno_; }
  const std::string& message() const { return message_; }

  // "timeout: connect 127.0.0.1:80 (Connection timed out)".
  std::string to_string() const;

 private:
  ErrorCode code_;
  int sys_errno_;
  std::string message_;
};

}  // namespace monolake
