// WorkerPool (one runtime per worker thread) and backend selection in Runtime::create.
#include "runtime/worker_pool.h"

#include <sched.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/testing.h"
#include "runtime/time.h"

namespace monolake::runtime {
namespace {

using namespace std::chrono_literals;

// Collects reports from worker threads; the test thread waits for a number of them.
class Board {
 public:
  void add(size_t index, std::thread::id thread, Runtime* runtime) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back({index, thread, runtime});
    cv_.notify_all();
  }
  // Waits (up to 10 s) until `count` reports arrived; returns how many there are.
  size_t wait_for(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, 10s, [&] { return entries_.size() >= count; });
    return entries_.size();
  }
  struct Entry {
    size_t index;
    std::thread::id thread;
    Runtime* runtime;
  };
  std::vector<Entry> entries() {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;
};

Task<void> report_main(size_t index, Board* board) {
  board->add(index, std::this_thread::get_id(), Runtime::current());
  co_return;
}

class WorkerPoolTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  WorkerPoolOptions options(size_t workers) {
    WorkerPoolOptions o;
    o.workers = workers;
    o.runtime.backend = GetParam();
    o.runtime.honor_env = false;
    return o;
  }
};

TEST_P(WorkerPoolTest, WorkersRunOnDistinctThreadsWithTheirOwnRuntime) {
  Board board;
  std::mutex mutex;
  std::vector<std::thread::id> main_called_on(4);
  auto pool = WorkerPool::start(options(4), [&](size_t i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      main_called_on[i] = std::this_thread::get_id();
    }
    return report_main(i, &board);
  });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  EXPECT_EQ((*pool)->size(), 4u);
  EXPECT_EQ((*pool)->backend_kind(), GetParam());
  ASSERT_EQ(board.wait_for(4), 4u);

  std::set<std::thread::id> threads;
  std::set<Runtime*> runtimes;
  std::set<size_t> indexes;
  for (const auto& e : board.entries()) {
    threads.insert(e.thread);
    runtimes.insert(e.runtime);
    indexes.insert(e.index);
    EXPECT_NE(e.thread, std::this_thread::get_id());
    EXPECT_NE(e.runtime, nullptr);
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(main_called_on[e.index], e.thread) << "main(i) is called on worker i's thread";
  }
  EXPECT_EQ(threads.size(), 4u);
  EXPECT_EQ(runtimes.size(), 4u);
  EXPECT_EQ(indexes, (std::set<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(Runtime::current(), nullptr);  // the test thread has none
  (*pool)->stop();
}

TEST_P(WorkerPoolTest, PostRunsOnThatWorker) {
  Board mains;
  auto pool = WorkerPool::start(options(4), [&](size_t i) { return report_main(i, &mains); });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  ASSERT_EQ(mains.wait_for(4), 4u);
  std::vector<std::thread::id> worker_thread(4);
  std::vector<Runtime*> worker_runtime(4);
  for (const auto& e : mains.entries()) {
    worker_thread[e.index] = e.thread;
    worker_runtime[e.index] = e.runtime;
  }

  Board posted;
  for (size_t i = 0; i < 4; ++i) {
    (*pool)->post(i,
                  [&posted, i] { posted.add(i, std::this_thread::get_id(), Runtime::current()); });
  }
  ASSERT_EQ(posted.wait_for(4), 4u);
  for (const auto& e : posted.entries()) {
    EXPECT_EQ(e.thread, worker_thread[e.index]) << "post(" << e.index << ")";
    EXPECT_EQ(e.runtime, worker_runtime[e.index]) << "post(" << e.index << ")";
  }

  // A posted function can start tasks on that worker's runtime; they run there, timers and all.
  Board spawned;
  for (size_t i = 0; i < 4; ++i) {
    (*pool)->post(i, [&spawned, i] {
      spawn([](size_t index, Board* board) -> Task<void> {
        Result<void> slept = co_await sleep(5ms);
        EXPECT_TRUE(slept.has_value());
        board->add(index, std::this_thread::get_id(), Runtime::current());
      }(i, &spawned));
    });
  }
  ASSERT_EQ(spawned.wait_for(4), 4u);
  for (const auto& e : spawned.entries()) {
    EXPECT_EQ(e.thread, worker_thread[e.index]);
    EXPECT_EQ(e.runtime, worker_runtime[e.index]);
  }

  // Many posts from several threads at once all arrive, each on its worker.
  std::atomic<int> wrong_thread{0};
  std::atomic<int> ran{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 3; ++t) {
    posters.emplace_back([&] {
      for (int k = 0; k < 1000; ++k) {
        const size_t i = static_cast<size_t>(k) % 4;
        (*pool)->post(i, [&, i] {
          if (std::this_thread::get_id() != worker_thread[i]) ++wrong_thread;
          ++ran;
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  for (int spins = 0; ran.load() < 3000 && spins < 1000; ++spins) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ran.load(), 3000);
  EXPECT_EQ(wrong_thread.load(), 0);
  (*pool)->stop();
}

TEST_P(WorkerPoolTest, PostAllRunsOnEveryWorker) {
  Board mains;
  auto pool = WorkerPool::start(options(4), [&](size_t i) { return report_main(i, &mains); });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  ASSERT_EQ(mains.wait_for(4), 4u);
  std::set<std::thread::id> worker_threads;
  for (const auto& e : mains.entries()) worker_threads.insert(e.thread);

  Board all;
  (*pool)->post_all([&all] { all.add(0, std::this_thread::get_id(), Runtime::current()); });
  ASSERT_EQ(all.wait_for(4), 4u);
  std::this_thread::sleep_for(20ms);  // and no more than four
  std::set<std::thread::id> threads;
  std::set<Runtime*> runtimes;
  for (const auto& e : all.entries()) {
    threads.insert(e.thread);
    runtimes.insert(e.runtime);
  }
  EXPECT_EQ(all.entries().size(), 4u);
  EXPECT_EQ(threads, worker_threads);
  EXPECT_EQ(runtimes.size(), 4u);
}

// Counts destructions, so the test can tell when a worker's tasks were torn down.
struct DestroyCounter {
  std::atomic<int>* count;
  ~DestroyCounter() { ++*count; }
};

TEST_P(WorkerPoolTest, StopJoinsAndIsIdempotent) {
  std::atomic<int> started{0};
  std::atomic<int> destroyed{0};
  auto pool = WorkerPool::start(options(4), [&](size_t) -> Task<void> {
    // Each worker's main task parks on a long sleep; stopping the worker destroys it.
    return [](std::atomic<int>* started, std::atomic<int>* destroyed) -> Task<void> {
      DestroyCounter guard{destroyed};
      ++*started;
      (void)co_await sleep(1h);
    }(&started, &destroyed);
  });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  for (int spins = 0; started.load() < 4 && spins < 1000; ++spins) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(started.load(), 4);
  EXPECT_EQ(destroyed.load(), 0);

  const auto t0 = std::chrono::steady_clock::now();
  (*pool)->stop();
  // Joined: every worker has returned and torn down its runtime and tasks.
  EXPECT_EQ(destroyed.load(), 4);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  (*pool)->stop();  // idempotent
  (*pool)->stop();
  EXPECT_EQ(destroyed.load(), 4);
  pool->reset();  // the destructor stops again: still fine
}

TEST_P(WorkerPoolTest, DestructorStops) {
  std::atomic<int> destroyed{0};
  {
    auto pool = WorkerPool::start(options(2), [&](size_t) -> Task<void> {
      return [](std::atomic<int>* destroyed) -> Task<void> {
        DestroyCounter guard{destroyed};
        (void)co_await sleep(1h);
      }(&destroyed);
    });
    ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  }
  EXPECT_EQ(destroyed.load(), 2);
}

bool cpu_allowed(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_ISSET(cpu, &set);
}

TEST_P(WorkerPoolTest, PinnedToCpuZero) {
  if (!cpu_allowed(0)) GTEST_SKIP() << "CPU 0 is not in this process's affinity mask";
  WorkerPoolOptions o = options(2);
  o.pin_cpus = true;
  o.cpus = {0};
  std::mutex mutex;
  std::vector<int> cpus;
  Board board;
  auto pool = WorkerPool::start(o, [&](size_t i) -> Task<void> {
    return [](size_t index, Board* board, std::mutex* m, std::vector<int>* seen) -> Task<void> {
      // Check more than once, across a suspension: the thread stays on CPU 0.
      for (int k = 0; k < 3; ++k) {
        {
          std::lock_guard<std::mutex> lock(*m);
          seen->push_back(sched_getcpu());
        }
        (void)co_await sleep(1ms);
      }
      board->add(index, std::this_thread::get_id(), Runtime::current());
    }(i, &board, &mutex, &cpus);
  });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  ASSERT_EQ(board.wait_for(2), 2u);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(cpus.size(), 6u);
  for (int cpu : cpus) EXPECT_EQ(cpu, 0);
}

TEST_P(WorkerPoolTest, PinnedToCpuIndexByDefault) {
  if (!cpu_allowed(0) || !cpu_allowed(1)) GTEST_SKIP() << "needs CPUs 0 and 1";
  WorkerPoolOptions o = options(2);
  o.pin_cpus = true;  // no list: worker i on CPU i
  std::mutex mutex;
  std::vector<std::pair<size_t, int>> seen;
  Board board;
  auto pool = WorkerPool::start(o, [&](size_t i) -> Task<void> {
    {
      std::lock_guard<std::mutex> lock(mutex);
      seen.emplace_back(i, sched_getcpu());
    }
    return report_main(i, &board);
  });
  ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
  ASSERT_EQ(board.wait_for(2), 2u);
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [index, cpu] : seen) EXPECT_EQ(cpu, static_cast<int>(index));
}

TEST_P(WorkerPoolTest, RepeatedStartAndStop) {
  // Start-up and shutdown handshakes, many times over.
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> ran{0};
    auto pool = WorkerPool::start(options(4), [&](size_t) -> Task<void> {
      return [](std::atomic<int>* ran) -> Task<void> {
        ++*ran;
        co_return;
      }(&ran);
    });
    ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
    if (round % 2) {
      for (int spins = 0; ran.load() < 4 && spins < 1000; ++spins) std::this_thread::sleep_for(1ms);
      EXPECT_EQ(ran.load(), 4);
    }
    (*pool)->stop();
  }
}

TEST_P(WorkerPoolTest, StartFailsWhenPinningFails) {
  WorkerPoolOptions o = options(3);
  o.pin_cpus = true;
  o.cpus = {0, CPU_SETSIZE - 1};  // worker 1 cannot be pinned to a CPU that does not exist
  std::atomic<int> mains{0};
  auto pool = WorkerPool::start(o, [&](size_t) -> Task<void> {
    ++mains;
    return []() -> Task<void> { co_return; }();
  });
  ASSERT_FALSE(pool.has_value());
  EXPECT_NE(pool.error().message().find("CPU"), std::string::npos) << pool.error().to_string();
}

TEST_P(WorkerPoolTest, ZeroWorkersIsAnError) {
  auto pool = WorkerPool::start(
      options(0), [](size_t) -> Task<void> { return []() -> Task<void> { co_return; }(); });
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().code(), ErrorCode::kInvalidArgument);
}

ML_INSTANTIATE_BACKEND_TESTS(WorkerPoolTest);

// --- Backend selection ---------------------------------------------------------------------

// Sets MONOLAKE_RUNTIME for a scope, and unsets it afterwards whatever happens.
class ScopedRuntimeEnv {
 public:
  explicit ScopedRuntimeEnv(const char* value) { ::setenv("MONOLAKE_RUNTIME", value, 1); }
  ~ScopedRuntimeEnv() { ::unsetenv("MONOLAKE_RUNTIME"); }
};

Result<std::unique_ptr<Runtime>> create_with(BackendKind backend, bool honor_env) {
  RuntimeOptions options;
  options.backend = backend;
  options.honor_env = honor_env;
  return Runtime::create(options);
}

TEST(RuntimeCreateTest, EnvironmentSelectsEpoll) {
  ScopedRuntimeEnv env("epoll");
  auto rt = create_with(BackendKind::kIoUring, /*honor_env=*/true);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kEpoll);
  EXPECT_FALSE((*rt)->backend_reason().empty());
}

TEST(RuntimeCreateTest, EnvironmentLegacyMeansEpoll) {
  ScopedRuntimeEnv env("legacy");
  auto rt = create_with(BackendKind::kAuto, /*honor_env=*/true);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kEpoll);
}

TEST(RuntimeCreateTest, EnvironmentSelectsIoUring) {
  ScopedRuntimeEnv env("io_uring");
  auto rt = create_with(BackendKind::kEpoll, /*honor_env=*/true);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kIoUring);
}

