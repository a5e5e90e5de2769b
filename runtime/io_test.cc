// I/O operations on both backends: sockets over socketpairs and loopback TCP, accept (one-shot
// and Acceptor), connect errors, poll, close/shutdown, cancellation and fd hygiene.
#include "runtime/io.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/internal/backend.h"
#include "runtime/testing.h"
#include "runtime/time.h"

namespace monolake::runtime {
namespace {

using namespace std::chrono_literals;

std::string name(ErrorCode code) { return std::string(error_code_name(code)); }

// "ok", or the name of the error's code: readable in failure messages.
template <class T>
std::string outcome(const Result<T>& r) {
  return r ? "ok" : name(r.error().code());
}

size_t count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  size_t n = 0;
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

uint16_t local_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

uint16_t port_of(const AcceptedSocket& s) {
  if (s.peer_len < sizeof(sockaddr_in)) return 0;
  return ntohs(reinterpret_cast<const sockaddr_in*>(&s.peer)->sin_port);
}

// A pattern that is not periodic at any small stride.
std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct Listener {
  int fd = -1;
  sockaddr_in addr{};
};

// A client socket connected to `addr` through the runtime.
Task<Result<int>> dial(sockaddr_in addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | socket_flags(), 0);
  if (fd < 0) co_return Error::from_errno(errno, "socket");
  Result<void> r =
      co_await runtime::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (!r) {
    Runtime::current()->close_fd(fd);
    co_return std::move(r).error();
  }
  co_return fd;
}

Task<Result<AcceptedSocket>> accept_task(int listen_fd) { co_return co_await accept(listen_fd); }

Task<BufResult<size_t>> recv_task(int fd, IoBuffer buffer) {
  co_return co_await recv(fd, std::move(buffer));
}

// Reads until `n` bytes arrived or the stream ends.
Task<Result<std::string>> read_all(int fd, size_t n) {
  std::string out;
  IoBuffer buffer(64 * 1024);
  while (out.size() < n) {
    buffer.clear();
    auto [r, back] = co_await recv(fd, std::move(buffer));
    buffer = std::move(back);
    if (!r) co_return std::move(r).error();
    if (*r == 0) break;
    out.append(buffer.view());
  }
  co_return out;
}

// Sends `message` each way and checks it arrives.
Task<void> exchange(int a, int b) {
  BufResult<size_t> s = co_await send(a, IoBuffer::copy_of("ping"));
  EXPECT_EQ(s.result.value_or(0), 4u);
  Result<std::string> got = co_await read_all(b, 4);
  EXPECT_EQ(got.value_or("<error>"), "ping");
  s = co_await send(b, IoBuffer::copy_of("pong!"));
  EXPECT_EQ(s.result.value_or(0), 5u);
  got = co_await read_all(a, 5);
  EXPECT_EQ(got.value_or("<error>"), "pong!");
}

// Makes the peer of `fd` see a reset: linger 0, then close.
void reset_close(int fd) {
  linger lg{1, 0};
  EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  Runtime::current()->close_fd(fd);
}

class IoTest : public BackendTest {
 protected:
  // A TCP listener on 127.0.0.1, on a port the kernel picks.
  Listener listen_loopback(int backlog = 1024) {
    Listener l;
    l.fd = ::socket(AF_INET, SOCK_STREAM | socket_flags(), 0);
    EXPECT_GE(l.fd, 0);
    const int one = 1;
    EXPECT_EQ(::setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    l.addr.sin_family = AF_INET;
    l.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l.addr.sin_port = 0;
    EXPECT_EQ(::bind(l.fd, reinterpret_cast<sockaddr*>(&l.addr), sizeof l.addr), 0);
    EXPECT_EQ(::listen(l.fd, backlog), 0);
    socklen_t len = sizeof l.addr;
    EXPECT_EQ(::getsockname(l.fd, reinterpret_cast<sockaddr*>(&l.addr), &len), 0);
    return l;
  }
};

TEST_P(IoTest, SocketpairSendAndRecv) {
  auto p = socket_pair();
  auto body = [](int a, int b) -> Task<void> {
    BufResult<size_t> s = co_await send(a, IoBuffer::copy_of("hello"));
    EXPECT_EQ(s.result.value_or(0), 5u);
    EXPECT_TRUE(s.buffer.empty());  // sent bytes are consumed
    BufResult<size_t> r = co_await recv(b, IoBuffer(100));
    EXPECT_EQ(r.result.value_or(0), 5u);
    EXPECT_EQ(r.buffer.view(), "hello");

    // recv writes after the bytes already in the buffer.
    s = co_await send(b, IoBuffer::copy_of(" world"));
    EXPECT_EQ(s.result.value_or(0), 6u);
    IoBuffer partial(64);
    partial.append("hello");
    r = co_await recv(a, std::move(partial));
    EXPECT_EQ(r.result.value_or(0), 6u);
    EXPECT_EQ(r.buffer.view(), "hello world");

    // A buffer with no room gets some reserved.
    s = co_await send(a, IoBuffer::copy_of("x"));
    r = co_await recv(b, IoBuffer());
    EXPECT_EQ(r.result.value_or(0), 1u);
    EXPECT_EQ(r.buffer.view(), "x");
    EXPECT_GE(r.buffer.capacity(), 1u);

    // A recv that waits, then data arrives.
    spawn([](int fd) -> Task<void> {
      (void)co_await sleep(5ms);
      BufResult<size_t> sent = co_await send(fd, IoBuffer::copy_of("late"));
      EXPECT_EQ(outcome(sent.result), "ok");
    }(a));
    r = co_await recv(b, IoBuffer(100));
    EXPECT_EQ(r.buffer.view(), "late");

    // A recv into a buffer smaller than the message gets the first part.
    s = co_await send(a, IoBuffer::copy_of("0123456789"));
    r = co_await recv(b, IoBuffer(4));
    EXPECT_EQ(r.buffer.view(), "0123");
    Result<std::string> rest = co_await read_all(b, 6);
    EXPECT_EQ(rest.value_or(""), "456789");
  };
  run(body(p[0], p[1]));
  expect_idle();
  close_pair(p);
}

TEST_P(IoTest, TcpWithAcceptor) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    Acceptor acceptor(l.fd);
    // Accept pending before the client connects.
    auto pending = spawn_with_handle(acceptor.accept());
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await pending;
    EXPECT_EQ(outcome(client), "ok");
    EXPECT_EQ(outcome(server), "ok");
    if (!client || !server) co_return;
    EXPECT_EQ(port_of(*server), local_port(*client));
    co_await exchange(*client, server->fd);

