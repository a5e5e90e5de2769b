#include "proxy/service/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "proxy/service/slot.h"
#include "proxy/service/update.h"
#include "runtime/runtime.h"
#include "runtime/worker_pool.h"

namespace monolake::proxy {
namespace {

using IntService = Service<int, int>;

// State that must survive a reload (stands in for an upstream pool or counters).
struct Counter {
  int calls = 0;
};

// Answers request + offset and counts calls in a Counter it may have inherited.
class AddOffset final : public IntService {
 public:
  AddOffset(int offset, std::shared_ptr<Counter> counter)
      : offset_(offset), counter_(std::move(counter)) {}
  Task<Result<int>> call(int request) override {
    ++counter_->calls;
    co_return request + offset_;
  }
  const std::shared_ptr<Counter>& counter() const { return counter_; }
  int offset() const { return offset_; }

 private:
  int offset_;
  std::shared_ptr<Counter> counter_;
};

// A layer: doubles what the inner chain answers.
class Double final : public Layer<int, int> {
 public:
  using Layer::Layer;
  Task<Result<int>> call(int request) override {
    Result<int> inner = co_await inner_->call(request);
    if (!inner) co_return inner;
    co_return *inner * 2;
  }
};

// Builds Double(AddOffset(offset)), taking the Counter over from the previous chain. Fails on
// the worker whose thread index is `fail_on` (to exercise the abort path).
class ChainFactory final : public Factory<IntService> {
 public:
  explicit ChainFactory(int offset, std::optional<std::thread::id> fail_on = std::nullopt)
      : offset_(offset), fail_on_(fail_on) {}
  Result<std::shared_ptr<IntService>> make_from(
      const std::shared_ptr<IntService>& previous) const override {
    if (fail_on_ && *fail_on_ == std::this_thread::get_id()) {
      return Error(ErrorCode::kInvalidArgument, "bad route on this worker");
    }
    std::shared_ptr<Counter> counter;
    if (auto* layer = dynamic_cast<Double*>(previous.get())) {
      counter = static_cast<AddOffset*>(layer->inner().get())->counter();
    }
    if (!counter) counter = std::make_shared<Counter>();
    return std::shared_ptr<IntService>(
        std::make_shared<Double>(std::make_shared<AddOffset>(offset_, std::move(counter))));
  }

 private:
  int offset_;
  std::optional<std::thread::id> fail_on_;
};

int call_now(runtime::Runtime& rt, IntService& service, int request) {
  return rt.block_on([](IntService& s, int r) -> Task<int> {
    Result<int> out = co_await s.call(r);
    co_return out.value_or(-1);
  }(service, request));
}

Counter& counter_of(const std::shared_ptr<IntService>& chain) {
  auto* layer = dynamic_cast<Double*>(chain.get());
  return *static_cast<AddOffset*>(layer->inner().get())->counter();
}

TEST(SlotTest, PrepareCommitAbort) {
  Slot<IntService> slot;
  EXPECT_EQ(slot.current(), nullptr);
  ASSERT_TRUE(slot.prepare(ChainFactory(1)).has_value());
  EXPECT_TRUE(slot.staged());
  EXPECT_EQ(slot.current(), nullptr);  // nothing changes before commit
  EXPECT_TRUE(slot.commit());
  EXPECT_EQ(slot.generation(), 1u);
  std::shared_ptr<IntService> first = slot.current();
  ASSERT_NE(first, nullptr);

  ASSERT_TRUE(slot.prepare(ChainFactory(5)).has_value());
  slot.abort();
  EXPECT_FALSE(slot.commit());  // nothing staged any more
  EXPECT_EQ(slot.current(), first);
  EXPECT_EQ(slot.generation(), 1u);
}

TEST(SlotTest, FailedPrepareLeavesTheCurrentChain) {
  Slot<IntService> slot;
  ASSERT_TRUE(slot.prepare(ChainFactory(1)).has_value());
  slot.commit();
  auto before = slot.current();
  Result<void> r = slot.prepare(ChainFactory(2, std::this_thread::get_id()));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "bad route on this worker");
  EXPECT_FALSE(slot.staged());
  EXPECT_EQ(slot.current(), before);
}

TEST(SlotTest, StateCarriesOverAndOldHoldersKeepTheirChain) {
  auto rt = std::move(*runtime::Runtime::create({}));
  Slot<IntService> slot;
  ASSERT_TRUE(slot.prepare(ChainFactory(1)).has_value());
  slot.commit();
  // A long-lived (L4-style) connection holds the chain it started with.
  std::shared_ptr<IntService> held = slot.current();
  EXPECT_EQ(call_now(*rt, *held, 10), 22);  // (10 + 1) * 2

  ASSERT_TRUE(slot.prepare(ChainFactory(100)).has_value());
  slot.commit();
  // New work (an HTTP request boundary) takes the new chain...
  EXPECT_EQ(call_now(*rt, *slot.current(), 10), 220);
  // ...the held one still answers with the old routes...
  EXPECT_EQ(call_now(*rt, *held, 10), 22);
  // ...and both share the carried-over state.
  EXPECT_EQ(&counter_of(held), &counter_of(slot.current()));
  EXPECT_EQ(counter_of(slot.current()).calls, 3);
}

// Every worker owns a slot; the coordinator prepares all, then commits or aborts all.
class UpdateTest : public ::testing::Test {
 protected:
  static constexpr size_t kWorkers = 3;

