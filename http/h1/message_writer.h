// Writing one HTTP/1.1 message (head, then body framed by length or chunked) to a byte stream:
// shared by the server side (responses) and the client side (requests).
#pragma once

#include <string_view>

#include "base/buffer.h"
#include "base/result.h"
#include "http/body.h"
#include "http/h1/codec.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::http::h1 {

// An empty buffer with room for a head and, when the body is small and of known length, the
// body too, so both leave in one write.
IoBuffer head_buffer(const BodyFraming& framing);

// Writes `head` (an encoded head, from head_buffer()) and then `body` (nullptr: none) framed as
// `framing`: kLength as is (the length is checked: a body that differs from it is an error
// naming `what`), kChunked as chunks and a last chunk with the body's trailers. Every piece is
// written as it comes (the first with the head): holding small pieces back until more arrive
// would stall a trickling body.
runtime::Task<Result<void>> write_message(transport::ByteStream& stream, IoBuffer head, Body* body,
                                          const BodyFraming& framing, std::string_view what);

}  // namespace monolake::http::h1