    // Connection already queued when accept() is called.
    Result<int> client2 = co_await dial(l.addr);
    Result<AcceptedSocket> server2 = co_await acceptor.accept();
    EXPECT_EQ(outcome(server2), "ok");
    if (!client2 || !server2) co_return;
    EXPECT_EQ(port_of(*server2), local_port(*client2));
    co_await exchange(server2->fd, *client2);

    for (int fd : {*client, server->fd, *client2, server2->fd}) {
      EXPECT_EQ(outcome(co_await close(fd)), "ok");
    }
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

TEST_P(IoTest, TcpWithAcceptFunction) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    // Connection already queued.
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await accept(l.fd);
    EXPECT_EQ(outcome(client), "ok");
    EXPECT_EQ(outcome(server), "ok");
    if (!client || !server) co_return;
    EXPECT_EQ(port_of(*server), local_port(*client));
    co_await exchange(*client, server->fd);

    // Accept pending first.
    auto pending = spawn_with_handle(accept_task(l.fd));
    (void)co_await sleep(5ms);
    EXPECT_FALSE(pending.done());
    Result<int> client2 = co_await dial(l.addr);
    Result<AcceptedSocket> server2 = co_await pending;
    EXPECT_EQ(outcome(server2), "ok");
    if (!client2 || !server2) co_return;
    EXPECT_EQ(port_of(*server2), local_port(*client2));
    co_await exchange(server2->fd, *client2);

