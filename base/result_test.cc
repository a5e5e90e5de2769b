#include "base/result.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/error.h"

namespace monolake {
namespace {

// A Result is built implicitly from either a value or an Error, so `return 5;` and
// `return Error(...)` both work in a function returning Result<int>.
static_assert(std::is_convertible_v<int, Result<int>>);
static_assert(std::is_convertible_v<Error, Result<int>>);
static_assert(std::is_convertible_v<const char*, Result<std::string>>);
static_assert(std::is_convertible_v<Error, Result<void>>);
static_assert(std::is_same_v<Result<int>::value_type, int>);
static_assert(std::is_same_v<Result<void>::value_type, void>);
// Move-only values make move-only Results.
static_assert(!std::is_copy_constructible_v<Result<std::unique_ptr<int>>>);
static_assert(std::is_move_constructible_v<Result<std::unique_ptr<int>>>);
// Only explicit conversion to bool: a Result<int> must not silently become an int.
static_assert(!std::is_convertible_v<Result<int>, bool>);
static_assert(std::is_constructible_v<bool, Result<int>>);

Result<int> ParsePositive(int n) {
  if (n <= 0) return Error(ErrorCode::kInvalidArgument, "not positive");
  return n;
}

Result<void> CheckEven(int n) {
  if (n % 2 != 0) return Error(ErrorCode::kInvalidArgument, "odd");
  return ok();
}

class ResultDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---------------------------------------------------------------------------------------------
// Result<T> holding a value.

TEST(ResultTest, HoldsInt) {
  Result<int> r = 42;
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
}

TEST(ResultTest, ValueIsMutableThroughReference) {
  Result<int> r = 1;
  r.value() = 2;
  EXPECT_EQ(*r, 2);
  *r += 3;
  EXPECT_EQ(r.value(), 5);
}

TEST(ResultTest, ConstAccessors) {
  const Result<std::string> r = std::string("const");
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), "const");
  EXPECT_EQ(*r, "const");
  EXPECT_EQ(r->size(), 5u);
  static_assert(std::is_same_v<decltype(r.value()), const std::string&>);
  static_assert(std::is_same_v<decltype(r.operator->()), const std::string*>);
}

TEST(ResultTest, HoldsString) {
  Result<std::string> r = "hello";
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  r->append(" world");
  EXPECT_EQ(r.value(), "hello world");
}

TEST(ResultTest, ArrowPointsIntoStorage) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r.operator->(), &r.value());
  EXPECT_EQ(r->c_str(), r.value().c_str());
}

TEST(ResultTest, HoldsMoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.has_value());
  ASSERT_NE(r.value(), nullptr);
  EXPECT_EQ(**r, 7);
  EXPECT_EQ(*r->get(), 7);
}

TEST(ResultTest, NullUniquePtrIsStillAValue) {
  Result<std::unique_ptr<int>> r = std::unique_ptr<int>();
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(*r, nullptr);
}

TEST(ResultTest, BoolValueIsNotConfusedWithSuccess) {
  Result<bool> r = false;
  // operator bool reports success, not the held value.
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
}

TEST(ResultTest, MoveOutValueWithRvalueValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(11);
  int* raw = r->get();
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p.get(), raw);
  EXPECT_EQ(*p, 11);
  // The Result still holds a (moved-from) value.
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(*r, nullptr);  // NOLINT(bugprone-use-after-move)
}

TEST(ResultTest, MoveOutValueWithRvalueStar) {
  Result<std::string> r = std::string(100, 'x');
  const void* chars = r->data();
  std::string s = *std::move(r);
  EXPECT_EQ(s, std::string(100, 'x'));
  // Moved, not copied: the heap block travelled with the string.
  EXPECT_EQ(static_cast<const void*>(s.data()), chars);
  static_assert(std::is_same_v<decltype(*std::move(r)), std::string&&>);
  static_assert(std::is_same_v<decltype(std::move(r).value()), std::string&&>);
}

TEST(ResultTest, MoveConstructAndAssignResult) {
  Result<std::unique_ptr<int>> a = std::make_unique<int>(3);
  Result<std::unique_ptr<int>> b = std::move(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(**b, 3);

  Result<std::unique_ptr<int>> c = Error(ErrorCode::kClosed);
  EXPECT_FALSE(c);
  c = std::move(b);
  ASSERT_TRUE(c);
  EXPECT_EQ(**c, 3);

  c = Error(ErrorCode::kTimeout);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kTimeout);
}

