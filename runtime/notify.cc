#include "runtime/notify.h"

#include "base/assert.h"
#include "runtime/runtime.h"

namespace monolake::runtime {

Notify::~Notify() {
  // A task still waiting is woken with kCancelled rather than left hanging on freed memory.
  if (waiter_) waiter_->wake(/*cancelled=*/true);
}

void Notify::notify() {
  if (waiter_) {
    waiter_->wake(/*cancelled=*/false);
    return;
  }
  permit_ = true;
}

Notify::Awaiter::~Awaiter() {
  // The waiting frame is being destroyed while suspended (runtime teardown).
  if (notify_ && notify_->waiter_ == this) notify_->waiter_ = nullptr;
  if (cancel_) cancel_->clear_handler();
}

bool Notify::Awaiter::suspend(std::coroutine_handle<> h, CancelState* cancel) {
  if (cancel && cancel->cancelled()) {
    cancelled_ = true;
    return false;
  }
  ML_CHECK_MSG(notify_->waiter_ == nullptr, "Notify: a second task waits on the same Notify");
  waiter_ = h;
  notify_->waiter_ = this;
  if (cancel) {
    cancel_ = cancel;
    cancel->set_handler(&Awaiter::on_cancel, this);
  }
  return true;
}

void Notify::Awaiter::wake(bool cancelled) {
  if (notify_ && notify_->waiter_ == this) notify_->waiter_ = nullptr;
  notify_ = nullptr;  // the Notify may be gone by the time we resume
  if (cancel_) {
    cancel_->clear_handler();
    cancel_ = nullptr;
  }
  cancelled_ = cancelled;
  Runtime::current()->schedule(waiter_);
}

void Notify::Awaiter::on_cancel(void* p) {
  auto* self = static_cast<Awaiter*>(p);
  self->cancel_ = nullptr;  // the state cleared its handler before calling us
  self->wake(/*cancelled=*/true);
}

Result<void> Notify::Awaiter::await_resume() {
  if (cancel_) {
    cancel_->clear_handler();
    cancel_ = nullptr;
  }
  if (cancelled_) return Error(ErrorCode::kCancelled);
  return ok();
}

}  // namespace monolake::runtime
