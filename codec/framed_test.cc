#include "codec/framed.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "codec/thrift.h"
#include "runtime/runtime.h"

namespace monolake::codec {
namespace {

using namespace std::string_literals;

// A stream double: read_some hands out the scripted pieces, then end of stream (or an error);
// write_all records what was written.
struct ScriptedStream {
  std::deque<std::string> reads;
  std::optional<Error> read_error;
  std::string written;

  runtime::Task<Result<size_t>> read_some(IoBuffer& into) {
    if (reads.empty()) {
      if (read_error) co_return *read_error;
      co_return size_t{0};
    }
    const std::string piece = reads.front();
    reads.pop_front();
    into.append(piece);
    co_return piece.size();
  }
  runtime::Task<runtime::BufResult<size_t>> write_all(IoBuffer buffer) {
    written += buffer.to_string();
    const size_t n = buffer.size();
    co_return runtime::BufResult<size_t>{n, std::move(buffer)};
  }
};

std::string frame(char seq) {
  return "\x00\x00\x00\x0e\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00"s + seq + "\x00"s;
}

class FramedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime::RuntimeOptions options;
    options.backend = runtime::BackendKind::kEpoll;
    options.honor_env = false;
    auto created = runtime::Runtime::create(options);
    ASSERT_TRUE(created.has_value()) << created.error().to_string();
    rt_ = std::move(*created);
  }
  std::unique_ptr<runtime::Runtime> rt_;
};

TEST_F(FramedTest, FramesAcrossReadsThenCleanEnd) {
  const std::string wire = frame(1) + frame(2) + frame(3);
  ScriptedStream s;
  // Pieces that split frames anywhere: 1 byte, then 7, then the rest.
  s.reads = {wire.substr(0, 1), wire.substr(1, 7), wire.substr(8)};
  Framed<ScriptedStream, thrift::Codec> framed(s);
  std::vector<int32_t> seqids;
  rt_->block_on([&]() -> runtime::Task<void> {
    while (true) {
      Result<std::optional<thrift::Frame>> f = co_await framed.next();
      EXPECT_TRUE(f.has_value());
      if (!f || !f->has_value()) break;
      seqids.push_back((*f)->seqid);
      EXPECT_TRUE((co_await framed.send(**f)).has_value());
    }
  }());
  EXPECT_EQ(seqids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(s.written, wire);
}

TEST_F(FramedTest, EndInsideAFrameIsAnError) {
  ScriptedStream s;
  s.reads = {frame(1).substr(0, 9)};
  Framed<ScriptedStream, thrift::Codec> framed(s);
  Result<std::optional<thrift::Frame>> f = rt_->block_on(framed.next());
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);
}

TEST_F(FramedTest, MalformedAndReadErrorsPassThrough) {
  ScriptedStream bad;
  bad.reads = {"\xff\xff\xff\xff"s};
  Framed<ScriptedStream, thrift::Codec> framed(bad);
  Result<std::optional<thrift::Frame>> f = rt_->block_on(framed.next());
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);

  ScriptedStream reset;
  reset.read_error = Error(ErrorCode::kConnectionReset);
  Framed<ScriptedStream, thrift::Codec> framed2(reset);
  f = rt_->block_on(framed2.next());
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kConnectionReset);
}

}  // namespace
}  // namespace monolake::codec