TEST(ResultTest, CopyResult) {
  Result<std::string> a = "copy";
  Result<std::string> b = a;
  EXPECT_EQ(*a, "copy");
  EXPECT_EQ(*b, "copy");
  Result<std::string> e = Error(ErrorCode::kProtocol, "bad");
  Result<std::string> f = e;
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message(), "bad");
  EXPECT_EQ(e.error().message(), "bad");
}

// ---------------------------------------------------------------------------------------------
// Result<T> holding an error.

TEST(ResultTest, HoldsError) {
  Result<int> r = Error(ErrorCode::kTimeout, "connect", ETIMEDOUT);
  EXPECT_FALSE(r.has_value());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(r.error().message(), "connect");
  EXPECT_EQ(r.error().sys_errno(), ETIMEDOUT);
}

TEST(ResultTest, ConstErrorAccessor) {
  const Result<std::string> r = Error(ErrorCode::kNotFound);
  static_assert(std::is_same_v<decltype(r.error()), const Error&>);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(r.error().message().empty());
  EXPECT_EQ(r.error().sys_errno(), 0);
}

TEST(ResultTest, MoveOutError) {
  const std::string long_message(200, 'm');
  Result<std::string> r = Error(ErrorCode::kProtocol, long_message, EPROTO);
  const void* chars = r.error().message().data();
  static_assert(std::is_same_v<decltype(std::move(r).error()), Error&&>);
  Error e = std::move(r).error();
  EXPECT_EQ(e.code(), ErrorCode::kProtocol);
  EXPECT_EQ(e.message(), long_message);
  EXPECT_EQ(e.sys_errno(), EPROTO);
  // Moved, not copied.
  EXPECT_EQ(static_cast<const void*>(e.message().data()), chars);
  EXPECT_FALSE(r.has_value());  // NOLINT(bugprone-use-after-move)
}

TEST(ResultTest, ErrorOfMoveOnlyResult) {
  Result<std::unique_ptr<int>> r = Error(ErrorCode::kLimitExceeded, "too many");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  Error e = std::move(r).error();
  EXPECT_EQ(e.message(), "too many");
}

TEST(ResultTest, ValueOrReturnsValue) {
  Result<int> r = 5;
  EXPECT_EQ(r.value_or(-1), 5);
  Result<std::string> s = "have";
  EXPECT_EQ(s.value_or("fallback"), "have");
  // value_or copies; the Result keeps its value.
  EXPECT_EQ(*s, "have");
}

TEST(ResultTest, ValueOrReturnsFallbackOnError) {
  Result<int> r = Error(ErrorCode::kIo);
  EXPECT_EQ(r.value_or(-1), -1);
  Result<std::string> s = Error(ErrorCode::kIo);
  EXPECT_EQ(s.value_or("fallback"), "fallback");
  EXPECT_EQ(s.value_or(std::string("other")), "other");
  // The fallback is converted to T.
  Result<double> d = Error(ErrorCode::kIo);
  EXPECT_DOUBLE_EQ(d.value_or(2), 2.0);
}

TEST(ResultTest, ReturnsFromFunctions) {
  Result<int> good = ParsePositive(3);
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 3);
  Result<int> bad = ParsePositive(-3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "not positive");
}

TEST(ResultTest, PropagatesErrorPattern) {
  auto twice = [](int n) -> Result<int> {
    Result<int> r = ParsePositive(n);
    if (!r) return std::move(r).error();
    return *r * 2;
  };
  EXPECT_EQ(twice(4).value_or(0), 8);
  Result<int> r = twice(0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ResultTest, VectorValue) {
  Result<std::vector<int>> r = std::vector<int>{1, 2, 3};
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2], 3);
}

// ---------------------------------------------------------------------------------------------
// Result<void>.

TEST(ResultVoidTest, DefaultIsSuccess) {
  Result<void> r;
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  r.value();  // A no-op on success.
}

TEST(ResultVoidTest, OkIsSuccess) {
  Result<void> r = ok();
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
}

TEST(ResultVoidTest, HoldsError) {
  Result<void> r = Error(ErrorCode::kClosed, "peer closed");
  EXPECT_FALSE(r.has_value());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code(), ErrorCode::kClosed);
  EXPECT_EQ(r.error().message(), "peer closed");
}

