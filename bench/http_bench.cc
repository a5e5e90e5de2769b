// HTTP/1.1 codec microbenchmarks: head parsing (the codec, and llhttp alone on the same bytes),
// chunked decoding, head writing, and HeaderMap operations.
//   bazel run --config=opt //bench:http_bench -- --benchmark_repetitions=5
// Instruction counts per parse come from //bench:http_parse_count under callgrind (README).
//
// Includes llhttp.h (through http_inputs.h) for the llhttp-alone rows; bench/ is a leaf.
#include <absl/container/inlined_vector.h>
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/buffer.h"
#include "bench/http_inputs.h"
#include "http/h1/codec.h"
#include "http/message.h"

namespace monolake {
namespace {

using http::HeaderMap;
using http::h1::BodyFraming;
using http::h1::ParseStatus;

// --- (a), (b): request heads ------------------------------------------------------------------

void BM_H1ParseRequestHead(benchmark::State& state) {
  http::h1::RequestParser parser;
  for (auto _ : state) {
    benchmark::DoNotOptimize(bench::parse_request_with_codec(parser, bench::kRequestHead));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bench::kRequestHead.size()));
}
BENCHMARK(BM_H1ParseRequestHead);

void BM_LlhttpParseRequestHead(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(bench::parse_request_with_llhttp(bench::kRequestHead));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bench::kRequestHead.size()));
}
BENCHMARK(BM_LlhttpParseRequestHead);

// --- (c): response heads and chunked bodies ---------------------------------------------------

void BM_H1ParseResponseHead(benchmark::State& state) {
  http::h1::ResponseParser parser;
  for (auto _ : state) {
    benchmark::DoNotOptimize(bench::parse_response_with_codec(parser, bench::kResponseHead));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bench::kResponseHead.size()));
}
BENCHMARK(BM_H1ParseResponseHead);

// A chunked body of range(0) payload bytes in chunks of range(1) bytes, one extension-less
// size line each, no trailers; decoded whole (one decode() call) by a fresh decoder.
void BM_H1DecodeChunked(benchmark::State& state) {
  const std::string in =
      bench::chunked_body(static_cast<size_t>(state.range(0)), static_cast<size_t>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(bench::decode_chunked(in));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(in.size()));
}
BENCHMARK(BM_H1DecodeChunked)->Args({1024, 256})->Args({16384, 4096})->Args({1024, 16});

// --- (d): writing heads -----------------------------------------------------------------------

http::RequestHead parsed_request() {
  http::h1::RequestParser parser;
  http::RequestHead head;
  BodyFraming framing;
  size_t consumed = 0;
  if (parser.parse(bench::kRequestHead, consumed, head, framing) != ParseStatus::kDone) {
    std::abort();
  }
  return head;
}

http::ResponseHead parsed_response() {
  http::h1::ResponseParser parser;
  http::ResponseHead head;
  BodyFraming framing;
  size_t consumed = 0;
  if (parser.parse(bench::kResponseHead, consumed, "GET", head, framing) != ParseStatus::kDone) {
    std::abort();
  }
  head.headers.remove("content-length");  // framing writes it
  return head;
}

