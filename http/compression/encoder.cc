#include "http/compression/encoder.h"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <string>

namespace monolake::http::compression {

namespace {

// What each call makes room for in `out` before asking the library for more output.
constexpr size_t kOutputStep = 16 * 1024;
// The window both Brotli and zstd keep (2^18 = 256 KiB): what one encoder's memory is bounded
// by, a little ratio traded for many concurrent responses.
constexpr int kWindowLog = 18;

// The window for a body of `length` bytes: the smallest power of two that holds it, within
// [lowest, highest]; `highest` when the length is unknown.
int window_log_for(std::optional<uint64_t> length, int lowest, int highest) {
  if (!length) return highest;
  int log = lowest;
  while (log < highest && (uint64_t{1} << log) < *length) ++log;
  return log;
}

Error failed(std::string_view library, std::string_view what) {
  return Error(ErrorCode::kInternal, std::string(library) + ": " + std::string(what));
}

class GzipEncoder final : public Encoder {
 public:
  GzipEncoder(int level, std::optional<uint64_t> length) : level_(level), length_(length) {}
  ~GzipEncoder() override {
    if (ready_) deflateEnd(&stream_);
  }
  Result<void> start() {
    // Up to a 32 KiB window (15), +16 for the gzip wrapper (RFC 1952) rather than zlib's. A
    // short body gets a window its size and a hash table to match (memLevel 8: 2^15 heads).
    const int window = window_log_for(length_, 9, 15);
    const int mem_level = std::clamp(window - 7, 1, 8);
    if (deflateInit2(&stream_, level_, Z_DEFLATED, window + 16, mem_level, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      return failed("zlib", "deflateInit2 failed");
    }
    ready_ = true;
    return ok();
  }
  Result<void> write(std::string_view input, bool flush, IoBuffer& out) override {
    return run(input, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH, out);
  }
  Result<void> finish_with(std::string_view last, IoBuffer& out) override {
    return run(last, Z_FINISH, out);
  }

 private:
  Result<void> run(std::string_view input, int mode, IoBuffer& out) {
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(input.size());
    while (true) {
      out.reserve(kOutputStep);
      stream_.next_out = reinterpret_cast<Bytef*>(out.write_ptr());
      stream_.avail_out = static_cast<uInt>(out.writable_size());
      const uInt room = stream_.avail_out;
      const int rc = deflate(&stream_, mode);
      out.commit(room - stream_.avail_out);
      if (rc == Z_STREAM_END) return ok();
      if (rc != Z_OK && rc != Z_BUF_ERROR) return failed("zlib", "deflate failed");
      // Done when all input is taken and the library had room to spare (nothing pending).
      if (stream_.avail_in == 0 && stream_.avail_out > 0 && mode != Z_FINISH) return ok();
    }
  }

  int level_;
  std::optional<uint64_t> length_;
  z_stream stream_{};
  bool ready_ = false;
};

class BrotliEncoder final : public Encoder {
 public:
  BrotliEncoder(int quality, std::optional<uint64_t> length) : quality_(quality), length_(length) {}
  ~BrotliEncoder() override {
    if (state_) BrotliEncoderDestroyInstance(state_);
  }
  Result<void> start() {
    state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (!state_) return failed("brotli", "out of memory");
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(quality_));
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_LGWIN,
                              window_log_for(length_, BROTLI_MIN_WINDOW_BITS, kWindowLog));
    if (length_) {  // also sizes the hash table to the input
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_SIZE_HINT,
                                static_cast<uint32_t>(std::min<uint64_t>(*length_, 1u << 30)));
    }
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    return ok();
  }
  Result<void> write(std::string_view input, bool flush, IoBuffer& out) override {
    return run(input, flush ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_PROCESS, out);
  }
  Result<void> finish_with(std::string_view last, IoBuffer& out) override {
    return run(last, BROTLI_OPERATION_FINISH, out);
  }

 private:
  Result<void> run(std::string_view input, BrotliEncoderOperation op, IoBuffer& out) {
    size_t in_left = input.size();
    const uint8_t* in = reinterpret_cast<const uint8_t*>(input.data());
    while (true) {
      out.reserve(kOutputStep);
      size_t out_left = out.writable_size();
      uint8_t* next_out = reinterpret_cast<uint8_t*>(out.write_ptr());
      const size_t room = out_left;
      if (!BrotliEncoderCompressStream(state_, op, &in_left, &in, &out_left, &next_out, nullptr)) {
        return failed("brotli", "compression failed");
      }
      out.commit(room - out_left);
      if (in_left > 0 || BrotliEncoderHasMoreOutput(state_)) continue;
      if (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(state_)) continue;
      return ok();
    }
  }

