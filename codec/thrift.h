// Thrift framing (no I/O): the framed and THeader transports, and the message header (method
// name, message type, sequence id) of the binary and compact protocols, read without decoding
// the payload so routing and logging can use them and a proxy can forward the raw bytes.
//
// Wire formats (every integer big-endian):
//   framed:   u32 length N (excludes itself) | message (N bytes)
//   THeader:  u32 length N | u16 magic 0x0FFF | u16 flags | u32 seq id | u16 header size in
//             4-byte words | header: varint protocol id (0 binary, 2 compact), varint transform
//             count, that many varint transform ids, info blocks (varint info id; 1 and 2 =
//             key-value: varint count, then count x (varint-length key, varint-length value)),
//             zero padding | message (to the end of N)     (Monolake's "TTHeader")
//   binary message header, strict:  0x80 0x01 0x00 type | i32 name length | name | i32 seqid
//                          old:     i32 name length | name | u8 type | i32 seqid
//   compact message header:  0x82 | type << 5 | version 1 | varint seqid | varint name length |
//                            name
//
// The transport and protocol are detected from the first bytes of each frame; Codec rejects a
// frame whose transport differs from the connection's first one, or (framed) whose protocol
// does (a THeader frame names its protocol, and Apache Thrift's peers switch it mid-connection).
// Unframed (bare) Thrift, the JSON protocol, THeader transforms (compression) and frames over
// Limits::max_frame_size are errors; so is anything malformed (bad magic, a length with the top bit
// set or 0, truncated headers, an unknown protocol id, a varint longer than 5 bytes, a bad message
// type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "codec/codec.h"

namespace monolake::codec::thrift {

enum class Transport : uint8_t { kFramed, kHeader };
enum class Protocol : uint8_t { kBinary, kCompact };
enum class MessageType : uint8_t { kCall = 1, kReply = 2, kException = 3, kOneway = 4 };

std::string_view transport_name(Transport t);  // "framed", "header"
std::string_view protocol_name(Protocol p);    // "binary", "compact"
std::string_view message_type_name(MessageType t);

struct Limits {
  size_t max_frame_size = 16 * 1024 * 1024;  // the length field's value; larger: kLimitExceeded
};

// One frame, as received. It owns its bytes.
struct Frame {
  Transport transport = Transport::kFramed;
  Protocol protocol = Protocol::kBinary;
  // The whole frame as on the wire, length prefix included: forward it as is.
  std::string wire;
  std::string method;
  MessageType type = MessageType::kCall;
  int32_t seqid = 0;
  // THeader only.
  uint16_t header_flags = 0;
  uint32_t header_seqid = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // info key-values, in order

  // Where things are in `wire` (set by the decoder, kept up to date by set_seqid).
  size_t message_offset = 0;  // first byte of the message (after the transport headers)
  size_t seqid_offset = 0;    // the message's seqid field
  size_t seqid_size = 0;      // 4 (binary) or the varint's length (compact)
};

// What the first bytes of a frame say. nullopt: fewer than 6 bytes (and no verdict yet); an
// error if they already show the input is not Thrift we accept.
struct Kind {
  Transport transport;
  Protocol protocol;
  uint32_t length;  // the frame's length field
};
Result<std::optional<Kind>> detect(std::string_view bytes, const Limits& limits = {});

// Parses one whole frame (`bytes` is exactly the frame, length prefix included).
Result<Frame> parse_frame(std::string_view bytes, const Limits& limits = {});

// Rewrites the message's sequence id in `frame.wire` (and frame.seqid). A compact varint that
// changes length (set_seqid writes the shortest form) is spliced and the length prefix fixed; a
// THeader frame's header seq id is set to the same value (Thrift's own transports keep them equal).
void set_seqid(Frame& frame, int32_t seqid);

// The codec (codec.h): frames from a connection's bytes, raw bytes back out.
class Codec {
 public:
  using Frame = thrift::Frame;
  explicit Codec(const Limits& limits = {}) : limits_(limits) {}

  Result<std::optional<Frame>> decode(IoBuffer& in);
  void encode(const Frame& frame, IoBuffer& out) { out.append(frame.wire); }

  // The transport and protocol of the connection's first frame, once decoded.
  const std::optional<std::pair<Transport, Protocol>>& kind() const { return kind_; }

 private:
  Limits limits_;
  std::optional<std::pair<Transport, Protocol>> kind_;
};
static_assert(codec::Codec<Codec>);

}  // namespace monolake::codec::thrift
