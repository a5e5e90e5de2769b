// Fuzz target for the Thrift codec (codec/thrift.h).
//
// Each input is fed to a thrift::Codec whole and split (at a few points; at every byte when
// replaying), with the default limits and with a small max_frame_size. Besides "no crash, no
// sanitizer report" it checks:
//   - the verdict (frames, then need-more / end / error) is the same whole and split;
//   - need-more and errors consume nothing; a frame consumes exactly its wire bytes;
//   - a frame's fields agree with its bytes: the length prefix, the seqid at seqid_offset,
//     frame size <= the limit + 4;
//   - parse_frame(frame.wire) gives the same frame, and set_seqid to other values and back
//     restores the bytes while the method, type and headers stay.
//
// Built two ways, as http/h1/codec_fuzz.cc:
//   - `bazel build --config=asan //codec:thrift_fuzz` (clang, libFuzzer + ASan + UBSan):
//     bazel-bin/codec/thrift_fuzz -max_total_time=60 NEW_DIR codec/testdata/fuzz_corpus
//   - with ML_FUZZ_REPLAY_MAIN, as the ordinary test thrift_fuzz_replay_test under gcc.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/thrift.h"
#include "testing/fuzz_check.h"

namespace monolake::codec::thrift {
namespace {

bool g_every_split = false;

std::string describe(const Frame& f) {
  std::string out = std::string(transport_name(f.transport)) + "/" +
                    std::string(protocol_name(f.protocol)) + " [" + f.method + "] " +
                    std::string(message_type_name(f.type)) + " " + std::to_string(f.seqid) + " " +
                    std::to_string(f.wire.size()) + " " + std::to_string(f.header_flags) + " " +
                    std::to_string(f.header_seqid);
  for (const auto& [k, v] : f.headers) out += " [" + k + "]=[" + v + "]";
  return out;
}

uint32_t be32(std::string_view s, size_t at) {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

size_t canonical_varint_size(int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  size_t n = 1;
  while (u >= 0x80) {
    u >>= 7;
    ++n;
  }
  return n;
}

void check_frame(const Frame& f, const Limits& limits) {
  FUZZ_CHECK(f.wire.size() >= 8);
  FUZZ_CHECK(be32(f.wire, 0) == f.wire.size() - 4);
  FUZZ_CHECK(f.wire.size() - 4 <= limits.max_frame_size);
  FUZZ_CHECK(f.message_offset <= f.seqid_offset);
  FUZZ_CHECK(f.seqid_offset + f.seqid_size <= f.wire.size());
  if (f.protocol == Protocol::kBinary) {
    FUZZ_CHECK(f.seqid_size == 4);
    FUZZ_CHECK(static_cast<int32_t>(be32(f.wire, f.seqid_offset)) == f.seqid);
  } else {
    FUZZ_CHECK(f.seqid_size >= 1 && f.seqid_size <= 5);
  }
  Limits big;
  big.max_frame_size = 1u << 30;
  Result<Frame> again = parse_frame(f.wire, big);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(describe(*again) == describe(f));
  for (int32_t id : {0, 128, -1}) {
    Frame g = f;
    set_seqid(g, id);
    Result<Frame> rewritten = parse_frame(g.wire, big);
    FUZZ_CHECK(rewritten.has_value());
    FUZZ_CHECK(rewritten->seqid == id);
    FUZZ_CHECK(rewritten->method == f.method);
    FUZZ_CHECK(rewritten->type == f.type);
    FUZZ_CHECK(rewritten->headers == f.headers);
    set_seqid(g, f.seqid);
    if (f.transport == Transport::kHeader && f.header_seqid != static_cast<uint32_t>(f.seqid)) {
      continue;  // set_seqid makes the header seq id follow the message's
    }
    // set_seqid writes the shortest varint: the bytes come back only if the peer's was too.
    if (f.protocol == Protocol::kCompact && f.seqid_size != canonical_varint_size(f.seqid)) {
      FUZZ_CHECK(g.wire.size() < f.wire.size());
      continue;
    }
    FUZZ_CHECK(g.wire == f.wire);
  }
}

std::string run(std::string_view in, const std::vector<size_t>& cuts, const Limits& limits,
                bool check) {
  Codec codec(limits);
  IoBuffer buf;
  std::string out;
  std::vector<size_t> ends = cuts;
  ends.push_back(in.size());
  size_t pos = 0;
  for (size_t end : ends) {
    buf.append(in.substr(pos, end - pos));
    pos = end;
    while (true) {
      const size_t before = buf.size();
      Result<std::optional<Frame>> r = codec.decode(buf);
      if (!r) {
        FUZZ_CHECK(buf.size() == before);
        return out + "error " + std::string(error_code_name(r.error().code())) + " " +
               r.error().message();
      }
      if (!r->has_value()) {
        FUZZ_CHECK(buf.size() == before);
        break;
      }
      FUZZ_CHECK(before - buf.size() == (*r)->wire.size());
      if (check) check_frame(**r, limits);
      out += describe(**r) + "\n";
    }
  }
  return out + (buf.empty() ? "end" : "need more");
}

void fuzz_one(std::string_view data) {
  Limits small;
  small.max_frame_size = 64;
  for (const Limits& limits : {Limits{}, small}) {
    const std::string whole = run(data, {}, limits, true);
    std::vector<std::vector<size_t>> splits;
    if (data.size() >= 2) {
      if (g_every_split) {
        for (size_t c = 1; c < data.size(); ++c) splits.push_back({c});
      } else {
        splits.push_back({data.size() / 2});
        splits.push_back({1 + static_cast<unsigned char>(data.back()) % (data.size() - 1)});
      }
      std::vector<size_t> every;
      for (size_t c = 1; c < data.size(); ++c) every.push_back(c);
      splits.push_back(std::move(every));
    }
    for (const std::vector<size_t>& cuts : splits) {
      const std::string split = run(data, cuts, limits, false);
      if (split != whole) {
        std::fprintf(stderr, "whole:\n%s\nsplit:\n%s\n", whole.c_str(), split.c_str());
      }
      FUZZ_CHECK(split == whole);
    }
  }
  // detect() never contradicts what decode() then says about a whole frame.
  Result<std::optional<Kind>> kind = detect(data);
  if (kind && kind->has_value() && data.size() >= 4 + size_t{(*kind)->length}) {
    Result<Frame> f = parse_frame(data.substr(0, 4 + (*kind)->length));
    if (f) {
      FUZZ_CHECK(f->transport == (*kind)->transport);
      FUZZ_CHECK(f->protocol == (*kind)->protocol);
    }
  }
}

}  // namespace
}  // namespace monolake::codec::thrift

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  monolake::codec::thrift::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifdef ML_FUZZ_REPLAY_MAIN
// The corpus replay test (//testing:fuzz_replay_main) checks every split point of every input.
extern "C" void MlFuzzReplayBegin() { monolake::codec::thrift::g_every_split = true; }
#endif