    for (int fd : {*client, server->fd, *client2, server2->fd}) {
      EXPECT_EQ(outcome(co_await close(fd)), "ok");
    }
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

TEST_P(IoTest, ReadSomeAppendsAndHoldsNoBufferWhileWaiting) {
  auto p = socket_pair();
  auto body = [](int r, int w) -> Task<void> {
    IoBuffer into;
    EXPECT_EQ(into.capacity(), 0u);
    spawn([](int fd, const IoBuffer* watched) -> Task<void> {
      (void)co_await sleep(10ms);
      // The reader is parked in read_some, and its buffer still has no memory.
      EXPECT_EQ(watched->capacity(), 0u);
      BufResult<size_t> s = co_await send(fd, IoBuffer::copy_of("abc"));
      EXPECT_EQ(outcome(s.result), "ok");
    }(w, &into));
    Result<size_t> n = co_await read_some(r, into);
    EXPECT_EQ(n.value_or(0), 3u);
    EXPECT_EQ(into.view(), "abc");
    EXPECT_GT(into.capacity(), 0u);

    // Appends after what is there.
    (void)co_await send(w, IoBuffer::copy_of("defg"));
    n = co_await read_some(r, into);
    EXPECT_EQ(n.value_or(0), 4u);
    EXPECT_EQ(into.view(), "abcdefg");
    into.consume(2);
    (void)co_await send(w, IoBuffer::copy_of("h"));
    n = co_await read_some(r, into);
    EXPECT_EQ(n.value_or(0), 1u);
    EXPECT_EQ(into.view(), "cdefgh");

    // More than one pooled buffer's worth arrives over several reads, in order.
    const std::string big = random_bytes(300 * 1024, 3);
    spawn([](int fd, std::string data) -> Task<void> {
      BufResult<size_t> s = co_await send_all(fd, IoBuffer::copy_of(data));
      EXPECT_EQ(s.result.value_or(0), data.size());
    }(w, big));
    int reads = 0;
    while (into.size() < 6 + big.size()) {
      n = co_await read_some(r, into);
      EXPECT_EQ(outcome(n), "ok");
      if (!n || *n == 0) break;
      ++reads;
    }
    EXPECT_GT(reads, 1);
    EXPECT_TRUE(into.view() == "cdefgh" + big);

    // End of stream: 0.
    EXPECT_EQ(outcome(co_await runtime::shutdown(w, SHUT_WR)), "ok");
    n = co_await read_some(r, into);
    EXPECT_EQ(outcome(n), "ok");
    EXPECT_EQ(n.value_or(99), 0u);
    EXPECT_EQ(into.size(), 6 + big.size());
  };
  run(body(p[0], p[1]));
  expect_idle();
  close_pair(p);
}

// Sends 8 MiB with send_all while a concurrently spawned task reads it all.
Task<void> transfer_8mib(int from, int to) {
  const std::string data = random_bytes(8 << 20, 8);
  auto reader = spawn_with_handle(read_all(to, data.size()));
  BufResult<size_t> sent = co_await send_all(from, IoBuffer::copy_of(data));
  EXPECT_EQ(outcome(sent.result), "ok");
  EXPECT_EQ(sent.result.value_or(0), data.size());
  EXPECT_TRUE(sent.buffer.empty());
  Result<std::string> got = co_await reader;
  EXPECT_EQ(outcome(got), "ok");
  if (!got) co_return;
  EXPECT_EQ(got->size(), data.size());
  EXPECT_TRUE(*got == data) << "8 MiB arrived with different contents";
}

TEST_P(IoTest, SendAllEightMiBOverSocketpair) {
  auto p = socket_pair();
  run(transfer_8mib(p[0], p[1]));
  expect_idle();
  close_pair(p);
}

TEST_P(IoTest, SendAllEightMiBOverTcp) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await accept(l.fd);
    EXPECT_EQ(outcome(client), "ok");
    EXPECT_EQ(outcome(server), "ok");
    if (!client || !server) co_return;
    co_await transfer_8mib(*client, server->fd);
    co_await transfer_8mib(server->fd, *client);
    Runtime::current()->close_fd(*client);
    Runtime::current()->close_fd(server->fd);
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

// Sends a chain of many small buffers: one send_chain, then send_all for the rest.
Task<void> send_small_buffers(int from, int to, size_t count) {
  BufferChain chain;
  std::string expected;
  size_t first_batch = 0;  // bytes in the first kMaxIovecs buffers
  for (size_t i = 0; i < count; ++i) {
    std::string piece(i % 37 + 1, static_cast<char>('a' + i % 26));
    piece[0] = static_cast<char>('A' + i % 26);
    if (i < SendChainAwaiter::kMaxIovecs) first_batch += piece.size();
    expected += piece;
    chain.append(piece);
  }
  EXPECT_EQ(chain.buffer_count(), count);
  EXPECT_EQ(chain.size(), expected.size());
  auto reader = spawn_with_handle(read_all(to, expected.size()));

  ChainResult one = co_await send_chain(from, std::move(chain));
  EXPECT_EQ(outcome(one.result), "ok");
  const size_t sent_once = one.result.value_or(0);
  EXPECT_GT(sent_once, 0u);
  EXPECT_LE(sent_once, first_batch);  // one sendmsg covers at most kMaxIovecs buffers
  EXPECT_EQ(one.chain.size(), expected.size() - sent_once);

  ChainResult rest = co_await send_all(from, std::move(one.chain));
  EXPECT_EQ(outcome(rest.result), "ok");
  EXPECT_EQ(sent_once + rest.result.value_or(0), expected.size());
  EXPECT_TRUE(rest.chain.empty());
  EXPECT_EQ(rest.chain.buffer_count(), 0u);

  Result<std::string> got = co_await reader;
  EXPECT_EQ(outcome(got), "ok");
  EXPECT_TRUE(got.value_or("") == expected) << "chain arrived with different contents";
}

TEST_P(IoTest, SendChainWithManySmallBuffers) {
  auto p = socket_pair();
  run(send_small_buffers(p[0], p[1], 1000));
  Listener l = listen_loopback();
  auto tcp = [](Listener l) -> Task<void> {
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await accept(l.fd);
    if (!client || !server) {
      ADD_FAILURE() << "connect/accept failed";
      co_return;
    }
    co_await send_small_buffers(*client, server->fd, 20'000);
    Runtime::current()->close_fd(*client);
    Runtime::current()->close_fd(server->fd);
  };
  run(tcp(l));
  // An empty chain sends nothing.
  ChainResult empty = run(send_all(p[0], BufferChain()));
  EXPECT_EQ(empty.result.value_or(99), 0u);
  expect_idle();
  close_pair(p);
  rt().close_fd(l.fd);
}

TEST_P(IoTest, PeerResetGivesConnectionReset) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    auto connected_pair = [](Listener l) -> Task<std::array<int, 2>> {
      Result<int> client = co_await dial(l.addr);
      Result<AcceptedSocket> server = co_await accept(l.fd);
      EXPECT_EQ(outcome(client), "ok");
      EXPECT_EQ(outcome(server), "ok");
      co_return std::array<int, 2>{client.value_or(-1), server ? server->fd : -1};
    };

    // recv pending when the reset arrives.
    auto [c1, s1] = co_await connected_pair(l);
    auto pending = spawn_with_handle(recv_task(s1, IoBuffer(1024)));
    (void)co_await sleep(10ms);
    EXPECT_FALSE(pending.done());
    reset_close(c1);
    BufResult<size_t> r = co_await pending;
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kConnectionReset));

