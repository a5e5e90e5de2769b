// Fuzz target for the RESP codec (resp_codec.h). Each input is decoded whole, split in two
// (at a few points; at every byte when replaying) and byte by byte, on the client side (inline
// commands allowed) and the reply side, with the default limits and with small ones. Besides "no
// crash, no sanitizer report" it checks that the frames and the final verdict are the same whole
// and split, that a frame is exactly the bytes consumed, that need-more and errors consume nothing,
// and that command_arguments() never fails on a client frame in a way that crashes.
//
//   bazel build --config=asan //examples/custom_protocol:resp_fuzz, then
//   bazel-bin/examples/custom_protocol/resp_fuzz -max_total_time=60 NEW_DIR
//       examples/custom_protocol/testdata/fuzz_corpus
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "examples/custom_protocol/resp_codec.h"
#include "testing/fuzz_check.h"

namespace example {
namespace {

bool g_every_split = false;

// Frames, then "more" (need more bytes) or "error", for `input` delivered in pieces that end
// at `cuts` (ascending) and at its end.
std::vector<std::string> run(std::string_view input, const std::vector<size_t>& cuts,
                             RespLimits limits, bool client) {
  RespCodec codec(limits, client);
  monolake::IoBuffer in;
  std::vector<std::string> out;
  size_t consumed = 0;  // `in` starts at input[consumed]
  auto drain = [&](bool last) {
    while (true) {
      const size_t before = in.size();
      auto frame = codec.decode(in);
      if (!frame) {
        FUZZ_CHECK(in.size() == before);
        out.push_back("error");
        return false;
      }
      if (!*frame) {
        FUZZ_CHECK(in.size() == before);
        if (last) out.push_back(before == 0 ? "end" : "more");
        return true;
      }
      FUZZ_CHECK(!(*frame)->empty());
      FUZZ_CHECK((*frame)->size() <= limits.max_frame_bytes);
      FUZZ_CHECK_EQ(input.substr(consumed, (*frame)->size()), **frame);
      FUZZ_CHECK(in.size() + (*frame)->size() == before);
      consumed += (*frame)->size();
      if (client) (void)command_arguments(**frame);
      out.push_back(**frame);
    }
  };
  size_t at = 0;
  for (size_t cut : cuts) {
    in.append(input.substr(at, cut - at));
    at = cut;
    if (!drain(false)) return out;
  }
  in.append(input.substr(at));
  drain(true);
  return out;
}

void fuzz_one(std::string_view input) {
  RespLimits small;
  small.max_bulk_bytes = 8;
  small.max_frame_bytes = 24;
  small.max_elements = 4;
  small.max_depth = 2;
  small.max_line = 16;
  for (const RespLimits& limits : {RespLimits{}, small}) {
    for (bool client : {false, true}) {
      const std::vector<std::string> whole = run(input, {}, limits, client);
      // Two pieces (at a few points; at every byte when replaying), and byte by byte, which
      // makes the decoder resume at every byte.
      std::vector<std::vector<size_t>> deliveries;
      std::vector<size_t> splits = {0, input.size() / 2, input.size() > 0 ? input.size() - 1 : 0};
      if (g_every_split) {
        splits.clear();
        for (size_t i = 0; i <= input.size(); ++i) splits.push_back(i);
      }
      for (size_t split : splits) deliveries.push_back({split});
      // Byte by byte rescans a partial line at each byte: quadratic, so short inputs only.
      if (input.size() <= 512 || g_every_split) {
        std::vector<size_t> every;
        for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
        deliveries.push_back(std::move(every));
      }
      for (const std::vector<size_t>& cuts : deliveries) {
        const std::vector<std::string> pieces = run(input, cuts, limits, client);
        FUZZ_CHECK(pieces.size() == whole.size());
        for (size_t i = 0; i < whole.size(); ++i) FUZZ_CHECK_EQ(pieces[i], whole[i]);
      }
    }
  }
}

}  // namespace
}  // namespace example

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  example::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifdef ML_FUZZ_REPLAY_MAIN
extern "C" void MlFuzzReplayBegin() { example::g_every_split = true; }
#endif
