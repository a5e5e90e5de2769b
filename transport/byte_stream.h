// ByteStream: a connected byte stream behind one interface, whatever carries it (plain TCP or
// Unix socket, TLS). Protocol code that must not care (the HTTP/1 connection code) works on a
// ByteStream&; transport::copy_bidirectional stays a template for the L4 path.
//
// Ownership: a ByteStreamOf<S> owns its S. One read and one write may be in flight at once
// (full duplex); never two reads or two writes.
#pragma once

#include <utility>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::transport {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Waits for data and appends it to `into`. 0 = end of stream.
  virtual runtime::Task<Result<size_t>> read_some(IoBuffer& into) = 0;
  // Writes all of `buffer`.
  virtual runtime::Task<runtime::BufResult<size_t>> write_all(IoBuffer buffer) = 0;
  // Half-close: the peer reads end of stream (TLS: close_notify first).
  virtual runtime::Task<Result<void>> shutdown_write() = 0;
  // The socket under it (for addresses and socket options).
  virtual Stream& socket() = 0;
};

// Adapts any stream with the shape of transport::Stream (read_some, write_all,
// shutdown_write; a `transport()` accessor for wrapped ones, else it is the socket itself).
template <class S>
class ByteStreamOf final : public ByteStream {
 public:
  explicit ByteStreamOf(S stream) : stream_(std::move(stream)) {}
  runtime::Task<Result<size_t>> read_some(IoBuffer& into) override {
    co_return co_await stream_.read_some(into);
  }
  runtime::Task<runtime::BufResult<size_t>> write_all(IoBuffer buffer) override {
    co_return co_await stream_.write_all(std::move(buffer));
  }
  runtime::Task<Result<void>> shutdown_write() override {
    co_return co_await stream_.shutdown_write();
  }
  Stream& socket() override {
    if constexpr (std::is_same_v<S, Stream>) {
      return stream_;
    } else {
      return stream_.transport();
    }
  }
  S& get() { return stream_; }

 private:
  S stream_;
};

}  // namespace monolake::transport
