#include "runtime/time.h"

namespace monolake::runtime {

SleepAwaiter::~SleepAwaiter() {
  if (node_.queued()) Runtime::current()->timers().remove(&node_);
  if (cancel_) cancel_->clear_handler();
}

bool SleepAwaiter::suspend(std::coroutine_handle<> h, CancelState* cancel) {
  if (cancel && cancel->cancelled()) {
    cancelled_ = true;
    return false;
  }
  Runtime* rt = Runtime::current();
  if (node_.deadline <= rt->now()) {
    // Already due: still yield once so a zero sleep lets other tasks run.
    rt->schedule(h);
    return true;
  }
  waiter_ = h;
  node_.fire = &SleepAwaiter::on_fire;
  node_.context = this;
  rt->timers().insert(&node_);
  if (cancel) {
    cancel_ = cancel;
    cancel->set_handler(&SleepAwaiter::on_cancel, this);
  }
  return true;
}

Result<void> SleepAwaiter::await_resume() {
  if (cancel_) {
    cancel_->clear_handler();
    cancel_ = nullptr;
  }
  if (cancelled_) return Error(ErrorCode::kCancelled);
  return ok();
}

void SleepAwaiter::on_fire(TimerNode* node) {
  auto* self = static_cast<SleepAwaiter*>(node->context);
  // The sleep is over: a cancel arriving before the task resumes must not schedule it again.
  if (self->cancel_) {
    self->cancel_->clear_handler();
    self->cancel_ = nullptr;
  }
  Runtime::current()->schedule(self->waiter_);
}

void SleepAwaiter::on_cancel(void* p) {
  auto* self = static_cast<SleepAwaiter*>(p);
  self->cancel_ = nullptr;  // the state cleared its handler before calling us
  self->cancelled_ = true;
  Runtime* rt = Runtime::current();
  rt->timers().remove(&self->node_);
  rt->schedule(self->waiter_);
}

void Deadline::arm(TimePoint when, void (*fire)(void* ctx), void* ctx) {
  TimerHeap& timers = Runtime::current()->timers();
  timers.remove(&node_);
  node_.deadline = when;
  node_.fire = &Deadline::on_fire;
  node_.context = this;
  fire_ = fire;
  ctx_ = ctx;
  timers.insert(&node_);
}

void Deadline::disarm() {
  if (node_.queued()) Runtime::current()->timers().remove(&node_);
}

void Deadline::on_fire(TimerNode* node) {
  auto* self = static_cast<Deadline*>(node->context);
  self->fire_(self->ctx_);
}

}  // namespace monolake::runtime
