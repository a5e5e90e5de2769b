#include "codec/thrift.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace monolake::codec::thrift {
namespace {

using namespace std::string_literals;

// --- building frames by hand ------------------------------------------------------------------

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string varint(uint32_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

std::string binary_msg(const std::string& name, MessageType type, int32_t seqid,
                       const std::string& payload = "\x00"s) {
  return "\x80\x01\x00"s + static_cast<char>(type) + be32(name.size()) + name +
         be32(static_cast<uint32_t>(seqid)) + payload;
}
std::string old_binary_msg(const std::string& name, MessageType type, int32_t seqid) {
  return be32(name.size()) + name + static_cast<char>(type) + be32(static_cast<uint32_t>(seqid)) +
         "\x00"s;
}
std::string compact_msg(const std::string& name, MessageType type, int32_t seqid,
                        const std::string& payload = "\x00"s) {
  return "\x82"s + static_cast<char>((static_cast<int>(type) << 5) | 1) +
         varint(static_cast<uint32_t>(seqid)) + varint(name.size()) + name + payload;
}
std::string framed(const std::string& message) { return be32(message.size()) + message; }

struct HeaderSpec {
  uint32_t protocol_id = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<uint32_t> transforms;
  uint16_t flags = 0;
  uint32_t seqid = 0;
  std::string extra_info;  // raw bytes appended after the key-values (before padding)
};
std::string theader(const HeaderSpec& spec, const std::string& message) {
  std::string h = varint(spec.protocol_id) + varint(spec.transforms.size());
  for (uint32_t t : spec.transforms) h += varint(t);
  if (!spec.headers.empty()) {
    h += varint(1) + varint(spec.headers.size());
    for (const auto& [k, v] : spec.headers) h += varint(k.size()) + k + varint(v.size()) + v;
  }
  h += spec.extra_info;
  while (h.size() % 4) h += '\0';
  const std::string body = be16(0x0FFF) + be16(spec.flags) + be32(spec.seqid) +
                           be16(static_cast<uint16_t>(h.size() / 4)) + h + message;
  return be32(body.size()) + body;
}

// --- feeding a codec as a connection does -----------------------------------------------------

std::string describe(const Frame& f) {
  std::string out = std::string(transport_name(f.transport)) + "/" +
                    std::string(protocol_name(f.protocol)) + " " + f.method + " " +
                    std::string(message_type_name(f.type)) + " seqid=" + std::to_string(f.seqid) +
                    " bytes=" + std::to_string(f.wire.size());
  if (f.transport == Transport::kHeader) {
    out += " flags=" + std::to_string(f.header_flags) + " hseq=" + std::to_string(f.header_seqid);
    for (const auto& [k, v] : f.headers) out += " [" + k + "]=[" + v + "]";
  }
  return out;
}

// Appends the input to a buffer in pieces ending at `cuts`, decoding after each; returns every
// frame and the final verdict as text. Checks the contract on the way.
std::string run(const std::string& wire, const std::vector<size_t>& cuts, Limits limits = {}) {
  Codec codec(limits);
  IoBuffer in;
  std::string out;
  std::string joined;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  size_t pos = 0;
  for (size_t end : ends) {
    in.append(std::string_view(wire).substr(pos, end - pos));
    pos = end;
    while (true) {
      const std::string before = in.to_string();
      Result<std::optional<Frame>> r = codec.decode(in);
      if (!r) {
        EXPECT_EQ(in.to_string(), before) << "an error must consume nothing";
        return out + "error " + std::string(error_code_name(r.error().code())) + ": " +
               r.error().message();
      }
      if (!r->has_value()) {
        EXPECT_EQ(in.to_string(), before) << "need-more must consume nothing";
        break;
      }
      const Frame& f = **r;
      EXPECT_EQ(before.substr(0, f.wire.size()), f.wire);
      EXPECT_EQ(in.to_string(), before.substr(f.wire.size()));
      joined += f.wire;
      out += describe(f) + "\n";
    }
  }
  EXPECT_EQ(joined + in.to_string(), wire);
  return out + (in.empty() ? "end" : "need more");
}

// The verdict for the whole input; the same at every split and byte by byte.
std::string check(const std::string& wire, Limits limits = {}) {
  const std::string whole = run(wire, {}, limits);
  for (size_t c = 1; c < wire.size(); ++c) {
    EXPECT_EQ(run(wire, {c}, limits), whole) << "split at " << c;
  }
  std::vector<size_t> every;
  for (size_t c = 1; c < wire.size(); ++c) every.push_back(c);
  EXPECT_EQ(run(wire, every, limits), whole) << "byte by byte";
  return whole;
}

// --- well-formed frames -----------------------------------------------------------------------

TEST(ThriftCodec, FramedBinary) {
  const std::string a = framed(binary_msg("echo", MessageType::kCall, 1));
  const std::string b = framed(binary_msg("getUser", MessageType::kReply, -7));
  EXPECT_EQ(check(a + b),
            "framed/binary echo call seqid=1 bytes=21\n"
            "framed/binary getUser reply seqid=-7 bytes=24\nend");
}

TEST(ThriftCodec, FramedOldBinary) {
  EXPECT_EQ(check(framed(old_binary_msg("ping", MessageType::kOneway, 5))),
            "framed/binary ping oneway seqid=5 bytes=18\nend");
}

TEST(ThriftCodec, FramedCompact) {
  const std::string a = framed(compact_msg("echo", MessageType::kCall, 300));
  const std::string b = framed(compact_msg("boom", MessageType::kException, INT32_MIN));
  EXPECT_EQ(check(a + b),
            "framed/compact echo call seqid=300 bytes=14\n"
            "framed/compact boom exception seqid=-2147483648 bytes=17\nend");
}

TEST(ThriftCodec, HeaderBinaryWithKeyValues) {
  HeaderSpec spec;
  spec.headers = {{"trace", "t-1"}, {"empty", ""}};
  spec.flags = 1;
  spec.seqid = 9;
  EXPECT_EQ(check(theader(spec, binary_msg("echo", MessageType::kCall, 9))),
            "header/binary echo call seqid=9 bytes=55 flags=1 hseq=9 [trace]=[t-1] [empty]=[]\n"
            "end");
}

TEST(ThriftCodec, HeaderCompact) {
  HeaderSpec spec;
  spec.protocol_id = 2;
  spec.headers = {{"k", "v"}};
  // An info block of a kind we do not know ends the header reading (its size is unknown).
  spec.extra_info = varint(7) + "\x05xyz"s;
  EXPECT_EQ(check(theader(spec, compact_msg("m", MessageType::kOneway, 128))),
            "header/compact m oneway seqid=128 bytes=37 flags=0 hseq=0 [k]=[v]\nend");
}

TEST(ThriftCodec, PartialFrameNeedsMore) {
  const std::string a = framed(binary_msg("echo", MessageType::kCall, 1));
  EXPECT_EQ(run(a + a.substr(0, 10), {}), "framed/binary echo call seqid=1 bytes=21\nneed more");
  EXPECT_EQ(run("\x00\x00"s, {}), "need more");
}

TEST(ThriftCodec, EncodeWritesTheWireBytes) {
  const std::string a = framed(compact_msg("echo", MessageType::kCall, 3));
  Result<Frame> f = parse_frame(a);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  Codec codec;
  IoBuffer out;
  codec.encode(*f, out);
  EXPECT_EQ(out.to_string(), a);
}

TEST(ThriftCodec, ConnectionKeepsItsKind) {
  const std::string a = framed(binary_msg("echo", MessageType::kCall, 1));
  const std::string b = framed(compact_msg("echo", MessageType::kCall, 2));
  EXPECT_EQ(check(a + b),
            "framed/binary echo call seqid=1 bytes=21\n"
            "error protocol: frame of another transport or protocol than the connection's first");
  // A THeader connection may change protocol (each frame names its own); not its transport.
  HeaderSpec compact_spec;
  compact_spec.protocol_id = 2;
  const std::string h1 = theader(compact_spec, compact_msg("echo", MessageType::kCall, 1));
  const std::string h2 = theader(HeaderSpec(), binary_msg("echo", MessageType::kCall, 2));
  EXPECT_EQ(check(h1 + h2 + a),
            "header/compact echo call seqid=1 bytes=" + std::to_string(h1.size()) +
                " flags=0 hseq=0" + "\nheader/binary echo call seqid=2 bytes=" +
                std::to_string(h2.size()) + " flags=0 hseq=0" +
                "\nerror protocol: frame of another transport or protocol than the connection's "
                "first");
}

TEST(ThriftCodec, Detect) {
  Result<std::optional<Kind>> k = detect(framed(compact_msg("x", MessageType::kCall, 1)));
  ASSERT_TRUE(k.has_value() && k->has_value());
  EXPECT_EQ((*k)->transport, Transport::kFramed);
  EXPECT_EQ((*k)->protocol, Protocol::kCompact);
  HeaderSpec spec;
  spec.protocol_id = 2;
  const std::string h = theader(spec, compact_msg("x", MessageType::kCall, 1));
  EXPECT_FALSE(detect(h.substr(0, 14))->has_value());  // the protocol id is byte 14
  k = detect(h.substr(0, 15));
  ASSERT_TRUE(k.has_value() && k->has_value());
  EXPECT_EQ((*k)->transport, Transport::kHeader);
  EXPECT_EQ((*k)->protocol, Protocol::kCompact);
}

// --- sequence id rewrite ----------------------------------------------------------------------

std::vector<std::string> sample_frames() {
  HeaderSpec hb;
  hb.headers = {{"a", "b"}};
  hb.seqid = 77;
  HeaderSpec hc = hb;
  hc.protocol_id = 2;
  return {
      framed(binary_msg("echo", MessageType::kCall, 77)),
      framed(old_binary_msg("echo", MessageType::kCall, 77)),
      framed(compact_msg("echo", MessageType::kCall, 77)),
      theader(hb, binary_msg("echo", MessageType::kCall, 77)),
      theader(hc, compact_msg("echo", MessageType::kCall, 77)),
  };
}

TEST(ThriftCodec, SeqidRewriteRoundTrips) {
  for (const std::string& wire : sample_frames()) {
    Result<Frame> original = parse_frame(wire);
    ASSERT_TRUE(original.has_value()) << original.error().to_string();
    for (int32_t id : {0, 1, 127, 128, 16383, 16384, 1 << 28, -1, INT32_MAX, INT32_MIN}) {
      Frame f = *original;
      set_seqid(f, id);
      EXPECT_EQ(f.seqid, id);
      Result<Frame> again = parse_frame(f.wire);
      ASSERT_TRUE(again.has_value()) << again.error().to_string();
      EXPECT_EQ(again->seqid, id);
      EXPECT_EQ(again->method, "echo");
      EXPECT_EQ(again->type, MessageType::kCall);
      EXPECT_EQ(again->headers, original->headers);
      EXPECT_EQ(again->seqid_offset, f.seqid_offset);
      EXPECT_EQ(again->seqid_size, f.seqid_size);
      EXPECT_EQ(again->wire.substr(again->seqid_offset + again->seqid_size),
                original->wire.substr(original->seqid_offset + original->seqid_size))
          << "the payload after the seqid is untouched";
      if (f.transport == Transport::kHeader) {
        EXPECT_EQ(again->header_seqid, static_cast<uint32_t>(id));
      }
      set_seqid(f, 77);
      EXPECT_EQ(f.wire, wire);
    }
  }
}

// --- malformed input --------------------------------------------------------------------------

TEST(ThriftCodec, MalformedIsRejected) {
  const std::string good = binary_msg("echo", MessageType::kCall, 1);
  HeaderSpec binary_header;
  struct Case {
    const char* what;
    std::string wire;
    std::string error;  // a prefix of "code: message"
  };
  HeaderSpec bad_protocol;
  bad_protocol.protocol_id = 1;  // JSON
  HeaderSpec transforms;
  transforms.transforms = {1};
  std::string bad_magic = theader(binary_header, good);
  bad_magic[4] = '\x8f';  // 0x8FFF: not THeader, and not a Thrift message either
  std::string near_magic = theader(binary_header, good);
  near_magic[5] = '\xfe';  // 0x0FFE reads as an old binary name length far past the frame
  std::string long_header = theader(binary_header, good);
  long_header[12] = '\x7f';  // header size far past the frame
  std::string long_name = framed(good);
  long_name[11] = '\x40';  // name length past the frame
  std::string bad_version = framed(good);
  bad_version[5] = '\x02';
  std::string bad_compact_version = framed(compact_msg("e", MessageType::kCall, 1));
  bad_compact_version[5] = static_cast<char>((1 << 5) | 2);
  const std::vector<Case> cases = {
      {"negative length", "\x80\x00\x00\x10"s + std::string(16, 'x'), "protocol: negative"},
      {"unframed binary", good, "protocol: negative"},
      {"oversized length", be32(16 * 1024 * 1024 + 1), "limit_exceeded"},
      {"zero length", be32(0), "protocol: frame too short"},
      {"bad magic", bad_magic, "protocol: not Thrift"},
      {"near magic", near_magic, "protocol: truncated method name"},
      {"header size past the frame", long_header, "protocol: THeader header too long"},
      {"truncated THeader fixed part", framed("\x0f\xff\x00\x00\x00\x00"s), "protocol: truncated"},
      {"unknown protocol id", theader(bad_protocol, good), "protocol: unknown THeader protocol"},
      {"transforms", theader(transforms, good), "unsupported"},
      {"bad varint",
       framed(be16(0x0FFF) + be16(0) + be32(0) + be16(2) + "\xff\xff\xff\xff\xff\x01\0\0"s),
       "protocol: bad varint"},
      {"truncated message", framed(good.substr(0, 10)), "protocol: truncated"},
      {"name past the frame", long_name, "protocol: truncated method name"},
      {"bad binary version", bad_version, "protocol: bad binary protocol version"},
      {"bad message type", framed(binary_msg("e", static_cast<MessageType>(9), 1)),
       "protocol: bad message type"},
      {"bad compact version", bad_compact_version, "protocol: bad compact protocol version"},
      {"bad compact seqid varint", framed("\x82\x21\xff\xff\xff\xff\xff\x00"s),
       "protocol: bad varint"},
      {"compact seqid overflow", framed("\x82\x21\xff\xff\xff\xff\x1f\x00"s),
       "protocol: bad varint"},
      {"negative name length", framed("\x80\x01\x00\x01\xff\xff\xff\xff"s + be32(1)),
       "protocol: negative method name length"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string verdict = check(c.wire);
    const size_t at = verdict.rfind("error ");
    ASSERT_NE(at, std::string::npos) << verdict;
    EXPECT_EQ(verdict.substr(at + 6, c.error.size()), c.error) << verdict;
  }
  Limits small;
  small.max_frame_size = 16;
  EXPECT_EQ(check(framed(good), small).substr(0, 20), "error limit_exceeded");
}

// --- frames made by Apache Thrift (codec/testdata/gen_thrift_frames.py) -----------------------

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ThriftCodec, RealFramesFromPythonThrift) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator("codec/testdata/real")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 8u);
  std::string all_framed_binary;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    // transport_protocol_method_type_seqid
    std::vector<std::string> parts;
    std::string stem = file.stem().string();
    for (size_t pos = 0;;) {
      const size_t u = stem.find('_', pos);
      parts.push_back(stem.substr(pos, u == std::string::npos ? u : u - pos));
      if (u == std::string::npos) break;
      pos = u + 1;
    }
    ASSERT_EQ(parts.size(), 5u);
    const std::string wire = read_file(file);
    const std::string protocol = parts[1] == "oldbinary" ? "binary" : parts[1];
    const std::string verdict = check(wire);
    EXPECT_EQ(verdict,
              parts[0] + "/" + protocol + " " + parts[2] + " " + parts[3] + " seqid=" + parts[4] +
                  " bytes=" + std::to_string(wire.size()) +
                  verdict.substr(verdict.find(" bytes=") + 7 + std::to_string(wire.size()).size()));
    Result<Frame> f = parse_frame(wire);
    ASSERT_TRUE(f.has_value()) << f.error().to_string();
    if (f->transport == Transport::kHeader) {
      EXPECT_EQ(f->header_seqid, static_cast<uint32_t>(f->seqid));
    }
    if (stem == "header_binary_echo_call_7") {
      const std::vector<std::pair<std::string, std::string>> expected = {{"trace-id", "abc123"},
                                                                         {"caller", "svc-a"}};
      EXPECT_EQ(f->headers, expected);
    }
    if (stem == "header_compact_notify_oneway_128") {
      const std::vector<std::pair<std::string, std::string>> expected = {{"k", ""}};
      EXPECT_EQ(f->headers, expected);
    }
    for (int32_t id : {1, 200, 70000, -1}) {
      Frame g = *f;
      set_seqid(g, id);
      Result<Frame> again = parse_frame(g.wire);
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(again->seqid, id);
      set_seqid(g, f->seqid);
      EXPECT_EQ(g.wire, wire);
    }
    if (parts[0] == "framed" && parts[1] == "binary") all_framed_binary += wire;
  }
  // Pipelined on one connection.
  const std::string pipelined = check(all_framed_binary);
  EXPECT_EQ(std::count(pipelined.begin(), pipelined.end(), '\n'), 2) << pipelined;
}

}  // namespace
}  // namespace monolake::codec::thrift
