// codec/: framing with no I/O. A codec turns bytes in an owned buffer (base/buffer.h) into
// frames and frames back into bytes; it never reads or writes a socket, so every codec can be
// tested whole and split at every byte, and fuzzed. framed.h drives one over a stream.
//
// The contract, checked at compile time by the concepts below:
//
//   Result<std::optional<Frame>> decode(IoBuffer& in)
//     - a frame:   its bytes are consumed from the front of `in`; what follows stays there.
//     - nullopt:   `in` holds no whole frame yet; nothing consumed. Call again with more bytes
//                  appended (the codec may remember what it has already checked).
//     - an error:  the input is malformed (or over a limit). The stream is unusable from here:
//                  the connection must be closed. `in` is left as it was.
//   void encode(const Frame& frame, IoBuffer& out)
//     - appends the frame's bytes to `out`.
//
// Ownership: `in` and `out` belong to the caller; a decoded Frame owns its data (it keeps no
// view into `in`), so the caller may reuse or release the buffer at once.
#pragma once

#include <concepts>
#include <optional>

#include "base/buffer.h"
#include "base/result.h"

namespace monolake::codec {

template <class C>
concept Decoder = requires(C& c, IoBuffer& in) {
  typename C::Frame;
  { c.decode(in) } -> std::same_as<Result<std::optional<typename C::Frame>>>;
};

template <class C>
concept Encoder = requires(C& c, const typename C::Frame& frame, IoBuffer& out) {
  { c.encode(frame, out) } -> std::same_as<void>;
};

template <class C>
concept Codec = Decoder<C> && Encoder<C>;

}  // namespace monolake::codec
