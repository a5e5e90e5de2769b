// Process set-up on the control thread before the workers start: the open-file limit and the
// switch to an unprivileged user. Private to //proxy/server.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "proxy/config/config.h"

namespace monolake::proxy::server::internal {

// Raises RLIMIT_NOFILE to `wanted` (runtime.max_open_files) if it is lower.
Result<void> raise_open_files(const config::Config& config, uint64_t wanted);
// After binding: become `user` (and its groups). Must run before the worker threads exist so
// that every thread, and every io_uring instance they create, has the new credentials.
Result<void> drop_privileges(const config::Config& config, const std::string& user);

}  // namespace monolake::proxy::server::internal
