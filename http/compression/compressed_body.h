// CompressedBody: a response body passed through an Encoder as it streams. Each piece the
// inner body yields is compressed and flushed, so a streamed response (server-sent events, a
// slow upstream) reaches the client as it comes; nothing is buffered but the encoder's window.
// Its length is unknown (the response goes chunked on HTTP/1.1); the inner body's trailers
// pass through.
#pragma once

#include <memory>

#include "http/body.h"
#include "http/compression/encoder.h"

namespace monolake::http::compression {

class CompressedBody final : public Body {
 public:
  // With a known inner length, the piece that completes it is compressed and the stream ended
  // in one call (Encoder::finish_with), and the inner body's end is read after.
  CompressedBody(std::unique_ptr<Body> inner, std::unique_ptr<Encoder> encoder)
      : inner_(std::move(inner)), encoder_(std::move(encoder)), left_(inner_->length()) {}
  runtime::Task<Result<IoBuffer>> read() override;
  std::optional<uint64_t> length() const override { return std::nullopt; }
  const HeaderMap* trailers() const override { return inner_->trailers(); }

 private:
  std::unique_ptr<Body> inner_;
  std::unique_ptr<Encoder> encoder_;
  std::optional<uint64_t> left_;  // of the inner body, when its length is known
  bool finished_ = false;         // the compressed stream has ended
  bool ended_ = false;            // and so has the inner body
};

}  // namespace monolake::http::compression
