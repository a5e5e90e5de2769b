// Tests of TimerHeap (plain unit tests) and of the runtime's timers: sleep, Deadline and
// with_timeout, on both backends.
#include "runtime/timer.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "runtime/internal/backend.h"
#include "runtime/io.h"
#include "runtime/testing.h"
#include "runtime/time.h"

namespace monolake::runtime {
namespace {

using namespace std::chrono_literals;

// --- TimerHeap --------------------------------------------------------------------------

TimePoint at(int64_t ns) { return TimePoint(Duration(ns)); }

// A heap node that logs its id when it fires.
struct Probe {
  TimerNode node;
  int id = 0;
  std::vector<int>* log = nullptr;

  Probe() = default;
  Probe(int id_in, int64_t deadline_ns, std::vector<int>* log_in) {
    init(id_in, deadline_ns, log_in);
  }
  void init(int id_in, int64_t deadline_ns, std::vector<int>* log_in) {
    id = id_in;
    log = log_in;
    node.deadline = at(deadline_ns);
    node.context = this;
    node.fire = [](TimerNode* n) {
      auto* self = static_cast<Probe*>(n->context);
      self->log->push_back(self->id);
    };
  }
};

TEST(TimerHeapTest, EmptyHeap) {
  TimerHeap heap;
  EXPECT_TRUE(heap.empty());
  EXPECT_EQ(heap.size(), 0u);
  EXPECT_EQ(heap.fire_due(TimePoint::max()), 0u);
}

TEST(TimerHeapTest, OrdersByDeadline) {
  std::vector<int> log;
  std::vector<Probe> probes(8);
  const int64_t deadlines[] = {50, 10, 70, 30, 20, 80, 60, 40};
  for (int i = 0; i < 8; ++i) probes[i].init(i, deadlines[i], &log);
  TimerHeap heap;
  for (auto& p : probes) heap.insert(&p.node);
  EXPECT_EQ(heap.size(), 8u);
  EXPECT_EQ(heap.next_deadline(), at(10));
  for (auto& p : probes) EXPECT_TRUE(p.node.queued());

  EXPECT_EQ(heap.fire_due(at(100)), 8u);
  EXPECT_EQ(log, (std::vector<int>{1, 4, 3, 7, 0, 6, 2, 5}));
  EXPECT_TRUE(heap.empty());
  for (auto& p : probes) EXPECT_FALSE(p.node.queued());
}

TEST(TimerHeapTest, EqualDeadlinesFireInInsertionOrder) {
  std::vector<int> log;
  std::vector<Probe> probes(20);
  // Ids 0..9 share deadline 100; ids 10..19 are spread around it.
  for (int i = 0; i < 10; ++i) probes[i].init(i, 100, &log);
  for (int i = 10; i < 20; ++i) probes[i].init(i, i % 2 ? 50 + i : 150 + i, &log);
  TimerHeap heap;
  // Interleave the insertions so the equal-deadline nodes travel through the heap.
  for (int i = 0; i < 10; ++i) {
    heap.insert(&probes[10 + i].node);
    heap.insert(&probes[i].node);
  }
  EXPECT_EQ(heap.fire_due(at(1000)), 20u);
  std::vector<int> equal;
  for (int id : log) {
    if (id < 10) equal.push_back(id);
  }
  EXPECT_EQ(equal, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // And the equal group sits between the earlier and later deadlines.
  std::vector<int64_t> fired_deadlines;
  for (int id : log) fired_deadlines.push_back(probes[id].node.deadline.time_since_epoch().count());
  EXPECT_TRUE(std::is_sorted(fired_deadlines.begin(), fired_deadlines.end()));
}

TEST(TimerHeapTest, ReinsertedNodeQueuesBehindEqualDeadlines) {
  std::vector<int> log;
  Probe a(0, 10, &log), b(1, 10, &log);
  TimerHeap heap;
  heap.insert(&a.node);
  heap.insert(&b.node);
  heap.remove(&a.node);
  heap.insert(&a.node);  // a new insertion: FIFO position is now after b
  EXPECT_EQ(heap.fire_due(at(10)), 2u);
  EXPECT_EQ(log, (std::vector<int>{1, 0}));
}

TEST(TimerHeapTest, RemoveHeadMiddleAndLast) {
  std::vector<int> log;
  std::vector<Probe> probes(9);
  for (int i = 0; i < 9; ++i) probes[i].init(i, 10 * (i + 1), &log);
  TimerHeap heap;
  for (auto& p : probes) heap.insert(&p.node);

  // Inserted in increasing order, node i sits at heap index i: 0 is the head, 8 the last slot.
  ASSERT_EQ(probes[0].node.heap_index, 0u);
  ASSERT_EQ(probes[8].node.heap_index, 8u);
  heap.remove(&probes[0].node);  // head
  EXPECT_FALSE(probes[0].node.queued());
  EXPECT_EQ(heap.next_deadline(), at(20));
  heap.remove(&probes[4].node);  // middle
  EXPECT_FALSE(probes[4].node.queued());
  const size_t last = heap.size() - 1;
  Probe* last_probe = nullptr;
  for (auto& p : probes) {
    if (p.node.queued() && p.node.heap_index == last) last_probe = &p;
  }
  ASSERT_NE(last_probe, nullptr);
  heap.remove(&last_probe->node);  // last slot
  EXPECT_FALSE(last_probe->node.queued());
  EXPECT_EQ(heap.size(), 6u);

  // Removing a node that is not queued is a no-op.
  heap.remove(&probes[0].node);
  EXPECT_EQ(heap.size(), 6u);

  // Every remaining node still knows its slot.
  for (auto& p : probes) {
    if (p.node.queued()) {
      EXPECT_LT(p.node.heap_index, heap.size());
    }
  }

  EXPECT_EQ(heap.fire_due(at(1000)), 6u);
  std::vector<int> expected;
  for (int i = 1; i < 9; ++i) {
    if (i != 4 && &probes[i] != last_probe) expected.push_back(i);
  }
  EXPECT_EQ(log, expected);
}

TEST(TimerHeapTest, RemoveOnlyNode) {
  std::vector<int> log;
  Probe a(0, 5, &log);
  TimerHeap heap;
  heap.insert(&a.node);
  heap.remove(&a.node);
  EXPECT_TRUE(heap.empty());
  EXPECT_FALSE(a.node.queued());
  EXPECT_EQ(heap.fire_due(at(100)), 0u);
  EXPECT_TRUE(log.empty());
}

TEST(TimerHeapTest, FireDueFiresOnlyDueNodes) {
  std::vector<int> log;
  std::vector<Probe> probes(10);
  for (int i = 0; i < 10; ++i) probes[i].init(i, 10 * (10 - i), &log);  // 100, 90, ..., 10
  TimerHeap heap;
  for (auto& p : probes) heap.insert(&p.node);

  EXPECT_EQ(heap.fire_due(at(9)), 0u);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(heap.fire_due(at(50)), 5u);  // deadline == now is due
  EXPECT_EQ(log, (std::vector<int>{9, 8, 7, 6, 5}));
  EXPECT_EQ(heap.size(), 5u);
  EXPECT_EQ(heap.next_deadline(), at(60));
  EXPECT_EQ(heap.fire_due(at(59)), 0u);
  EXPECT_EQ(heap.fire_due(at(60)), 1u);
  EXPECT_EQ(heap.fire_due(TimePoint::max()), 4u);
  EXPECT_EQ(log, (std::vector<int>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
}

// A fire callback that inserts and removes other nodes while fire_due is running.
struct Mutator {
  TimerNode node;
  TimerHeap* heap = nullptr;
  std::vector<int>* log = nullptr;
  TimerNode* to_insert_due = nullptr;
  TimerNode* to_insert_later = nullptr;
  TimerNode* to_remove = nullptr;
};

TEST(TimerHeapTest, FireCallbackMayInsertAndRemove) {
  std::vector<int> log;
  TimerHeap heap;
  Probe victim(1, 20, &log);        // due, but removed by the mutator before it fires
  Probe inserted_due(2, 15, &log);  // inserted by the mutator; due now
  Probe inserted_later(3, 500, &log);
  Probe bystander(4, 30, &log);

  Mutator m;
  m.heap = &heap;
  m.log = &log;
  m.to_insert_due = &inserted_due.node;
  m.to_insert_later = &inserted_later.node;
  m.to_remove = &victim.node;
  m.node.deadline = at(10);
  m.node.context = &m;
  m.node.fire = [](TimerNode* n) {
    auto* self = static_cast<Mutator*>(n->context);
    self->log->push_back(0);
    self->heap->insert(self->to_insert_due);
    self->heap->insert(self->to_insert_later);
    self->heap->remove(self->to_remove);
  };

  heap.insert(&m.node);
  heap.insert(&victim.node);
  heap.insert(&bystander.node);
  EXPECT_EQ(heap.fire_due(at(100)), 3u);  // mutator, inserted_due, bystander
  EXPECT_EQ(log, (std::vector<int>{0, 2, 4}));
  EXPECT_FALSE(victim.node.queued());
  EXPECT_TRUE(inserted_later.node.queued());
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(heap.next_deadline(), at(500));
  EXPECT_EQ(heap.fire_due(at(500)), 1u);
  EXPECT_EQ(log, (std::vector<int>{0, 2, 4, 3}));
}

// A fire callback that re-inserts itself with a due deadline fires again in the same call.
TEST(TimerHeapTest, FireCallbackMayReinsertItself) {
  struct Repeater {
    TimerNode node;
    TimerHeap* heap;
    int remaining;
    int fired = 0;
  } r{{}, nullptr, 3};
  TimerHeap heap;
  r.heap = &heap;
  r.node.deadline = at(1);
  r.node.context = &r;
  r.node.fire = [](TimerNode* n) {
    auto* self = static_cast<Repeater*>(n->context);
    ++self->fired;
    if (--self->remaining > 0) {
      n->deadline += Duration(1);
      self->heap->insert(n);
    }
  };
  heap.insert(&r.node);
  EXPECT_EQ(heap.fire_due(at(100)), 3u);
  EXPECT_EQ(r.fired, 3);
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeapTest, HundredThousandRandomInsertsAndRemovals) {
  constexpr int kNodes = 100'000;
  constexpr int kRemovals = 50'000;
  std::mt19937_64 rng(12345);
  // A narrow range of deadlines, so many are equal and FIFO order is exercised too.
  std::uniform_int_distribution<int64_t> deadline(0, 20'000);

  struct Node {
    TimerNode node;
    int fired = 0;
    std::vector<const TimerNode*>* order = nullptr;
  };
  std::vector<const TimerNode*> order;
  std::vector<Node> nodes(kNodes);
  for (auto& n : nodes) {
    n.node.deadline = at(deadline(rng));
    n.node.context = &n;
    n.order = &order;
    n.node.fire = [](TimerNode* t) {
      auto* self = static_cast<Node*>(t->context);
      ++self->fired;
      self->order->push_back(t);
    };
  }
  std::vector<int> index(kNodes);
  std::iota(index.begin(), index.end(), 0);
  std::shuffle(index.begin(), index.end(), rng);

  TimerHeap heap;
  for (int i : index) heap.insert(&nodes[i].node);
  ASSERT_EQ(heap.size(), static_cast<size_t>(kNodes));

  std::shuffle(index.begin(), index.end(), rng);
  std::vector<bool> removed(kNodes, false);
  for (int k = 0; k < kRemovals; ++k) {
    heap.remove(&nodes[index[k]].node);
    removed[index[k]] = true;
    ASSERT_FALSE(nodes[index[k]].node.queued());
  }
  ASSERT_EQ(heap.size(), static_cast<size_t>(kNodes - kRemovals));

  // Find the earliest remaining deadline the slow way and compare.
  TimePoint earliest = TimePoint::max();
  for (int i = 0; i < kNodes; ++i) {
    if (!removed[i]) earliest = std::min(earliest, nodes[i].node.deadline);
  }
  EXPECT_EQ(heap.next_deadline(), earliest);

  EXPECT_EQ(heap.fire_due(TimePoint::max()), static_cast<size_t>(kNodes - kRemovals));
  EXPECT_TRUE(heap.empty());
  ASSERT_EQ(order.size(), static_cast<size_t>(kNodes - kRemovals));
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_EQ(nodes[i].fired, removed[i] ? 0 : 1) << "node " << i;
  }
  for (size_t k = 1; k < order.size(); ++k) {
    const TimerNode* prev = order[k - 1];
    const TimerNode* cur = order[k];
    ASSERT_LE(prev->deadline, cur->deadline) << "at " << k;
    if (prev->deadline == cur->deadline) {
      ASSERT_LT(prev->sequence, cur->sequence) << "FIFO broken at " << k;
    }
  }
}

// --- Timers on the runtime ------------------------------------------------------------------

class TimerTest : public BackendTest {};

std::string name(ErrorCode code) { return std::string(error_code_name(code)); }

// "ok", or the name of the error's code: readable in failure messages.
template <class T>
std::string outcome(const Result<T>& r) {
  return r ? "ok" : name(r.error().code());
}

Task<Result<void>> sleep_task(Duration d) { co_return co_await sleep(d); }

Task<BufResult<size_t>> recv_task(int fd, IoBuffer buffer) {
  co_return co_await recv(fd, std::move(buffer));
}

TEST_P(TimerTest, SleepsWakeInDeadlineOrder) {
  constexpr int kTasks = 200;
  struct Wake {
    TimePoint deadline;
    int id;
    bool early;
  };
  std::vector<Wake> wakes;
  auto sleeper = [](int id, Duration d, std::vector<Wake>* out) -> Task<void> {
    const TimePoint deadline = Runtime::current()->now() + d;
    Result<void> r = co_await sleep_until(deadline);
    EXPECT_EQ(outcome(r), "ok");
    out->push_back({deadline, id, Clock::now() < deadline});
  };
  auto body = [&]() -> Task<void> {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> ms(1, 20);
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(spawn_with_handle(sleeper(i, std::chrono::milliseconds(ms(rng)), &wakes)));
    }
    for (auto& h : handles) co_await h;
  };
  run(body());
  ASSERT_EQ(wakes.size(), static_cast<size_t>(kTasks));
  for (size_t k = 0; k < wakes.size(); ++k) {
    EXPECT_FALSE(wakes[k].early) << "task " << wakes[k].id << " woke before its deadline";
    if (k == 0) continue;
    EXPECT_LE(wakes[k - 1].deadline, wakes[k].deadline) << "at " << k;
    // All tasks started in the same loop turn, in spawn order: equal deadlines wake FIFO.
    if (wakes[k - 1].deadline == wakes[k].deadline) {
      EXPECT_LT(wakes[k - 1].id, wakes[k].id) << "at " << k;
    }
  }
  expect_idle();
}

TEST_P(TimerTest, ZeroAndNegativeSleepsYield) {
  auto body = []() -> Task<int> {
    int ran = 0;
    auto bump = [](int* counter) -> Task<void> {
      ++*counter;
      co_return;
    };
    spawn(bump(&ran));
    Result<void> r = co_await sleep(0ms);
    EXPECT_EQ(outcome(r), "ok");
    EXPECT_EQ(ran, 1);
    spawn(bump(&ran));
    r = co_await sleep(-5ms);
    EXPECT_EQ(outcome(r), "ok");
    EXPECT_EQ(ran, 2);
    spawn(bump(&ran));
    r = co_await sleep_until(Runtime::current()->now());
    EXPECT_EQ(outcome(r), "ok");
    co_return ran;
  };
  EXPECT_EQ(run(body()), 3);
  expect_idle();
}

TEST_P(TimerTest, SleepLastsAtLeastItsDuration) {
  auto body = []() -> Task<Duration> {
    const TimePoint start = Clock::now();
    Result<void> r = co_await sleep(30ms);
    EXPECT_EQ(outcome(r), "ok");
    co_return Clock::now() - start;
  };
  const Duration elapsed = run(body());
  EXPECT_GE(elapsed, 30ms);
  EXPECT_LT(elapsed, 2s);
  expect_idle();
}

TEST_P(TimerTest, WithTimeoutOnSilentRecvTimesOut) {
  auto p = socket_pair();
  auto body = [](int fd) -> Task<void> {
    const TimePoint start = Runtime::current()->now();
    IoBuffer buffer(4096);
    buffer.append("keep");
    BufResult<size_t> r = co_await with_timeout(recv_task(fd, std::move(buffer)), 50ms);
    const Duration elapsed = Clock::now() - start;
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kTimeout));
    // The buffer comes back untouched.
    EXPECT_EQ(r.buffer.view(), "keep");
    EXPECT_EQ(r.buffer.capacity(), 4096u);
    EXPECT_GE(elapsed, 50ms);
    EXPECT_LT(elapsed, 2s);
  };
  run(body(p[0]));
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, WithTimeoutKeepsResultThatArrivesInTime) {
  auto p = socket_pair();
  auto body = [](int rfd, int wfd) -> Task<void> {
    spawn([](int fd) -> Task<void> {
      (void)co_await sleep(10ms);
      BufResult<size_t> sent = co_await send(fd, IoBuffer::copy_of("ping"));
      EXPECT_EQ(outcome(sent.result), "ok");
    }(wfd));
    const TimePoint start = Runtime::current()->now();
    BufResult<size_t> r = co_await with_timeout(recv_task(rfd, IoBuffer(4096)), 5s);
    EXPECT_EQ(outcome(r.result), "ok");
    EXPECT_EQ(r.result.value_or(0), 4u);
    EXPECT_EQ(r.buffer.view(), "ping");
    EXPECT_LT(Clock::now() - start, 2s);

    // A plain Result<T> task, and one that completes without suspending at all.
    Result<int> v = co_await with_timeout(
        []() -> Task<Result<int>> {
          (void)co_await sleep(1ms);
          co_return 7;
        }(),
        5s);
    EXPECT_EQ(v.value_or(-1), 7);
    Result<int> w = co_await with_timeout([]() -> Task<Result<int>> { co_return 8; }(), 5s);
    EXPECT_EQ(w.value_or(-1), 8);
    // An error that is not a cancellation passes through unchanged.
    Result<int> e = co_await with_timeout(
        []() -> Task<Result<int>> { co_return Error(ErrorCode::kProtocol, "bad"); }(), 5s);
    EXPECT_EQ(outcome(e), name(ErrorCode::kProtocol));
  };
  run(body(p[0], p[1]));
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, WithTimeoutAroundSleep) {
  auto body = []() -> Task<void> {
    const TimePoint start = Runtime::current()->now();
    Result<void> r = co_await with_timeout(sleep_task(10s), 20ms);
    EXPECT_EQ(outcome(r), name(ErrorCode::kTimeout));
    EXPECT_LT(Clock::now() - start, 2s);
    r = co_await with_timeout(sleep_task(1ms), 10s);
    EXPECT_EQ(outcome(r), "ok");
  };
  run(body());
  expect_idle();
}

TEST_P(TimerTest, NestedTimeouts) {
  auto p = socket_pair();
  auto body = [](int fd) -> Task<void> {
    // Inner limit shorter.
    TimePoint start = Runtime::current()->now();
    BufResult<size_t> r =
        co_await with_timeout(with_timeout(recv_task(fd, IoBuffer(1024)), 50ms), 5s);
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kTimeout));
    EXPECT_EQ(r.buffer.capacity(), 1024u);
    EXPECT_GE(Clock::now() - start, 50ms);
    EXPECT_LT(Clock::now() - start, 2s);

