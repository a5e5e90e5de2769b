#include "runtime/worker_pool.h"

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include "base/log.h"

namespace monolake::runtime {

Result<void> pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (r != 0) return Error::from_errno(r, fmt::format("pin to CPU {}", cpu));
  return ok();
}

namespace {
// Startup handshake: each worker reports its runtime (or why it has none) once.
struct StartupLatch {
  std::mutex mutex;
  std::condition_variable cv;
  size_t reported = 0;
  std::optional<Error> first_error;
};
}  // namespace

Result<std::unique_ptr<WorkerPool>> WorkerPool::start(const WorkerPoolOptions& options,
                                                      WorkerMain main) {
  if (options.workers == 0) return Error(ErrorCode::kInvalidArgument, "workers must be >= 1");
  std::unique_ptr<WorkerPool> pool(new WorkerPool());
  StartupLatch latch;
  for (size_t i = 0; i < options.workers; ++i) {
    auto worker = std::make_unique<Worker>();
    Worker* w = worker.get();
    w->thread = std::thread([w, i, &options, &main, &latch] {
      std::optional<Error> failure;
      std::unique_ptr<Runtime> rt;
      if (options.pin_cpus) {
        const int cpu =
            options.cpus.empty() ? static_cast<int>(i) : options.cpus[i % options.cpus.size()];
        if (auto pinned = pin_current_thread(cpu); !pinned) failure = std::move(pinned).error();
      }
      if (!failure) {
        auto created = Runtime::create(options.runtime);
        if (created) {
          rt = std::move(*created);
        } else {
          failure = std::move(created).error();
        }
      }
      Task<void> first;
      if (rt) first = main(i);
      {
        std::lock_guard<std::mutex> lock(latch.mutex);
        w->runtime = rt.get();
        if (failure && !latch.first_error) latch.first_error = std::move(failure);
        ++latch.reported;
        // Under the lock: once start() sees the last report it returns and `latch` (on its
        // stack) is gone, so notifying after unlocking could touch a destroyed condvar.
        latch.cv.notify_all();
      }
      if (!rt) return;
      rt->spawn(std::move(first));
      rt->run();
    });
    pool->workers_.push_back(std::move(worker));
  }
  std::unique_lock<std::mutex> lock(latch.mutex);
  latch.cv.wait(lock, [&] { return latch.reported == options.workers; });
  if (latch.first_error) {
    Error error = std::move(*latch.first_error);
    lock.unlock();
    pool->stop();
    return error;
  }
  pool->backend_kind_ = pool->workers_.front()->runtime->backend_kind();
  return pool;
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::post(size_t index, std::function<void()> fn) {
  workers_.at(index)->runtime->post(std::move(fn));
}

void WorkerPool::post_all(const std::function<void()>& fn) {
  for (auto& w : workers_) w->runtime->post(fn);
}

void WorkerPool::stop() {
  for (auto& w : workers_) {
    if (w->runtime && w->thread.joinable()) w->runtime->request_stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace monolake::runtime
