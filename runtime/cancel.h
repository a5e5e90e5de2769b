// CancelState: how a request to stop reaches the one operation a task chain is suspended on.
//
// A task chain (a Task and the Tasks it awaits) runs one step at a time, so at most one leaf
// operation (an I/O op, a sleep) is pending in it. That leaf registers a handler here while it
// is suspended; cancel() calls the handler, which asks the operation to finish early. The
// operation still completes normally (on io_uring its completion is awaited, so buffers stay
// owned by it until the kernel is done) and reports ErrorCode::kCancelled.
//
// Owned by whoever may cancel: with_timeout() keeps one in its frame, a JoinHandle shares one
// with its spawned task. Single-threaded, like everything a task touches.
#pragma once

#include "base/assert.h"

namespace monolake::runtime {

class CancelState {
 public:
  using Handler = void (*)(void* context);

  CancelState() = default;
  CancelState(const CancelState&) = delete;
  CancelState& operator=(const CancelState&) = delete;

  bool cancelled() const { return cancelled_; }

  // Idempotent. Calls the registered handler, if any, exactly once.
  void cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (handler_) {
      Handler handler = handler_;
      handler_ = nullptr;
      handler(context_);
    }
  }

  // Registers the pending leaf operation. Only one may be registered at a time.
  void set_handler(Handler handler, void* context) {
    ML_DCHECK(handler_ == nullptr);
    handler_ = handler;
    context_ = context;
  }
  void clear_handler() { handler_ = nullptr; }

 private:
  bool cancelled_ = false;
  Handler handler_ = nullptr;
  void* context_ = nullptr;
};

// Forwards cancellation from an outer state to an inner one for as long as it lives
// (with_timeout inside a task that may itself be cancelled).
class CancelLink {
 public:
  CancelLink(CancelState* outer, CancelState* inner) : outer_(outer) {
    if (!outer_) return;
    if (outer_->cancelled()) {
      inner->cancel();
      outer_ = nullptr;
      return;
    }
    outer_->set_handler([](void* ctx) { static_cast<CancelState*>(ctx)->cancel(); }, inner);
  }
  ~CancelLink() {
    if (outer_) outer_->clear_handler();
  }
  CancelLink(const CancelLink&) = delete;
  CancelLink& operator=(const CancelLink&) = delete;

 private:
  CancelState* outer_;
};

}  // namespace monolake::runtime
