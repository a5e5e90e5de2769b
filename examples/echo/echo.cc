// A TCP echo server on the Monolake runtime: how another service embeds the runtime and
// transport libraries. One worker thread per CPU, each with its own SO_REUSEPORT listener.
//
//   bazel run //examples/echo -- 127.0.0.1:7000      # MONOLAKE_RUNTIME=epoll|io_uring|auto
//   echo hello | nc -q1 127.0.0.1 7000
#include <csignal>
#include <cstdio>
#include <thread>

#include "runtime/worker_pool.h"
#include "transport/stream.h"

using namespace monolake;
using runtime::Task;

// Echoes one connection until the peer closes it.
Task<void> echo(transport::Stream stream) {
  IoBuffer buffer;  // empty while the connection is idle
  while (true) {
    Result<size_t> n = co_await stream.read_some(buffer);
    if (!n || *n == 0) co_return;
    auto [written, rest] = co_await stream.write_all(std::move(buffer));
    if (!written) co_return;
    buffer = std::move(rest);
    buffer.release();
  }
}

Task<void> serve(transport::SocketAddress address) {
  auto listener = transport::Listener::bind(address);
  if (!listener) {
    std::fprintf(stderr, "echo: %s\n", listener.error().to_string().c_str());
    std::exit(1);
  }
  while (true) {
    Result<transport::Stream> stream = co_await listener->accept();
    if (stream) runtime::spawn(echo(std::move(*stream)));
  }
}

int main(int argc, char** argv) {
  auto address = transport::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!address) {
    std::fprintf(stderr, "echo: %s\n", address.error().to_string().c_str());
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // workers inherit the mask; main waits below

  runtime::WorkerPoolOptions options;
  options.workers = std::max(1u, std::thread::hardware_concurrency());
  auto pool = runtime::WorkerPool::start(options, [&](size_t) { return serve(*address); });
  if (!pool) {
    std::fprintf(stderr, "echo: %s\n", pool.error().to_string().c_str());
    return 1;
  }
  std::printf("echo: %zu worker(s) on %s using %s; try: echo hello | nc -q1 %s %u\n",
              (*pool)->size(), address->to_string().c_str(),
              std::string(runtime::backend_kind_name((*pool)->backend_kind())).c_str(),
              address->is_unix() ? "-U" : "127.0.0.1", address->port());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  std::printf("echo: signal %d, stopping\n", signal);
  (*pool)->stop();
  return 0;
}
