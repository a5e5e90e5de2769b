// Zero-copy forwarding between two TCP sockets: splice(2) moves the bytes from one socket into
// a pipe and from the pipe into the other socket without copying them into user space (the
// pages received are handed on). copy_bidirectional (copy.h) uses it for each direction when
// CopyOptions::zero_copy is set and both sides are plain transport::Streams; TLS streams keep
// copying, since their bytes must pass through user space to be decrypted.
//
// The same code serves both backends: it waits for readiness with runtime::poll() and calls
// splice(2) itself, non-blocking. (io_uring's IORING_OP_SPLICE is not used: the kernel always
// runs it on an io-wq worker thread, a context switch per call, as IORING_OP_SHUTDOWN did.)
//
// Pipes: each thread keeps a pool of empty pipes. A direction takes one only once its socket
// has data and gives it back as soon as the pipe is drained, so an idle connection holds no
// pipe (and no buffer), as with copying. If no pipe can be made (out of descriptors), the
// direction goes back to copying through user space, and tries again at its next bulk read.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "runtime/task.h"
#include "transport/idle_watch.h"
#include "transport/stream.h"

namespace monolake::transport {

// Whether splice(2) may write to sockets in this thread: it cannot be told MSG_NOSIGNAL, so a
// write to a reset peer raises SIGPIPE, which by default ends the process. True if SIGPIPE is
// ignored or blocked (the monolake binary ignores it); copy_bidirectional copies otherwise.
bool splice_is_safe();

// splice(2) with a non-blocking socket returns EAGAIN instead of blocking the thread. The
// epoll backend's sockets are non-blocking already; io_uring's are not (io_uring does not need
// it), so this sets O_NONBLOCK there. The runtime's own operations work on either.
Result<void> prepare_for_splice(const Stream& stream);

// How splice_one_way stopped, other than by an error.
enum class SpliceEnd {
  kEndOfStream,  // `from` ended and `to`'s write side was shut down
  kNoPipe,       // no pipe could be made (out of descriptors): the caller copies what follows
};

// Moves bytes from `from` to `to` until end of stream on `from`, an error (returned;
// cancellation included) or a moment with data waiting and no pipe to be had. Adds the bytes
// moved to `bytes` and touches `idle` whenever some moved.
runtime::Task<Result<SpliceEnd>> splice_one_way(Stream& from, Stream& to, IdleWatch& idle,
                                                uint64_t& bytes);

// This thread's pipes: in use by a direction that is moving a chunk, and idle in the pool.
struct SplicePipes {
  size_t in_use = 0;
  size_t idle = 0;
};
SplicePipes splice_pipes();

// Closes this thread's idle pipes (two descriptors each); returns how many. Pipes in use are
// untouched. For a thread short of descriptors, and for tests that need an empty pool.
size_t close_idle_splice_pipes();

}  // namespace monolake::transport
