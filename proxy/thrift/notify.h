// Notify: wakes one task waiting on this thread, or leaves a permit for the next wait() (the
// shape of tokio's Notify::notify_one). The Thrift connection code uses it to hand work between
// its tasks (reader, writer, calls, upstream I/O).
//
//   co_await n.wait();   // Result<void>: ok when notified, kCancelled if the task is cancelled
//   n.notify();          // wakes the waiter (or stores one permit)
//
// At most one task waits at a time. The Notify must outlive a suspended wait (owners keep it in
// shared state that the waiting task also holds). Single-threaded, like everything a task touches.
#pragma once

#include <coroutine>
#include <utility>

#include "base/assert.h"
#include "base/error.h"
#include "base/result.h"
#include "runtime/cancel.h"
#include "runtime/runtime.h"
#include "runtime/task.h"

namespace monolake::proxy::thrift {

class Notify {
 public:
  class Awaiter {
   public:
    explicit Awaiter(Notify* notify) : notify_(notify) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter() {
      if (waiting_ && notify_->waiter_ == this) notify_->waiter_ = nullptr;
      if (cancel_) cancel_->clear_handler();
    }

    bool await_ready() noexcept { return std::exchange(notify_->permit_, false); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      runtime::CancelState* cancel = runtime::detail::cancel_state_of(h);
      if (cancel && cancel->cancelled()) {
        cancelled_ = true;
        return false;
      }
      ML_DCHECK(notify_->waiter_ == nullptr);
      handle_ = h;
      waiting_ = true;
      notify_->waiter_ = this;
      if (cancel) {
        cancel_ = cancel;
        cancel->set_handler(&Awaiter::on_cancel, this);
      }
      return true;
    }
    Result<void> await_resume() {
      if (cancel_) {
        cancel_->clear_handler();
        cancel_ = nullptr;
      }
      if (cancelled_) return Error(ErrorCode::kCancelled);
      return ok();
    }

   private:
    friend class Notify;
    void wake() {
      waiting_ = false;
      if (cancel_) {  // woken: a cancel arriving before the task resumes must not wake it again
        cancel_->clear_handler();
        cancel_ = nullptr;
      }
      runtime::Runtime::current()->schedule(handle_);
    }
    static void on_cancel(void* p) {
      auto* self = static_cast<Awaiter*>(p);
      self->cancel_ = nullptr;  // the state cleared its handler before calling us
      self->cancelled_ = true;
      if (self->notify_->waiter_ == self) self->notify_->waiter_ = nullptr;
      self->waiting_ = false;
      runtime::Runtime::current()->schedule(self->handle_);
    }

    Notify* notify_;
    std::coroutine_handle<> handle_;
    runtime::CancelState* cancel_ = nullptr;
    bool waiting_ = false;
    bool cancelled_ = false;
  };

  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  void notify() {
    if (waiter_) {
      std::exchange(waiter_, nullptr)->wake();
    } else {
      permit_ = true;
    }
  }
  Awaiter wait() { return Awaiter(this); }

 private:
  Awaiter* waiter_ = nullptr;
  bool permit_ = false;
};

}  // namespace monolake::proxy::thrift
