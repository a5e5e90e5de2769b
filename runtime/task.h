// Task<T>: a lazy C++20 coroutine returning T.
//
// A Task does nothing until it is awaited (or handed to spawn()/block_on()). Awaiting uses
// symmetric transfer: the awaiting coroutine suspends and the child resumes in the same stack
// frame, and the child's completion transfers straight back, so deep or long await chains do
// not grow the stack. A Task is move-only and owns its coroutine frame: destroying a Task that
// has not finished destroys the frame (and, through the awaiters' destructors, cancels and
// waits out any I/O it had pending).
//
// Tasks belong to one thread: they are resumed only by the runtime of the thread that started
// them. Exceptions must not escape a task (std::terminate); report failure with Result<T>.
#pragma once

#include <coroutine>
#include <cstdio>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/assert.h"
#include "runtime/cancel.h"

namespace monolake::runtime {

template <class T>
class Task;

namespace detail {

// Coroutine frames come and go for every awaited operation (a proxied request makes a dozen),
// so they are recycled per thread by size class instead of going through malloc each time.
// A frame freed on another thread joins that thread's lists; each list keeps at most
// kFrameCacheDepth frames.
void* allocate_frame(size_t size);
void free_frame(void* frame, size_t size) noexcept;

class PromiseBase {
 public:
  static void* operator new(size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, size_t size) noexcept { free_frame(frame, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) noexcept {
      std::coroutine_handle<> next = self.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept {
    std::fputs("monolake: exception escaped a Task; tasks report errors with Result<T>\n", stderr);
    std::terminate();
  }

  CancelState* cancel_state() const { return cancel_; }
  void set_cancel_state(CancelState* state) { cancel_ = state; }
  void set_continuation(std::coroutine_handle<> next) { continuation_ = next; }

 private:
  std::coroutine_handle<> continuation_;
  CancelState* cancel_ = nullptr;
};

template <class T>
class Promise : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;

  template <class U>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T take_value() {
    ML_DCHECK(value_.has_value());
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take_value() {}
};

// The cancel state of the coroutine `h` if it is a Task (detached wrappers have none).
template <class P>
CancelState* cancel_state_of(std::coroutine_handle<P> h) {
  if constexpr (std::is_base_of_v<PromiseBase, P>) {
    return h.promise().cancel_state();
  } else {
    return nullptr;
  }
}

}  // namespace detail

template <class T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() = default;
  explicit Task(Handle handle) : handle_(handle) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const { return static_cast<bool>(handle_); }
  bool done() const { return handle_ && handle_.done(); }

  // Makes `state` this task's cancel state instead of inheriting the awaiter's.
  void set_cancel_state(CancelState* state) { handle_.promise().set_cancel_state(state); }

  struct Awaiter {
    Handle handle;
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
      promise_type& promise = handle.promise();
      promise.set_continuation(caller);
      if (!promise.cancel_state()) promise.set_cancel_state(detail::cancel_state_of(caller));
      return handle;
    }
    T await_resume() { return handle.promise().take_value(); }
  };

  Awaiter operator co_await() && noexcept {
    ML_DCHECK(handle_ && !handle_.done());
    return Awaiter{handle_};
  }

  // For the runtime: gives up ownership of the frame.
  Handle release() { return std::exchange(handle_, {}); }

 private:
  void reset() {
    if (handle_) {
      handle_.destroy();
      handle_ = {};
    }
  }

  Handle handle_;
};

namespace detail {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

}  // namespace detail

// `co_await current_cancel_state()` gives the calling task's cancel state (nullptr if none)
// without suspending. Used by combinators such as with_timeout.
struct current_cancel_state {
  CancelState* state = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> caller) noexcept {
    state = detail::cancel_state_of(caller);
    return false;  // resume at once
  }
  CancelState* await_resume() const noexcept { return state; }
};

}  // namespace monolake::runtime