TEST(RuntimeCreateTest, BogusEnvironmentValueIsAnErrorNamingTheVariable) {
  ScopedRuntimeEnv env("bogus");
  auto rt = create_with(BackendKind::kAuto, /*honor_env=*/true);
  ASSERT_FALSE(rt.has_value());
  EXPECT_EQ(rt.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(rt.error().message().find("MONOLAKE_RUNTIME"), std::string::npos)
      << rt.error().to_string();
  EXPECT_EQ(Runtime::current(), nullptr);
  // requested_backend() reports the same.
  RuntimeOptions options;
  auto kind = requested_backend(options);
  ASSERT_FALSE(kind.has_value());
  EXPECT_EQ(kind.error().code(), ErrorCode::kInvalidArgument);
}

TEST(RuntimeCreateTest, EnvironmentIgnoredWithoutHonorEnv) {
  ScopedRuntimeEnv env("bogus");
  auto rt = create_with(BackendKind::kEpoll, /*honor_env=*/false);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kEpoll);
}

TEST(RuntimeCreateTest, EmptyEnvironmentValueKeepsTheOption) {
  ScopedRuntimeEnv env("");
  auto rt = create_with(BackendKind::kEpoll, /*honor_env=*/true);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kEpoll);
}

TEST(RuntimeCreateTest, WorkerPoolReportsBogusEnvironment) {
  ScopedRuntimeEnv env("bogus");
  WorkerPoolOptions options;
  options.workers = 3;
  options.runtime.honor_env = true;
  auto pool = WorkerPool::start(
      options, [](size_t) -> Task<void> { return []() -> Task<void> { co_return; }(); });
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(pool.error().message().find("MONOLAKE_RUNTIME"), std::string::npos);
}