    // read_some pending when the reset arrives.
    auto [c2, s2] = co_await connected_pair(l);
    IoBuffer into;
    auto pending_some = spawn_with_handle([](int fd, IoBuffer* buf) -> Task<Result<size_t>> {
      co_return co_await read_some(fd, *buf);
    }(s2, &into));
    (void)co_await sleep(10ms);
    EXPECT_FALSE(pending_some.done());
    reset_close(c2);
    Result<size_t> n = co_await pending_some;
    EXPECT_EQ(outcome(n), name(ErrorCode::kConnectionReset));
    EXPECT_EQ(into.capacity(), 0u);

    // Reset before the reads start.
    auto [c3, s3] = co_await connected_pair(l);
    reset_close(c3);
    r = co_await recv(s3, IoBuffer(1024));
    EXPECT_EQ(outcome(r.result), name(ErrorCode::kConnectionReset));
    auto [c4, s4] = co_await connected_pair(l);
    reset_close(c4);
    n = co_await read_some(s4, into);
    EXPECT_EQ(outcome(n), name(ErrorCode::kConnectionReset));

    // Sending to a reset peer fails the same way (MSG_NOSIGNAL: no SIGPIPE).
    auto [c5, s5] = co_await connected_pair(l);
    reset_close(c5);
    BufResult<size_t> s = co_await send(s5, IoBuffer::copy_of("into the void"));
    EXPECT_EQ(outcome(s.result), name(ErrorCode::kConnectionReset));
    EXPECT_EQ(s.buffer.view(), "into the void");  // nothing consumed

