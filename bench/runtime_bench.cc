// Runtime microbenchmarks: task spawn+resume, timers, and loopback echo per backend.
//   bazel run --config=opt //bench:runtime_bench
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "runtime/io.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/stream.h"

namespace monolake {
namespace {

using runtime::BackendKind;
using runtime::Runtime;
using runtime::Task;
using namespace std::chrono_literals;

std::unique_ptr<Runtime> make_runtime(BackendKind kind) {
  runtime::RuntimeOptions options;
  options.backend = kind;
  options.honor_env = false;
  auto rt = Runtime::create(options);
  if (!rt) std::abort();
  return std::move(*rt);
}

Task<int> child(int v) { co_return v + 1; }

// Awaiting a child task: frame allocation, resume and symmetric transfer back.
void BM_TaskAwait(benchmark::State& state) {
  auto rt = make_runtime(BackendKind::kEpoll);
  rt->block_on([](benchmark::State& s) -> Task<void> {
    int v = 0;
    for (auto _ : s) v = co_await child(v);
    benchmark::DoNotOptimize(v);
  }(state));
}
BENCHMARK(BM_TaskAwait);

// spawn() of a detached task and its first resume through the ready queue.
void BM_SpawnAndRun(benchmark::State& state) {
  auto rt = make_runtime(BackendKind::kEpoll);
  rt->block_on([](benchmark::State& s) -> Task<void> {
    int count = 0;
    for (auto _ : s) {
      runtime::spawn([](int* c) -> Task<void> {
        ++*c;
        co_return;
      }(&count));
      co_await runtime::yield_now{};
    }
    benchmark::DoNotOptimize(count);
  }(state));
}
BENCHMARK(BM_SpawnAndRun);

// Insert and remove a timer with `range(0)` other timers pending.
void BM_TimerInsertRemove(benchmark::State& state) {
  runtime::TimerHeap heap;
  const auto base = runtime::Clock::now();
  std::vector<runtime::TimerNode> pending(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < pending.size(); ++i) {
    pending[i].deadline = base + std::chrono::microseconds((i * 7919) % 100000);
    heap.insert(&pending[i]);
  }
  runtime::TimerNode node;
  int64_t i = 0;
  for (auto _ : state) {
    node.deadline = base + std::chrono::microseconds((++i * 104729) % 100000);
    heap.insert(&node);
    heap.remove(&node);
  }
  for (auto& n : pending) heap.remove(&n);
}
BENCHMARK(BM_TimerInsertRemove)->Arg(0)->Arg(1000)->Arg(100000);

// Insert then fire due timers through the runtime (sleep(0 < d) and wake).
void BM_TimerFire(benchmark::State& state, BackendKind kind) {
  auto rt = make_runtime(kind);
  rt->block_on([](benchmark::State& s) -> Task<void> {
    for (auto _ : s) (void)co_await runtime::sleep(1ns);
  }(state));
}
BENCHMARK_CAPTURE(BM_TimerFire, io_uring, BackendKind::kIoUring);
BENCHMARK_CAPTURE(BM_TimerFire, epoll, BackendKind::kEpoll);

struct Pair {
  transport::Stream client;
  transport::Stream server;
};

Task<Pair> connected_pair(transport::Listener& listener, transport::SocketAddress address) {
  auto accept = runtime::spawn_with_handle(listener.accept());
  auto client = co_await transport::Stream::connect(address);
  auto server = co_await accept;
  if (!client || !server) std::abort();
  co_return Pair{std::move(*client), std::move(*server)};
}

// Echoes until the peer closes. Uses read_some, as a proxy would for idle-prone connections.
Task<void> echo_server(transport::Stream stream) {
  IoBuffer buffer;
  while (true) {
    auto n = co_await stream.read_some(buffer);
    if (!n || *n == 0) co_return;
    auto [w, rest] = co_await stream.write_all(std::move(buffer));
    buffer = std::move(rest);
    if (!w) co_return;
    buffer.clear();
  }
}

// Sends `size` bytes and reads them back, `rounds` times.
Task<void> ping_pong(transport::Stream& stream, size_t size, int64_t rounds) {
  const std::string payload(size, 'x');
  IoBuffer message(size);
  IoBuffer in(size * 2);
  for (int64_t r = 0; r < rounds; ++r) {
    message.append(payload);
    auto [w, back] = co_await stream.write_all(std::move(message));
    message = std::move(back);
    if (!w) std::abort();
    size_t got = 0;
    while (got < size) {
      auto [n, buf] = co_await stream.read(std::move(in));
      in = std::move(buf);
      if (!n || *n == 0) std::abort();
      got += *n;
      in.clear();
    }
  }
}

// One connection, 64-byte round trips on loopback TCP: latency per round trip.
void BM_EchoPingPong(benchmark::State& state, BackendKind kind) {
  auto rt = make_runtime(kind);
  auto listener = transport::Listener::bind(*transport::SocketAddress::parse("127.0.0.1:0"));
  auto address = *listener->local_address();
  rt->block_on(
      [](benchmark::State& s, transport::Listener& l, transport::SocketAddress a) -> Task<void> {
        Pair pair = co_await connected_pair(l, a);
        runtime::spawn(echo_server(std::move(pair.server)));
        for (auto _ : s) co_await ping_pong(pair.client, 64, 1);
      }(state, *listener, address));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_EchoPingPong, io_uring, BackendKind::kIoUring)->UseRealTime();
BENCHMARK_CAPTURE(BM_EchoPingPong, epoll, BackendKind::kEpoll)->UseRealTime();

// 64 connections, each doing 16 round trips of 1 KiB per iteration, concurrently.
void BM_Echo64Connections(benchmark::State& state, BackendKind kind) {
  constexpr int kConnections = 64;
  constexpr int64_t kRounds = 16;
  constexpr size_t kSize = 1024;
  auto rt = make_runtime(kind);
  auto listener = transport::Listener::bind(*transport::SocketAddress::parse("127.0.0.1:0"));
  auto address = *listener->local_address();
  rt->block_on(
      [](benchmark::State& s, transport::Listener& l, transport::SocketAddress a) -> Task<void> {
        std::vector<transport::Stream> clients;
        for (int i = 0; i < kConnections; ++i) {
          Pair pair = co_await connected_pair(l, a);
          runtime::spawn(echo_server(std::move(pair.server)));
          clients.push_back(std::move(pair.client));
        }
        for (auto _ : s) {
          std::vector<runtime::JoinHandle<void>> running;
          for (auto& c : clients)
            running.push_back(runtime::spawn_with_handle(ping_pong(c, kSize, kRounds)));
          for (auto& h : running) co_await h;
        }
      }(state, *listener, address));
  state.SetItemsProcessed(state.iterations() * kConnections * kRounds);
  state.SetBytesProcessed(state.iterations() * kConnections * kRounds * kSize * 2);
}
BENCHMARK_CAPTURE(BM_Echo64Connections, io_uring, BackendKind::kIoUring)->UseRealTime();
BENCHMARK_CAPTURE(BM_Echo64Connections, epoll, BackendKind::kEpoll)->UseRealTime();

}  // namespace
}  // namespace monolake
