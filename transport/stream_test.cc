#include "transport/stream.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/io.h"
#include "runtime/runtime.h"
#include "runtime/testing.h"
#include "runtime/time.h"
#include "transport/copy.h"
#include "transport/splice.h"

namespace monolake::transport {
namespace {

using namespace std::chrono_literals;
using runtime::JoinHandle;
using runtime::spawn_with_handle;
using runtime::with_timeout;
using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = 1024 * 1024;

// --- helpers --------------------------------------------------------------------------------

SocketAddress addr(std::string_view text) {
  Result<SocketAddress> r = SocketAddress::parse(text);
  EXPECT_TRUE(r.has_value()) << text;
  return r ? *r : SocketAddress();
}

// Deterministic, seed-dependent bytes (so a misordered or mixed-up stream shows).
std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

int count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;  // includes the directory's own fd, the same every time
}

int int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) return -1000 - errno;
  return value;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fresh directory for Unix sockets under TEST_TMPDIR, removed at the end. sun_path holds
// 107 bytes; if TEST_TMPDIR is too deep for that, /tmp is used instead.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ml.XXXXXX";
    if (tmpl.size() + 16 > sizeof(sockaddr_un::sun_path) - 1) tmpl = "/tmp/ml.XXXXXX";
    if (char* made = ::mkdtemp(tmpl.data())) path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  bool ok() const { return !path_.empty(); }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Closes raw fds at the end of a scope.
struct FdCloser {
  std::vector<int> fds;
  ~FdCloser() {
    for (int fd : fds) ::close(fd);
  }
};

struct Pair {
  Stream client;
  Stream server;
};

// Connects to `address` and accepts the connection on `listener`.
Task<Result<Pair>> connect_pair(Listener* listener, SocketAddress address,
                                ConnectOptions options = {}) {
  JoinHandle<Result<Stream>> accepted = spawn_with_handle(listener->accept());
  Result<Stream> client = co_await Stream::connect(address, options);
  if (!client) {
    accepted.cancel();
    (void)co_await accepted;
    co_return std::move(client).error();
  }
  Result<Stream> server = co_await accepted;
  if (!server) co_return std::move(server).error();
  co_return Pair{std::move(*client), std::move(*server)};
}

// Everything until end of stream.
Task<Result<std::string>> read_to_end(Stream* s) {
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await s->read_some(buffer);
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return buffer.to_string();
  }
}

// At least `n` bytes (fewer only at end of stream).
Task<Result<std::string>> read_at_least(Stream* s, size_t n) {
  IoBuffer buffer;
  while (buffer.size() < n) {
    Result<size_t> got = co_await s->read_some(buffer);
    if (!got) co_return std::move(got).error();
    if (*got == 0) break;
  }
  co_return buffer.to_string();
}

Task<Result<size_t>> write_string(Stream* s, std::string data) {
  auto [written, rest] = co_await s->write_all(IoBuffer::copy_of(data));
  if (written) {
    EXPECT_TRUE(rest.empty());
  }
  co_return std::move(written);
}

Task<Result<size_t>> write_then_shutdown(Stream* s, std::string data) {
  Result<size_t> written = co_await write_string(s, std::move(data));
  if (!written) co_return written;
  Result<void> shut = co_await s->shutdown_write();
  if (!shut) co_return std::move(shut).error();
  co_return written;
}

// Echoes with read_some/write_all until end of stream, then half-closes. Returns bytes echoed.
Task<Result<size_t>> echo_until_eof(Stream* s) {
  size_t total = 0;
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await s->read_some(buffer);
    if (!n) co_return std::move(n).error();
    if (*n == 0) {
      Result<void> shut = co_await s->shutdown_write();
      if (!shut) co_return std::move(shut).error();
      co_return total;
    }
    auto [written, rest] = co_await s->write_all(std::move(buffer));
    buffer = std::move(rest);
    if (!written) co_return std::move(written).error();
    total += *written;
  }
}

std::string describe(const Result<std::string>& r) {
  if (!r) return "error " + r.error().to_string();
  return std::to_string(r->size()) + " bytes";
}

// --- fixture --------------------------------------------------------------------------------

class StreamTest : public runtime::BackendTest {
 protected:
  // Connects to `listener` and checks addresses and echo both ways (read/write, then
  // read_some/write_all with 1 MiB).
  void check_connect_and_echo(Listener& listener);
};

Task<void> connect_and_echo(Listener* listener, SocketAddress address) {
  Result<Pair> pair = co_await connect_pair(listener, address);
  EXPECT_TRUE(pair.has_value()) << pair.error().to_string();
  if (!pair) co_return;
  Stream& client = pair->client;
  Stream& server = pair->server;

  // The two ends agree on who is who.
  Result<SocketAddress> client_local = client.local_address();
  Result<SocketAddress> client_peer = client.peer_address();
  Result<SocketAddress> server_local = server.local_address();
  Result<SocketAddress> server_peer = server.peer_address();
  EXPECT_TRUE(client_local && client_peer && server_local && server_peer);
  if (client_local && client_peer && server_local && server_peer) {
    EXPECT_EQ(client_peer->to_string(), address.to_string());
    EXPECT_EQ(*client_peer, address);
    EXPECT_EQ(*server_local, address);
    EXPECT_EQ(client_local->to_string(), server_peer->to_string());
    EXPECT_EQ(*client_local, *server_peer);
    EXPECT_EQ(client_local->family(), address.family());
    if (!address.is_unix()) {
      EXPECT_NE(client_local->port(), 0);
      EXPECT_NE(client_local->port(), address.port());
    }
  }

  // One message each way with read/write; the buffers travel with the operations.
  {
    auto [sent, rest] = co_await client.write(IoBuffer::copy_of("ping"));
    EXPECT_TRUE(sent.has_value() && *sent == 4u);
    EXPECT_TRUE(rest.empty());
    auto [got, buffer] = co_await server.read(IoBuffer(64));
    EXPECT_TRUE(got.has_value() && *got == 4u);
    EXPECT_EQ(buffer.view(), "ping");
    auto [echoed, left] = co_await server.write(std::move(buffer));  // the same buffer back
    EXPECT_TRUE(echoed.has_value() && *echoed == 4u);
    EXPECT_TRUE(left.empty());
    auto [back, reply] = co_await client.read(IoBuffer());  // reserves a default size
    EXPECT_TRUE(back.has_value() && *back == 4u);
    EXPECT_EQ(reply.view(), "ping");
  }

  // 1 MiB through an echo with read_some/write_all, written and read concurrently.
  const std::string payload = pattern(kMiB, 7);
  auto echo = spawn_with_handle(echo_until_eof(&server));
  auto writer = spawn_with_handle(write_then_shutdown(&client, payload));
  Result<std::string> echoed = co_await read_to_end(&client);
  Result<size_t> written = co_await writer;
  Result<size_t> echo_count = co_await echo;
  EXPECT_TRUE(written.has_value() && *written == payload.size());
  EXPECT_TRUE(echo_count.has_value() && *echo_count == payload.size());
  EXPECT_TRUE(echoed.has_value() && *echoed == payload) << describe(echoed);
}