    for (int fd : {s1, s2, s3, s4, s5}) Runtime::current()->close_fd(fd);
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

TEST_P(IoTest, ConnectToClosedPortIsRefused) {
  // A bound socket that does not listen: connecting to its port is refused, and no one else
  // can take the port while it is held.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const size_t fds_before = count_open_fds();

  Result<int> r = run(dial(addr));
  EXPECT_EQ(outcome(r), name(ErrorCode::kConnectionRefused));
  if (!r) {
    EXPECT_EQ(r.error().sys_errno(), ECONNREFUSED);
  }
  EXPECT_EQ(count_open_fds(), fds_before);  // dial closed its socket
  expect_idle();
  ::close(holder);  // never seen by the runtime
}

TEST_P(IoTest, PollCompletesWhenDataArrives) {
  auto p = socket_pair();
  auto body = [](int r, int w) -> Task<void> {
    auto pending = spawn_with_handle(
        [](int fd) -> Task<Result<uint32_t>> { co_return co_await poll(fd, POLLIN); }(r));
    (void)co_await sleep(10ms);
    EXPECT_FALSE(pending.done());
    (void)co_await send(w, IoBuffer::copy_of("x"));
    Result<uint32_t> ready = co_await pending;
    EXPECT_EQ(outcome(ready), "ok");
    EXPECT_TRUE(ready.value_or(0) & POLLIN);

    // Polling does not consume: the data is still there, and a second poll is ready at once.
    ready = co_await poll(r, POLLIN);
    EXPECT_TRUE(ready.value_or(0) & POLLIN);
    BufResult<size_t> got = co_await recv(r, IoBuffer(16));
    EXPECT_EQ(got.buffer.view(), "x");

    // A writable socket polls POLLOUT.
    ready = co_await poll(w, POLLOUT);
    EXPECT_TRUE(ready.value_or(0) & POLLOUT);

    // A pending poll can be cancelled.
    auto cancelled = spawn_with_handle(
        [](int fd) -> Task<Result<uint32_t>> { co_return co_await poll(fd, POLLIN); }(r));
    (void)co_await sleep(5ms);
    cancelled.cancel();
    EXPECT_EQ(outcome(co_await cancelled), name(ErrorCode::kCancelled));

    // The peer closing wakes a poller too.
    auto hup = spawn_with_handle(
        [](int fd) -> Task<Result<uint32_t>> { co_return co_await poll(fd, POLLIN); }(r));
    (void)co_await sleep(5ms);
    EXPECT_EQ(outcome(co_await runtime::shutdown(w, SHUT_WR)), "ok");
    ready = co_await hup;
    EXPECT_EQ(outcome(ready), "ok");
    EXPECT_NE(ready.value_or(0), 0u);
  };
  run(body(p[0], p[1]));
  expect_idle();
  close_pair(p);
}

TEST_P(IoTest, CloseAndShutdownAwaiters) {
  const size_t fds_before = count_open_fds();
  auto p = socket_pair();
  auto body = [](int a, int b) -> Task<void> {
    // After shutdown(SHUT_WR) the peer reads end of stream...
    EXPECT_EQ(outcome(co_await runtime::shutdown(b, SHUT_WR)), "ok");
    BufResult<size_t> r = co_await recv(a, IoBuffer(16));
    EXPECT_EQ(outcome(r.result), "ok");
    EXPECT_EQ(r.result.value_or(99), 0u);
    // ...while the other direction still works.
    (void)co_await send(a, IoBuffer::copy_of("back"));
    r = co_await recv(b, IoBuffer(16));
    EXPECT_EQ(r.buffer.view(), "back");

    EXPECT_EQ(outcome(co_await close(a)), "ok");
    EXPECT_EQ(outcome(co_await close(b)), "ok");
    EXPECT_FALSE(fd_is_open(a));
    EXPECT_FALSE(fd_is_open(b));
  };
  run(body(p[0], p[1]));
  EXPECT_EQ(count_open_fds(), fds_before);

  // Over TCP, with the peer's read already pending when the shutdown comes.
  Listener l = listen_loopback();
  auto tcp = [](Listener l) -> Task<void> {
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await accept(l.fd);
    if (!client || !server) {
      ADD_FAILURE() << "connect/accept failed";
      co_return;
    }
    auto pending = spawn_with_handle(recv_task(server->fd, IoBuffer(16)));
    (void)co_await sleep(5ms);
    EXPECT_FALSE(pending.done());
    EXPECT_EQ(outcome(co_await runtime::shutdown(*client, SHUT_WR)), "ok");
    BufResult<size_t> r = co_await pending;
    EXPECT_EQ(outcome(r.result), "ok");
    EXPECT_EQ(r.result.value_or(99), 0u);
    EXPECT_EQ(outcome(co_await close(*client)), "ok");
    EXPECT_EQ(outcome(co_await close(server->fd)), "ok");
  };
  run(tcp(l));
  expect_idle();
  rt().close_fd(l.fd);
  EXPECT_EQ(count_open_fds(), fds_before);
}

TEST_P(IoTest, CancelPendingOperations) {
  auto p = socket_pair();
  Listener l = listen_loopback();
  auto body = [](int r, int w, Listener l) -> Task<void> {
    // recv: cancelled with its buffer intact, and no data is lost to it.
    IoBuffer buffer(2048);
    buffer.append("mine");
    auto pending = spawn_with_handle(recv_task(r, std::move(buffer)));
    (void)co_await sleep(10ms);
    EXPECT_FALSE(pending.done());
    pending.cancel();
    BufResult<size_t> got = co_await pending;
    EXPECT_EQ(outcome(got.result), name(ErrorCode::kCancelled));
    EXPECT_EQ(got.buffer.view(), "mine");
    EXPECT_EQ(got.buffer.capacity(), 2048u);
    (void)co_await send(w, IoBuffer::copy_of("after"));
    got = co_await recv(r, IoBuffer(64));
    EXPECT_EQ(got.buffer.view(), "after");

    // read_some: cancelled without touching the caller's buffer.
    IoBuffer into;
    auto pending_some = spawn_with_handle([](int fd, IoBuffer* buf) -> Task<Result<size_t>> {
      co_return co_await read_some(fd, *buf);
    }(r, &into));
    (void)co_await sleep(10ms);
    pending_some.cancel();
    EXPECT_EQ(outcome(co_await pending_some), name(ErrorCode::kCancelled));
    EXPECT_EQ(into.capacity(), 0u);
    (void)co_await send(w, IoBuffer::copy_of("later"));
    Result<size_t> n = co_await read_some(r, into);
    EXPECT_EQ(n.value_or(0), 5u);
    EXPECT_EQ(into.view(), "later");

    // accept: cancelled, and the listener still works afterwards.
    auto pending_accept = spawn_with_handle(accept_task(l.fd));
    (void)co_await sleep(10ms);
    pending_accept.cancel();
    EXPECT_EQ(outcome(co_await pending_accept), name(ErrorCode::kCancelled));
    Result<int> client = co_await dial(l.addr);
    Result<AcceptedSocket> server = co_await accept(l.fd);
    EXPECT_EQ(outcome(server), "ok");
    if (client) Runtime::current()->close_fd(*client);
    if (server) Runtime::current()->close_fd(server->fd);

    // Acceptor::accept: the same.
    Acceptor acceptor(l.fd);
    auto pending_acceptor = spawn_with_handle(acceptor.accept());
    (void)co_await sleep(10ms);
    pending_acceptor.cancel();
    EXPECT_EQ(outcome(co_await pending_acceptor), name(ErrorCode::kCancelled));
    client = co_await dial(l.addr);
    server = co_await acceptor.accept();
    EXPECT_EQ(outcome(server), "ok");
    if (client) Runtime::current()->close_fd(*client);
    if (server) Runtime::current()->close_fd(server->fd);

    // A timeout around Acceptor::accept, then accepting again.
    server = co_await with_timeout(acceptor.accept(), 20ms);
    EXPECT_EQ(outcome(server), name(ErrorCode::kTimeout));
    client = co_await dial(l.addr);
    server = co_await with_timeout(acceptor.accept(), 5s);
    EXPECT_EQ(outcome(server), "ok");
    if (client) Runtime::current()->close_fd(*client);
    if (server) Runtime::current()->close_fd(server->fd);
  };
  run(body(p[0], p[1], l));
  expect_idle();
  close_pair(p);
  rt().close_fd(l.fd);
}

TEST_P(IoTest, ThousandConnectAcceptCloseCyclesLeakNoFds) {
  const size_t fds_before = count_open_fds();
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<int> {
    int cycles = 0;
    auto one_cycle = [](Listener l, Acceptor* acceptor, int i) -> Task<bool> {
      Result<int> client = co_await dial(l.addr);
      // Not `acceptor ? co_await ... : co_await ...`: GCC 12 miscompiles a co_await in both
      // arms of ?: (a byte copy of the result, then a second destructor call).
      Result<AcceptedSocket> server = Error(ErrorCode::kInternal);
      if (acceptor) {
        server = co_await acceptor->accept();
      } else {
        server = co_await accept(l.fd);
      }
      if (!client || !server) {
        ADD_FAILURE() << "cycle " << i << ": " << outcome(client) << " / " << outcome(server);
        if (client) Runtime::current()->close_fd(*client);
        if (server) Runtime::current()->close_fd(server->fd);
        co_return false;
      }
      BufResult<size_t> s = co_await send(*client, IoBuffer::copy_of("!"));
      BufResult<size_t> r = co_await recv(server->fd, IoBuffer(8));
      const bool ok = s.result && r.result && r.buffer.view() == "!";
      if (i % 2) {
        (void)co_await close(*client);
        (void)co_await close(server->fd);
      } else {
        Runtime::current()->close_fd(server->fd);
        Runtime::current()->close_fd(*client);
      }
      co_return ok;
    };
    for (int i = 0; i < 500; ++i) cycles += co_await one_cycle(l, nullptr, i);
    Acceptor acceptor(l.fd);
    for (int i = 500; i < 1000; ++i) cycles += co_await one_cycle(l, &acceptor, i);
    co_return cycles;
  };
  EXPECT_EQ(run(body(l)), 1000);
  expect_idle();
  rt().close_fd(l.fd);
  EXPECT_EQ(count_open_fds(), fds_before);
}

TEST_P(IoTest, AcceptorDeliversManyConnections) {
  const size_t fds_before = count_open_fds();
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    constexpr int kConnections = 200;
    Acceptor acceptor(l.fd);
    // Multishot accept on io_uring (the kernel here is 6.x); one-shot accepts on epoll.
    EXPECT_EQ(acceptor.multishot(), Runtime::current()->backend_kind() == BackendKind::kIoUring);
    std::vector<JoinHandle<Result<int>>> dials;
    for (int i = 0; i < kConnections; ++i) dials.push_back(spawn_with_handle(dial(l.addr)));
    std::vector<int> accepted;
    std::multiset<uint16_t> peer_ports;
    for (int i = 0; i < kConnections; ++i) {
      Result<AcceptedSocket> s = co_await acceptor.accept();
      EXPECT_EQ(outcome(s), "ok");
      if (!s) break;
      accepted.push_back(s->fd);
      peer_ports.insert(port_of(*s));
    }
    std::multiset<uint16_t> client_ports;
    std::vector<int> clients;
    for (auto& h : dials) {
      Result<int> c = co_await h;
      EXPECT_EQ(outcome(c), "ok");
      if (!c) continue;
      clients.push_back(*c);
      client_ports.insert(local_port(*c));
    }
    EXPECT_EQ(accepted.size(), static_cast<size_t>(kConnections));
    EXPECT_EQ(std::set<int>(accepted.begin(), accepted.end()).size(), accepted.size());
    EXPECT_EQ(peer_ports, client_ports);
    for (int fd : accepted) Runtime::current()->close_fd(fd);
    for (int fd : clients) Runtime::current()->close_fd(fd);
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
  EXPECT_EQ(count_open_fds(), fds_before);
}

TEST_P(IoTest, DestroyedAcceptorClosesQueuedConnections) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    constexpr size_t kQueued = 10;
    Runtime* rt = Runtime::current();
    const bool multishot = rt->backend_kind() == BackendKind::kIoUring;
    const size_t base = count_open_fds();
    std::vector<int> clients;
    {
      Acceptor acceptor(l.fd);
      // The first accept starts the multishot operation.
      Result<int> first = co_await dial(l.addr);
      Result<AcceptedSocket> accepted = co_await acceptor.accept();
      EXPECT_EQ(outcome(accepted), "ok");
      if (first) clients.push_back(*first);
      if (accepted) rt->close_fd(accepted->fd);
      for (size_t i = 0; i < kQueued; ++i) {
        Result<int> c = co_await dial(l.addr);
        EXPECT_EQ(outcome(c), "ok");
        if (c) clients.push_back(*c);
      }
      // With multishot, the kernel accepts them into the acceptor's queue on its own.
      const size_t expected = base + clients.size() + (multishot ? kQueued : 0);
      for (int i = 0; i < 400 && count_open_fds() < expected; ++i) (void)co_await sleep(5ms);
      EXPECT_EQ(count_open_fds(), expected);
    }
    // The acceptor closed what it had accepted and nobody took.
    EXPECT_EQ(count_open_fds(), base + clients.size());
    EXPECT_EQ(rt->backend().in_flight(), 0u);

