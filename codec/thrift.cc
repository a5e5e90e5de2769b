#include "codec/thrift.h"

#include <cstring>

namespace monolake::codec::thrift {
namespace {

constexpr uint16_t kHeaderMagic = 0x0FFF;
constexpr size_t kHeaderFixed = 14;  // length, magic, flags, seq id, header size
constexpr uint8_t kCompactId = 0x82;
constexpr uint8_t kCompactVersion = 1;
constexpr uint32_t kHeaderProtocolBinary = 0;
constexpr uint32_t kHeaderProtocolCompact = 2;
constexpr uint32_t kInfoKeyValue = 1;
constexpr uint32_t kInfoPersistentKeyValue = 2;

Error malformed(std::string message) { return Error(ErrorCode::kProtocol, std::move(message)); }

uint32_t be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
uint16_t be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
void put_be32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

std::string varint32(uint32_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

// A bounds-checked reader over one frame: every read past the end is "truncated".
class Reader {
 public:
  Reader(std::string_view bytes, size_t pos, size_t end) : bytes_(bytes), pos_(pos), end_(end) {}
  size_t pos() const { return pos_; }
  size_t left() const { return end_ - pos_; }

  Result<uint32_t> u32(const char* what) {
    if (left() < 4) return truncated(what);
    const uint32_t v = be32(bytes_.data() + pos_);
    pos_ += 4;
    return v;
  }
  Result<uint8_t> u8(const char* what) {
    if (left() < 1) return truncated(what);
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  // Unsigned LEB128, at most 5 bytes, no bits above 32.
  Result<uint32_t> varint(const char* what) {
    uint32_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (left() < 1) return truncated(what);
      const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
      if (i == 4 && b > 0x0f) return malformed(std::string("bad varint: ") + what);
      v |= uint32_t{b & 0x7fu} << (7 * i);
      if (!(b & 0x80)) return v;
    }
    return malformed(std::string("bad varint: ") + what);
  }
  Result<std::string> bytes(uint64_t n, const char* what) {
    if (left() < n) return truncated(what);
    std::string out(bytes_.substr(pos_, n));
    pos_ += n;
    return out;
  }

 private:
  Error truncated(const char* what) { return malformed(std::string("truncated ") + what); }
  std::string_view bytes_;
  size_t pos_;
  size_t end_;
};

Result<MessageType> message_type(uint32_t t) {
  if (t < 1 || t > 4) return malformed("bad message type " + std::to_string(t));
  return static_cast<MessageType>(t);
}

// Reads the message header at r's position into `frame`.
Result<void> parse_message(Reader& r, Protocol protocol, Frame& frame) {
  if (protocol == Protocol::kCompact) {
    Result<uint8_t> id = r.u8("message header");
    if (!id) return std::move(id).error();
    if (*id != kCompactId) return malformed("bad compact protocol id");
    Result<uint8_t> vt = r.u8("message header");
    if (!vt) return std::move(vt).error();
    if ((*vt & 0x1f) != kCompactVersion) return malformed("bad compact protocol version");
    Result<MessageType> type = message_type(*vt >> 5);
    if (!type) return std::move(type).error();
    frame.type = *type;
    frame.seqid_offset = r.pos();
    Result<uint32_t> seqid = r.varint("seqid");
    if (!seqid) return std::move(seqid).error();
    frame.seqid_size = r.pos() - frame.seqid_offset;
    frame.seqid = static_cast<int32_t>(*seqid);
    Result<uint32_t> len = r.varint("method name length");
    if (!len) return std::move(len).error();
    Result<std::string> name = r.bytes(*len, "method name");
    if (!name) return std::move(name).error();
    frame.method = std::move(*name);
    return ok();
  }
  Result<uint32_t> first = r.u32("message header");
  if (!first) return std::move(first).error();
  uint32_t type_value = 0;
  if (*first & 0x80000000u) {  // strict: version and type, then the name
    if ((*first & 0xffff0000u) != 0x80010000u) return malformed("bad binary protocol version");
    type_value = *first & 0xff;
    Result<uint32_t> len = r.u32("method name length");
    if (!len) return std::move(len).error();
    if (*len & 0x80000000u) return malformed("negative method name length");
    Result<std::string> name = r.bytes(*len, "method name");
    if (!name) return std::move(name).error();
    frame.method = std::move(*name);
  } else {  // old form: the name, then the type
    Result<std::string> name = r.bytes(*first, "method name");
    if (!name) return std::move(name).error();
    frame.method = std::move(*name);
    Result<uint8_t> type = r.u8("message type");
    if (!type) return std::move(type).error();
    type_value = *type;
  }
  Result<MessageType> type = message_type(type_value);
  if (!type) return std::move(type).error();
  frame.type = *type;
  frame.seqid_offset = r.pos();
  Result<uint32_t> seqid = r.u32("seqid");
  if (!seqid) return std::move(seqid).error();
  frame.seqid_size = 4;
  frame.seqid = static_cast<int32_t>(*seqid);
  return ok();
}

Result<Protocol> header_protocol(uint32_t id) {
  if (id == kHeaderProtocolBinary) return Protocol::kBinary;
  if (id == kHeaderProtocolCompact) return Protocol::kCompact;
  return malformed("unknown THeader protocol id " + std::to_string(id));
}

// Parses the THeader header section (after the fixed part) into `frame`; returns the protocol.
Result<Protocol> parse_header(std::string_view bytes, size_t end, Frame& frame) {
  Reader r(bytes, kHeaderFixed, end);
  Result<uint32_t> id = r.varint("THeader protocol id");
  if (!id) return std::move(id).error();
  Result<Protocol> protocol = header_protocol(*id);
  if (!protocol) return protocol;
  Result<uint32_t> transforms = r.varint("THeader transform count");
  if (!transforms) return std::move(transforms).error();
  for (uint32_t i = 0; i < *transforms; ++i) {
    Result<uint32_t> t = r.varint("THeader transform id");
    if (!t) return std::move(t).error();
  }
  // Compressed payloads cannot be read (nor forwarded with a rewritten seqid).
  if (*transforms > 0) return Error(ErrorCode::kUnsupported, "THeader transforms");
  while (r.left() > 0) {
    Result<uint32_t> info = r.varint("THeader info id");
    if (!info) return std::move(info).error();
    if (*info == 0) break;  // padding
    if (*info != kInfoKeyValue && *info != kInfoPersistentKeyValue) {
      break;  // an info block we do not know: its length is unknown, so stop (as Thrift does)
    }
    Result<uint32_t> count = r.varint("THeader key-value count");
    if (!count) return std::move(count).error();
    for (uint32_t i = 0; i < *count; ++i) {
      Result<uint32_t> klen = r.varint("THeader key length");
      if (!klen) return std::move(klen).error();
      Result<std::string> key = r.bytes(*klen, "THeader key");
      if (!key) return std::move(key).error();
      Result<uint32_t> vlen = r.varint("THeader value length");
      if (!vlen) return std::move(vlen).error();
      Result<std::string> value = r.bytes(*vlen, "THeader value");
      if (!value) return std::move(value).error();
      frame.headers.emplace_back(std::move(*key), std::move(*value));
    }
  }
  return protocol;
}

}  // namespace

std::string_view transport_name(Transport t) {
  return t == Transport::kHeader ? "header" : "framed";
}
std::string_view protocol_name(Protocol p) {
  return p == Protocol::kCompact ? "compact" : "binary";
}
std::string_view message_type_name(MessageType t) {
  switch (t) {
    case MessageType::kCall:
      return "call";
    case MessageType::kReply:
      return "reply";
    case MessageType::kException:
      return "exception";
    case MessageType::kOneway:
      return "oneway";
  }
  return "?";
}

Result<std::optional<Kind>> detect(std::string_view bytes, const Limits& limits) {
  if (bytes.size() < 4) return std::optional<Kind>();
  const uint32_t length = be32(bytes.data());
  if (length & 0x80000000u) {
    // Also what unframed binary Thrift (0x80 0x01 ...) looks like.
    return malformed("negative frame length (unframed Thrift is not supported)");
  }
  if (length > limits.max_frame_size) {
    return Error(ErrorCode::kLimitExceeded, "frame of " + std::to_string(length) + " bytes");
  }
  if (length < 4) return malformed("frame too short");
  if (bytes.size() < 6) return std::optional<Kind>();
  const uint8_t b0 = static_cast<uint8_t>(bytes[4]);
  if (be16(bytes.data() + 4) == kHeaderMagic) {
    if (length < kHeaderFixed - 4) return malformed("truncated THeader");
    const size_t end = std::min<size_t>(bytes.size(), size_t{4} + length);
    if (end < kHeaderFixed) return std::optional<Kind>();
    Reader r(bytes, kHeaderFixed, end);
    Result<uint32_t> id = r.varint("THeader protocol id");
    if (!id) {
      if (end == size_t{4} + length) return std::move(id).error();
      if (id.error().message().rfind("truncated", 0) == 0) return std::optional<Kind>();
      return std::move(id).error();
    }
    Result<Protocol> protocol = header_protocol(*id);
    if (!protocol) return std::move(protocol).error();
    return Kind{Transport::kHeader, *protocol, length};
  }
  if (b0 == kCompactId) return Kind{Transport::kFramed, Protocol::kCompact, length};
  if (b0 == 0x80) {
    if (static_cast<uint8_t>(bytes[5]) != 0x01) return malformed("bad binary protocol version");
    return Kind{Transport::kFramed, Protocol::kBinary, length};
  }
  if (b0 & 0x80) return malformed("not Thrift (bad first message byte)");
  return Kind{Transport::kFramed, Protocol::kBinary, length};  // old non-strict binary
}

Result<Frame> parse_frame(std::string_view bytes, const Limits& limits) {
  Result<std::optional<Kind>> kind = detect(bytes, limits);
  if (!kind) return std::move(kind).error();
  if (!kind->has_value() || bytes.size() != size_t{4} + (*kind)->length) {
    return malformed("truncated frame");
  }
  const Kind k = **kind;
  Frame frame;
  frame.transport = k.transport;
  frame.protocol = k.protocol;
  size_t message = 4;
  if (k.transport == Transport::kHeader) {
    frame.header_flags = be16(bytes.data() + 6);
    frame.header_seqid = be32(bytes.data() + 8);
    const size_t header_bytes = size_t{be16(bytes.data() + 12)} * 4;
    if (header_bytes > bytes.size() - kHeaderFixed) return malformed("THeader header too long");
    message = kHeaderFixed + header_bytes;
    Result<Protocol> protocol = parse_header(bytes, message, frame);
    if (!protocol) return std::move(protocol).error();
  }
  frame.message_offset = message;
  Reader r(bytes, message, bytes.size());
  Result<void> parsed = parse_message(r, k.protocol, frame);
  if (!parsed) return std::move(parsed).error();
  frame.wire = std::string(bytes);
  return frame;
}

void set_seqid(Frame& frame, int32_t seqid) {
  const uint32_t v = static_cast<uint32_t>(seqid);
  if (frame.protocol == Protocol::kBinary) {
    put_be32(frame.wire.data() + frame.seqid_offset, v);
  } else {
    const std::string encoded = varint32(v);
    frame.wire.replace(frame.seqid_offset, frame.seqid_size, encoded);
    frame.seqid_size = encoded.size();
    put_be32(frame.wire.data(), static_cast<uint32_t>(frame.wire.size() - 4));
  }
  if (frame.transport == Transport::kHeader) {
    put_be32(frame.wire.data() + 8, v);
    frame.header_seqid = v;
  }
  frame.seqid = seqid;
}

Result<std::optional<Frame>> Codec::decode(IoBuffer& in) {
  Result<std::optional<Kind>> kind = detect(in.view(), limits_);
  if (!kind) return std::move(kind).error();
  if (!kind->has_value()) return std::optional<Frame>();
  const size_t size = size_t{4} + (*kind)->length;
  if (in.size() < size) return std::optional<Frame>();
  Result<Frame> frame = parse_frame(in.view().substr(0, size), limits_);
  if (!frame) return std::move(frame).error();
  const std::pair<Transport, Protocol> k{frame->transport, frame->protocol};
  // THeader names the protocol in each frame, and Apache Thrift's peers do switch (its C++
  // THeader server answers a compact call in binary, and its client then calls in binary).
  if (kind_ &&
      (kind_->first != k.first || (k.first == Transport::kFramed && kind_->second != k.second))) {
    return malformed("frame of another transport or protocol than the connection's first");
  }
  kind_ = k;
  in.consume(size);
  return std::optional<Frame>(std::move(*frame));
}

}  // namespace monolake::codec::thrift