void StreamTest::check_connect_and_echo(Listener& listener) {
  Result<SocketAddress> local = listener.local_address();
  ASSERT_TRUE(local.has_value()) << local.error().to_string();
  if (!local->is_unix()) {
    ASSERT_NE(local->port(), 0);
  }
  run(connect_and_echo(&listener, *local));
}

// --- listeners and connections ------------------------------------------------------------

TEST_P(StreamTest, Ipv4LoopbackConnectAcceptEcho) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  Result<SocketAddress> local = listener->local_address();
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->family(), AF_INET);
  EXPECT_NE(local->port(), 0);
  EXPECT_EQ(*local, addr("127.0.0.1:0").with_port(local->port()));
  check_connect_and_echo(*listener);
}

// A listener that stops hands over what the kernel already accepted for it: every connection
// comes out exactly once, through accept(), stop_accepting() (io_uring's multishot accept may
// have taken some already), or the kernel's queue afterwards.
TEST_P(StreamTest, StopAcceptingLosesAndDuplicatesNothing) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  const SocketAddress address = *listener->local_address();
  auto body = [](Listener* l, SocketAddress address) -> Task<int> {
    std::vector<Stream> clients;
    for (int i = 0; i < 4; ++i) {
      Result<Stream> c = co_await Stream::connect(address);
      if (!c) co_return -1;
      clients.push_back(std::move(*c));
    }
    int got = 0;
    Result<Stream> first = co_await with_timeout(l->accept(), std::chrono::seconds(5));
    if (!first) co_return -2;
    ++got;
    (void)co_await runtime::sleep(std::chrono::milliseconds(50));  // let the others arrive
    got += static_cast<int>((co_await l->stop_accepting()).size());
    // What no one accepted yet is still in the kernel's queue (the listener is non-blocking).
    while (true) {
      const int fd = ::accept4(l->fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) break;
      ::close(fd);
      ++got;
    }
    co_return got;
  };
  EXPECT_EQ(run(body(&*listener, address)), 4);
}

TEST_P(StreamTest, Ipv6LoopbackConnectAcceptEcho) {
  Result<Listener> listener = Listener::bind(addr("[::1]:0"));
  if (!listener) {
    const int err = listener.error().sys_errno();
    if (err == EADDRNOTAVAIL || err == EAFNOSUPPORT || err == EPROTONOSUPPORT) {
      GTEST_SKIP() << "IPv6 loopback cannot be bound here: " << listener.error().to_string();
    }
  }
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  Result<SocketAddress> local = listener->local_address();
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->family(), AF_INET6);
  EXPECT_NE(local->port(), 0);
  EXPECT_EQ(local->to_string(), "[::1]:" + std::to_string(local->port()));
  check_connect_and_echo(*listener);
}

TEST_P(StreamTest, UnixSocketConnectAcceptEcho) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Result<SocketAddress> path = SocketAddress::unix_path(dir.file("echo.sock"));
  ASSERT_TRUE(path.has_value()) << path.error().to_string();
  ListenOptions options;
  options.unix_mode = 0600;
  Result<Listener> listener = Listener::bind(*path, options);
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  Result<SocketAddress> local = listener->local_address();
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(*local, *path);
  check_connect_and_echo(*listener);
}

TEST(ListenerTest, BindRejectsEmptyAddress) {
  Result<Listener> listener = Listener::bind(SocketAddress());
  ASSERT_FALSE(listener.has_value());
  EXPECT_EQ(listener.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(listener.error().message(), "empty address"));
}

TEST(ListenerTest, ReusePortLetsTwoListenersShareAPort) {
  Result<Listener> first = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  const SocketAddress bound = *first->local_address();
  ASSERT_NE(bound.port(), 0);
  Result<Listener> second = Listener::bind(bound);
  ASSERT_TRUE(second.has_value()) << second.error().to_string();
  EXPECT_EQ(*second->local_address(), bound);
  EXPECT_EQ(int_option(first->fd(), SOL_SOCKET, SO_REUSEPORT), 1);
  EXPECT_EQ(int_option(second->fd(), SOL_SOCKET, SO_REUSEPORT), 1);
}

TEST(ListenerTest, WithoutReusePortTheSecondBindFailsNamingTheAddress) {
  ListenOptions exclusive;
  exclusive.reuse_port = false;
  Result<Listener> first = Listener::bind(addr("127.0.0.1:0"), exclusive);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  const SocketAddress bound = *first->local_address();
  EXPECT_EQ(int_option(first->fd(), SOL_SOCKET, SO_REUSEPORT), 0);

  Result<Listener> second = Listener::bind(bound, exclusive);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().sys_errno(), EADDRINUSE) << second.error().to_string();
  EXPECT_TRUE(contains(second.error().message(), bound.to_string())) << second.error().to_string();
  EXPECT_TRUE(
      contains(second.error().to_string(), "bind 127.0.0.1:" + std::to_string(bound.port())))
      << second.error().to_string();

  // Only one side asking for SO_REUSEPORT is not enough either.
  Result<Listener> third = Listener::bind(bound);
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().sys_errno(), EADDRINUSE);
  EXPECT_TRUE(contains(third.error().message(), bound.to_string()));
}

