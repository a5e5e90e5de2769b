// Fuzz target for the PROXY protocol header parser (codec/proxy_protocol.h).
//
// Each input is parsed under each accepted-version setting. Besides "no crash, no sanitizer
// report" it checks:
//   - a header's length is within the input and within its version's limit, and parsing just
//     its bytes gives the same header (nothing after it is read);
//   - every shorter prefix of a parsed header says "incomplete", never an error or a header:
//     a header arriving a byte at a time is read the same as one arriving whole;
//   - an error is not turned into a header by more bytes (prefixes of an error are incomplete
//     or the same kind of error), so a reader may stop at the first error;
//   - kAny accepts exactly what kV1 or kV2 accepts.
//
// Built two ways, as codec/thrift_fuzz.cc: the libFuzzer binary (`--config=asan`), and with
// ML_FUZZ_REPLAY_MAIN as proxy_protocol_fuzz_replay_test, which checks every prefix.
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "codec/proxy_protocol.h"
#include "testing/fuzz_check.h"

namespace monolake::codec {
namespace {

bool g_every_prefix = false;

std::string describe(const Result<std::optional<ProxyHeader>>& r) {
  if (!r) return "error " + std::string(error_code_name(r.error().code()));
  if (!r->has_value()) return "incomplete";
  const ProxyHeader& h = **r;
  std::string out = "v" + std::to_string(h.version) + " len " + std::to_string(h.length);
  for (const std::optional<ProxyAddress>* a : {&h.source, &h.destination}) {
    if (!a->has_value()) {
      out += " -";
      continue;
    }
    out += " " + std::to_string((*a)->family) + ":" + std::to_string((*a)->port) + ":";
    for (uint8_t b : (*a)->address) out += std::to_string(b) + ".";
  }
  return out;
}

void check_header(std::string_view data, ProxyVersions accepted, const ProxyHeader& h) {
  FUZZ_CHECK(h.length > 0 && h.length <= data.size());
  FUZZ_CHECK(h.version == 1 || h.version == 2);
  FUZZ_CHECK(h.length <= (h.version == 1 ? kMaxProxyV1Header : kMaxProxyV2Header));
  FUZZ_CHECK(h.source.has_value() == h.destination.has_value());
  if (h.source) FUZZ_CHECK(h.source->family == AF_INET || h.source->family == AF_INET6);
  const std::string whole = describe(parse_proxy_header(data, accepted));
  FUZZ_CHECK_EQ(describe(parse_proxy_header(data.substr(0, h.length), accepted)), whole);
  const size_t step = g_every_prefix ? 1 : (h.length / 7 + 1);
  for (size_t n = 0; n < h.length; n += step) {
    FUZZ_CHECK_EQ(describe(parse_proxy_header(data.substr(0, n), accepted)),
                  std::string("incomplete"));
  }
}

void check_error(std::string_view data, ProxyVersions accepted, ErrorCode code) {
  const size_t step = g_every_prefix ? 1 : (data.size() / 7 + 1);
  for (size_t n = 0; n < data.size(); n += step) {
    Result<std::optional<ProxyHeader>> r = parse_proxy_header(data.substr(0, n), accepted);
    FUZZ_CHECK(!r ? r.error().code() == code : !r->has_value());
  }
}

void fuzz_one(std::string_view data) {
  std::string verdict[3];
  int i = 0;
  for (ProxyVersions accepted : {ProxyVersions::kV1, ProxyVersions::kV2, ProxyVersions::kAny}) {
    Result<std::optional<ProxyHeader>> r = parse_proxy_header(data, accepted);
    if (r && r->has_value()) check_header(data, accepted, **r);
    if (!r) check_error(data, accepted, r.error().code());
    verdict[i++] = describe(r);
  }
  // kAny is the union: it takes whatever one of the versions takes, the same way.
  const bool v1_took = verdict[0].rfind("v1", 0) == 0;
  const bool v2_took = verdict[1].rfind("v2", 0) == 0;
  if (v1_took) FUZZ_CHECK_EQ(verdict[2], verdict[0]);
  if (v2_took) FUZZ_CHECK_EQ(verdict[2], verdict[1]);
  if (verdict[2].rfind("v", 0) == 0) FUZZ_CHECK(v1_took || v2_took);
}

}  // namespace
}  // namespace monolake::codec

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  monolake::codec::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifdef ML_FUZZ_REPLAY_MAIN
extern "C" void MlFuzzReplayBegin() { monolake::codec::g_every_prefix = true; }
#endif
