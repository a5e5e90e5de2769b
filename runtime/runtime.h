// Runtime: one reactor and executor per thread.
//
// A Runtime drives the tasks of the thread that created it: it resumes ready coroutines, fires
// timers, and waits for I/O through its backend (io_uring or epoll). Nothing in it is
// thread-safe except post() and request_stop(), which other threads use to hand it work or
// ask it to return. Embed it like this:
//
//   auto rt = runtime::Runtime::create({}).value();
//   rt->block_on(serve(listener));
//
// Lifetime: destroying a Runtime destroys the tasks still spawned on it (cancelling and
// waiting out their pending I/O first), then the backend.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/options.h"
#include "runtime/ready_queue.h"
#include "runtime/task.h"
#include "runtime/timer.h"

namespace monolake::runtime {

class Backend;

namespace detail {
struct DetachedPromise;
}

class Runtime {
 public:
  // Creates a runtime bound to the calling thread (which becomes its only user). Fails when
  // the requested backend cannot start (io_uring explicitly asked for but unavailable...).
  static Result<std::unique_ptr<Runtime>> create(const RuntimeOptions& options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The runtime of the calling thread, or nullptr.
  static Runtime* current();

  BackendKind backend_kind() const;
  // Why the backend was chosen ("io_uring: requested", "epoll: io_uring_disabled=2"...).
  const std::string& backend_reason() const { return backend_reason_; }

  // Runs `task` to completion, driving everything spawned meanwhile, and returns its value.
  template <class T>
  T block_on(Task<T> task);

  // Runs spawned tasks until request_stop().
  void run();
  // Thread-safe: makes run() / block_on() return at the next loop turn.
  void request_stop();
  bool stop_requested() const { return stop_requested_.load(std::memory_order_acquire); }

  // Thread-safe: runs `fn` on this runtime's thread, soon.
  void post(std::function<void()> fn);

  // Starts `task` as a detached task on this runtime (it runs at the next loop turn).
  void spawn(Task<void> task);

  // Makes `h` run at the next loop turn. Runtime-thread only.
  void schedule(std::coroutine_handle<> h) { ready_.push(h); }

  // The time at the start of this loop turn (cheap; refreshed once per turn).
  TimePoint now() const { return now_; }
  TimerHeap& timers() { return timers_; }
  // The private backend (runtime/internal/backend.h): for the runtime's own code and tests.
  Backend& backend() { return *backend_; }
  // Operations submitted to the backend and not yet completed (for tests and leak checks:
  // after a connection ends, nothing of it should still be in the kernel's hands).
  size_t operations_in_flight() const;

  // Closes `fd` synchronously (for destructors), telling the backend first.
  void close_fd(int fd);

  // Number of detached tasks alive (for tests and stats).
  size_t live_tasks() const { return live_task_count_; }

 private:
  friend struct detail::DetachedPromise;
  Runtime(std::unique_ptr<Backend> backend, std::string reason);

  // One loop turn: run ready tasks, timers, mail, then wait for I/O (not at all once *done).
  void turn(const bool* done);
  void run_until(const bool& done);
  void drain_mailbox();
  void destroy_detached_tasks();

  std::unique_ptr<Backend> backend_;
  std::string backend_reason_;
  ReadyQueue ready_;
  TimerHeap timers_;
  TimePoint now_;
  unsigned busy_turns_ = 0;  // turns in a row that ended with tasks still ready
  std::thread::id owner_;

  std::atomic<bool> stop_requested_{false};
  std::mutex mailbox_mutex_;
  std::vector<std::function<void()>> mailbox_;
  std::atomic<bool> mailbox_nonempty_{false};

  // Intrusive list of live detached tasks, for destruction at shutdown.
  detail::DetachedPromise* detached_head_ = nullptr;
  size_t live_task_count_ = 0;
};

namespace detail {

// The frame of a detached task: starts when scheduled, frees itself when it finishes, and is
// linked into its runtime so the runtime can destroy it if it is still running at shutdown.
struct DetachedPromise {
  Runtime* runtime = nullptr;
  DetachedPromise* prev = nullptr;
  DetachedPromise* next = nullptr;