TEST(ListenerTest, UnixSocketModeIsApplied) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("mode.sock");
  ListenOptions options;
  options.unix_mode = 0600;
  Result<Listener> listener = Listener::bind(*SocketAddress::unix_path(path), options);
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  options.unix_mode = 0660;
  const std::string path2 = dir.file("mode2.sock");
  Result<Listener> other = Listener::bind(*SocketAddress::unix_path(path2), options);
  ASSERT_TRUE(other.has_value()) << other.error().to_string();
  ASSERT_EQ(::stat(path2.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

// Leaves a socket file at `path` with nothing listening on it (a crashed server's leftover).
bool make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  Result<SocketAddress> a = SocketAddress::unix_path(path);
  const bool bound = a && ::bind(fd, a->data(), a->size()) == 0;
  ::close(fd);
  return bound;
}

// A blocking connect, outside any runtime: a listening Unix socket completes it from the
// backlog without an accept.
int raw_connect(const SocketAddress& address) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (::connect(fd, address.data(), address.size()) != 0) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  ::close(fd);
  return 0;
}

TEST(ListenerTest, StaleUnixSocketFileIsReplaced) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("stale.sock");
  ASSERT_TRUE(make_stale_socket(path));
  const SocketAddress address = *SocketAddress::unix_path(path);
  EXPECT_EQ(raw_connect(address), -ECONNREFUSED);  // nobody listens there

  // Without permission to replace it, the bind fails and says where.
  ListenOptions keep;
  keep.unlink_stale_unix = false;
  Result<Listener> refused = Listener::bind(address, keep);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().sys_errno(), EADDRINUSE);
  EXPECT_TRUE(contains(refused.error().message(), path)) << refused.error().to_string();

  {
    Result<Listener> listener = Listener::bind(address);
    ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
    EXPECT_EQ(raw_connect(address), 0);
  }
  // A listener's own leftover (it does not unlink its path) is replaced the same way.
  EXPECT_EQ(raw_connect(address), -ECONNREFUSED);
  Result<Listener> again = Listener::bind(address);
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_EQ(raw_connect(address), 0);

  // A path a live server listens on is never taken over.
  Result<Listener> thief = Listener::bind(address);
  ASSERT_FALSE(thief.has_value());
  EXPECT_TRUE(contains(thief.error().message(), "a server is listening there"))
      << thief.error().to_string();
  EXPECT_EQ(raw_connect(address), 0);  // the first listener still has it
}

TEST(ListenerTest, RegularFileAtUnixPathIsRefused) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("data.txt");
  { std::ofstream(path) << "precious"; }
  Result<Listener> listener = Listener::bind(*SocketAddress::unix_path(path));
  ASSERT_FALSE(listener.has_value());
  EXPECT_EQ(listener.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(listener.error().message(), "not a socket")) << listener.error().to_string();
  EXPECT_TRUE(contains(listener.error().message(), path)) << listener.error().to_string();
  // The file is untouched.
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(ListenerTest, AdoptAndRelease) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  const SocketAddress bound = *listener->local_address();
  const int fd = listener->release();
  EXPECT_FALSE(listener->valid());
  EXPECT_EQ(listener->fd(), -1);
  Result<Listener> adopted = Listener::adopt(fd);
  ASSERT_TRUE(adopted.has_value()) << adopted.error().to_string();
  EXPECT_EQ(adopted->fd(), fd);
  EXPECT_EQ(*adopted->local_address(), bound);

  const int plain = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(plain, 0);
  Result<Listener> not_listening = Listener::adopt(plain);
  ASSERT_FALSE(not_listening.has_value());
  EXPECT_EQ(not_listening.error().code(), ErrorCode::kInvalidArgument);
  ::close(plain);
  EXPECT_FALSE(Listener::adopt(-1).has_value());
}

// A connection that does not answer: a listener whose accept queue is full drops new SYNs
// (net.ipv4.tcp_abort_on_overflow=0), so a connect to it hangs in SYN_SENT. Fills the queue of
// a backlog-1 listener with connections nobody accepts until a connect stops completing.
struct SilentListener {
  FdCloser fds;
  SocketAddress address;
  bool hangs = false;
  int fillers = 0;
};

void make_silent_listener(SilentListener& out) {
  const int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listen_fd, 0);
  out.fds.fds.push_back(listen_fd);
  const SocketAddress any_port = addr("127.0.0.1:0");
  ASSERT_EQ(::bind(listen_fd, any_port.data(), any_port.size()), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listen_fd, 1), 0);
  out.address = *SocketAddress::local_of(listen_fd);
  for (int i = 0; i < 64 && !out.hangs; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    out.fds.fds.push_back(fd);
    if (::connect(fd, out.address.data(), out.address.size()) == 0) {
      ++out.fillers;
      continue;
    }
    ASSERT_EQ(errno, EINPROGRESS) << std::strerror(errno);
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, 100);
    ASSERT_GE(n, 0);
    if (n == 0) {
      out.hangs = true;
    } else {
      ASSERT_EQ(int_option(fd, SOL_SOCKET, SO_ERROR), 0);
      ++out.fillers;
    }
  }
}

struct TimedConnect {
  Result<Stream> stream;
  Clock::duration elapsed;
};

Task<TimedConnect> timed_connect(SocketAddress address, ConnectOptions options) {
  const auto start = Clock::now();
  Result<Stream> stream = co_await Stream::connect(address, options);
  co_return TimedConnect{std::move(stream), Clock::now() - start};
}