    // Outer limit shorter: the outer deadline cancels the inner with_timeout's operation.
    start = Runtime::current()->now();
    r = co_await with_timeout(with_timeout(recv_task(fd, IoBuffer(1024)), 5s), 50ms);
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kTimeout));
    EXPECT_EQ(r.buffer.capacity(), 1024u);
    EXPECT_GE(Clock::now() - start, 50ms);
    EXPECT_LT(Clock::now() - start, 2s);

    // Equal limits.
    r = co_await with_timeout(with_timeout(recv_task(fd, IoBuffer(1024)), 30ms), 30ms);
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kTimeout));

    // Three levels, middle shortest.
    start = Runtime::current()->now();
    r = co_await with_timeout(with_timeout(with_timeout(recv_task(fd, IoBuffer(1024)), 5s), 40ms),
                              10s);
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kTimeout));
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(Runtime::current()->timers().size(), 0u);
  };
  run(body(p[0]));
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, NestedTimeoutsKeepResultThatArrivesInTime) {
  auto p = socket_pair();
  ASSERT_EQ(::send(p[1], "abc", 3, MSG_NOSIGNAL), 3);
  auto body = [](int fd) -> Task<BufResult<size_t>> {
    co_return co_await with_timeout(with_timeout(recv_task(fd, IoBuffer(1024)), 5s), 5s);
  };
  BufResult<size_t> r = run(body(p[0]));
  EXPECT_EQ(outcome(r.result), "ok");
  EXPECT_EQ(r.buffer.view(), "abc");
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, JoinHandleCancelStopsBlockedRecvAndReturnsBuffer) {
  auto p = socket_pair();
  auto body = [](int fd) -> Task<void> {
    IoBuffer buffer(8192);
    buffer.append("prefix");
    auto h = spawn_with_handle(recv_task(fd, std::move(buffer)));
    (void)co_await sleep(10ms);
    EXPECT_FALSE(h.done());
    h.cancel();
    h.cancel();  // idempotent
    BufResult<size_t> r = co_await h;
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kCancelled));
    EXPECT_EQ(r.buffer.view(), "prefix");
    EXPECT_EQ(r.buffer.capacity(), 8192u);
  };
  run(body(p[0]));
  expect_idle();
  EXPECT_EQ(rt().live_tasks(), 0u);
  close_pair(p);
}

