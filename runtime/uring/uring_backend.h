// The io_uring reactor backend (private to the runtime).
#pragma once

#include <memory>

#include "base/result.h"
#include "runtime/internal/backend.h"
#include "runtime/options.h"

namespace monolake::runtime {

// Probes and starts io_uring: kernel.io_uring_disabled, io_uring_setup errors (ENOSYS, EPERM
// from seccomp), and the opcodes the runtime needs. The error says which check failed.
Result<std::unique_ptr<Backend>> make_uring_backend(const RuntimeOptions& options);

}  // namespace monolake::runtime