TEST_P(StreamTest, ConnectTimesOut) {
  SilentListener silent;
  ASSERT_NO_FATAL_FAILURE(make_silent_listener(silent));
  if (!silent.hangs) {
    GTEST_SKIP() << "the kernel completed all " << silent.fillers
                 << " connects to a backlog-1 listener that never accepts; cannot make a "
                    "connect hang on loopback here";
  }
  ConnectOptions options;
  options.timeout = 200ms;
  TimedConnect r = run(timed_connect(silent.address, options));
  ASSERT_FALSE(r.stream.has_value()) << "connected after " << silent.fillers << " fillers";
  EXPECT_EQ(r.stream.error().code(), ErrorCode::kTimeout) << r.stream.error().to_string();
  EXPECT_TRUE(contains(r.stream.error().message(), "connect " + silent.address.to_string()))
      << r.stream.error().to_string();
  EXPECT_GE(r.elapsed, 150ms);
  EXPECT_LT(r.elapsed, 5s);
}

TEST_P(StreamTest, ConnectRefused) {
  // A bound TCP port with nobody listening answers a SYN with a reset.
  FdCloser fds;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  fds.fds.push_back(fd);
  const SocketAddress any_port = addr("127.0.0.1:0");
  ASSERT_EQ(::bind(fd, any_port.data(), any_port.size()), 0);
  const SocketAddress target = *SocketAddress::local_of(fd);

  TimedConnect r = run(timed_connect(target, {}));
  ASSERT_FALSE(r.stream.has_value());
  EXPECT_EQ(r.stream.error().code(), ErrorCode::kConnectionRefused) << r.stream.error().to_string();
  EXPECT_EQ(r.stream.error().sys_errno(), ECONNREFUSED);
  EXPECT_TRUE(contains(r.stream.error().message(), target.to_string()))
      << r.stream.error().to_string();
  EXPECT_TRUE(contains(r.stream.error().to_string(), "connect 127.0.0.1:"))
      << r.stream.error().to_string();
  EXPECT_LT(r.elapsed, 5s);

  // Unix: a stale socket file refuses; a missing one is not found.
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string stale = dir.file("stale.sock");
  ASSERT_TRUE(make_stale_socket(stale));
  TimedConnect u = run(timed_connect(*SocketAddress::unix_path(stale), {}));
  ASSERT_FALSE(u.stream.has_value());
  EXPECT_EQ(u.stream.error().code(), ErrorCode::kConnectionRefused);
  EXPECT_TRUE(contains(u.stream.error().message(), "unix:" + stale));

  TimedConnect missing = run(timed_connect(*SocketAddress::unix_path(dir.file("none")), {}));
  ASSERT_FALSE(missing.stream.has_value());
  EXPECT_EQ(missing.stream.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(missing.stream.error().message(), dir.file("none")));
}

TEST_P(StreamTest, AcceptCanBeCancelledAndAcceptsAfterwards) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  const SocketAddress address = *listener->local_address();
  auto body = [](Listener* l, SocketAddress a) -> Task<bool> {
    const auto start = Clock::now();
    Result<Stream> none = co_await with_timeout(l->accept(), 50ms);
    EXPECT_FALSE(none.has_value());
    if (none) co_return false;
    EXPECT_EQ(none.error().code(), ErrorCode::kTimeout) << none.error().to_string();
    EXPECT_LT(Clock::now() - start, 5s);
    // The listener still works after the cancelled accept.
    Result<Pair> pair = co_await with_timeout(connect_pair(l, a), 5s);
    EXPECT_TRUE(pair.has_value()) << pair.error().to_string();
    co_return pair.has_value();
  };
  EXPECT_TRUE(run(body(&*listener, address)));
}

// --- half-close and options ---------------------------------------------------------------

Task<void> half_close_body(Listener* listener, SocketAddress address) {
  Result<Pair> pair = co_await connect_pair(listener, address);
  EXPECT_TRUE(pair.has_value());
  if (!pair) co_return;
  Stream& client = pair->client;
  Stream& server = pair->server;

  Result<size_t> sent = co_await write_string(&client, "last words");
  EXPECT_TRUE(sent.has_value());
  Result<void> shut = co_await client.shutdown_write();
  EXPECT_TRUE(shut.has_value()) << shut.error().to_string();

  // The server reads what was sent, then end of stream.
  Result<std::string> got = co_await read_to_end(&server);
  EXPECT_TRUE(got.has_value() && *got == "last words") << describe(got);
  IoBuffer again;
  Result<size_t> eof = co_await server.read_some(again);
  EXPECT_TRUE(eof.has_value() && *eof == 0u);

  // The other direction still flows.
  for (const char* message : {"first reply", "second reply"}) {
    Result<size_t> replied = co_await write_string(&server, message);
    EXPECT_TRUE(replied.has_value());
    Result<std::string> reply = co_await read_at_least(&client, std::strlen(message));
    EXPECT_TRUE(reply.has_value() && *reply == message) << describe(reply);
  }
  // Writing on the half-closed side fails (EPIPE, no SIGPIPE).
  auto [late, unsent] = co_await client.write(IoBuffer::copy_of("too late"));
  EXPECT_FALSE(late.has_value());
  if (!late) {
    EXPECT_EQ(late.error().sys_errno(), EPIPE) << late.error().to_string();
  }
  EXPECT_EQ(unsent.view(), "too late");

  // Closing the server ends the client's stream.
  Result<void> closed = co_await server.close();
  EXPECT_TRUE(closed.has_value());
  EXPECT_FALSE(server.valid());
  Result<std::string> rest = co_await read_to_end(&client);
  EXPECT_TRUE(rest.has_value() && rest->empty()) << describe(rest);
  // close() of a closed stream is a no-op.
  Result<void> closed_again = co_await server.close();
  EXPECT_TRUE(closed_again.has_value());
}

TEST_P(StreamTest, HalfCloseKeepsTheOtherDirection) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  run(half_close_body(&*listener, *listener->local_address()));
}