    // A new acceptor on the same listener still works (on epoll it gets the queued ones).
    {
      Acceptor again(l.fd);
      Result<int> c = co_await dial(l.addr);
      if (c) clients.push_back(*c);
      Result<AcceptedSocket> s = co_await again.accept();
      EXPECT_EQ(outcome(s), "ok");
      if (s) rt->close_fd(s->fd);
    }
    for (int fd : clients) rt->close_fd(fd);
    EXPECT_EQ(count_open_fds(), base);
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

// An accept woken by a connection and cancelled before it resumes must resume exactly once
// (and keep the connection).
TEST_P(IoTest, AcceptorCancelAfterConnectionArrived) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    Acceptor acceptor(l.fd);
    int resumed = 0;
    auto accepting = [](Acceptor* a, int* count) -> Task<Result<AcceptedSocket>> {
      Result<AcceptedSocket> r = co_await a->accept();
      ++*count;
      co_return r;
    };
    auto h = spawn_with_handle(accepting(&acceptor, &resumed));
    (void)co_await sleep(5ms);  // the accept is pending
    EXPECT_FALSE(h.done());
    // A plain blocking client: on loopback the connection is established when connect returns.
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr), 0);
    ::usleep(2000);  // let the kernel finish the accept
    // Queue this task first; the same loop turn then delivers the accept and queues the
    // accepting task behind this one, so the cancel below comes after the wake-up.
    co_await yield_now{};
    h.cancel();
    Result<AcceptedSocket> r = co_await h;
    co_await yield_now{};
    co_await yield_now{};
    EXPECT_EQ(resumed, 1);
    if (r) {
      Runtime::current()->close_fd(r->fd);
    } else {
      EXPECT_EQ(outcome(r), name(ErrorCode::kCancelled));
      // The cancel won: the connection is still in the kernel's accept queue (epoll), or in
      // the Acceptor's (io_uring multishot, closed with it). Take it out of the kernel's so
      // the next round starts with an empty queue.
      const int flags = ::fcntl(l.fd, F_GETFL);
      ::fcntl(l.fd, F_SETFL, flags | O_NONBLOCK);
      for (int fd; (fd = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) ::close(fd);
      ::fcntl(l.fd, F_SETFL, flags);
    }
    ::close(client);  // never seen by the runtime
  };
  for (int i = 0; i < 5; ++i) run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

