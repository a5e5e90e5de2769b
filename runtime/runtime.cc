#include "runtime/runtime.h"

#include <unistd.h>

#include <cstdlib>

#include "base/log.h"
#include "runtime/epoll/epoll_backend.h"
#include "runtime/internal/backend.h"
#include "runtime/uring/uring_backend.h"

namespace monolake::runtime {

namespace {
thread_local Runtime* t_current = nullptr;
// Ready tasks run per turn before I/O is polled again, so a busy task set cannot starve I/O.
constexpr size_t kMaxTasksPerTurn = 1024;
constexpr unsigned kBusyTurnsPerPoll = 4;
}  // namespace

std::optional<BackendKind> parse_backend_kind(std::string_view name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "io_uring" || name == "iouring" || name == "uring") return BackendKind::kIoUring;
  if (name == "epoll" || name == "legacy") return BackendKind::kEpoll;
  return std::nullopt;
}

std::string_view backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::kAuto:
      return "auto";
    case BackendKind::kIoUring:
      return "io_uring";
    case BackendKind::kEpoll:
      return "epoll";
  }
  return "?";
}

Result<BackendKind> requested_backend(const RuntimeOptions& options) {
  if (!options.honor_env) return options.backend;
  const char* env = std::getenv("MONOLAKE_RUNTIME");
  if (env == nullptr || *env == '\0') return options.backend;
  if (auto kind = parse_backend_kind(env)) return *kind;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("MONOLAKE_RUNTIME={}: expected auto, io_uring or epoll", env));
}

namespace {
struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string reason;  // why this backend was chosen (for the log)
};
}  // namespace

static Result<BackendChoice> choose_backend(const RuntimeOptions& options) {
  auto kind = requested_backend(options);
  if (!kind) return std::move(kind).error();
  switch (*kind) {
    case BackendKind::kEpoll: {
      auto backend = make_epoll_backend();
      if (!backend) return std::move(backend).error();
      return BackendChoice{std::move(*backend), "requested"};
    }
    case BackendKind::kIoUring: {
      auto backend = make_uring_backend(options);
      if (!backend) return std::move(backend).error();
      return BackendChoice{std::move(*backend), "requested"};
    }
    case BackendKind::kAuto:
      break;
  }
  auto uring = make_uring_backend(options);
  if (uring) return BackendChoice{std::move(*uring), "auto: io_uring available"};
  auto epoll = make_epoll_backend();
  if (!epoll) return std::move(epoll).error();
  return BackendChoice{std::move(*epoll),
                       "auto: io_uring unavailable (" + uring.error().to_string() + ")"};
}

Result<std::unique_ptr<Runtime>> Runtime::create(const RuntimeOptions& options) {
  if (t_current != nullptr) {
    return Error(ErrorCode::kInvalidArgument, "this thread already has a runtime");
  }
  auto choice = choose_backend(options);
  if (!choice) return std::move(choice).error();
  ML_LOG(kDebug, "runtime: using {} ({})", backend_kind_name(choice->backend->kind()),
         choice->reason);
  return std::unique_ptr<Runtime>(
      new Runtime(std::move(choice->backend), std::move(choice->reason)));
}

Runtime::Runtime(std::unique_ptr<Backend> backend, std::string reason)
    : backend_(std::move(backend)),
      backend_reason_(std::move(reason)),
      now_(Clock::now()),
      owner_(std::this_thread::get_id()) {
  backend_->attach(&ready_);
  t_current = this;
}

Runtime::~Runtime() {
  destroy_detached_tasks();
  ready_.clear();
  backend_.reset();
  if (t_current == this) t_current = nullptr;
}

Runtime* Runtime::current() { return t_current; }

BackendKind Runtime::backend_kind() const { return backend_->kind(); }

void Runtime::destroy_detached_tasks() {
  // Destroying a frame runs its awaiters' destructors, which abandon (cancel and wait out)
  // pending I/O, so no kernel write lands in freed memory. Each destroy unlinks itself.
  while (detached_head_ != nullptr) {
    std::coroutine_handle<detail::DetachedPromise>::from_promise(*detached_head_).destroy();
  }
}

void Runtime::spawn(Task<void> task) { schedule(detail::run_detached(std::move(task)).handle); }

void spawn(Task<void> task) {
  Runtime* rt = Runtime::current();
  ML_CHECK_MSG(rt != nullptr, "spawn() outside a runtime thread");
  rt->spawn(std::move(task));
}

void Runtime::close_fd(int fd) {
  if (fd < 0) return;
  backend_->forget_fd(fd);
  ::close(fd);
}

void Runtime::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    mailbox_.push_back(std::move(fn));
  }
  mailbox_nonempty_.store(true, std::memory_order_release);
  backend_->wake();
}

void Runtime::request_stop() {
  stop_requested_.store(true, std::memory_order_release);
  backend_->wake();
}

void Runtime::drain_mailbox() {
  if (!mailbox_nonempty_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    batch.swap(mailbox_);
    mailbox_nonempty_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : batch) fn();
}

void Runtime::turn(const bool* done) {
  for (size_t n = ready_.size() < kMaxTasksPerTurn ? ready_.size() : kMaxTasksPerTurn; n > 0; --n) {
    ready_.pop().resume();
  }
  drain_mailbox();
  now_ = Clock::now();
  timers_.fire_due(now_);

  if (done && *done) return;
  std::optional<std::chrono::nanoseconds> timeout;
  if (!ready_.empty()) {
    // Tasks are still runnable: look for I/O only every few turns, so a burst of task
    // switches does not pay a syscall each, while I/O still gets its turn.
    if (++busy_turns_ < kBusyTurnsPerPoll) return;
    timeout = std::chrono::nanoseconds(0);
  } else if (mailbox_nonempty_.load(std::memory_order_acquire) || stop_requested()) {
    timeout = std::chrono::nanoseconds(0);
  } else if (!timers_.empty()) {
    timeout = std::max(timers_.next_deadline() - now_, std::chrono::nanoseconds(0));
  }
  busy_turns_ = 0;
  backend_->poll(timeout);
  now_ = Clock::now();
}

void Runtime::run_until(const bool& done) {
  ML_CHECK_MSG(std::this_thread::get_id() == owner_, "a runtime runs on its own thread only");
  // Time passed outside the loop since the last turn: tasks resumed first in turn() arm their
  // deadlines from now(), which must not be stale (else they fire early).
  now_ = Clock::now();
  while (!done) turn(&done);
}

void Runtime::run() {
  ML_CHECK_MSG(std::this_thread::get_id() == owner_, "a runtime runs on its own thread only");
  now_ = Clock::now();  // as in run_until()
  while (!stop_requested()) turn(nullptr);
  // Tasks posted or woken by the stop itself get one chance to run.
  turn(nullptr);
}

namespace detail {

DetachedPromise::DetachedPromise() : runtime(Runtime::current()) {
  ML_CHECK_MSG(runtime != nullptr, "a task was started outside a runtime thread");
  next = runtime->detached_head_;
  if (next) next->prev = this;
  runtime->detached_head_ = this;
  ++runtime->live_task_count_;
}

DetachedPromise::~DetachedPromise() {
  if (prev) {
    prev->next = next;
  } else {
    runtime->detached_head_ = next;
  }
  if (next) next->prev = prev;
  --runtime->live_task_count_;
}

DetachedCoroutine run_detached(Task<void> task) { co_await std::move(task); }

}  // namespace detail

size_t Runtime::operations_in_flight() const { return backend_->in_flight(); }

}  // namespace monolake::runtime