  int quality_;
  std::optional<uint64_t> length_;
  BrotliEncoderState* state_ = nullptr;
};

// A zstd context kept per thread between responses: creating one allocates (and the kernel
// maps and zeroes) its workspace each time, which cost more than compressing a 1 KiB body.
// Thread-per-core: an encoder lives and dies on its worker, so the slot needs no lock. One
// context a thread, holding at most the workspace of a 256 KiB window at the highest level
// used (a few MiB at level 19; about 1.3 MiB at the default 3).
class ZstdContextCache {
 public:
  ~ZstdContextCache() {
    ZSTD_freeCCtx(kept_);
    kept_ = nullptr;
    dead_ = true;  // an encoder outliving the thread's destructors frees its own context
  }
  ZSTD_CCtx* take() {
    ZSTD_CCtx* context = kept_ && !dead_ ? kept_ : ZSTD_createCCtx();
    kept_ = nullptr;
    return context;
  }
  void give_back(ZSTD_CCtx* context) {
    if (!context) return;
    // Parameters and any unfinished frame dropped, so the next response starts clean.
    if (dead_ || kept_ ||
        ZSTD_isError(ZSTD_CCtx_reset(context, ZSTD_reset_session_and_parameters))) {
      ZSTD_freeCCtx(context);
      return;
    }
    kept_ = context;
  }

 private:
  ZSTD_CCtx* kept_ = nullptr;
  bool dead_ = false;
};

thread_local ZstdContextCache zstd_contexts;

class ZstdEncoder final : public Encoder {
 public:
  ZstdEncoder(int level, std::optional<uint64_t> length) : level_(level), length_(length) {}
  ~ZstdEncoder() override { zstd_contexts.give_back(context_); }
  Result<void> start() {
    context_ = zstd_contexts.take();
    if (!context_) return failed("zstd", "out of memory");
    ZSTD_CCtx_setParameter(context_, ZSTD_c_compressionLevel, level_);
    ZSTD_CCtx_setParameter(context_, ZSTD_c_windowLog, window_log_for(length_, 10, kWindowLog));
    // (10: zstd's smallest window.) The length goes in the frame header, and zstd sizes its
    // tables to it.
    if (length_) ZSTD_CCtx_setPledgedSrcSize(context_, *length_);
    ZSTD_CCtx_setParameter(context_, ZSTD_c_checksumFlag, 1);
    return ok();
  }
  Result<void> write(std::string_view input, bool flush, IoBuffer& out) override {
    return run(input, flush ? ZSTD_e_flush : ZSTD_e_continue, out);
  }
  Result<void> finish_with(std::string_view last, IoBuffer& out) override {
    return run(last, ZSTD_e_end, out);
  }

 private:
  Result<void> run(std::string_view input, ZSTD_EndDirective mode, IoBuffer& out) {
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (true) {
      out.reserve(kOutputStep);
      ZSTD_outBuffer buffer{out.write_ptr(), out.writable_size(), 0};
      const size_t left = ZSTD_compressStream2(context_, &buffer, &in, mode);
      if (ZSTD_isError(left)) return failed("zstd", ZSTD_getErrorName(left));
      out.commit(buffer.pos);
      // ZSTD_e_continue: done once the input is taken; flush and end: once nothing is left.
      if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0) return ok();
    }
  }

  int level_;
  std::optional<uint64_t> length_;
  ZSTD_CCtx* context_ = nullptr;
};

template <class E>
Result<std::unique_ptr<Encoder>> started(int level, std::optional<uint64_t> length) {
  auto encoder = std::make_unique<E>(level, length);
  if (Result<void> r = encoder->start(); !r) return std::move(r).error();
  return std::unique_ptr<Encoder>(std::move(encoder));
}

}  // namespace

std::string_view coding_name(Coding coding) {
  switch (coding) {
    case Coding::kGzip:
      return "gzip";
    case Coding::kBrotli:
      return "br";
    case Coding::kZstd:
      return "zstd";
  }
  return "identity";
}

std::optional<Coding> coding_named(std::string_view name) {
  for (Coding c : {Coding::kGzip, Coding::kBrotli, Coding::kZstd}) {
    if (name == coding_name(c)) return c;
  }
  return std::nullopt;
}

Result<std::unique_ptr<Encoder>> make_encoder(Coding coding, const Levels& levels,
                                              std::optional<uint64_t> length) {
  switch (coding) {
    case Coding::kGzip:
      return started<GzipEncoder>(levels.gzip, length);
    case Coding::kBrotli:
      return started<BrotliEncoder>(levels.brotli, length);
    case Coding::kZstd:
      return started<ZstdEncoder>(levels.zstd, length);
  }
  return Error(ErrorCode::kInvalidArgument, "unknown content coding");
}

}  // namespace monolake::http::compression
