// Timers: sleep, deadlines and timeouts for tasks on the current runtime.
//
//   co_await sleep(10ms);                       // Result<void>: kCancelled if cancelled
//   auto r = co_await with_timeout(read(...), 5s);  // r.error().code() == kTimeout on expiry
//
// with_timeout cancels the wrapped task's pending operation when the time is up and still
// waits for it to finish (so an io_uring buffer is never released early), then reports
// ErrorCode::kTimeout. If the operation finished on its own first, its real result is kept.
#pragma once

#include <chrono>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/timer.h"

namespace monolake::runtime {

class SleepAwaiter {
 public:
  explicit SleepAwaiter(TimePoint deadline) { node_.deadline = deadline; }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter();

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return suspend(h, detail::cancel_state_of(h));
  }
  Result<void> await_resume();

 private:
  bool suspend(std::coroutine_handle<> h, CancelState* cancel);
  static void on_fire(TimerNode* node);
  static void on_cancel(void* self);

  TimerNode node_;
  std::coroutine_handle<> waiter_;
  CancelState* cancel_ = nullptr;
  bool cancelled_ = false;
};

inline SleepAwaiter sleep_until(TimePoint deadline) { return SleepAwaiter(deadline); }
inline SleepAwaiter sleep(Duration d) { return SleepAwaiter(Runtime::current()->now() + d); }

// A deadline that fires a callback once, unless disarmed first. For owners that are not
// coroutines (idle timeouts of a connection...). Must be disarmed or fired before destruction
// (the destructor disarms).
class Deadline {
 public:
  Deadline() = default;
  ~Deadline() { disarm(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void arm(TimePoint when, void (*fire)(void* ctx), void* ctx);
  void disarm();
  bool armed() const { return node_.queued(); }

 private:
  static void on_fire(TimerNode* node);
  TimerNode node_;
  void (*fire_)(void* ctx) = nullptr;
  void* ctx_ = nullptr;
};

namespace detail {
// Turns a cancelled result into a timeout.
inline void mark_timed_out(Result<void>& r) {
  if (!r && r.error().code() == ErrorCode::kCancelled) r = Error(ErrorCode::kTimeout, "timed out");
}
template <class U>
void mark_timed_out(Result<U>& r) {
  if (!r && r.error().code() == ErrorCode::kCancelled) r = Error(ErrorCode::kTimeout, "timed out");
}
template <class R>
auto mark_timed_out(R& r) -> decltype(mark_timed_out(r.result)) {
  mark_timed_out(r.result);
}
}  // namespace detail

// Runs `task` with a time limit. T is a Result<U> or a struct with a `result` member that is
// one (BufResult).
template <class T>
Task<T> with_timeout(Task<T> task, Duration limit) {
  CancelState inner;
  CancelLink link(co_await current_cancel_state{}, &inner);
  Deadline deadline;
  bool timed_out = false;
  struct Ctx {
    CancelState* inner;
    bool* timed_out;
  } ctx{&inner, &timed_out};
  deadline.arm(
      Runtime::current()->now() + limit,
      [](void* p) {
        auto* c = static_cast<Ctx*>(p);
        *c->timed_out = true;
        c->inner->cancel();
      },
      &ctx);
  // Declared after `inner`, so the child frame (whose awaiters reference `inner`) is
  // destroyed first if this frame is destroyed early.
  Task<T> child = std::move(task);
  child.set_cancel_state(&inner);
  T result = co_await std::move(child);
  deadline.disarm();
  if (timed_out) detail::mark_timed_out(result);
  co_return result;
}

}  // namespace monolake::runtime