  DetachedPromise();
  ~DetachedPromise();
  std::coroutine_handle<DetachedPromise> get_return_object() noexcept {
    return std::coroutine_handle<DetachedPromise>::from_promise(*this);
  }
  std::suspend_always initial_suspend() noexcept { return {}; }
  // Destroys the frame from await_suspend rather than with std::suspend_never: clang 14 at -O1
  // and above (seen with symmetric transfer from a Task into this frame) left frames finished
  // with suspend_never undestroyed, so a finished task kept its socket open.
  struct DestroySelf {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> self) const noexcept { self.destroy(); }
    void await_resume() const noexcept {}
  };
  DestroySelf final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  void unhandled_exception() noexcept { std::terminate(); }
};

struct DetachedCoroutine {
  using promise_type = DetachedPromise;
  DetachedCoroutine(std::coroutine_handle<DetachedPromise> h) : handle(h) {}
  std::coroutine_handle<DetachedPromise> handle;
};

DetachedCoroutine run_detached(Task<void> task);

template <class T>
struct JoinState {
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> result;
  std::coroutine_handle<> waiter;
  CancelState cancel;
};

template <class T>
DetachedCoroutine run_joined(Task<T> task, std::shared_ptr<JoinState<T>> state) {
  // A local, so it is destroyed before the parameters: its awaiters reference state->cancel.
  Task<T> child = std::move(task);
  child.set_cancel_state(&state->cancel);
  if constexpr (std::is_void_v<T>) {
    co_await std::move(child);
    state->result.emplace(true);
  } else {
    state->result.emplace(co_await std::move(child));
  }
  if (state->waiter) Runtime::current()->schedule(std::exchange(state->waiter, {}));
}

struct BlockOnState {
  bool done = false;
};

template <class T>
DetachedCoroutine run_block_on(Task<T>& task, std::optional<T>& out, BlockOnState& state) {
  out.emplace(co_await std::move(task));
  state.done = true;
}

inline DetachedCoroutine run_block_on_void(Task<void>& task, BlockOnState& state) {
  co_await std::move(task);
  state.done = true;
}

}  // namespace detail

// Awaitable result of a task started with spawn_with_handle(). Dropping the handle detaches
// the task (it keeps running). One awaiter at most. Awaiting a join is not cancellable.
template <class T>
class JoinHandle {
 public:
  explicit JoinHandle(std::shared_ptr<detail::JoinState<T>> state) : state_(std::move(state)) {}

  bool done() const { return state_->result.has_value(); }
  // Asks the task to stop: its pending operation ends with ErrorCode::kCancelled.
  void cancel() { state_->cancel.cancel(); }

  struct Awaiter {
    detail::JoinState<T>* state;
    bool await_ready() const noexcept { return state->result.has_value(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { state->waiter = h; }
    T await_resume() {
      if constexpr (!std::is_void_v<T>) return std::move(*state->result);
    }
  };
  Awaiter operator co_await() const noexcept { return Awaiter{state_.get()}; }

 private:
  std::shared_ptr<detail::JoinState<T>> state_;
};

// Spawns on the calling thread's runtime.
void spawn(Task<void> task);

template <class T>
JoinHandle<T> spawn_with_handle(Task<T> task) {
  auto state = std::make_shared<detail::JoinState<T>>();
  auto coroutine = detail::run_joined<T>(std::move(task), state);
  Runtime::current()->schedule(coroutine.handle);
  return JoinHandle<T>(std::move(state));
}

template <class T>
T Runtime::block_on(Task<T> task) {
  detail::BlockOnState state;
  if constexpr (std::is_void_v<T>) {
    auto coroutine = detail::run_block_on_void(task, state);
    schedule(coroutine.handle);
    run_until(state.done);
    ML_CHECK_MSG(state.done, "block_on: runtime stopped before the task finished");
  } else {
    std::optional<T> out;
    auto coroutine = detail::run_block_on<T>(task, out, state);
    schedule(coroutine.handle);
    run_until(state.done);
    ML_CHECK_MSG(state.done, "block_on: runtime stopped before the task finished");
    return std::move(*out);
  }
}

// Lets other ready tasks run before continuing.
struct yield_now {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { Runtime::current()->schedule(h); }
  void await_resume() const noexcept {}
};

}  // namespace monolake::runtime