TEST(ResultVoidTest, MoveOutError) {
  Result<void> r = Error(ErrorCode::kConnectionReset, "reset", ECONNRESET);
  Error e = std::move(r).error();
  EXPECT_EQ(e.code(), ErrorCode::kConnectionReset);
  EXPECT_EQ(e.message(), "reset");
  EXPECT_EQ(e.sys_errno(), ECONNRESET);
}

TEST(ResultVoidTest, ReturnsFromFunctions) {
  EXPECT_TRUE(CheckEven(2));
  Result<void> r = CheckEven(3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "odd");
}

TEST(ResultVoidTest, AssignErrorThenSuccess) {
  Result<void> r = Error(ErrorCode::kTimeout);
  EXPECT_FALSE(r);
  r = ok();
  EXPECT_TRUE(r);
  r = Error(ErrorCode::kCancelled);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
}

// ---------------------------------------------------------------------------------------------
// Misuse aborts.

TEST_F(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r = Error(ErrorCode::kTimeout);
  EXPECT_DEATH((void)r.value(), "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, ConstValueOfErrorAborts) {
  const Result<std::string> r = Error(ErrorCode::kTimeout);
  EXPECT_DEATH((void)r.value(), "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, RvalueValueOfErrorAborts) {
  Result<std::unique_ptr<int>> r = Error(ErrorCode::kTimeout);
  EXPECT_DEATH((void)std::move(r).value(), "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, StarOfErrorAborts) {
  Result<int> r = Error(ErrorCode::kIo);
  EXPECT_DEATH((void)*r, "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, ArrowOfErrorAborts) {
  Result<std::string> r = Error(ErrorCode::kIo);
  EXPECT_DEATH((void)r->size(), "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, VoidValueOfErrorAborts) {
  Result<void> r = Error(ErrorCode::kIo);
  EXPECT_DEATH(r.value(), "value\\(\\) of an error Result");
}

TEST_F(ResultDeathTest, ErrorOfSuccessAborts) {
  Result<int> r = 1;
  EXPECT_DEATH((void)r.error(), "error\\(\\) of a successful Result");
  Result<std::string> s = "x";
  EXPECT_DEATH((void)std::move(s).error(), "error\\(\\) of a successful Result");
}

TEST_F(ResultDeathTest, VoidErrorOfSuccessAborts) {
  Result<void> r = ok();
  EXPECT_DEATH((void)r.error(), "error\\(\\) of a successful Result");
  EXPECT_DEATH((void)std::move(r).error(), "error\\(\\) of a successful Result");
}

// ---------------------------------------------------------------------------------------------
// Error.

TEST(ErrorTest, Accessors) {
  Error e(ErrorCode::kProtocol, "bad header", EBADMSG);
  EXPECT_EQ(e.code(), ErrorCode::kProtocol);
  EXPECT_EQ(e.message(), "bad header");
  EXPECT_EQ(e.sys_errno(), EBADMSG);
}

TEST(ErrorTest, DefaultsToNoMessageAndNoErrno) {
  Error e(ErrorCode::kInternal);
  EXPECT_EQ(e.code(), ErrorCode::kInternal);
  EXPECT_TRUE(e.message().empty());
  EXPECT_EQ(e.sys_errno(), 0);
}

struct ErrnoCase {
  int err;
  ErrorCode code;
};

TEST(ErrorTest, FromErrnoMapping) {
  const ErrnoCase cases[] = {
      {ECONNRESET, ErrorCode::kConnectionReset},
      {EPIPE, ErrorCode::kConnectionReset},
      {ECONNREFUSED, ErrorCode::kConnectionRefused},
      {ETIMEDOUT, ErrorCode::kTimeout},
      {ETIME, ErrorCode::kTimeout},
      {ECANCELED, ErrorCode::kCancelled},
      {EINVAL, ErrorCode::kInvalidArgument},
      {ENOENT, ErrorCode::kNotFound},
      {ENOSYS, ErrorCode::kUnsupported},
      {EOPNOTSUPP, ErrorCode::kUnsupported},
      {EMFILE, ErrorCode::kLimitExceeded},
      {ENFILE, ErrorCode::kLimitExceeded},
      {ENOBUFS, ErrorCode::kLimitExceeded},
      {ENOMEM, ErrorCode::kLimitExceeded},
      {EIO, ErrorCode::kIo},
      {EBADF, ErrorCode::kIo},
      {EAGAIN, ErrorCode::kIo},
      {EACCES, ErrorCode::kIo},
  };
  for (const ErrnoCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "errno " << c.err << " (" << std::strerror(c.err) << ")");
    Error e = Error::from_errno(c.err);
    EXPECT_EQ(e.code(), c.code) << error_code_name(e.code());
    EXPECT_EQ(e.sys_errno(), c.err);
    EXPECT_TRUE(e.message().empty());
  }
}

TEST(ErrorTest, FromErrnoKeepsContext) {
  Error e = Error::from_errno(ECONNREFUSED, "connect 127.0.0.1:80");
  EXPECT_EQ(e.code(), ErrorCode::kConnectionRefused);
  EXPECT_EQ(e.message(), "connect 127.0.0.1:80");
  EXPECT_EQ(e.sys_errno(), ECONNREFUSED);
}

TEST(ErrorTest, ToStringWithMessageAndErrno) {
  Error e = Error::from_errno(ETIMEDOUT, "connect 127.0.0.1:80");
  EXPECT_EQ(e.to_string(),
            std::string("timeout: connect 127.0.0.1:80 (") + std::strerror(ETIMEDOUT) + ")");
}

TEST(ErrorTest, ToStringCodeOnly) {
  EXPECT_EQ(Error(ErrorCode::kTimeout).to_string(), "timeout");
  EXPECT_EQ(Error(ErrorCode::kConnectionReset).to_string(), "connection_reset");
}

TEST(ErrorTest, ToStringMessageOnly) {
  EXPECT_EQ(Error(ErrorCode::kProtocol, "bad chunk size").to_string(), "protocol: bad chunk size");
}

TEST(ErrorTest, ToStringErrnoOnly) {
  EXPECT_EQ(Error::from_errno(EIO).to_string(), std::string("io (") + std::strerror(EIO) + ")");
  EXPECT_EQ(Error(ErrorCode::kIo, "", EBADF).to_string(),
            std::string("io (") + std::strerror(EBADF) + ")");
}

TEST(ErrorTest, ErrorCodeNames) {
  EXPECT_EQ(error_code_name(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(error_code_name(ErrorCode::kIo), "io");
  EXPECT_EQ(error_code_name(ErrorCode::kTimeout), "timeout");
  EXPECT_EQ(error_code_name(ErrorCode::kCancelled), "cancelled");
  EXPECT_EQ(error_code_name(ErrorCode::kClosed), "closed");
  EXPECT_EQ(error_code_name(ErrorCode::kConnectionReset), "connection_reset");
  EXPECT_EQ(error_code_name(ErrorCode::kConnectionRefused), "connection_refused");
  EXPECT_EQ(error_code_name(ErrorCode::kLimitExceeded), "limit_exceeded");
  EXPECT_EQ(error_code_name(ErrorCode::kProtocol), "protocol");
  EXPECT_EQ(error_code_name(ErrorCode::kNotFound), "not_found");
  EXPECT_EQ(error_code_name(ErrorCode::kUnsupported), "unsupported");
  EXPECT_EQ(error_code_name(ErrorCode::kInternal), "internal");
}

TEST(ErrorTest, ErrorCodeNameOfOutOfRangeValue) {
  EXPECT_EQ(error_code_name(static_cast<ErrorCode>(200)), "unknown");
}

TEST(ErrorTest, ErrorCodeNamesAreDistinct) {
  std::vector<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    std::string_view name = error_code_name(static_cast<ErrorCode>(i));
    EXPECT_NE(name, "unknown") << i;
    for (std::string_view seen : names) EXPECT_NE(name, seen) << i;
    names.push_back(name);
  }
}

TEST(ErrorTest, CopyAndMove) {
  Error a(ErrorCode::kClosed, "closed twice", EBADF);
  Error b = a;
  EXPECT_EQ(b.code(), ErrorCode::kClosed);
  EXPECT_EQ(b.message(), "closed twice");
  EXPECT_EQ(b.sys_errno(), EBADF);
  Error c = std::move(a);
  EXPECT_EQ(c.code(), ErrorCode::kClosed);
  EXPECT_EQ(c.message(), "closed twice");
  EXPECT_EQ(c.sys_errno(), EBADF);
}

}  // namespace
}  // namespace monolake