// The output buffer is reused (cleared), as a connection's write buffer is.
void BM_H1WriteRequestHead(benchmark::State& state) {
  const http::RequestHead head = parsed_request();
  IoBuffer out;
  for (auto _ : state) {
    out.clear();
    http::h1::write_request_head(head, BodyFraming{}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_H1WriteRequestHead);

void BM_H1WriteResponseHead(benchmark::State& state) {
  const http::ResponseHead head = parsed_response();
  IoBuffer out;
  for (auto _ : state) {
    out.clear();
    http::h1::write_response_head(head, BodyFraming{BodyFraming::Kind::kLength, 1024}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_H1WriteResponseHead);

// --- (e): HeaderMap on a 10-field map ---------------------------------------------------------

struct NamedValue {
  std::string_view name, value;
};
// The request's 8 fields plus two a proxy typically sees: 3 of the 10 are hop-by-hop.
const NamedValue kTenFields[] = {
    {"Host", "www.example.com"},
    {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
    {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"},
    {"Accept-Encoding", "gzip, deflate, br"},
    {"Accept-Language", "en-US,en;q=0.5"},
    {"Cookie",
     "session_id=5f2b8c1e9a7d4e3f8b6c2a1d0e9f8a7b; csrftoken=Qm9vdGNhbXBfY3NyZl90b2tlbl8xMjM0NTY3"
     "ODkw; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; "
     "lang=en-US; cart=3f9a"},
    {"X-Forwarded-For", "203.0.113.7, 198.51.100.23"},
    {"Connection", "keep-alive"},
    {"Keep-Alive", "timeout=5"},
    {"Proxy-Connection", "keep-alive"},
};

// The lookups one proxied request does on its head, roughly: Host (first), Cookie (middle),
// Proxy-Connection (last), and two absent names (Transfer-Encoding, Content-Length), in a case
// other than the stored one.
const std::string_view kLookups[] = {"host", "COOKIE", "proxy-connection", "transfer-encoding",
                                     "content-length"};

bool hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return http::iequals(name, "te");
    case 7:
      return http::iequals(name, "trailer") || http::iequals(name, "upgrade");
    case 10:
      return http::iequals(name, "connection") || http::iequals(name, "keep-alive");
    case 16:
      return http::iequals(name, "proxy-connection");
    case 17:
      return http::iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

HeaderMap ten_field_map() {
  HeaderMap m;
  for (const NamedValue& f : kTenFields) m.add(f.name, f.value);
  return m;
}

// A fresh map, reserve(16) as the codec does, 10 add()s, destruction.
void BM_HeaderMapAdd10(benchmark::State& state) {
  for (auto _ : state) {
    HeaderMap m;
    m.reserve(16);
    for (const NamedValue& f : kTenFields) m.add(f.name, f.value);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_HeaderMapAdd10);

void BM_HeaderMapFind(benchmark::State& state) {
  const HeaderMap m = ten_field_map();
  for (auto _ : state) {
    size_t found = 0;
    for (std::string_view name : kLookups) {
      auto v = m.get(name);
      found += v ? v->size() : 0;
    }
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations() * std::size(kLookups));
}
BENCHMARK(BM_HeaderMapFind);

// Copy of the map (the baseline to subtract), then the same plus remove_if(hop_by_hop).
void BM_HeaderMapCopy(benchmark::State& state) {
  const HeaderMap m = ten_field_map();
  for (auto _ : state) {
    HeaderMap c = m;
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_HeaderMapCopy);

void BM_HeaderMapCopyRemoveHopByHop(benchmark::State& state) {
  const HeaderMap m = ten_field_map();
  for (auto _ : state) {
    HeaderMap c = m;
    c.remove_if([](const HeaderMap::Field& f) { return hop_by_hop(f.name); });
    if (c.size() != 7) std::abort();
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_HeaderMapCopyRemoveHopByHop);

void BM_HeaderMapIterate(benchmark::State& state) {
  const HeaderMap m = ten_field_map();
  for (auto _ : state) {
    size_t n = 0;
    for (const HeaderMap::Field& f : m.fields()) {
      n += static_cast<unsigned char>(f.name[0]) + f.value.size();
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_HeaderMapIterate);

// --- (e'): a candidate representation, for the README's proposal only -------------------------
//
// The head's bytes are copied once into one owned string (one allocation per head; a parser
// could instead keep the connection's receive buffer); each field is four 32-bit offsets into
// it, kept in an InlinedVector of 16, so a typical head makes no other allocation. Names and
// values added later (by layers) are appended to the same string. Not the public API: only
// what the benchmarks below need.
class OffsetHeaderMap {
 public:
  struct Field {
    uint32_t name_off, name_len, value_off, value_len;
  };
  // Adopts `bytes` (e.g. the head) as storage; fields are then added by offset.
  void adopt(std::string_view bytes) { bytes_.assign(bytes); }
  void add_at(uint32_t name_off, uint32_t name_len, uint32_t value_off, uint32_t value_len) {
    fields_.push_back({name_off, name_len, value_off, value_len});
  }
  void add(std::string_view name, std::string_view value) {
    const uint32_t n = static_cast<uint32_t>(bytes_.size());
    bytes_.append(name);
    bytes_.append(value);
    add_at(n, static_cast<uint32_t>(name.size()), n + static_cast<uint32_t>(name.size()),
           static_cast<uint32_t>(value.size()));
  }
  std::string_view name(const Field& f) const { return {bytes_.data() + f.name_off, f.name_len}; }
  std::string_view value(const Field& f) const {
    return {bytes_.data() + f.value_off, f.value_len};
  }
  const Field* find(std::string_view n) const {
    for (const Field& f : fields_) {
      if (http::iequals(name(f), n)) return &f;
    }
    return nullptr;
  }
  template <class Pred>
  void remove_if(Pred&& pred) {
    size_t out = 0;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (pred(name(fields_[i]))) continue;
      fields_[out++] = fields_[i];
    }
    fields_.resize(out);
  }
  const absl::InlinedVector<Field, 16>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

 private:
  std::string bytes_;
  absl::InlinedVector<Field, 16> fields_;
};

// The same ten fields laid out as field lines, as they would sit in a received head.
struct TenFieldHead {
  std::string bytes;
  std::vector<OffsetHeaderMap::Field> offsets;
  TenFieldHead() {
    for (const NamedValue& f : kTenFields) {
      const uint32_t n = static_cast<uint32_t>(bytes.size());
      bytes.append(f.name);
      bytes.append(": ");
      bytes.append(f.value);
      bytes.append("\r\n");
      offsets.push_back({n, static_cast<uint32_t>(f.name.size()),
                         n + static_cast<uint32_t>(f.name.size()) + 2,
                         static_cast<uint32_t>(f.value.size())});
    }
  }
};

OffsetHeaderMap ten_field_offset_map(const TenFieldHead& head) {
  OffsetHeaderMap m;
  m.adopt(head.bytes);
  for (const auto& o : head.offsets) m.add_at(o.name_off, o.name_len, o.value_off, o.value_len);
  return m;
}

// What parsing would do: one copy of the head's bytes, ten offset entries.
void BM_OffsetMapFromHead10(benchmark::State& state) {
  const TenFieldHead head;
  for (auto _ : state) {
    OffsetHeaderMap m = ten_field_offset_map(head);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_OffsetMapFromHead10);

// What HeaderMap's parse path does today, for the same comparison: ten add()s from views into
// the head bytes (the same as BM_HeaderMapAdd10 but reading from the laid-out head).
void BM_HeaderMapFromHead10(benchmark::State& state) {
  const TenFieldHead head;
  for (auto _ : state) {
    HeaderMap m;
    m.reserve(16);
    for (const auto& o : head.offsets) {
      m.add({head.bytes.data() + o.name_off, o.name_len},
            {head.bytes.data() + o.value_off, o.value_len});
    }
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_HeaderMapFromHead10);

void BM_OffsetMapFind(benchmark::State& state) {
  const TenFieldHead head;
  const OffsetHeaderMap m = ten_field_offset_map(head);
  for (auto _ : state) {
    size_t found = 0;
    for (std::string_view name : kLookups) {
      const OffsetHeaderMap::Field* f = m.find(name);
      found += f ? f->value_len : 0;
    }
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations() * std::size(kLookups));
}
BENCHMARK(BM_OffsetMapFind);

void BM_OffsetMapCopy(benchmark::State& state) {
  const TenFieldHead head;
  const OffsetHeaderMap m = ten_field_offset_map(head);
  for (auto _ : state) {
    OffsetHeaderMap c = m;
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_OffsetMapCopy);

void BM_OffsetMapCopyRemoveHopByHop(benchmark::State& state) {
  const TenFieldHead head;
  const OffsetHeaderMap m = ten_field_offset_map(head);
  for (auto _ : state) {
    OffsetHeaderMap c = m;
    c.remove_if(hop_by_hop);
    if (c.size() != 7) std::abort();
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_OffsetMapCopyRemoveHopByHop);

void BM_OffsetMapIterate(benchmark::State& state) {
  const TenFieldHead head;
  const OffsetHeaderMap m = ten_field_offset_map(head);
  for (auto _ : state) {
    size_t n = 0;
    for (const OffsetHeaderMap::Field& f : m.fields()) {
      n += static_cast<unsigned char>(m.name(f)[0]) + m.value(f).size();
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_OffsetMapIterate);

}  // namespace
}  // namespace monolake