TEST_P(StreamTest, HalfCloseOverUnixSocket) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Result<Listener> listener = Listener::bind(*SocketAddress::unix_path(dir.file("h.sock")));
  ASSERT_TRUE(listener.has_value()) << listener.error().to_string();
  run(half_close_body(&*listener, *listener->local_address()));
}

TEST_P(StreamTest, NodelayAndKeepalive) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  const SocketAddress address = *listener->local_address();
  Result<Pair> pair = run(connect_pair(&*listener, address));
  ASSERT_TRUE(pair.has_value()) << pair.error().to_string();
  Stream& client = pair->client;
  Stream& server = pair->server;

  // connect() and accept() set TCP_NODELAY by default.
  EXPECT_EQ(int_option(client.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  ASSERT_TRUE(server.set_nodelay(false).has_value());
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_NODELAY), 0);
  ASSERT_TRUE(server.set_nodelay(true).has_value());
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  ASSERT_TRUE(server.set_nodelay(false).has_value());
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_NODELAY), 0);

  KeepAlive keepalive;
  keepalive.idle_seconds = 30;
  keepalive.interval_seconds = 7;
  keepalive.probes = 4;
  Result<void> set = server.set_keepalive(keepalive);
  ASSERT_TRUE(set.has_value()) << set.error().to_string();
  EXPECT_EQ(int_option(server.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(int_option(server.fd(), IPPROTO_TCP, TCP_KEEPCNT), 4);
  ASSERT_TRUE(server.set_keepalive(KeepAlive{.enabled = false}).has_value());
  EXPECT_EQ(int_option(server.fd(), SOL_SOCKET, SO_KEEPALIVE), 0);

  // Bad values are errors that name the option.
  keepalive.idle_seconds = -1;
  Result<void> bad = server.set_keepalive(keepalive);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(contains(bad.error().message(), "TCP_KEEPIDLE")) << bad.error().to_string();

  // Without nodelay in the options, connect() leaves Nagle on.
  ConnectOptions nagle;
  nagle.nodelay = false;
  Result<Pair> second = run(connect_pair(&*listener, address, nagle));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(int_option(second->client.fd(), IPPROTO_TCP, TCP_NODELAY), 0);

  // Stream lifecycle: release gives up the fd.
  const int fd = second->client.release();
  EXPECT_FALSE(second->client.valid());
  EXPECT_GE(fd, 0);
  ::close(fd);
}

TEST_P(StreamTest, NodelayOnUnixSocketIsAnError) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Result<Listener> listener = Listener::bind(*SocketAddress::unix_path(dir.file("n.sock")));
  ASSERT_TRUE(listener.has_value());
  // connect() does not try TCP options on a Unix socket.
  Result<Pair> pair = run(connect_pair(&*listener, *listener->local_address()));
  ASSERT_TRUE(pair.has_value()) << pair.error().to_string();
  Result<void> r = pair->client.set_nodelay(true);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(contains(r.error().message(), "TCP_NODELAY"));
}

// --- copy_bidirectional -------------------------------------------------------------------

// client <-> [a | proxy | b] <-> server, all on one runtime.
struct Chain {
  Stream client;
  Stream a;
  Stream b;
  Stream server;
};

Task<Result<Chain>> make_chain(Listener* listener, SocketAddress address) {
  Result<Pair> front = co_await connect_pair(listener, address);
  if (!front) co_return std::move(front).error();
  Result<Pair> back = co_await connect_pair(listener, address);
  if (!back) co_return std::move(back).error();
  co_return Chain{std::move(front->client), std::move(front->server), std::move(back->client),
                  std::move(back->server)};
}

// Every copy test runs in both modes: copying through user space, and splice(2) (zero_copy).
const CopyOptions kCopyModes[] = {CopyOptions{.idle_timeout = {}, .zero_copy = false},
                                  CopyOptions{.idle_timeout = {}, .zero_copy = true}};

// Names the mode for SCOPED_TRACE and gets the thread ready for it: splice(2) raises SIGPIPE
// on a reset peer, so zero_copy is used only where SIGPIPE is ignored.
std::string enter_mode(const CopyOptions& options) {
  if (options.zero_copy) {
    ::signal(SIGPIPE, SIG_IGN);
    EXPECT_TRUE(splice_is_safe());
  }
  return options.zero_copy ? "zero_copy (splice)" : "copy";
}

CopyOptions with_idle_timeout(CopyOptions options, std::chrono::nanoseconds limit) {
  options.idle_timeout = limit;
  return options;
}

// copy_bidirectional's outcome in the shape with_timeout understands (a `result` member).
struct CopyRun {
  Result<void> result;
  CopyResult copy;
};

Task<CopyRun> copy_task(Stream* a, Stream* b, CopyOptions options) {
  CopyResult copy = co_await copy_bidirectional(*a, *b, options);
  Result<void> result = ok();
  if (copy.error) result = *copy.error;
  co_return CopyRun{std::move(result), std::move(copy)};
}

std::string describe(const CopyRun& r) {
  return "a_to_b=" + std::to_string(r.copy.a_to_b) + " b_to_a=" + std::to_string(r.copy.b_to_a) +
         " result=" + (r.result ? std::string("ok") : r.result.error().to_string()) +
         " copy.error=" + (r.copy.error ? r.copy.error->to_string() : std::string("none"));
}

Task<Result<std::string>> client_send_then_read(Stream* client, std::string request) {
  Result<size_t> sent = co_await write_then_shutdown(client, std::move(request));
  if (!sent) co_return std::move(sent).error();
  co_return co_await read_to_end(client);
}

// Reads the whole request, then answers and closes.
Task<Result<std::string>> server_read_then_reply(Stream* server, std::string reply) {
  Result<std::string> request = co_await read_to_end(server);
  if (!request) co_return request;
  Result<size_t> sent = co_await write_string(server, std::move(reply));
  if (!sent) co_return std::move(sent).error();
  Result<void> closed = co_await server->close();
  if (!closed) co_return std::move(closed).error();
  co_return request;
}

