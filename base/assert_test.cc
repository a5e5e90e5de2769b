#include "base/assert.h"

#include <gtest/gtest.h>

#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/log.h"

namespace monolake {
namespace {

class AssertDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---------------------------------------------------------------------------------------------
// ML_CHECK / ML_CHECK_MSG.

// Whether `line` is "YYYY-MM-DDTHH:MM:SS.mmmZ <level> <message>\n". (Hand-written: std::regex
// trips a GCC 12 -Wmaybe-uninitialized false positive in the asan build.)
bool IsLogLine(std::string_view line, std::string_view level, std::string_view message) {
  constexpr std::string_view kShape = "0000-00-00T00:00:00.000Z ";
  if (line.size() != kShape.size() + level.size() + 1 + message.size() + 1) return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = line[i] >= '0' && line[i] <= '9';
    if (kShape[i] == '0' ? !digit : line[i] != kShape[i]) return false;
  }
  line.remove_prefix(kShape.size());
  return line.substr(0, level.size()) == level && line[level.size()] == ' ' &&
         line.substr(level.size() + 1, message.size()) == message && line.back() == '\n';
}

TEST(AssertTest, CheckPassesOnTrue) {
  ML_CHECK(true);
  ML_CHECK(1 + 1 == 2);
  int* p = nullptr;
  ML_CHECK(p == nullptr);
  ML_CHECK_MSG(true, "never printed");
}

TEST(AssertTest, CheckEvaluatesConditionExactlyOnce) {
  int calls = 0;
  auto counted = [&calls] {
    ++calls;
    return true;
  };
  ML_CHECK(counted());
  EXPECT_EQ(calls, 1);
  ML_CHECK_MSG(counted(), "msg");
  EXPECT_EQ(calls, 2);
}

TEST(AssertTest, CheckIsAnExpressionUsableInIfElse) {
  bool flag = true;
  // Would not compile (or would bind the else wrongly) if the macro were a bare if statement.
  if (flag)
    ML_CHECK(flag);
  else
    FAIL() << "wrong branch";
  static_assert(std::is_void_v<decltype(ML_CHECK(true))>);
}

TEST_F(AssertDeathTest, CheckAbortsWithExpressionAndLocation) {
  const int line = __LINE__ + 1;
  auto fail = [] { ML_CHECK(1 + 1 == 3); };
  // "base/assert_test.cc:<line>: check failed: 1 + 1 == 3", and no message suffix.
  const std::string expected =
      "assert_test\\.cc:" + std::to_string(line) + ": check failed: 1 \\+ 1 == 3\n";
  EXPECT_DEATH(fail(), expected);
}

TEST_F(AssertDeathTest, CheckPrintsVariableNames) {
  auto fail = [] {
    const int used = 10;
    const int limit = 4;
    ML_CHECK(used <= limit);
  };
  EXPECT_DEATH(fail(), "check failed: used <= limit");
}

TEST_F(AssertDeathTest, CheckAbortsRatherThanExits) {
  EXPECT_EXIT(ML_CHECK(false), ::testing::KilledBySignal(SIGABRT), "check failed: false");
}

TEST_F(AssertDeathTest, CheckMsgPrintsTheMessage) {
  const int line = __LINE__ + 1;
  auto fail = [] { ML_CHECK_MSG(2 < 1, "the queue is corrupt"); };
  const std::string expected =
      "assert_test\\.cc:" + std::to_string(line) + ": check failed: 2 < 1: the queue is corrupt\n";
  EXPECT_DEATH(fail(), expected);
}

TEST_F(AssertDeathTest, CheckMsgWithRuntimeMessage) {
  const std::string message = "built at run time";
  EXPECT_DEATH(ML_CHECK_MSG(message.empty(), message.c_str()),
               "check failed: message\\.empty\\(\\): built at run time");
}

TEST(AssertTest, DcheckPassesOnTrue) {
  ML_DCHECK(true);
  ML_DCHECK(2 > 1);
}

#ifndef NDEBUG

TEST(AssertTest, DcheckIsActiveInDebugBuilds) {
  int calls = 0;
  auto counted = [&calls] {
    ++calls;
    return true;
  };
  ML_DCHECK(counted());
  EXPECT_EQ(calls, 1);
}

TEST_F(AssertDeathTest, DcheckAbortsInDebugBuilds) {
  const int line = __LINE__ + 1;
  auto fail = [] { ML_DCHECK(3 == 4); };
  const std::string expected =
      "assert_test\\.cc:" + std::to_string(line) + ": check failed: 3 == 4\n";
  EXPECT_DEATH(fail(), expected);
}

#else  // NDEBUG

TEST(AssertTest, DcheckIsCompiledOutUnderNdebug) {
  int calls = 0;
  auto counted = [&calls] {
    ++calls;
    return false;
  };
  ML_DCHECK(counted());  // Neither evaluated nor fatal.
  EXPECT_EQ(calls, 0);
}

#endif  // NDEBUG

// ---------------------------------------------------------------------------------------------
// Logging.

// Restores the process-wide log level after each test.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = log_level(); }
  void TearDown() override { set_log_level(saved_); }

