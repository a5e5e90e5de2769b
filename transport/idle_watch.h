// IdleWatch: the idle timeout of a bidirectional copy (copy.h, splice.h). Each direction calls
// touch() when bytes move; when none has moved for `limit`, the watch cancels `stop` and notes
// that it fired, so the copy can report kTimeout rather than kCancelled.
#pragma once

#include <chrono>

#include "runtime/cancel.h"
#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::transport {

struct IdleWatch {
  runtime::Deadline deadline;
  std::chrono::nanoseconds limit{};  // 0: no idle timeout
  runtime::CancelState* stop = nullptr;
  bool fired = false;

  void touch() {
    if (limit.count() == 0) return;
    deadline.arm(runtime::Runtime::current()->now() + limit, &IdleWatch::on_fire, this);
  }
  static void on_fire(void* self) {
    auto* watch = static_cast<IdleWatch*>(self);
    watch->fired = true;
    watch->stop->cancel();
  }
};

}  // namespace monolake::transport
