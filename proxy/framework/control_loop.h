// The control loop: the process's control thread as a runtime of its own. Everything that
// changes the running configuration runs here, one thing at a time — SIGHUP, POST /reload, DNS
// refreshes, binary-upgrade handovers (and, later, health probes and configuration watches) —
// so two two-phase updates never overlap, with no lock to forget.
//
//   auto loop = ControlLoop::create().value();     // on the thread that will run it
//   loop->on_signal(SIGHUP, [&] { reload(); });     // signals arrive as tasks, not handlers
//   admin_hooks.reload = [&] { return loop->call<Result<void>>([&] { return reload(); })
//                                  .value_or(Error(ErrorCode::kCancelled, "stopping")); };
//   int status = loop->run(main_task());             // until main_task ends
//
// Signals: the ones given to on_signal() are blocked in every thread (create() blocks them
// before any other thread exists, so threads started later inherit the mask) and read from a
// signalfd by a task on the loop. call() is for other threads (the admin API, the upgrade
// control socket); once the loop has ended it returns nullopt at once instead of waiting.
#pragma once

#include <signal.h>

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "base/result.h"
#include "runtime/runtime.h"
#include "runtime/task.h"

namespace monolake::proxy::framework {

class ControlLoop {
 public:
  // Blocks `signals` in the calling thread (so in every thread it starts later) and makes the
  // loop's runtime. Call before any other thread exists.
  static Result<std::unique_ptr<ControlLoop>> create(const std::vector<int>& signals);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // What to run, on the loop, when `signal` (one of create()'s) arrives.
  void on_signal(int signal, std::function<void()> handler);

  // Runs `main` and everything started on the loop until `main` ends; returns its value. Jobs
  // still queued by call() then are abandoned (their callers get nullopt).
  int run(runtime::Task<int> main);

  // From another thread: runs `job` on the loop and waits for its value; nullopt when the loop
  // has ended (or ends before the job runs).
  template <class T>
  std::optional<T> call(std::function<T()> job) {
    auto promise = std::make_shared<std::promise<std::optional<T>>>();
    std::future<std::optional<T>> result = promise->get_future();
    if (!enqueue([job = std::move(job), promise] { promise->set_value(job()); },
                 [promise] { promise->set_value(std::nullopt); })) {
      return std::nullopt;
    }
    return result.get();
  }

  runtime::Runtime& runtime() { return *runtime_; }

 private:
  struct Job {
    std::function<void()> run;
    std::function<void()> abandon;
  };
  ControlLoop() = default;
  bool enqueue(std::function<void()> run, std::function<void()> abandon);
  void run_jobs();      // on the loop
  void abandon_jobs();  // once the loop has ended
  runtime::Task<void> read_signals();

  std::unique_ptr<runtime::Runtime> runtime_;
  int signal_fd_ = -1;
  std::map<int, std::function<void()>> handlers_;
  std::mutex mutex_;
  bool ended_ = false;
  std::deque<Job> jobs_;
};

}  // namespace monolake::proxy::framework