TEST_P(TimerTest, CancelBeforeTheTaskStarts) {
  auto p = socket_pair();
  auto body = [](int fd) -> Task<void> {
    auto h = spawn_with_handle(recv_task(fd, IoBuffer(64)));
    h.cancel();  // the task has not run yet: its first operation sees the cancellation
    BufResult<size_t> r = co_await h;
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kCancelled));
    EXPECT_EQ(r.buffer.capacity(), 64u);
    auto s = spawn_with_handle(sleep_task(10s));
    s.cancel();
    EXPECT_EQ(outcome(co_await s), name(ErrorCode::kCancelled));
  };
  run(body(p[0]));
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, JoinHandleCancelReachesOperationInsideWithTimeout) {
  auto p = socket_pair();
  auto body = [](int fd) -> Task<void> {
    auto h = spawn_with_handle(with_timeout(recv_task(fd, IoBuffer(256)), 10s));
    (void)co_await sleep(10ms);
    EXPECT_EQ(Runtime::current()->timers().size(), 1u);  // with_timeout's deadline
    h.cancel();
    BufResult<size_t> r = co_await h;
    // Cancelled from outside, not timed out.
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kCancelled));
    EXPECT_EQ(r.buffer.capacity(), 256u);
  };
  run(body(p[0]));
  expect_idle();
  close_pair(p);
}

