// Notify on both backends: stored wake-ups, waking a waiting task, cancellation by with_timeout
// and by a JoinHandle, and destruction under a waiter.
#include "runtime/notify.h"

#include <memory>
#include <vector>

#include "runtime/testing.h"
#include "runtime/time.h"

namespace monolake::runtime {
namespace {

using namespace std::chrono_literals;

class NotifyTest : public BackendTest {};

TEST_P(NotifyTest, StoredWakeUpCompletesTheNextWaitAtOnce) {
  run([]() -> Task<void> {
    Notify n;
    n.notify();
    n.notify();  // counts once
    EXPECT_TRUE((co_await n.wait()).has_value());
    Result<void> second = co_await with_timeout(
        [](Notify& n) -> Task<Result<void>> { co_return co_await n.wait(); }(n), 20ms);
    EXPECT_FALSE(second.has_value());
    if (second) co_return;
    EXPECT_EQ(second.error().code(), ErrorCode::kTimeout);
  }());
  expect_idle();
}

TEST_P(NotifyTest, WakesAWaitingTaskInOrderOfEvents) {
  run([]() -> Task<void> {
    Notify n;
    std::vector<int> log;
    auto waiter = spawn_with_handle([](Notify& n, std::vector<int>& log) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE((co_await n.wait()).has_value());
        log.push_back(i);
      }
    }(n, log));
    for (int i = 0; i < 3; ++i) {
      co_await yield_now{};
      EXPECT_TRUE(n.has_waiter());
      n.notify();
      co_await yield_now{};
    }
    co_await waiter;
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
    EXPECT_FALSE(n.has_waiter());
  }());
  expect_idle();
}

TEST_P(NotifyTest, CancelledWaitEndsWithCancelledAndLeavesNoWaiter) {
  run([]() -> Task<void> {
    Notify n;
    auto waiter =
        spawn_with_handle([](Notify& n) -> Task<Result<void>> { co_return co_await n.wait(); }(n));
    co_await yield_now{};
    EXPECT_TRUE(n.has_waiter());
    waiter.cancel();
    Result<void> r = co_await waiter;
    EXPECT_FALSE(r.has_value());
    if (r) co_return;
    EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
    EXPECT_FALSE(n.has_waiter());
    n.notify();  // stored, nobody to wake
    EXPECT_TRUE((co_await n.wait()).has_value());
  }());
  expect_idle();
}

TEST_P(NotifyTest, DestroyingTheNotifyWakesTheWaiterWithCancelled) {
  run([]() -> Task<void> {
    auto n = std::make_unique<Notify>();
    auto waiter =
        spawn_with_handle([](Notify& n) -> Task<Result<void>> { co_return co_await n.wait(); }(*n));
    co_await yield_now{};
    n.reset();
    Result<void> r = co_await waiter;
    EXPECT_FALSE(r.has_value());
    if (r) co_return;
    EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  }());
  expect_idle();
}

TEST_P(NotifyTest, NotifiedThenDestroyedBeforeTheWaiterRuns) {
  run([]() -> Task<void> {
    auto n = std::make_unique<Notify>();
    auto waiter =
        spawn_with_handle([](Notify& n) -> Task<Result<void>> { co_return co_await n.wait(); }(*n));
    co_await yield_now{};
    n->notify();
    n.reset();  // the waiter has been scheduled; it must not touch the freed Notify
    EXPECT_TRUE((co_await waiter).has_value());
  }());
  expect_idle();
}

ML_INSTANTIATE_BACKEND_TESTS(NotifyTest);

}  // namespace
}  // namespace monolake::runtime
