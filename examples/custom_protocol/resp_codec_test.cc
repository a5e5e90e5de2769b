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

// The same result whole and split at every byte (the codec contract: codec/codec.h).
std::vector<std::string> decode_everywhere(const std::string& input, bool client,
                                           RespLimits limits = {}) {
  const std::vector<std::string> whole = decode_all(input, input.size(), client, limits);
  for (size_t split = 0; split <= input.size(); ++split) {
    EXPECT_EQ(decode_all(input, split, client, limits), whole) << "split at " << split;
  }
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
  EXPECT_FALSE(command_arguments("*1\r\n:1\r\n").has_value());
  EXPECT_FALSE(command_arguments("*0\r\n").has_value());
  EXPECT_FALSE(command_arguments("$5\r\nhello\r\n").has_value());  // not an array
}

}  // namespace
}  // namespace example