struct FullCopyOutcome {
  CopyRun copy;
  Result<std::string> server_got = Error(ErrorCode::kInternal);
  Result<std::string> client_got = Error(ErrorCode::kInternal);
};

Task<FullCopyOutcome> full_copy_body(Chain* chain, std::string request, std::string reply,
                                     CopyOptions options) {
  auto server = spawn_with_handle(server_read_then_reply(&chain->server, std::move(reply)));
  auto client = spawn_with_handle(client_send_then_read(&chain->client, std::move(request)));
  FullCopyOutcome out;
  out.copy = co_await with_timeout(copy_task(&chain->a, &chain->b, options), 30s);
  // A proxy closes both sides when the copy is over (this also unblocks the peers if the copy
  // failed).
  (void)co_await chain->a.close();
  (void)co_await chain->b.close();
  out.server_got = co_await server;
  out.client_got = co_await client;
  co_return out;
}

TEST_P(StreamTest, CopyBidirectionalBothWaysWithHalfClose) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();

    const std::string request = pattern(4 * kMiB, 1);
    const std::string reply = pattern(2 * kMiB, 2);
    FullCopyOutcome out = run(full_copy_body(&*chain, request, reply, options));
    EXPECT_TRUE(out.copy.result.has_value()) << describe(out.copy);
    EXPECT_FALSE(out.copy.copy.error.has_value()) << describe(out.copy);
    EXPECT_EQ(out.copy.copy.a_to_b, 4 * kMiB);
    EXPECT_EQ(out.copy.copy.b_to_a, 2 * kMiB);
    ASSERT_TRUE(out.server_got.has_value()) << out.server_got.error().to_string();
    EXPECT_TRUE(*out.server_got == request) << describe(out.server_got);
    ASSERT_TRUE(out.client_got.has_value()) << out.client_got.error().to_string();
    EXPECT_TRUE(*out.client_got == reply) << describe(out.client_got);
    // Pipes are only held while a chunk moves; the splice path really ran (it left its
    // pipes in this thread's pool).
    EXPECT_EQ(splice_pipes().in_use, 0u);
    if (options.zero_copy) {
      EXPECT_GE(splice_pipes().idle, 1u);
    }
    EXPECT_EQ(rt().live_tasks(), 0u);
  }
}

// Lowers this process's descriptor limit so that no new descriptor can be made (every number
// below the limit is taken) until the scope ends.
class NoNewDescriptors {
 public:
  NoNewDescriptors() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    const int lowest_free = ::dup(0);
    if (lowest_free < 0) return;
    ::close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
    active_ = ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~NoNewDescriptors() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool active() const { return active_; }

 private:
  rlimit saved_{};
  bool active_ = false;
};

// Out of descriptors, a zero-copy direction cannot make a pipe: it copies on through user
// space, and every byte still arrives, in order.
TEST_P(StreamTest, CopyBidirectionalZeroCopyWithoutPipesCopiesOn) {
  CopyOptions options{.idle_timeout = {}, .zero_copy = true};
  SCOPED_TRACE(enter_mode(options));
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
  ASSERT_TRUE(chain.has_value()) << chain.error().to_string();
  close_idle_splice_pipes();
  ASSERT_EQ(splice_pipes().idle, 0u);

  const std::string request = pattern(4 * kMiB, 3);
  const std::string reply = pattern(2 * kMiB, 4);
  std::optional<FullCopyOutcome> outcome;
  {
    NoNewDescriptors limit;
    ASSERT_TRUE(limit.active());
    int fds[2];
    ASSERT_NE(::pipe(fds), 0) << "the descriptor limit did not hold";
    outcome = run(full_copy_body(&*chain, request, reply, options));
  }
  FullCopyOutcome& out = *outcome;
  EXPECT_TRUE(out.copy.result.has_value()) << describe(out.copy);
  EXPECT_EQ(out.copy.copy.a_to_b, 4 * kMiB);
  EXPECT_EQ(out.copy.copy.b_to_a, 2 * kMiB);
  ASSERT_TRUE(out.server_got.has_value()) << out.server_got.error().to_string();
  EXPECT_TRUE(*out.server_got == request) << describe(out.server_got);
  ASSERT_TRUE(out.client_got.has_value()) << out.client_got.error().to_string();
  EXPECT_TRUE(*out.client_got == reply) << describe(out.client_got);
  EXPECT_EQ(splice_pipes().in_use, 0u);
  EXPECT_EQ(splice_pipes().idle, 0u);
  EXPECT_EQ(rt().live_tasks(), 0u);
}

TEST_P(StreamTest, CopyBidirectionalOverUnixSockets) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    Result<Listener> listener = Listener::bind(*SocketAddress::unix_path(dir.file("c.sock")));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();
    const std::string request = pattern(kMiB + 17, 3);
    const std::string reply = pattern(3 * kMiB / 2, 4);
    FullCopyOutcome out = run(full_copy_body(&*chain, request, reply, options));
    EXPECT_TRUE(out.copy.result.has_value()) << describe(out.copy);
    EXPECT_EQ(out.copy.copy.a_to_b, request.size());
    EXPECT_EQ(out.copy.copy.b_to_a, reply.size());
    ASSERT_TRUE(out.server_got.has_value() && out.client_got.has_value());
    EXPECT_TRUE(*out.server_got == request);
    EXPECT_TRUE(*out.client_got == reply);
  }
}

// Writes until the write fails, then reads until end of stream or an error.
Task<void> client_keeps_sending(Stream* client) {
  const std::string chunk = pattern(256 * 1024, 5);
  for (int i = 0; i < 64; ++i) {
    Result<size_t> sent = co_await write_string(client, chunk);
    if (!sent) break;
  }
  (void)co_await read_to_end(client);
}

