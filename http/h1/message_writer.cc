#include "http/h1/message_writer.h"

#include <string>

namespace monolake::http::h1 {

IoBuffer head_buffer(const BodyFraming& framing) {
  IoBuffer out;
  if (framing.kind == BodyFraming::Kind::kLength && framing.length <= 64 * 1024) {
    out.reserve(framing.length + 1024);
  }
  return out;
}

runtime::Task<Result<void>> write_message(transport::ByteStream& stream, IoBuffer out, Body* body,
                                          const BodyFraming& framing, std::string_view what) {
  if (!body) {
    auto [sent, rest] = co_await stream.write_all(std::move(out));
    if (!sent) co_return std::move(sent).error();
    co_return ok();
  }
  const bool chunked = framing.kind == BodyFraming::Kind::kChunked;
  uint64_t written = 0;
  while (true) {
    Result<IoBuffer> piece = co_await body->read();
    if (!piece) co_return std::move(piece).error();
    const bool end = piece->empty();
    if (!end) {
      written += piece->size();
      if (framing.kind == BodyFraming::Kind::kLength && written > framing.length) {
        // Never let bytes past the declared length reach the peer: they would be read as the
        // start of the next message.
        co_return Error(ErrorCode::kProtocol,
                        std::string(what) + " body longer than its Content-Length");
      }
      if (chunked) {
        write_chunk_header(piece->size(), out);
        out.append(piece->view());
        write_chunk_trailer(out);
      } else if (out.empty()) {
        out = std::move(*piece);
      } else {
        out.append(piece->view());
      }
    } else if (chunked) {
      write_last_chunk(body->trailers(), out);
    }
    if (!out.empty()) {
      auto [sent, rest] = co_await stream.write_all(std::move(out));
      if (!sent) co_return std::move(sent).error();
      out = IoBuffer();
    }
    if (end) break;
  }
  if (framing.kind == BodyFraming::Kind::kLength && written != framing.length) {
    co_return Error(ErrorCode::kProtocol,
                    std::string(what) + " body length differs from Content-Length");
  }
  co_return ok();
}

}  // namespace monolake::http::h1