TEST(RuntimeCreateTest, AutoPicksIoUringHere) {
  ::unsetenv("MONOLAKE_RUNTIME");
  auto rt = create_with(BackendKind::kAuto, /*honor_env=*/true);
  ASSERT_TRUE(rt.has_value()) << rt.error().to_string();
  EXPECT_EQ((*rt)->backend_kind(), BackendKind::kIoUring) << (*rt)->backend_reason();
  EXPECT_FALSE((*rt)->backend_reason().empty());
}

TEST(RuntimeCreateTest, SecondRuntimeOnTheSameThreadFails) {
  auto first = create_with(BackendKind::kEpoll, /*honor_env=*/false);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  EXPECT_EQ(Runtime::current(), first->get());
  for (BackendKind kind : {BackendKind::kEpoll, BackendKind::kIoUring, BackendKind::kAuto}) {
    auto second = create_with(kind, /*honor_env=*/false);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(Runtime::current(), first->get());  // the failed attempts changed nothing
  first->reset();
  EXPECT_EQ(Runtime::current(), nullptr);
  // Once the first is gone, the thread may have another.
  auto third = create_with(BackendKind::kIoUring, /*honor_env=*/false);
  ASSERT_TRUE(third.has_value()) << third.error().to_string();
  EXPECT_EQ(Runtime::current(), third->get());
}

TEST(RuntimeCreateTest, ParseBackendNames) {
  EXPECT_EQ(parse_backend_kind("auto"), BackendKind::kAuto);
  EXPECT_EQ(parse_backend_kind("io_uring"), BackendKind::kIoUring);
  EXPECT_EQ(parse_backend_kind("epoll"), BackendKind::kEpoll);
  EXPECT_EQ(parse_backend_kind("legacy"), BackendKind::kEpoll);
  EXPECT_EQ(parse_backend_kind("bogus"), std::nullopt);
  EXPECT_EQ(parse_backend_kind(""), std::nullopt);
  for (BackendKind kind : {BackendKind::kAuto, BackendKind::kIoUring, BackendKind::kEpoll}) {
    EXPECT_EQ(parse_backend_kind(backend_kind_name(kind)), kind);
  }
}

}  // namespace
}  // namespace monolake::runtime
