#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>
#include <string>
#include <vector>

#include "http/compression/compressed_body.h"
#include "http/compression/encoder.h"
#include "http/compression/negotiate.h"
#include "runtime/runtime.h"

namespace monolake::http::compression {
namespace {

// Text that compresses (repeated words) but not to nothing (a counter in every line).
std::string text(size_t bytes) {
  std::string out;
  for (size_t i = 0; out.size() < bytes; ++i) {
    out += "line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog\n";
  }
  out.resize(bytes);
  return out;
}

std::string gunzip(const std::string& in) {
  z_stream s{};
  EXPECT_EQ(inflateInit2(&s, 15 + 16), Z_OK);
  std::string out;
  char buf[65536];
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    s.next_out = reinterpret_cast<Bytef*>(buf);
    s.avail_out = sizeof buf;
    rc = inflate(&s, Z_NO_FLUSH);
    out.append(buf, sizeof buf - s.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&s);
  return out;
}

std::string unbrotli(const std::string& in) {
  BrotliDecoderState* d = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  std::string out;
  size_t in_left = in.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
  BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
  while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
    uint8_t buf[65536];
    size_t out_left = sizeof buf;
    uint8_t* next_out = buf;
    rc = BrotliDecoderDecompressStream(d, &in_left, &next_in, &out_left, &next_out, nullptr);
    out.append(reinterpret_cast<char*>(buf), sizeof buf - out_left);
  }
  EXPECT_EQ(rc, BROTLI_DECODER_RESULT_SUCCESS);
  BrotliDecoderDestroyInstance(d);
  return out;
}

std::string unzstd(const std::string& in) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  std::string out;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t rc = 1;
  while (input.pos < input.size || rc != 0) {
    char buf[65536];
    ZSTD_outBuffer output{buf, sizeof buf, 0};
    rc = ZSTD_decompressStream(d, &output, &input);
    EXPECT_FALSE(ZSTD_isError(rc)) << ZSTD_getErrorName(rc);
    if (ZSTD_isError(rc)) break;
    out.append(buf, output.pos);
    if (output.pos == 0 && input.pos == input.size && rc != 0) break;  // truncated
  }
  EXPECT_EQ(rc, 0u) << "zstd frame not complete";
  ZSTD_freeDCtx(d);
  return out;
}

std::string decode(Coding coding, const std::string& in) {
  switch (coding) {
    case Coding::kGzip:
      return gunzip(in);
    case Coding::kBrotli:
      return unbrotli(in);
    case Coding::kZstd:
      return unzstd(in);
  }
  return {};
}

class EncoderTest : public ::testing::TestWithParam<Coding> {};

TEST_P(EncoderTest, PiecesWrittenWithAndWithoutFlushDecodeToTheInput) {
  const std::string input = text(300 * 1024);
  auto encoder = make_encoder(GetParam(), Levels{}).value();
  IoBuffer out;
  size_t flushed_at = 0;
  for (size_t at = 0; at < input.size(); at += 7000) {
    const bool flush = (at / 7000) % 3 == 0;
    ASSERT_TRUE(encoder->write(std::string_view(input).substr(at, 7000), flush, out));
    if (flush) {
      EXPECT_GT(out.size(), flushed_at);  // a flush always yields the bytes so far
      flushed_at = out.size();
    }
  }
  ASSERT_TRUE(encoder->finish(out));
  EXPECT_LT(out.size(), input.size() / 4);  // it did compress
  EXPECT_EQ(decode(GetParam(), out.to_string()), input);
}

TEST_P(EncoderTest, AnEmptyBodyIsAValidEmptyStream) {
  auto encoder = make_encoder(GetParam(), Levels{}).value();
  IoBuffer out;
  ASSERT_TRUE(encoder->finish(out));
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(decode(GetParam(), out.to_string()), "");
}

TEST_P(EncoderTest, AKnownLengthSizesTheWindowAndTheWholeBodyCanEndTheStream) {
  for (const size_t size : {size_t{0}, size_t{1}, size_t{1000}, size_t{1024}, size_t{70000}}) {
    const std::string input = text(size);
    auto encoder = make_encoder(GetParam(), Levels{}, size).value();
    IoBuffer out;
    ASSERT_TRUE(encoder->finish_with(input, out)) << size;
    EXPECT_EQ(decode(GetParam(), out.to_string()), input) << size;
  }
}

TEST_P(EncoderTest, ABodyLongerThanItsLengthHintIsEncodedOrRefusedNeverCorrupted) {
  const std::string input = text(200000);
  auto encoder = make_encoder(GetParam(), Levels{}, 1000).value();
  IoBuffer out;
  const bool written =
      encoder->write(input, /*flush=*/true, out).has_value() && encoder->finish(out).has_value();
  if (GetParam() == Coding::kZstd) {
    EXPECT_FALSE(written);  // zstd holds the encoder to the length it was told
  } else {
    ASSERT_TRUE(written);
    EXPECT_EQ(decode(GetParam(), out.to_string()), input);
  }
}

// A body whose pieces come one at a time (as from an upstream), of a known length or not.
class Pieces final : public Body {
 public:
  explicit Pieces(std::vector<std::string> pieces, bool known_length = false)
      : pieces_(std::move(pieces)), known_length_(known_length) {}
  runtime::Task<Result<IoBuffer>> read() override {
    if (next_ == pieces_.size()) co_return IoBuffer();
    co_return IoBuffer::copy_of(pieces_[next_++]);
  }
  std::optional<uint64_t> length() const override {
    if (!known_length_) return std::nullopt;
    uint64_t total = 0;
    for (const std::string& p : pieces_) total += p.size();
    return total;
  }