TEST_P(TimerTest, DeadlineArmDisarmRearm) {
  struct Periodic {
    Deadline deadline;
    int fired = 0;
    static void tick(void* p) {
      auto* self = static_cast<Periodic*>(p);
      // Re-arming from inside the callback.
      if (++self->fired < 3) self->deadline.arm(Runtime::current()->now() + 1ms, &tick, self);
    }
  };
  auto body = []() -> Task<void> {
    Runtime* rt = Runtime::current();
    int fired = 0;
    auto count = [](void* p) { ++*static_cast<int*>(p); };
    Deadline d;
    EXPECT_FALSE(d.armed());
    d.arm(rt->now() + 5ms, count, &fired);
    EXPECT_TRUE(d.armed());
    EXPECT_EQ(rt->timers().size(), 1u);
    d.disarm();
    EXPECT_FALSE(d.armed());
    EXPECT_EQ(rt->timers().size(), 0u);
    d.disarm();  // idempotent
    (void)co_await sleep(20ms);
    EXPECT_EQ(fired, 0);

    // Re-arming while armed replaces the deadline.
    d.arm(rt->now() + 5ms, count, &fired);
    d.arm(rt->now() + 10s, count, &fired);
    EXPECT_EQ(rt->timers().size(), 1u);
    (void)co_await sleep(20ms);
    EXPECT_EQ(fired, 0);
    EXPECT_TRUE(d.armed());

    // Re-armed earlier than this sleep's deadline: it fires (once) before the sleep ends.
    d.arm(rt->now() + 5ms, count, &fired);
    (void)co_await sleep(20ms);
    EXPECT_EQ(fired, 1);
    EXPECT_FALSE(d.armed());

    // Armed again after firing.
    d.arm(rt->now() + 1ms, count, &fired);
    (void)co_await sleep(10ms);
    EXPECT_EQ(fired, 2);
    EXPECT_FALSE(d.armed());

    // A deadline that re-arms itself from its callback.
    Periodic periodic;
    periodic.deadline.arm(rt->now() + 1ms, &Periodic::tick, &periodic);
    for (int i = 0; i < 400 && periodic.fired < 3; ++i) (void)co_await sleep(5ms);
    EXPECT_EQ(periodic.fired, 3);
    EXPECT_FALSE(periodic.deadline.armed());

    // The destructor disarms.
    {
      Deadline scoped;
      scoped.arm(rt->now() + 1s, count, &fired);
      EXPECT_EQ(rt->timers().size(), 1u);
    }
    EXPECT_EQ(rt->timers().size(), 0u);
    (void)co_await sleep(1ms);
    EXPECT_EQ(fired, 2);
  };
  run(body());
  expect_idle();
}

