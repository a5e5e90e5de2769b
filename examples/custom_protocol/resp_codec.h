// RESP2 (the Redis serialization protocol) framing for the custom_protocol example, as a codec
// (codec/codec.h): a frame is the raw bytes of one complete RESP value, so the proxy can pass
// replies through without interpreting them.
//
//   +OK\r\n   -ERR x\r\n   :42\r\n   $3\r\nfoo\r\n   $-1\r\n   *2\r\n$1\r\na\r\n:1\r\n   *-1\r\n
//
// With `inline_commands` (the client side) a line that does not start with a RESP type byte is
// an inline command ("PING\r\n"), as redis-server accepts. Every length is bounded (RespLimits);
// anything malformed or over a limit is a kProtocol error, and the connection is closed.
//
// The decoder remembers how far it has checked the frame it is in (codec.h allows it), so a
// large array arriving in many reads is scanned once, not once per read. Between a decode()
// that returned nullopt and the next one, `in` may only have bytes appended.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"

namespace example {

struct RespLimits {
  size_t max_bulk_bytes = 16 << 20;   // one bulk string ($)
  size_t max_frame_bytes = 64 << 20;  // one whole value, everything nested in it included
  size_t max_elements = 1024;         // one array (*)
  size_t max_depth = 8;               // arrays within arrays (1: a flat array)
  size_t max_line = 64 << 10;         // a simple string, error, integer or inline command line
};

class RespCodec {
 public:
  using Frame = std::string;
  explicit RespCodec(RespLimits limits = {}, bool inline_commands = false)
      : limits_(limits), inline_commands_(inline_commands) {}

  monolake::Result<std::optional<Frame>> decode(monolake::IoBuffer& in);
  void encode(const Frame& frame, monolake::IoBuffer& out);

 private:
  void reset() {
    checked_ = 0;
    open_.clear();
  }

  RespLimits limits_;
  bool inline_commands_;
  // The frame in progress: bytes from the front of `in` already checked (whole values and
  // array headers), and how many elements each array open at that point still expects.
  size_t checked_ = 0;
  std::vector<size_t> open_;
};

// The arguments of a request frame: an array of bulk strings, or an inline command's words
// (split at spaces and tabs; no quoting). Empty for `*0`, `*-1` and a blank inline line, which
// redis-server ignores without a reply. An error for any other frame.
monolake::Result<std::vector<std::string>> command_arguments(const std::string& frame);

}  // namespace example