 private:
  std::vector<std::string> pieces_;
  bool known_length_;
  size_t next_ = 0;
};

runtime::Task<std::vector<std::string>> read_all(Body& body) {
  std::vector<std::string> out;
  while (true) {
    Result<IoBuffer> piece = co_await body.read();
    if (!piece || piece->empty()) break;
    out.push_back(piece->to_string());
  }
  co_return out;
}

TEST_P(EncoderTest, ACompressedBodyYieldsEachPieceAsItComes) {
  auto rt = std::move(*runtime::Runtime::create({}));
  const std::vector<std::string> pieces = {"event: one\n\n", "event: two\n\n", text(100000)};
  CompressedBody body(std::make_unique<Pieces>(pieces), make_encoder(GetParam(), {}).value());
  EXPECT_FALSE(body.length().has_value());
  std::vector<std::string> out = rt->block_on(read_all(body));
  ASSERT_GE(out.size(), 3u);  // one piece out per piece in (flushed), then the stream's end
  std::string all;
  for (const std::string& piece : out) all += piece;
  EXPECT_EQ(decode(GetParam(), all), pieces[0] + pieces[1] + pieces[2]);
}

TEST_P(EncoderTest, ACompressedBodyOfKnownLengthEndsTheStreamWithItsLastPiece) {
  auto rt = std::move(*runtime::Runtime::create({}));
  const std::vector<std::string> pieces = {text(700), text(324)};
  auto inner = std::make_unique<Pieces>(pieces, /*known_length=*/true);
  auto encoder = make_encoder(GetParam(), {}, inner->length()).value();
  CompressedBody body(std::move(inner), std::move(encoder));
  std::vector<std::string> out = rt->block_on(read_all(body));
  ASSERT_EQ(out.size(), 2u);  // the first piece flushed; the second with the stream's end
  EXPECT_EQ(decode(GetParam(), out[0] + out[1]), pieces[0] + pieces[1]);
}

// A body that declares a length and then yields more: refused before the excess is encoded.
class Overlong final : public Body {
 public:
  runtime::Task<Result<IoBuffer>> read() override {
    if (done_) co_return IoBuffer();
    done_ = true;
    co_return IoBuffer::copy_of(text(2000));
  }
  std::optional<uint64_t> length() const override { return 1000; }

 private:
  bool done_ = false;
};

TEST_P(EncoderTest, ABodyLongerThanItsContentLengthIsAnErrorNotSent) {
  auto rt = std::move(*runtime::Runtime::create({}));
  CompressedBody body(std::make_unique<Overlong>(), make_encoder(GetParam(), {}, 1000).value());
  Result<IoBuffer> first = rt->block_on(body.read());
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code(), ErrorCode::kProtocol);
}

INSTANTIATE_TEST_SUITE_P(Codings, EncoderTest,
                         ::testing::Values(Coding::kGzip, Coding::kBrotli, Coding::kZstd),
                         [](const auto& info) {
                           return std::string(
                               info.param == Coding::kBrotli ? "br" : coding_name(info.param));
                         });

const std::vector<Coding> kAll = {Coding::kBrotli, Coding::kZstd, Coding::kGzip};

TEST(Negotiate, HighestQValueWinsAndTheOfferedOrderBreaksTies) {
  EXPECT_EQ(negotiate("gzip, deflate, br", kAll), Coding::kBrotli);
  EXPECT_EQ(negotiate("gzip, deflate, br", {Coding::kGzip, Coding::kBrotli}), Coding::kGzip);
  EXPECT_EQ(negotiate("br;q=0.5, gzip;q=0.8", kAll), Coding::kGzip);
  EXPECT_EQ(negotiate("zstd;q=1.0, br;q=0.999", kAll), Coding::kZstd);
  EXPECT_EQ(negotiate("GZIP", kAll), Coding::kGzip);
  EXPECT_EQ(negotiate("x-gzip", kAll), Coding::kGzip);
}

TEST(Negotiate, NothingAcceptableMeansIdentity) {
  EXPECT_EQ(negotiate("", kAll), std::nullopt);
  EXPECT_EQ(negotiate("identity", kAll), std::nullopt);
  EXPECT_EQ(negotiate("deflate, compress", kAll), std::nullopt);
  EXPECT_EQ(negotiate("br;q=0, gzip;q=0.000", kAll), std::nullopt);
  EXPECT_EQ(negotiate("gzip", {Coding::kBrotli}), std::nullopt);
}

TEST(Negotiate, TheStarCoversCodingsNotListed) {
  EXPECT_EQ(negotiate("*", kAll), Coding::kBrotli);
  EXPECT_EQ(negotiate("br;q=0, *;q=0.5", kAll), Coding::kZstd);
  EXPECT_EQ(negotiate("gzip, *;q=0", kAll), Coding::kGzip);
}

TEST(Negotiate, MalformedMembersAreIgnored) {
  EXPECT_EQ(negotiate("br;q=2, gzip", kAll), Coding::kGzip);
  EXPECT_EQ(negotiate("br;q=x, zstd;level=3, gzip;q=0.5", kAll), Coding::kGzip);
  EXPECT_EQ(negotiate("br;q=0.1234", kAll), std::nullopt);
  EXPECT_EQ(negotiate("b r, ;q=1, ,,, gzip ;  q=1", kAll), Coding::kGzip);
  EXPECT_EQ(negotiate(std::string(10000, ','), kAll), std::nullopt);
}

}  // namespace
}  // namespace monolake::http::compression
