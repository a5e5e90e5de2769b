// Fuzz target for the RESP codec (resp_codec.h). Each input is decoded whole and split in two
// (at a few points; at every byte when replaying), on the client side (inline commands allowed)
// and the reply side, with the default limits and with small ones. Besides "no crash, no
// sanitizer report" it checks that the frames and the final verdict are the same whole and
// split, that a frame is exactly the bytes consumed, that need-more and errors consume nothing,
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

// Frames, then "more" (need more bytes) or "error", for `input` delivered in two pieces.
std::vector<std::string> run(std::string_view input, size_t split, RespLimits limits, bool client) {
  RespCodec codec(limits, client);
  monolake::IoBuffer in;
  std::vector<std::string> out;
  auto drain = [&](bool last) {
    while (true) {
      const size_t before = in.size();
      const std::string bytes(in.view());
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
      FUZZ_CHECK_EQ(bytes.substr(0, (*frame)->size()), **frame);
      FUZZ_CHECK(in.size() + (*frame)->size() == before);
      if (client) (void)command_arguments(**frame);
      out.push_back(**frame);
    }
  };
  in.append(input.substr(0, split));
  if (!drain(false)) return out;
  in.append(input.substr(split));
  drain(true);
  return out;
}

void fuzz_one(std::string_view input) {
  RespLimits small;
  small.max_bulk_bytes = 8;
  small.max_elements = 4;
  small.max_depth = 2;
  small.max_line = 16;
  for (const RespLimits& limits : {RespLimits{}, small}) {
    for (bool client : {false, true}) {
      const std::vector<std::string> whole = run(input, input.size(), limits, client);
      std::vector<size_t> splits = {0, input.size() / 2, input.size() > 0 ? input.size() - 1 : 0};
      if (g_every_split) {
        splits.clear();
        for (size_t i = 0; i <= input.size(); ++i) splits.push_back(i);
      }
      for (size_t split : splits) {
        const std::vector<std::string> pieces = run(input, split, limits, client);
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
