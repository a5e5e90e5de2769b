// WorkerPool: N worker threads, each with its own Runtime (thread-per-core). Work reaches a
// worker only through post() (a mailbox with an eventfd wake-up); tasks never move between
// workers.
//
//   auto pool = WorkerPool::start({.workers = 4}, [](size_t i) { return serve(i); }).value();
//   ...
//   pool->stop();  // asks every worker to return, then joins them
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/options.h"
#include "runtime/runtime.h"
#include "runtime/task.h"

namespace monolake::runtime {

struct WorkerPoolOptions {
  size_t workers = 1;
  RuntimeOptions runtime;
  // Pin worker i to CPU cpus[i % cpus.size()], or to CPU i when cpus is empty.
  bool pin_cpus = false;
  std::vector<int> cpus;
};

class WorkerPool {
 public:
  // Builds the task each worker runs first. Called on the worker's own thread.
  using WorkerMain = std::function<Task<void>(size_t worker_index)>;

  // Starts every worker; fails (with every started worker stopped) if any runtime cannot be
  // created or pinned.
  static Result<std::unique_ptr<WorkerPool>> start(const WorkerPoolOptions& options,
                                                   WorkerMain main);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  size_t size() const { return workers_.size(); }
  BackendKind backend_kind() const { return backend_kind_; }

  // Thread-safe: runs `fn` on worker `index`'s thread.
  void post(size_t index, std::function<void()> fn);
  // Thread-safe: runs `fn` on every worker.
  void post_all(const std::function<void()>& fn);

  // Asks every worker to return and joins them. Idempotent.
  void stop();

 private:
  struct Worker {
    std::thread thread;
    Runtime* runtime = nullptr;  // owned by the worker thread
  };
  WorkerPool() = default;

  std::vector<std::unique_ptr<Worker>> workers_;
  BackendKind backend_kind_ = BackendKind::kAuto;
};

// Pins the calling thread to `cpu`.
Result<void> pin_current_thread(int cpu);

}  // namespace monolake::runtime
