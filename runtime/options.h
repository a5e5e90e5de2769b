// Runtime options: which reactor backend, and its sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"

namespace monolake::runtime {

enum class BackendKind : uint8_t {
  kAuto,     // io_uring when the kernel allows it, else epoll (the default)
  kIoUring,  // io_uring or fail
  kEpoll,    // epoll (Monolake's "legacy")
};

// "auto" | "io_uring" | "epoll"; "legacy" (Monolake's name) means epoll.
std::optional<BackendKind> parse_backend_kind(std::string_view name);
std::string_view backend_kind_name(BackendKind kind);

struct RuntimeOptions {
  BackendKind backend = BackendKind::kAuto;
  // When true, the environment variable MONOLAKE_RUNTIME (auto|io_uring|epoll) overrides
  // `backend`.
  bool honor_env = true;
  // io_uring submission queue depth.
  unsigned entries = 1024;
  // io_uring SQPOLL idle time in milliseconds; SQPOLL is off when absent.
  std::optional<unsigned> sqpoll_idle_ms;
  // Shared read buffers (io_uring provided-buffer ring): reads on idle connections hold none of
  // their own. Count must be a power of two.
  // 64 KiB pieces: bulk transfers move as much per read as with epoll (16 KiB reads cost ~1.6x
  // the CPU per MiB in bench/e2e/l4.sh); 64 of them are 4 MiB per worker.
  unsigned pooled_buffers = 64;
  unsigned pooled_buffer_size = 64 * 1024;
};

// The backend `options` asks for, after the MONOLAKE_RUNTIME override. An invalid variable
// value is an error naming it.
Result<BackendKind> requested_backend(const RuntimeOptions& options);

}  // namespace monolake::runtime
