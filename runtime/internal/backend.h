// The private interface between the runtime and its reactor backends (uring/, epoll/).
// Not part of the public API: users pick a backend with RuntimeOptions or MONOLAKE_RUNTIME.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/op.h"
#include "runtime/options.h"

namespace monolake::runtime {

// Where backends put coroutines that are ready to run. Owned by the runtime.
class ReadyQueue;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;

  // Socket flags (SOCK_NONBLOCK or not, plus SOCK_CLOEXEC) this backend wants on new sockets.
  virtual int socket_flags() const = 0;

  // Starts `op`. Returns true when it completed at once (op.result is set and the waiter will
  // not be scheduled); false when its completion will arrive later through poll().
  virtual bool start(IoOp& op) = 0;

  // Asks a started op to finish early. Its completion still arrives, with -ECANCELED or its
  // real result if it had already finished.
  virtual void cancel(IoOp& op) = 0;

  // For an op whose owner is going away: cancels it and processes completions until it is no
  // longer in flight. Its waiter is not scheduled.
  virtual void abandon(IoOp& op) = 0;

  // Submits queued work, waits up to `timeout` (nullopt: until something happens; zero: not
  // at all) and dispatches the completions that arrived.
  virtual void poll(std::optional<std::chrono::nanoseconds> timeout) = 0;

  // Thread-safe: makes a poll() blocked on the owning thread return soon.
  virtual void wake() = 0;

  // Forgets per-fd state before the fd is closed synchronously.
  virtual void forget_fd(int fd) = 0;

  virtual bool supports_multishot_accept() const { return false; }

  // Operations started and not yet completed.
  virtual size_t in_flight() const = 0;

  // Called once by the runtime that owns this backend: where completed ops' waiters go.
  void attach(ReadyQueue* ready) { ready_ = ready; }

 protected:
  ReadyQueue* ready_ = nullptr;
};

// Shared by both backends: a non-blocking read of whatever is available into `into`, using a
// scratch buffer so `into` grows only by what arrived. Returns bytes read, 0 at end of stream,
// or -errno (-EAGAIN when nothing is there).
int32_t read_available(int fd, IoBuffer& into, char* scratch, size_t scratch_size);

// The default completion: mark done and schedule the waiter (or run on_complete).
void complete_op(IoOp& op, ReadyQueue& ready);

}  // namespace monolake::runtime
