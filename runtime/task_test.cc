#include <sys/socket.h>

#include <vector>

#include "runtime/io.h"
#include "runtime/testing.h"
#include "runtime/time.h"

namespace monolake::runtime {
namespace {

using namespace std::chrono_literals;

class TaskTest : public BackendTest {};

Task<int> answer() { co_return 42; }

Task<int> add_one(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await add_one(depth - 1);
}

TEST_P(TaskTest, ReturnsValue) { EXPECT_EQ(run(answer()), 42); }

TEST_P(TaskTest, LazyUntilAwaited) {
  bool started = false;
  auto make = [&]() -> Task<void> {
    started = true;
    co_return;
  };
  Task<void> t = make();
  EXPECT_FALSE(started);
  run(std::move(t));
  EXPECT_TRUE(started);
}

TEST_P(TaskTest, NestedAwaits) { EXPECT_EQ(run(add_one(1000)), 1000); }

Task<int> leaf(int i) { co_return i; }

// A long loop of awaits that each complete synchronously: with symmetric transfer the stack
// does not grow per await, so a million of them fit in the default 8 MiB stack.
TEST_P(TaskTest, LongAwaitLoopDoesNotGrowStack) {
  auto loop = []() -> Task<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) sum += co_await leaf(1);
    co_return sum;
  };
  EXPECT_EQ(run(loop()), 1'000'000);
}

TEST_P(TaskTest, MoveOnlyResults) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  EXPECT_EQ(*run(make()), 7);
}

TEST_P(TaskTest, SpawnedTasksRun) {
  int count = 0;
  auto body = [&]() -> Task<void> {
    for (int i = 0; i < 10; ++i) {
      spawn([](int* c) -> Task<void> {
        ++*c;
        co_return;
      }(&count));
    }
    co_await yield_now{};
    co_await yield_now{};
  };
  run(body());
  EXPECT_EQ(count, 10);
}

// A finished detached task frees its frame at once, and with it what its parameters own (a
// connection's socket must close when its task returns, not at shutdown).
TEST_P(TaskTest, FinishedSpawnedTaskReleasesItsParameters) {
  struct Flag {
    bool* destroyed;
    explicit Flag(bool* d) : destroyed(d) {}
    Flag(Flag&& other) noexcept : destroyed(std::exchange(other.destroyed, nullptr)) {}
    ~Flag() {
      if (destroyed) *destroyed = true;
    }
  };
  bool destroyed = false;
  auto body = [&]() -> Task<void> {
    spawn([](Flag f) -> Task<void> {
      (void)f;
      co_return;
    }(Flag(&destroyed)));
    co_await yield_now{};
    co_await yield_now{};
  };
  run(body());
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(rt().live_tasks(), 0u);
}

TEST_P(TaskTest, TenThousandConcurrentTasks) {
  constexpr int kTasks = 10'000;
  auto body = []() -> Task<long> {
    std::vector<JoinHandle<int>> handles;
    handles.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(spawn_with_handle([](int v) -> Task<int> {
        (void)co_await sleep(1ms);
        co_return v;
      }(i)));
    }
    long sum = 0;
    for (auto& h : handles) sum += co_await h;
    co_return sum;
  };
  EXPECT_EQ(run(body()), static_cast<long>(kTasks) * (kTasks - 1) / 2);
  EXPECT_EQ(rt().live_tasks(), 0u);
}

TEST_P(TaskTest, JoinHandleVoidAndCancel) {
  auto body = []() -> Task<bool> {
    auto sleeper =
        spawn_with_handle([]() -> Task<Result<void>> { co_return co_await sleep(10s); }());
    (void)co_await sleep(1ms);
    EXPECT_FALSE(sleeper.done());
    sleeper.cancel();
    Result<void> r = co_await sleeper;
    co_return !r && r.error().code() == ErrorCode::kCancelled;
  };
  EXPECT_TRUE(run(body()));
}

TEST_P(TaskTest, DestroyingRuntimeDestroysPendingTasks) {
  // A spawned task parked on a recv that never completes: tearing the runtime down must cancel
  // the op and free the frame (ASan/LSan would report otherwise).
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | socket_flags(), 0, fds), 0);
  bool finished = false;
  auto parked = [](int fd, bool* done) -> Task<void> {
    auto r = co_await recv(fd, IoBuffer(4096));
    *done = true;
    (void)r;
  };
  rt().spawn(parked(fds[0], &finished));
  run([]() -> Task<void> { co_await yield_now{}; }());
  EXPECT_EQ(rt().live_tasks(), 1u);
  rt_.reset();
  EXPECT_FALSE(finished);
  ::close(fds[0]);
  ::close(fds[1]);
}

ML_INSTANTIATE_BACKEND_TESTS(TaskTest);

}  // namespace
}  // namespace monolake::runtime