TEST_P(TimerTest, HundredThousandPendingSleepsCancelCheaply) {
  static constexpr size_t kSleeps = 100'000;
  auto body = []() -> Task<size_t> {
    Runtime* rt = Runtime::current();
    std::vector<JoinHandle<Result<void>>> handles;
    handles.reserve(kSleeps);
    for (size_t i = 0; i < kSleeps; ++i) {
      handles.push_back(spawn_with_handle(sleep_task(10s + std::chrono::microseconds(i % 997))));
    }
    // Tasks start at most 1024 per loop turn; wait until every one is parked on its timer.
    for (int turns = 0; rt->timers().size() < kSleeps && turns < 100'000; ++turns) {
      co_await yield_now{};
    }
    EXPECT_EQ(rt->timers().size(), kSleeps);
    for (auto& h : handles) h.cancel();
    // Cancelling removes each timer at once.
    EXPECT_EQ(rt->timers().size(), 0u);
    size_t cancelled = 0;
    for (auto& h : handles) {
      Result<void> r = co_await h;
      if (!r && r.error().code() == ErrorCode::kCancelled) ++cancelled;
    }
    co_return cancelled;
  };
  const TimePoint start = Clock::now();
  EXPECT_EQ(run(body()), kSleeps);
  EXPECT_LT(Clock::now() - start, 60s);  // far below the 10 s sleeps of every task together
  expect_idle();
  EXPECT_EQ(rt().live_tasks(), 0u);
}

