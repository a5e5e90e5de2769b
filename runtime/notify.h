// Notify: wakes one waiting task from code that is not awaiting it (a protocol callback, another
// task). The wake-up is remembered when nobody waits yet, so a notify() between two waits is
// never lost; several notify() calls before the next wait count once.
//
//   Notify ready;
//   ... in a callback:  ready.notify();
//   ... in a task:      if (!co_await ready.wait()) co_return;  // cancelled
//
// One waiter at a time. wait() ends with ErrorCode::kCancelled when the waiting task is
// cancelled (with_timeout, JoinHandle::cancel), or when the Notify is destroyed under it.
// Single-threaded, like everything a task touches.
#pragma once

#include <coroutine>

#include "base/result.h"
#include "runtime/cancel.h"
#include "runtime/task.h"

namespace monolake::runtime {

class Notify {
 public:
  Notify() = default;
  ~Notify();
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  class Awaiter {
   public:
    explicit Awaiter(Notify* notify) : notify_(notify) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter();

    bool await_ready() const noexcept { return notify_ && notify_->take_permit(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return suspend(h, detail::cancel_state_of(h));
    }
    Result<void> await_resume();

   private:
    friend class Notify;
    bool suspend(std::coroutine_handle<> h, CancelState* cancel);
    void wake(bool cancelled);
    static void on_cancel(void* self);

    Notify* notify_;
    std::coroutine_handle<> waiter_;
    CancelState* cancel_ = nullptr;
    bool cancelled_ = false;
  };

  // Wakes the waiter, or stores the wake-up for the next wait().
  void notify();
  // Completes once notified (at once if a wake-up is stored).
  Awaiter wait() { return Awaiter(this); }
  bool has_waiter() const { return waiter_ != nullptr; }

 private:
  bool take_permit() {
    const bool had = permit_;
    permit_ = false;
    return had;
  }
  Awaiter* waiter_ = nullptr;
  bool permit_ = false;
};

// The wait as a Task, for with_timeout(notified(n), limit).
inline Task<Result<void>> notified(Notify& notify) { co_return co_await notify.wait(); }

}  // namespace monolake::runtime
