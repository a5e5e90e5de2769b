// RESP2 (the Redis serialization protocol) framing for the custom_protocol example, as a codec
// (codec/codec.h): a frame is the raw bytes of one complete RESP value, so the proxy can pass
// replies through without interpreting them.
//
//   +OK\r\n   -ERR x\r\n   :42\r\n   $3\r\nfoo\r\n   $-1\r\n   *2\r\n$1\r\na\r\n:1\r\n   *-1\r\n
//
// With `inline_commands` (the client side) a line that does not start with a RESP type byte is
// an inline command ("PING\r\n"), as redis-server accepts. Every length is bounded (Limits);
// anything malformed or over a limit is a kProtocol error, and the connection is closed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"

namespace example {

struct RespLimits {
  size_t max_bulk_bytes = 16 << 20;  // one bulk string ($)
  size_t max_elements = 1024;        // one array (*)
  size_t max_depth = 8;              // arrays within arrays
  size_t max_line = 64 << 10;        // a simple string, error, integer or inline command line
};

class RespCodec {
 public:
  using Frame = std::string;
  explicit RespCodec(RespLimits limits = {}, bool inline_commands = false)
      : limits_(limits), inline_commands_(inline_commands) {}

  monolake::Result<std::optional<Frame>> decode(monolake::IoBuffer& in);
  void encode(const Frame& frame, monolake::IoBuffer& out);

 private:
  RespLimits limits_;
  bool inline_commands_;
};

// The arguments of a request frame: an array of bulk strings, or an inline command's words.
monolake::Result<std::vector<std::string>> command_arguments(const std::string& frame);

}  // namespace example
