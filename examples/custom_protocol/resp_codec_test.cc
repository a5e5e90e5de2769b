#include "examples/custom_protocol/resp_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace example {
namespace {

// Every frame of `input` fed in two pieces split at `split`; "error" or "more" last.
std::vector<std::string> decode_all(const std::string& input, size_t split, bool client,
                                    RespLimits limits = {}) {
  RespCodec codec(limits, client);
  monolake::IoBuffer in;
  std::vector<std::string> out;
  for (const std::string& piece : {input.substr(0, split), input.substr(split)}) {
    in.append(piece);
    while (true) {
      auto frame = codec.decode(in);
      if (!frame) {
        out.push_back("error: " + frame.error().message());
        return out;
      }
      if (!*frame) break;
      out.push_back(**frame);
    }
  }
  if (!in.empty()) out.push_back("more");
  return out;
}

// Every frame of `input` fed one byte at a time (the decoder resumes where it stopped).
std::vector<std::string> decode_bytewise(const std::string& input, bool client, RespLimits limits) {
  RespCodec codec(limits, client);
  monolake::IoBuffer in;
  std::vector<std::string> out;
  for (char c : input) {
    in.append(std::string_view(&c, 1));
    while (true) {
      auto frame = codec.decode(in);
      if (!frame) {
        out.push_back("error: " + frame.error().message());
        return out;
      }
      if (!*frame) break;
      out.push_back(**frame);
    }
  }
  if (!in.empty()) out.push_back("more");
  return out;
}

// The same result whole, split at every byte, and fed byte by byte (the codec contract:
// codec/codec.h).
std::vector<std::string> decode_everywhere(const std::string& input, bool client,
                                           RespLimits limits = {}) {
  const std::vector<std::string> whole = decode_all(input, input.size(), client, limits);
  for (size_t split = 0; split <= input.size(); ++split) {
    EXPECT_EQ(decode_all(input, split, client, limits), whole) << "split at " << split;
  }
  EXPECT_EQ(decode_bytewise(input, client, limits), whole) << "byte by byte";
  return whole;
}

TEST(RespCodec, RepliesOfEveryTypeAreFramedAsTheyCame) {
  const std::string replies =
      "+OK\r\n-ERR no\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n";
  EXPECT_EQ(decode_everywhere(replies, false),
            (std::vector<std::string>{"+OK\r\n", "-ERR no\r\n", ":-7\r\n", "$3\r\na\r\n\r\n",
                                      "$-1\r\n", "*-1\r\n", "*2\r\n*1\r\n:1\r\n$0\r\n\r\n"}));
}

TEST(RespCodec, CommandsAsArraysOrInline) {
  const std::string set = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n";
  const auto frames = decode_everywhere(set + "PING\r\n", true);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(command_arguments(frames[0]).value(), (std::vector<std::string>{"SET", "k", "v1"}));
  EXPECT_EQ(command_arguments(frames[1]).value(), (std::vector<std::string>{"PING"}));
  // Without inline commands (the reply side), a line with no type byte is malformed.
  EXPECT_EQ(decode_everywhere("PING\r\n", false).back(), "error: resp: unknown type byte");
}

TEST(RespCodec, MalformedAndOverLimitInputIsRefused) {
  RespLimits small;
  small.max_bulk_bytes = 4;
  small.max_elements = 2;
  small.max_depth = 1;
  small.max_line = 8;
  EXPECT_EQ(decode_everywhere("$5\r\nhello\r\n", false, small).back(),
            "error: resp: bulk string over max_bulk_bytes");
  EXPECT_EQ(decode_everywhere("*3\r\n:1\r\n:2\r\n:3\r\n", false, small).back(),
            "error: resp: array over max_elements");
  EXPECT_EQ(decode_everywhere("*1\r\n*1\r\n:1\r\n", false, small).back(),
            "error: resp: arrays nested too deep");
  EXPECT_EQ(decode_everywhere("+0123456789\r\n", false, small).back(),
            "error: resp: line over max_line");
  EXPECT_EQ(decode_everywhere("$2\r\nabXY", false).back(),
            "error: resp: bulk string not followed by CRLF");
  EXPECT_EQ(decode_everywhere(":12a\r\n", false).back(),
            "error: resp: integer reply is not an integer");
  EXPECT_EQ(decode_everywhere("+a\nb\r\n", false).back(), "error: resp: bare CR or LF");
  EXPECT_EQ(decode_everywhere("$-2\r\n", false).back(), "error: resp: bad bulk length");
  EXPECT_EQ(decode_everywhere("$3\r\nab", false).back(), "more");
  RespLimits frame;
  frame.max_frame_bytes = 16;
  EXPECT_EQ(decode_everywhere("*2\r\n$3\r\nabc\r\n$1\r\nd\r\n", false, frame).back(),
            "error: resp: value over max_frame_bytes");
  EXPECT_EQ(decode_everywhere("+ok\r\n$4\r\nabcd\r\n", false, frame),
            (std::vector<std::string>{"+ok\r\n", "$4\r\nabcd\r\n"}));  // 10 bytes: fits
}

TEST(RespCodec, NestedArraysEndWhereTheirLastElementEnds) {
  // [[1, [2, 3]], "x", []] then +OK: the innermost array closing closes its parents' counts.
  const std::string nested = "*3\r\n*2\r\n:1\r\n*2\r\n:2\r\n:3\r\n$1\r\nx\r\n*0\r\n";
  EXPECT_EQ(decode_everywhere(nested + "+OK\r\n", false),
            (std::vector<std::string>{nested, "+OK\r\n"}));
}

TEST(RespCodec, ALargeArrayIsDecodedAcrossManyReads) {
  // 100000 elements in 1000-byte pieces: resumable, so this stays linear.
  std::string reply = "*100000\r\n";
  for (int i = 0; i < 100000; ++i) reply += ":" + std::to_string(i) + "\r\n";
  RespLimits limits;
  limits.max_elements = 1 << 20;
  RespCodec codec(limits);
  monolake::IoBuffer in;
  std::optional<std::string> got;
  for (size_t at = 0; at < reply.size() && !got; at += 1000) {
    in.append(std::string_view(reply).substr(at, 1000));
    auto frame = codec.decode(in);
    ASSERT_TRUE(frame.has_value()) << frame.error().message();
    got = std::move(*frame);
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, reply);
  EXPECT_TRUE(in.empty());
}

TEST(RespCodec, CommandArguments) {
  using Args = std::vector<std::string>;
  EXPECT_EQ(command_arguments("*2\r\n$3\r\nGET\r\n$0\r\n\r\n").value(), (Args{"GET", ""}));
  EXPECT_EQ(command_arguments("set  k\tv\r\n").value(), (Args{"set", "k", "v"}));
  // What redis-server ignores without a reply.
  EXPECT_EQ(command_arguments("*0\r\n").value(), Args{});
  EXPECT_EQ(command_arguments("*-1\r\n").value(), Args{});
  EXPECT_EQ(command_arguments("\r\n").value(), Args{});
  EXPECT_FALSE(command_arguments("*1\r\n:1\r\n").has_value());       // not a bulk string
  EXPECT_FALSE(command_arguments("*1\r\n$-1\r\n").has_value());      // a null argument
  EXPECT_FALSE(command_arguments("$5\r\nhello\r\n").has_value());    // not an array
  EXPECT_FALSE(command_arguments("*2\r\n$1\r\na\r\n").has_value());  // one short
  EXPECT_FALSE(command_arguments("*1\r\n$9\r\na\r\n").has_value());  // past the end
  EXPECT_FALSE(command_arguments("PING").has_value());               // no CRLF
}

}  // namespace
}  // namespace example