 private:
  LogLevel saved_ = LogLevel::kInfo;
};

TEST_F(LogTest, ParseLogLevelNames) {
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
}

TEST_F(LogTest, ParseLogLevelRejectsOtherNames) {
  EXPECT_EQ(parse_log_level("verbose"), std::nullopt);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(parse_log_level("INFO"), std::nullopt);  // Case-sensitive.
  EXPECT_EQ(parse_log_level("warning"), std::nullopt);
  EXPECT_EQ(parse_log_level("debug "), std::nullopt);
  EXPECT_EQ(parse_log_level("2"), std::nullopt);
}

TEST_F(LogTest, DefaultLevelIsInfo) {
  // Every test restores the level, so this holds in any test order.
  EXPECT_EQ(log_level(), LogLevel::kInfo);
  EXPECT_TRUE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));
}

TEST_F(LogTest, SetLogLevelRoundTrips) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    set_log_level(level);
    EXPECT_EQ(log_level(), level);
  }
}

TEST_F(LogTest, LogEnabledAtEachLevel) {
  set_log_level(LogLevel::kError);
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_FALSE(log_enabled(LogLevel::kWarn));
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));

  set_log_level(LogLevel::kWarn);
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));

  set_log_level(LogLevel::kInfo);
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  EXPECT_TRUE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));

  set_log_level(LogLevel::kDebug);
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  EXPECT_TRUE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kDebug));
}

TEST_F(LogTest, SetLogLevelFromParsedName) {
  std::optional<LogLevel> level = parse_log_level("debug");
  ASSERT_TRUE(level.has_value());
  set_log_level(*level);
  EXPECT_TRUE(log_enabled(LogLevel::kDebug));
}

TEST(LogLineShapeTest, HelperAcceptsOnlyWellFormedLines) {
  EXPECT_TRUE(IsLogLine("2026-11-27T05:13:54.123Z INFO hi\n", "INFO", "hi"));
  EXPECT_FALSE(IsLogLine("2026-11-27T05:13:54.123Z INFO hi", "INFO", "hi"));
  EXPECT_FALSE(IsLogLine("2026-11-27 05:13:54.123Z INFO hi\n", "INFO", "hi"));
  EXPECT_FALSE(IsLogLine("2026-11-27T05:13:54.12xZ INFO hi\n", "INFO", "hi"));
  EXPECT_FALSE(IsLogLine("2026-11-27T05:13:54.123Z WARN hi\n", "INFO", "hi"));
  EXPECT_FALSE(IsLogLine("2026-11-27T05:13:54.123Z INFO ho\n", "INFO", "hi"));
}

TEST_F(LogTest, MacroWritesOneFormattedLine) {
  set_log_level(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  ML_LOG(kWarn, "runtime: using {} ({})", "epoll", 42);
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(IsLogLine(out, "WARN", "runtime: using epoll (42)")) << out;
}

TEST_F(LogTest, WriteLogLineLevelNames) {
  const struct {
    LogLevel level;
    const char* name;
  } cases[] = {{LogLevel::kError, "ERROR"},
               {LogLevel::kWarn, "WARN"},
               {LogLevel::kInfo, "INFO"},
               {LogLevel::kDebug, "DEBUG"}};
  for (const auto& c : cases) {
    ::testing::internal::CaptureStderr();
    write_log_line(c.level, "msg");
    const std::string out = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(IsLogLine(out, c.name, "msg")) << out;
  }
}

TEST_F(LogTest, MacroBelowLevelWritesNothingAndSkipsArguments) {
  set_log_level(LogLevel::kWarn);
  int evaluated = 0;
  auto expensive = [&evaluated] {
    ++evaluated;
    return std::string("expensive");
  };
  ::testing::internal::CaptureStderr();
  ML_LOG(kInfo, "value: {}", expensive());
  ML_LOG(kDebug, "value: {}", expensive());
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "");
  EXPECT_EQ(evaluated, 0);

  ::testing::internal::CaptureStderr();
  ML_LOG(kError, "value: {}", expensive());
  const std::string shown = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(evaluated, 1);
  EXPECT_NE(shown.find(" ERROR value: expensive\n"), std::string::npos) << shown;
}

TEST_F(LogTest, MacroIsASingleStatement) {
  set_log_level(LogLevel::kError);
  bool flag = false;
  // The do/while(0) wrapper keeps the else attached to the right if.
  if (flag)
    ML_LOG(kError, "not reached");
  else
    flag = true;
  EXPECT_TRUE(flag);
}

}  // namespace
}  // namespace monolake
