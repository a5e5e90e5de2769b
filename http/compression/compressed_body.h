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
  CompressedBody(std::unique_ptr<Body> inner, std::unique_ptr<Encoder> encoder)
      : inner_(std::move(inner)), encoder_(std::move(encoder)) {}
  runtime::Task<Result<IoBuffer>> read() override;
  std::optional<uint64_t> length() const override { return std::nullopt; }
  const HeaderMap* trailers() const override { return inner_->trailers(); }

 private:
  std::unique_ptr<Body> inner_;
  std::unique_ptr<Encoder> encoder_;
  bool finished_ = false;
};

}  // namespace monolake::http::compression
