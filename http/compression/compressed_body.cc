#include "http/compression/compressed_body.h"

namespace monolake::http::compression {

runtime::Task<Result<IoBuffer>> CompressedBody::read() {
  if (finished_) co_return IoBuffer();
  while (true) {
    Result<IoBuffer> piece = co_await inner_->read();
    if (!piece) co_return std::move(piece).error();
    IoBuffer out;
    if (piece->empty()) {
      finished_ = true;
      if (Result<void> r = encoder_->finish(out); !r) co_return std::move(r).error();
      co_return out;  // the stream's end; the next read() returns the empty end of the body
    }
    if (Result<void> r = encoder_->write(piece->view(), /*flush=*/true, out); !r) {
      co_return std::move(r).error();
    }
    if (!out.empty()) co_return out;
  }
}

}  // namespace monolake::http::compression
