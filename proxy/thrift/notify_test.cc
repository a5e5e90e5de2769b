#include "proxy/thrift/notify.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::proxy::thrift {
namespace {

using namespace std::chrono_literals;
using runtime::Task;

std::unique_ptr<runtime::Runtime> make_runtime() {
  runtime::RuntimeOptions options;
  options.honor_env = false;
  auto created = runtime::Runtime::create(options);
  EXPECT_TRUE(created.has_value());
  return std::move(*created);
}

Task<Result<void>> wait_on(Notify* n) { co_return co_await n->wait(); }

Task<void> waker(Notify* n, int* woken) {
  (void)co_await runtime::sleep(5ms);
  *woken += 1;
  n->notify();
}

// Spawns a task that notifies after 5 ms and waits for it: how many times it woke us.
Task<int> wait_for_waker(Notify* n, int* woken) {
  runtime::spawn(waker(n, woken));
  Result<void> r = co_await n->wait();
  co_return r ? *woken : -1;
}

TEST(Notify, PermitIsKeptForTheNextWait) {
  auto rt = make_runtime();
  Notify n;
  n.notify();
  n.notify();  // one permit, not two
  EXPECT_TRUE(rt->block_on(wait_on(&n)).has_value());
  Result<void> second = rt->block_on(runtime::with_timeout(wait_on(&n), 20ms));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ErrorCode::kTimeout);
}

TEST(Notify, WakesTheWaiter) {
  auto rt = make_runtime();
  Notify n;
  int woken = 0;
  EXPECT_EQ(rt->block_on(wait_for_waker(&n, &woken)), 1);
}

TEST(Notify, ACancelledWaitLeavesNoWaiterBehind) {
  auto rt = make_runtime();
  Notify n;
  Result<void> timed_out = rt->block_on(runtime::with_timeout(wait_on(&n), 10ms));
  ASSERT_FALSE(timed_out.has_value());
  // The timed-out awaiter is gone: notify() must store a permit, not resume it.
  n.notify();
  EXPECT_TRUE(rt->block_on(wait_on(&n)).has_value());
}

}  // namespace
}  // namespace monolake::proxy::thrift
