// Prefixed<S>: a borrowed stream read with some bytes first — bytes that code before it read
// from the same stream and did not use (a connection layer that read ahead of a PROXY protocol
// header, say). It has the shape of transport::Stream (read_some, write_all, shutdown_write,
// transport()), so it goes wherever one does: codec::Framed, ByteStreamOf, the TLS handshake.
//
// Ownership: borrows `stream` (the caller keeps it alive), owns the prefix. One read and one
// write may be in flight at once, as on the stream itself.
#pragma once

#include <type_traits>
#include <utility>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::transport {

template <class S>
class Prefixed {
 public:
  Prefixed(S& stream, IoBuffer prefix) : stream_(&stream), prefix_(std::move(prefix)) {}

  // The prefix first (all of it at once), then what the stream reads.
  runtime::Task<Result<size_t>> read_some(IoBuffer& into) {
    if (!prefix_.empty()) {
      const size_t n = prefix_.size();
      into.append(prefix_.view());
      prefix_.release();
      co_return n;
    }
    co_return co_await stream_->read_some(into);
  }
  runtime::Task<runtime::BufResult<size_t>> write_all(IoBuffer buffer) {
    co_return co_await stream_->write_all(std::move(buffer));
  }
  runtime::Task<Result<void>> shutdown_write() { co_return co_await stream_->shutdown_write(); }

  // The socket under it.
  Stream& transport() {
    if constexpr (std::is_same_v<S, Stream>) {
      return *stream_;
    } else {
      return stream_->transport();
    }
  }
  // Bytes not yet read from the prefix.
  const IoBuffer& prefix() const { return prefix_; }

 private:
  S* stream_;
  IoBuffer prefix_;
};

}  // namespace monolake::transport