TEST_P(TimerTest, ManyPendingTimeoutsCancelCheaply) {
  static constexpr size_t kTasks = 20'000;
  auto body = []() -> Task<size_t> {
    Runtime* rt = Runtime::current();
    std::vector<JoinHandle<Result<void>>> handles;
    handles.reserve(kTasks);
    for (size_t i = 0; i < kTasks; ++i) {
      handles.push_back(spawn_with_handle(with_timeout(sleep_task(20s), 10s)));
    }
    // Two timers per task: the sleep and with_timeout's deadline.
    for (int turns = 0; rt->timers().size() < 2 * kTasks && turns < 100'000; ++turns) {
      co_await yield_now{};
    }
    EXPECT_EQ(rt->timers().size(), 2 * kTasks);
    for (auto& h : handles) h.cancel();
    size_t cancelled = 0;
    for (auto& h : handles) {
      Result<void> r = co_await h;
      if (!r && r.error().code() == ErrorCode::kCancelled) ++cancelled;
    }
    co_return cancelled;
  };
  EXPECT_EQ(run(body()), kTasks);
  expect_idle();
  EXPECT_EQ(rt().live_tasks(), 0u);
}

// A sleep whose timer has fired (its task is queued to resume) and that is cancelled before
// the task runs must resume its task exactly once.
TEST_P(TimerTest, CancelAfterSleepFiredButBeforeResume) {
  auto body = []() -> Task<void> {
    Runtime* rt = Runtime::current();
    int resumed = 0;
    const TimePoint deadline = rt->now() + 2ms;
    auto sleeper = [](TimePoint d, int* count) -> Task<Result<void>> {
      Result<void> r = co_await sleep_until(d);
      ++*count;
      co_return r;
    };
    auto h = spawn_with_handle(sleeper(deadline, &resumed));
    co_await yield_now{};  // the sleeper starts and parks on its timer
    EXPECT_EQ(rt->timers().size(), 1u);
    // Spin past the deadline: the timer fires in this turn, after this task queued itself, so
    // this task runs before the woken sleeper in the next turn.
    while (Clock::now() <= deadline + 1ms) {
    }
    co_await yield_now{};
    EXPECT_FALSE(h.done());
    EXPECT_EQ(resumed, 0);
    h.cancel();
    Result<void> r = co_await h;
    EXPECT_EQ(outcome(r), "ok");  // it had finished on its own
    co_await yield_now{};
    co_await yield_now{};
    EXPECT_EQ(resumed, 1);
  };
  run(body());
  expect_idle();
}

// Same race through with_timeout: the operation's timer and the timeout fire in the same turn.
TEST_P(TimerTest, TimeoutFiringRightAfterSleepCompletes) {
  auto body = []() -> Task<void> {
    Runtime* rt = Runtime::current();
    const TimePoint base = rt->now();
    int resumed = 0;
    auto sleeper = [](TimePoint d, int* count) -> Task<Result<void>> {
      Result<void> r = co_await sleep_until(d);
      ++*count;
      co_return r;
    };
    // Runs first in the next turn and spins past both deadlines.
    spawn([](TimePoint until) -> Task<void> {
      while (Clock::now() <= until) {
      }
      co_return;
    }(base + 4ms));
    Result<void> r = co_await with_timeout(sleeper(base + 1ms, &resumed), 2ms);
    EXPECT_EQ(outcome(r), "ok");  // the sleep finished first: its result is kept
    co_await yield_now{};
    co_await yield_now{};
    EXPECT_EQ(resumed, 1);
  };
  for (int i = 0; i < 5; ++i) run(body());
  expect_idle();
}

ML_INSTANTIATE_BACKEND_TESTS(TimerTest);

}  // namespace
}  // namespace monolake::runtime
