// The epoll reactor backend (private to the runtime). Readiness-based: each operation is tried
// at once; if the socket is not ready it waits (edge-triggered) and is retried on the event.
#pragma once

#include <memory>

#include "base/result.h"
#include "runtime/internal/backend.h"

namespace monolake::runtime {

Result<std::unique_ptr<Backend>> make_epoll_backend();

}  // namespace monolake::runtime