// Reads at least 64 KiB, then resets the connection (SO_LINGER {1, 0} and close).
Task<bool> server_resets(Stream* server) {
  Result<std::string> got = co_await read_at_least(server, 64 * 1024);
  EXPECT_TRUE(got.has_value() && got->size() >= 64 * 1024u) << describe(got);
  linger lg{1, 0};
  EXPECT_EQ(::setsockopt(server->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  Result<void> closed = co_await server->close();
  EXPECT_TRUE(closed.has_value());
  co_return got.has_value();
}

Task<CopyRun> reset_body(Chain* chain, CopyOptions options) {
  auto server = spawn_with_handle(server_resets(&chain->server));
  auto client = spawn_with_handle(client_keeps_sending(&chain->client));
  CopyRun copy = co_await with_timeout(copy_task(&chain->a, &chain->b, options), 10s);
  (void)co_await chain->a.close();
  (void)co_await chain->b.close();
  (void)co_await server;
  co_await client;
  co_return copy;
}

TEST_P(StreamTest, CopyBidirectionalStopsOnReset) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();

    CopyRun out = run(reset_body(&*chain, options));
    ASSERT_FALSE(out.result.has_value()) << describe(out);
    EXPECT_NE(out.result.error().code(), ErrorCode::kTimeout) << "copy hung: " << describe(out);
    ASSERT_TRUE(out.copy.error.has_value()) << describe(out);
    EXPECT_EQ(out.copy.error->code(), ErrorCode::kConnectionReset) << describe(out);
    EXPECT_GE(out.copy.a_to_b, 64 * 1024u) << describe(out);
    EXPECT_EQ(out.copy.b_to_a, 0u) << describe(out);
    EXPECT_EQ(rt().live_tasks(), 0u);  // both directions finished
  }
}

struct CancelOutcome {
  CopyRun copy;
  Clock::duration elapsed{};
  Result<std::string> after = Error(ErrorCode::kInternal);
};

// Cancels an idle copy, then checks that the streams still carry data (no operation of the
// cancelled copy is left behind to steal it).
Task<CancelOutcome> cancel_idle_body(Chain* chain, CopyOptions options) {
  CancelOutcome out;
  const auto start = Clock::now();
  out.copy = co_await with_timeout(copy_task(&chain->a, &chain->b, options), 100ms);
  out.elapsed = Clock::now() - start;
  (void)co_await write_string(&chain->client, "still here");
  out.after = co_await read_at_least(&chain->a, std::strlen("still here"));
  co_return out;
}

TEST_P(StreamTest, CopyBidirectionalCancelledWhileIdle) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();

    CancelOutcome out = run(cancel_idle_body(&*chain, options));
    ASSERT_FALSE(out.copy.result.has_value()) << describe(out.copy);
    EXPECT_EQ(out.copy.result.error().code(), ErrorCode::kTimeout) << describe(out.copy);
    ASSERT_TRUE(out.copy.copy.error.has_value());
    EXPECT_EQ(out.copy.copy.error->code(), ErrorCode::kCancelled) << describe(out.copy);
    EXPECT_EQ(out.copy.copy.a_to_b, 0u);
    EXPECT_EQ(out.copy.copy.b_to_a, 0u);
    EXPECT_GE(out.elapsed, 50ms);
    EXPECT_LT(out.elapsed, 5s);
    EXPECT_TRUE(out.after.has_value() && *out.after == "still here") << describe(out.after);
    EXPECT_EQ(splice_pipes().in_use, 0u);
    EXPECT_EQ(rt().live_tasks(), 0u);
  }
}

// The caller's cancellation must stop the copy also when one direction has already ended:
// here the client half-closed (a -> b is finished) and the server stays silent.
Task<Result<void>> unstick_after(Stream* server, std::chrono::milliseconds delay) {
  Result<void> slept = co_await runtime::sleep(delay);
  if (!slept) co_return slept;  // cancelled: not needed
  co_return co_await server->shutdown_write();
}

Task<CancelOutcome> cancel_half_closed_body(Chain* chain, CopyOptions options) {
  CancelOutcome out;
  Result<void> shut = co_await chain->client.shutdown_write();
  EXPECT_TRUE(shut.has_value());
  // If cancellation does not reach the b -> a direction, the server's half-close after 3 s
  // ends it, so the test fails on time instead of hanging.
  auto watchdog = spawn_with_handle(unstick_after(&chain->server, 3000ms));
  const auto start = Clock::now();
  out.copy = co_await with_timeout(copy_task(&chain->a, &chain->b, options), 100ms);
  out.elapsed = Clock::now() - start;
  watchdog.cancel();
  (void)co_await watchdog;
  // b -> a still carries data after the cancelled copy.
  (void)co_await write_string(&chain->server, "late reply");
  out.after = co_await read_at_least(&chain->b, std::strlen("late reply"));
  co_return out;
}

TEST_P(StreamTest, CopyBidirectionalCancelledAfterOneDirectionEnded) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();

    CancelOutcome out = run(cancel_half_closed_body(&*chain, options));
    EXPECT_LT(out.elapsed, 2s) << "cancellation did not stop the b -> a direction: "
                               << describe(out.copy);
    ASSERT_FALSE(out.copy.result.has_value()) << describe(out.copy);
    EXPECT_EQ(out.copy.result.error().code(), ErrorCode::kTimeout) << describe(out.copy);
    EXPECT_EQ(out.copy.copy.a_to_b, 0u);
    EXPECT_EQ(out.copy.copy.b_to_a, 0u);
    EXPECT_TRUE(out.after.has_value() && *out.after == "late reply") << describe(out.after);
    EXPECT_EQ(splice_pipes().in_use, 0u);
    EXPECT_EQ(rt().live_tasks(), 0u);
  }
}

TEST(SpliceTest, ZeroCopyOnlyWhereSigpipeCannotEndTheProcess) {
  // Once it has been seen ignored, a thread keeps the answer; so ask on a fresh thread.
  bool with_default = true;
  bool with_ignored = false;
  std::thread([&] {
    ::signal(SIGPIPE, SIG_DFL);
    with_default = splice_is_safe();
    ::signal(SIGPIPE, SIG_IGN);
    with_ignored = splice_is_safe();
  }).join();
  EXPECT_FALSE(with_default);
  EXPECT_TRUE(with_ignored);
  bool with_blocked = false;
  std::thread([&] {
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    with_blocked = splice_is_safe();
  }).join();
  EXPECT_TRUE(with_blocked);
  ::signal(SIGPIPE, SIG_IGN);
}

