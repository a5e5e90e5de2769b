// Test helpers for code on the runtime: one test body, run once per backend.
//
//   class MyTest : public runtime::BackendTest {};
//   TEST_P(MyTest, Works) { run([]() -> Task<void> { ...; co_return; }()); }
//   ML_INSTANTIATE_BACKEND_TESTS(MyTest);
//
// CO_REQUIRE(cond) / CO_REQUIRE_OK(result) stop a coroutine test body with a failure.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <string>

#include "runtime/internal/backend.h"
#include "runtime/io.h"
#include "runtime/runtime.h"

// Inside coroutines gtest's ASSERT_* cannot be used (they `return`): these stop the body.
#define CO_REQUIRE(cond)                             \
  do {                                               \
    if (!(cond)) {                                   \
      ADD_FAILURE() << "requirement failed: " #cond; \
      co_return;                                     \
    }                                                \
  } while (0)
#define CO_REQUIRE_OK(result)                                               \
  do {                                                                      \
    if (!(result)) {                                                        \
      ADD_FAILURE() << #result " failed: " << (result).error().to_string(); \
      co_return;                                                            \
    }                                                                       \
  } while (0)

namespace monolake::runtime {

class BackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    RuntimeOptions options;
    options.backend = GetParam();
    options.honor_env = false;
    auto created = Runtime::create(options);
    ASSERT_TRUE(created.has_value()) << created.error().to_string();
    rt_ = std::move(*created);
  }
  void TearDown() override { rt_.reset(); }

  template <class T>
  T run(Task<T> task) {
    return rt_->block_on(std::move(task));
  }

  Runtime& rt() { return *rt_; }

  // Nothing left behind: no timer queued, no operation in flight.
  void expect_idle() {
    EXPECT_EQ(rt().timers().size(), 0u);
    EXPECT_EQ(rt().backend().in_flight(), 0u);
  }
  // A connected AF_UNIX stream pair with the backend's socket flags.
  std::array<int, 2> socket_pair() {
    int fds[2] = {-1, -1};
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | socket_flags(), 0, fds), 0);
    return {fds[0], fds[1]};
  }
  void close_pair(const std::array<int, 2>& p) {
    rt().close_fd(p[0]);
    rt().close_fd(p[1]);
  }

  std::unique_ptr<Runtime> rt_;
};

inline std::string backend_param_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return std::string(backend_kind_name(info.param));
}

}  // namespace monolake::runtime

#define ML_INSTANTIATE_BACKEND_TESTS(suite)                                              \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                              \
                           ::testing::Values(::monolake::runtime::BackendKind::kIoUring, \
                                             ::monolake::runtime::BackendKind::kEpoll),  \
                           ::monolake::runtime::backend_param_name)
