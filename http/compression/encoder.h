// Streaming encoders for HTTP content codings (RFC 9110 8.4.1): gzip (zlib), br (Brotli) and
// zstd (Zstandard), behind one interface so the response layer that uses them
// (proxy/http/compression.h) knows no library. The vendor headers stay in encoder.cc.
//
// An Encoder takes the body piece by piece and appends compressed bytes to an IoBuffer. Its
// memory is the library's state and window (32 KiB for gzip; Brotli's and zstd's limited to
// 256 KiB here), whatever the body's size: nothing of the body is held beyond the window.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/buffer.h"
#include "base/result.h"

namespace monolake::http::compression {

enum class Coding { kGzip, kBrotli, kZstd };

// The coding's token in Accept-Encoding and Content-Encoding: "gzip", "br", "zstd".
std::string_view coding_name(Coding coding);
std::optional<Coding> coding_named(std::string_view name);

struct Levels {
  int gzip = 6;    // 1..9
  int brotli = 4;  // 0..11
  int zstd = 3;    // 1..19
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  // Compresses `input`, appending what the library gives to `out`. With `flush`, everything
  // written so far can be decoded from what has been appended (a piece of a streamed response
  // reaches the client now, at a small cost in ratio).
  virtual Result<void> write(std::string_view input, bool flush, IoBuffer& out) = 0;
  // Compresses `last`, the end of the input, and ends the stream (trailer, checksum); the
  // encoder takes no more input. A whole body given here at once lets Brotli clear only the
  // part of its hash table it uses (its "one shot" case), far less work for a short body.
  virtual Result<void> finish_with(std::string_view last, IoBuffer& out) = 0;
  Result<void> finish(IoBuffer& out) { return finish_with({}, out); }
};

// A fresh encoder; fails only when the library cannot allocate its state. `length`, when the
// body's length is known, sizes the window and tables to it (a 1 KiB body gets a 1 KiB window,
// not 256 KiB: less memory to allocate and clear per response); a longer body is still
// encoded correctly, with gzip and Brotli (zstd is told the length, and refuses more).
Result<std::unique_ptr<Encoder>> make_encoder(Coding coding, const Levels& levels,
                                              std::optional<uint64_t> length = std::nullopt);

}  // namespace monolake::http::compression