// --- many connections ---------------------------------------------------------------------

// `cycles` connect/accept/close rounds; returns how many succeeded. Alternates the closing
// side and the way of closing (close() or the destructor).
Task<int> connect_accept_close(Listener* listener, SocketAddress address, int cycles) {
  int succeeded = 0;
  for (int i = 0; i < cycles; ++i) {
    Result<Pair> pair = co_await connect_pair(listener, address);
    EXPECT_TRUE(pair.has_value()) << "cycle " << i << ": " << pair.error().to_string();
    if (!pair) co_return succeeded;
    if (i % 2 == 0) {
      Result<void> c = co_await pair->client.close();
      Result<void> s = co_await pair->server.close();
      EXPECT_TRUE(c.has_value() && s.has_value());
    }
    ++succeeded;
  }
  co_return succeeded;
}

TEST_P(StreamTest, ThousandConnectAcceptCloseCyclesLeakNoFd) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  const SocketAddress address = *listener->local_address();
  ASSERT_EQ(run(connect_accept_close(&*listener, address, 2)), 2);  // warm up
  const int before = count_open_fds();
  ASSERT_GT(before, 0);
  EXPECT_EQ(run(connect_accept_close(&*listener, address, 1000)), 1000);
  EXPECT_EQ(count_open_fds(), before);
}

Task<int> accept_many(Listener* listener, SocketAddress address, int count) {
  std::vector<JoinHandle<Result<Stream>>> connecting;
  for (int i = 0; i < count; ++i) connecting.push_back(spawn_with_handle(Stream::connect(address)));
  std::vector<Stream> accepted;
  std::set<std::string> accepted_peers;
  for (int i = 0; i < count; ++i) {
    Result<Stream> s = co_await with_timeout(listener->accept(), 10s);
    EXPECT_TRUE(s.has_value()) << "accept " << i << ": " << s.error().to_string();
    if (!s) break;
    accepted_peers.insert(s->peer_address()->to_string());
    accepted.push_back(std::move(*s));
  }
  int ok_count = 0;
  std::set<std::string> client_addresses;
  for (auto& handle : connecting) {
    Result<Stream> c = co_await handle;
    EXPECT_TRUE(c.has_value()) << c.error().to_string();
    if (!c) continue;
    ++ok_count;
    client_addresses.insert(c->local_address()->to_string());
  }
  EXPECT_EQ(accepted.size(), static_cast<size_t>(count));
  EXPECT_EQ(client_addresses, accepted_peers);
  co_return ok_count;
}

TEST_P(StreamTest, HundredRapidConnectionsAreAllAccepted) {
  Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
  ASSERT_TRUE(listener.has_value());
  EXPECT_EQ(run(accept_many(&*listener, *listener->local_address(), 100)), 100);
  EXPECT_EQ(rt().live_tasks(), 0u);
}

ML_INSTANTIATE_BACKEND_TESTS(StreamTest);

}  // namespace
}  // namespace monolake::transport

namespace monolake::transport {
namespace {

struct IdleOutcome {
  CopyResult quiet;   // nobody talks: the idle timeout ends it
  CopyResult chatty;  // a byte every 40 ms for ~400 ms, then quiet
  std::chrono::nanoseconds quiet_elapsed{};
  std::chrono::nanoseconds chatty_elapsed{};
};

Task<void> chatter(Stream* client, int times) {
  for (int i = 0; i < times; ++i) {
    (void)co_await runtime::sleep(std::chrono::milliseconds(40));
    (void)co_await write_string(client, "x");
  }
}

Task<IdleOutcome> idle_body(Chain* chain, CopyOptions options) {
  IdleOutcome out;
  options.idle_timeout = std::chrono::milliseconds(150);
  auto start = runtime::Clock::now();
  out.quiet = co_await copy_bidirectional(chain->a, chain->b, options);
  out.quiet_elapsed = runtime::Clock::now() - start;

  auto talking = runtime::spawn_with_handle(chatter(&chain->client, 10));
  start = runtime::Clock::now();
  out.chatty = co_await copy_bidirectional(chain->a, chain->b, options);
  out.chatty_elapsed = runtime::Clock::now() - start;
  co_await talking;
  co_return out;
}

TEST_P(StreamTest, CopyBidirectionalIdleTimeout) {
  for (const CopyOptions& options : kCopyModes) {
    SCOPED_TRACE(enter_mode(options));
    Result<Listener> listener = Listener::bind(addr("127.0.0.1:0"));
    ASSERT_TRUE(listener.has_value());
    Result<Chain> chain = run(make_chain(&*listener, *listener->local_address()));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();
    IdleOutcome out =
        run(idle_body(&*chain, with_idle_timeout(options, std::chrono::milliseconds(150))));

    ASSERT_TRUE(out.quiet.error.has_value());
    EXPECT_EQ(out.quiet.error->code(), ErrorCode::kTimeout);
    EXPECT_GE(out.quiet_elapsed, std::chrono::milliseconds(150));
    EXPECT_LT(out.quiet_elapsed, std::chrono::seconds(5));

    // Traffic keeps re-arming it: the copy lasts past the 10 bytes (~400 ms), then times out.
    ASSERT_TRUE(out.chatty.error.has_value());
    EXPECT_EQ(out.chatty.error->code(), ErrorCode::kTimeout);
    EXPECT_EQ(out.chatty.a_to_b, 10u);
    EXPECT_GE(out.chatty_elapsed, std::chrono::milliseconds(400));
    EXPECT_EQ(rt().live_tasks(), 0u);
  }
}

}  // namespace
}  // namespace monolake::transport
