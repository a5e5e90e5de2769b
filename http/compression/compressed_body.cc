#include "http/compression/compressed_body.h"

namespace monolake::http::compression {

runtime::Task<Result<IoBuffer>> CompressedBody::read() {
  if (ended_) co_return IoBuffer();
  if (finished_) {  // the inner body's end, after the stream ended with its last byte
    Result<IoBuffer> rest = co_await inner_->read();
    if (!rest) co_return std::move(rest).error();
    if (!rest->empty()) {
      co_return Error(ErrorCode::kProtocol, "a response body longer than its Content-Length");
    }
    ended_ = true;
    co_return IoBuffer();
  }
  while (true) {
    Result<IoBuffer> piece = co_await inner_->read();
    if (!piece) co_return std::move(piece).error();
    IoBuffer out;
    if (piece->empty()) {
      finished_ = ended_ = true;
      if (Result<void> r = encoder_->finish(out); !r) co_return std::move(r).error();
      co_return out;  // the stream's end; the next read() returns the empty end of the body
    }
    if (left_ && piece->size() > *left_) {  // refused before a byte of the excess is sent
      co_return Error(ErrorCode::kProtocol, "a response body longer than its Content-Length");
    }
    if (left_ && piece->size() == *left_) {
      finished_ = true;
      if (Result<void> r = encoder_->finish_with(piece->view(), out); !r) {
        co_return std::move(r).error();
      }
      co_return out;
    }
    if (left_) *left_ -= piece->size();
    if (Result<void> r = encoder_->write(piece->view(), /*flush=*/true, out); !r) {
      co_return std::move(r).error();
    }
    if (!out.empty()) co_return out;
  }
}

}  // namespace monolake::http::compression
