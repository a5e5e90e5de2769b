// copy_bidirectional: the L4 proxy's data path. Copies bytes both ways between two byte streams
// until both directions have ended. End of stream on one side is passed on as a half-close
// (shutdown of writing) to the other while the opposite direction keeps flowing. An error in
// either direction (reset, idle timeout, cancellation of the caller) stops both. Bytes moved
// each way are reported in every case.
//
// Works on any pair of streams with the shape of transport::Stream:
//   co_await s.read_some(IoBuffer&)  -> Result<size_t>        (0 = end of stream)
//   co_await s.write_all(IoBuffer)   -> BufResult<size_t>
//   co_await s.shutdown_write()      -> Result<void>
// so a TLS stream (tls::TlsStream) can be copied to a plain one.
//
// Memory: each direction holds at most one read buffer. After a small read it frees it, so a
// connection that goes idle after requests and replies costs no buffer memory (read_some parks
// without one); after a bulk read (kBulkRead) it keeps it for the next read, also if that read
// then waits. With CopyOptions::zero_copy between two plain Streams a bulk direction switches
// to splice(2) and frees its buffer: it holds a pipe instead, only while it moves a chunk
// (splice.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "base/buffer.h"
#include "base/error.h"
#include "base/result.h"
#include "runtime/cancel.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/time.h"
#include "transport/idle_watch.h"
#include "transport/splice.h"
#include "transport/stream.h"

namespace monolake::transport {

struct CopyResult {
  uint64_t a_to_b = 0;
  uint64_t b_to_a = 0;
  std::optional<Error> error;  // the first error, if any direction failed
};

struct CopyOptions {
  // Ends the copy (error kTimeout) when no byte has moved either way for this long.
  std::optional<std::chrono::nanoseconds> idle_timeout;
  // Between two plain Streams: a direction that carries bulk data (a read of kBulkRead or
  // more) moves the rest with splice(2) through a pipe instead of copying it through user
  // space (splice.h). Ignored for any other pair (TLS streams).
  // Only where splice_is_safe() (SIGPIPE ignored or blocked; monolake ignores it).
  bool zero_copy = false;
};

namespace detail {

template <class From, class To>
struct Pump {
  From* from;
  To* to;
  IdleWatch* idle;
  bool zero_copy = false;
  uint64_t bytes = 0;
};

template <class From, class To>
constexpr bool kSpliceable = std::is_same_v<From, Stream>&& std::is_same_v<To, Stream>;

// A read at least this large says the direction carries bulk data: more is likely waiting,
// so the buffer is kept for the next read, and with zero_copy the direction switches to
// splice(2). Smaller reads (requests, replies, interactive traffic) free the buffer at once, so
// an idle connection keeps none, and a short connection never pays for a pipe.
inline constexpr size_t kBulkRead = 32 * 1024;

// Copies one direction until end of stream (then half-closes the writer) or an error. On
// error it cancels the opposite direction through `opposite` (if given).
template <class From, class To>
runtime::Task<Result<void>> pump(Pump<From, To>* p, runtime::CancelState* opposite) {
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await p->from->read_some(buffer);
    if (!n || *n == 0) {
      if (n) {
        (void)co_await p->to->shutdown_write();
        co_return ok();
      }
      if (opposite) opposite->cancel();
      co_return std::move(n).error();
    }
    auto [written, rest] = co_await p->to->write_all(std::move(buffer));
    buffer = std::move(rest);
    if (!written) {
      if (opposite) opposite->cancel();
      co_return std::move(written).error();
    }
    p->bytes += *written;
    p->idle->touch();
    if (*n < kBulkRead) {
      buffer.release();
      continue;
    }
    // Freeing and allocating 64 KiB per read costs more than the copy: glibc trims a thread
    // arena's heap (madvise) when such a block is freed at its top, and the next allocation
    // faults the pages in again (strace: 4 madvise calls per MiB moved; bench/README.md).
    buffer.clear();
    if constexpr (kSpliceable<From, To>) {
      // zero_copy is only set once both sockets were made ready for splice(2).
      if (p->zero_copy) {
        buffer.release();
        Result<SpliceEnd> spliced = co_await splice_one_way(*p->from, *p->to, *p->idle, p->bytes);
        if (!spliced) {
          if (opposite) opposite->cancel();
          co_return std::move(spliced).error();
        }
        if (*spliced == SpliceEnd::kEndOfStream) co_return ok();
        // No pipe to be had: copy on; the next bulk read tries splice(2) again.
      }
    }
  }
}

}  // namespace detail

template <class A, class B>
runtime::Task<CopyResult> copy_bidirectional(A& a, B& b, CopyOptions options = {}) {
  // Cancelling the caller cancels the forward pump; the forward pump's failure (including that
  // cancellation) cancels the backward one, and the backward one's failure the forward one.
  runtime::CancelState forward_cancel;
  runtime::CancelLink link(co_await runtime::current_cancel_state{}, &forward_cancel);
  IdleWatch idle;
  idle.limit = options.idle_timeout.value_or(std::chrono::nanoseconds(0));
  idle.stop = &forward_cancel;
  idle.touch();
  bool zero_copy = false;
  if constexpr (detail::kSpliceable<A, B>) {
    zero_copy =
        options.zero_copy && splice_is_safe() && prepare_for_splice(a) && prepare_for_splice(b);
  }
  detail::Pump<A, B> forward{&a, &b, &idle, zero_copy};
  detail::Pump<B, A> backward{&b, &a, &idle, zero_copy};
  auto back = runtime::spawn_with_handle(detail::pump(&backward, &forward_cancel));
  runtime::Task<Result<void>> fwd = detail::pump(&forward, nullptr);
  fwd.set_cancel_state(&forward_cancel);
  Result<void> forward_result = co_await std::move(fwd);
  if (!forward_result || forward_cancel.cancelled()) {
    back.cancel();
  } else {
    // The forward direction ended cleanly; the caller's cancellation (which the link delivers
    // to forward_cancel) must now stop the backward one.
    forward_cancel.set_handler([](void* handle) { static_cast<decltype(back)*>(handle)->cancel(); },
                               &back);
  }
  Result<void> backward_result = co_await back;
  forward_cancel.clear_handler();
  idle.deadline.disarm();

  CopyResult result;
  result.a_to_b = forward.bytes;
  result.b_to_a = backward.bytes;
  // Report the failure that started it: a direction that was only cancelled because the other
  // one failed is not the cause.
  const bool forward_failed = !forward_result;
  const bool backward_failed = !backward_result;
  if (idle.fired) {
    result.error = Error(ErrorCode::kTimeout, "idle timeout");
  } else if (forward_failed &&
             (!backward_failed || forward_result.error().code() != ErrorCode::kCancelled)) {
    result.error = std::move(forward_result).error();
  } else if (backward_failed) {
    result.error = std::move(backward_result).error();
  }
  co_return result;
}

}  // namespace monolake::transport