  void SetUp() override {
    runtime::WorkerPoolOptions options;
    options.workers = kWorkers;
    options.runtime.honor_env = false;
    auto pool = runtime::WorkerPool::start(options, [](size_t) -> Task<void> { co_return; });
    ASSERT_TRUE(pool.has_value()) << pool.error().to_string();
    pool_ = std::move(*pool);
    // Each worker's thread id, recorded on that worker (a posted function, not the worker's
    // start task: a post may run before that task has, and the wait below would then not
    // cover the write).
    for (size_t i = 0; i < kWorkers; ++i) {
      std::promise<void> done;
      pool_->post(i, [this, i, &done] {
        threads_[i] = std::this_thread::get_id();
        done.set_value();
      });
      done.get_future().wait();
    }
  }
  void TearDown() override {
    // Slots (and their chains) are dropped on their own workers.
    for (size_t i = 0; i < kWorkers; ++i) {
      std::promise<void> done;
      pool_->post(i, [this, i, &done] {
        slots_[i] = Slot<IntService>();
        done.set_value();
      });
      done.get_future().wait();
    }
    pool_->stop();
  }

  Result<void> update(std::shared_ptr<const Factory<IntService>> factory) {
    return update_all<IntService>(
        *pool_, [this](size_t i) { return &slots_[i]; }, std::move(factory));
  }

  // Calls worker i's current chain on its own thread.
  int call_on(size_t i, int request) {
    std::promise<int> answer;
    pool_->post(i, [this, i, request, &answer] {
      runtime::spawn([](IntService* s, int r, std::promise<int>* out) -> Task<void> {
        Result<int> v = co_await s->call(r);
        out->set_value(v.value_or(-1));
      }(slots_[i].current().get(), request, &answer));
    });
    return answer.get_future().get();
  }

  std::unique_ptr<runtime::WorkerPool> pool_;
  std::thread::id threads_[kWorkers];
  Slot<IntService> slots_[kWorkers];
};

TEST_F(UpdateTest, CommitsOnEveryWorker) {
  ASSERT_TRUE(update(std::make_shared<ChainFactory>(1)).has_value());
  for (size_t i = 0; i < kWorkers; ++i) EXPECT_EQ(call_on(i, 1), 4);
  ASSERT_TRUE(update(std::make_shared<ChainFactory>(10)).has_value());
  for (size_t i = 0; i < kWorkers; ++i) {
    EXPECT_EQ(call_on(i, 1), 22);
    EXPECT_EQ(slots_[i].generation(), 2u);  // read after the workers answered
  }
}

TEST_F(UpdateTest, OneFailingWorkerAbortsEverywhere) {
  ASSERT_TRUE(update(std::make_shared<ChainFactory>(1)).has_value());
  Result<void> r = update(std::make_shared<ChainFactory>(10, threads_[1]));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("worker 1"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message().find("bad route"), std::string::npos);
  for (size_t i = 0; i < kWorkers; ++i) {
    EXPECT_EQ(call_on(i, 1), 4) << "worker " << i << " must keep the old chain";
    EXPECT_FALSE(slots_[i].staged());
    EXPECT_EQ(slots_[i].generation(), 1u);
  }
}

// What after_commit saw on one worker.
struct AfterCommit {
  int calls = 0;
  std::thread::id thread;
  uint64_t generation = 0;
  bool staged = true;
  int offset = -1;  // of the worker's current chain
};

TEST_F(UpdateTest, AfterCommitRunsOnEachWorkerRightAfterItsCommit) {
  ASSERT_TRUE(update(std::make_shared<ChainFactory>(1)).has_value());
  // Written on worker i only; read here after update_all has waited for every worker.
  AfterCommit seen[kWorkers];
  Result<void> r = update_all<IntService>(
      *pool_, [this](size_t i) { return &slots_[i]; }, std::make_shared<ChainFactory>(10),
      [this, &seen](size_t i) {
        AfterCommit& s = seen[i];
        ++s.calls;
        s.thread = std::this_thread::get_id();
        s.generation = slots_[i].generation();
        s.staged = slots_[i].staged();
        auto* layer = dynamic_cast<Double*>(slots_[i].current().get());
        if (layer) s.offset = static_cast<AddOffset*>(layer->inner().get())->offset();
      });
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  for (size_t i = 0; i < kWorkers; ++i) {
    SCOPED_TRACE("worker " + std::to_string(i));
    EXPECT_EQ(seen[i].calls, 1);
    EXPECT_EQ(seen[i].thread, threads_[i]) << "after_commit ran off the worker's thread";
    EXPECT_EQ(seen[i].generation, 2u) << "after_commit ran before the commit";
    EXPECT_FALSE(seen[i].staged);
    EXPECT_EQ(seen[i].offset, 10) << "the new chain was not current yet";
    EXPECT_EQ(call_on(i, 1), 22);
  }
}

TEST_F(UpdateTest, AfterCommitDoesNotRunWhenTheUpdateAborts) {
  ASSERT_TRUE(update(std::make_shared<ChainFactory>(1)).has_value());
  std::atomic<int> calls{0};
  Result<void> r = update_all<IntService>(
      *pool_, [this](size_t i) { return &slots_[i]; },
      std::make_shared<ChainFactory>(10, threads_[2]), [&calls](size_t) { ++calls; });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(calls.load(), 0);
  for (size_t i = 0; i < kWorkers; ++i) {
    EXPECT_EQ(slots_[i].generation(), 1u);
    EXPECT_EQ(call_on(i, 1), 4);
  }
}

}  // namespace
}  // namespace monolake::proxy
