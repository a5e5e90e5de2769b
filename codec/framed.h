// Framed<Stream, Codec>: drives a codec (codec.h) over a byte stream.
//
// Stream is anything with the shape of transport::Stream (transport::ByteStream, tls::TlsStream,
// a test double):
//   co_await s.read_some(IoBuffer&) -> Result<size_t>                (0 = end of stream)
//   co_await s.write_all(IoBuffer)  -> runtime::BufResult<size_t>
//
// Ownership: Framed borrows the stream (the caller keeps it alive and closes it) and owns the
// codec, the read buffer (bytes read but not yet decoded) and a write buffer reused between
// sends. One next() and one send() may be in flight at once (full duplex), never two of either.
// After next() returns an error the stream must be closed: the codec's verdict is final.
#pragma once

#include <optional>
#include <utility>

#include "base/buffer.h"
#include "base/error.h"
#include "base/result.h"
#include "codec/codec.h"
#include "runtime/io.h"
#include "runtime/task.h"

namespace monolake::codec {

template <class Stream, Codec C>
class Framed {
 public:
  using Frame = typename C::Frame;

  explicit Framed(Stream& stream, C codec = C()) : stream_(&stream), codec_(std::move(codec)) {}

  // The next frame; nullopt at a clean end of stream (the peer closed between frames). End of
  // stream inside a frame is a kProtocol error.
  runtime::Task<Result<std::optional<Frame>>> next() {
    while (true) {
      if (!read_.empty()) {
        Result<std::optional<Frame>> frame = codec_.decode(read_);
        if (!frame || frame->has_value()) {
          if (read_.empty()) read_.release();  // an idle connection keeps no buffer
          co_return frame;
        }
      }
      Result<size_t> n = co_await stream_->read_some(read_);
      if (!n) co_return std::move(n).error();
      if (*n == 0) {
        if (read_.empty()) co_return std::optional<Frame>();
        co_return Error(ErrorCode::kProtocol, "end of stream inside a frame");
      }
    }
  }

  // Encodes `frame` and writes all of it.
  runtime::Task<Result<void>> send(const Frame& frame) {
    write_.clear();
    codec_.encode(frame, write_);
    runtime::BufResult<size_t> written = co_await stream_->write_all(std::move(write_));
    write_ = std::move(written.buffer);
    write_.clear();
    if (!written.result) co_return std::move(written.result).error();
    co_return ok();
  }

  C& codec() { return codec_; }
  Stream& stream() { return *stream_; }
  // Bytes read past the last frame (e.g. to hand the connection to something else).
  IoBuffer& read_buffer() { return read_; }

 private:
  Stream* stream_;
  C codec_;
  IoBuffer read_;
  IoBuffer write_;
};

}  // namespace monolake::codec