// Listeners made by other code may be non-blocking whatever the backend (transport/ makes
// them so). An Acceptor on one must work and must wait for connections without spinning.
TEST_P(IoTest, AcceptorOnNonBlockingListener) {
  Listener l = listen_loopback();
  const int flags = ::fcntl(l.fd, F_GETFL);
  ASSERT_EQ(::fcntl(l.fd, F_SETFL, flags | O_NONBLOCK), 0);
  auto body = [](Listener l) -> Task<void> {
    Acceptor acceptor(l.fd);
    // Connection already queued.
    Result<int> c1 = co_await dial(l.addr);
    Result<AcceptedSocket> s1 = co_await with_timeout(acceptor.accept(), 5s);
    EXPECT_EQ(outcome(s1), "ok");

    // Accept pending, with nothing arriving for a while: the thread should be idle.
    auto pending = spawn_with_handle(acceptor.accept());
    timespec cpu0{}, cpu1{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    (void)co_await sleep(200ms);
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    const auto cpu_ms =
        (cpu1.tv_sec - cpu0.tv_sec) * 1000 + (cpu1.tv_nsec - cpu0.tv_nsec) / 1'000'000;
    EXPECT_LT(cpu_ms, 50) << "the thread spent " << cpu_ms
                          << " ms of CPU waiting 200 ms for a connection";
    EXPECT_FALSE(pending.done());
    Result<int> c2 = co_await dial(l.addr);
    Result<AcceptedSocket> s2 = co_await pending;
    EXPECT_EQ(outcome(s2), "ok");
    if (s2 && c2) {
      EXPECT_EQ(port_of(*s2), local_port(*c2));
    }
    for (auto* c : {&c1, &c2}) {
      if (*c) Runtime::current()->close_fd(**c);
    }
    for (auto* s : {&s1, &s2}) {
      if (*s) Runtime::current()->close_fd((*s)->fd);
    }
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

// Closing an fd ends the operations pending on it (kCancelled) on both backends, and really
// closes the socket: the peer sees end of stream.
TEST_P(IoTest, ClosingAnFdEndsItsPendingOperations) {
  Listener l = listen_loopback();
  auto body = [](Listener l) -> Task<void> {
    for (int use_awaiter = 0; use_awaiter < 2; ++use_awaiter) {
      Result<int> client = co_await dial(l.addr);
      Result<AcceptedSocket> server = co_await accept(l.fd);
      if (!client || !server) {
        ADD_FAILURE() << "connect/accept failed";
        co_return;
      }
      auto pending = spawn_with_handle(recv_task(server->fd, IoBuffer(64)));
      (void)co_await sleep(10ms);
      EXPECT_FALSE(pending.done());
      if (use_awaiter) {
        EXPECT_EQ(outcome(co_await close(server->fd)), "ok");
      } else {
        Runtime::current()->close_fd(server->fd);
      }
      for (int i = 0; i < 200 && !pending.done(); ++i) (void)co_await sleep(10ms);
      EXPECT_TRUE(pending.done()) << "the close left the recv pending";
      if (!pending.done()) pending.cancel();
      BufResult<size_t> got = co_await pending;
      EXPECT_EQ(outcome(got.result), name(ErrorCode::kCancelled));
      EXPECT_EQ(got.buffer.capacity(), 64u);
      BufResult<size_t> eof = co_await with_timeout(recv_task(*client, IoBuffer(64)), 2s);
      EXPECT_EQ(outcome(eof.result), "ok") << "the peer should see the close";
      EXPECT_EQ(eof.result.value_or(99), 0u);
      Runtime::current()->close_fd(*client);
    }

    // A listener closed under a pending Acceptor::accept.
    const int listener2 = ::socket(AF_INET, SOCK_STREAM | socket_flags(), 0);
    sockaddr_in addr = l.addr;
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listener2, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener2, 16), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(listener2, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    {
      Acceptor acceptor(listener2);
      Result<int> c = co_await dial(addr);  // the first accept starts the multishot op
      Result<AcceptedSocket> s = co_await acceptor.accept();
      EXPECT_EQ(outcome(s), "ok");
      if (c) Runtime::current()->close_fd(*c);
      if (s) Runtime::current()->close_fd(s->fd);
      auto accepting = spawn_with_handle(acceptor.accept());
      (void)co_await sleep(10ms);
      Runtime::current()->close_fd(listener2);
      for (int i = 0; i < 200 && !accepting.done(); ++i) (void)co_await sleep(10ms);
      EXPECT_TRUE(accepting.done()) << "the close left the accept pending";
      if (!accepting.done()) accepting.cancel();
      Result<AcceptedSocket> r = co_await accepting;
      EXPECT_FALSE(r.has_value());
      // Nobody listens there any more.
      Result<int> refused = co_await dial(addr);
      EXPECT_EQ(outcome(refused), name(ErrorCode::kConnectionRefused));
      if (refused) Runtime::current()->close_fd(*refused);
    }
  };
  run(body(l));
  expect_idle();
  rt().close_fd(l.fd);
}

ML_INSTANTIATE_BACKEND_TESTS(IoTest);

}  // namespace
}  // namespace monolake::runtime
