#include "proxy/framework/control_loop.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "runtime/notify.h"
#include "runtime/time.h"

namespace monolake::proxy::framework {
namespace {

using namespace std::chrono_literals;

// One test body for everything: signals are process-wide, so the mask is set once.
TEST(ControlLoop, SignalsAndCallsFromOtherThreadsRunOnTheLoopOneAtATime) {
  auto made = ControlLoop::create({SIGUSR2});
  ASSERT_TRUE(made) << made.error().to_string();
  ControlLoop& loop = **made;
  const std::thread::id loop_thread = std::this_thread::get_id();
  runtime::Notify got_signal;
  int signals = 0;
  loop.on_signal(SIGUSR2, [&] {
    ++signals;
    got_signal.notify();
  });
  std::atomic<int> calls_on_loop{0};
  std::optional<int> answer;
  std::thread caller;
  auto main = [&]() -> runtime::Task<int> {
    ::kill(::getpid(), SIGUSR2);  // process-directed: only the signalfd can take it
    if (!co_await got_signal.wait()) co_return 1;
    caller = std::thread([&] {
      answer = loop.call<int>([&] {
        if (std::this_thread::get_id() == loop_thread) calls_on_loop.fetch_add(1);
        return 42;
      });
    });
    while (!answer) {
      if (!co_await runtime::sleep(1ms)) co_return 1;
    }
    co_return 7;
  };
  EXPECT_EQ(loop.run(main()), 7);
  caller.join();
  EXPECT_EQ(signals, 1);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(*answer, 42);
  EXPECT_EQ(calls_on_loop.load(), 1);
  // The loop has ended: a call returns at once, without running the job.
  bool ran = false;
  EXPECT_FALSE(loop.call<int>([&] {
                     ran = true;
                     return 1;
                   })
                   .has_value());
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace monolake::proxy::framework
