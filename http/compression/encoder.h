// Streaming encoders for HTTP content codings (RFC 9110 8.4.1): gzip (zlib), br (Brotli) and
// zstd (Zstandard), behind one interface so the response layer that uses them
// (proxy/http/compression.h) knows no library. The vendor headers stay in encoder.cc.
//
// An Encoder takes the body piece by piece and appends compressed bytes to an IoBuffer. Its
// memory is the library's state and window (32 KiB for gzip; Brotli's and zstd's limited to
// 256 KiB here), whatever the body's size: nothing of the body is held beyond the window.
#pragma once

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
  // Ends the stream (trailer, checksum); the encoder takes no more input.
  virtual Result<void> finish(IoBuffer& out) = 0;
};

// A fresh encoder; fails only when the library cannot allocate its state.
Result<std::unique_ptr<Encoder>> make_encoder(Coding coding, const Levels& levels);

}  // namespace monolake::http::compression
