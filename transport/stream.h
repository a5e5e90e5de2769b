// Stream: a connected TCP or Unix-domain socket, read and written with owned buffers on the
// current thread's runtime. Listener: a bound, listening socket that accepts Streams.
//
// A Stream owns its fd and closes it when destroyed. It belongs to the thread (runtime) that
// made it. Reads and writes follow runtime/io.h: a buffer handed to read()/write() comes back
// in the result; read_some() holds none of the caller's memory while it waits, which is what a
// mostly idle connection should use.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/io.h"
#include "runtime/task.h"
#include "transport/address.h"

namespace monolake::transport {

using runtime::BufResult;
using runtime::ChainResult;
using runtime::Task;

struct ConnectOptions {
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  bool nodelay = true;  // TCP only
};

struct KeepAlive {
  bool enabled = true;
  int idle_seconds = 60;
  int interval_seconds = 10;
  int probes = 5;
};

class Stream {
 public:
  Stream() = default;
  // Adopts a connected socket (set up with runtime::socket_flags()).
  explicit Stream(int fd) : fd_(fd) {}
  ~Stream();
  Stream(Stream&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Connects to `address`; fails with kTimeout after options.timeout, kConnectionRefused...
  static Task<Result<Stream>> connect(SocketAddress address, ConnectOptions options = {});

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Gives up ownership of the fd (e.g. to hand it to another process).
  int release() { return std::exchange(fd_, -1); }

  // One recv into `buffer`'s writable space. Result 0 = end of stream.
  runtime::RecvAwaiter read(IoBuffer buffer) { return runtime::recv(fd_, std::move(buffer)); }
  // Waits for data without holding `into`'s memory, then appends it. Result 0 = end of stream.
  runtime::ReadSomeAwaiter read_some(IoBuffer& into) { return runtime::read_some(fd_, into); }
  // One send; the result buffer has the sent bytes consumed.
  runtime::SendAwaiter write(IoBuffer buffer) { return runtime::send(fd_, std::move(buffer)); }
  Task<BufResult<size_t>> write_all(IoBuffer buffer) {
    return runtime::send_all(fd_, std::move(buffer));
  }
  Task<ChainResult> write_all(BufferChain chain) {
    return runtime::send_all(fd_, std::move(chain));
  }

  // Half-close: the peer reads end of stream; reading from it still works.
  runtime::SimpleAwaiter shutdown_write() { return runtime::shutdown(fd_, SHUT_WR); }
  // Closes now (the destructor does the same synchronously).
  Task<Result<void>> close();

  Result<void> set_nodelay(bool on);
  Result<void> set_keepalive(const KeepAlive& keepalive);

  Result<SocketAddress> local_address() const { return SocketAddress::local_of(fd_); }
  Result<SocketAddress> peer_address() const { return SocketAddress::peer_of(fd_); }

 private:
  int fd_ = -1;
};

struct ListenOptions {
  bool reuse_port = true;  // SO_REUSEPORT: one listener per worker on the same port
  bool reuse_addr = true;
  int backlog = 4096;
  // TCP_NODELAY on accepted TCP connections: a proxy forwards small writes at once rather
  // than waiting for the peer's delayed ACK (Nagle).
  bool nodelay = true;
  bool ipv6_only = false;  // IPV6_V6ONLY for [::] listeners
  // Unix sockets: permissions of the socket file (0 = leave as the umask made it), and whether
  // to replace a stale socket file at the path (one nobody listens on; a live one is an error).
  mode_t unix_mode = 0;
  bool unlink_stale_unix = true;
};

// The file of a Unix socket this process bound, remembered by device and inode so it can be
// removed later only if it is still the same file (another process, e.g. the new one of a
// binary upgrade, may have bound the path since).
class UnixSocketFile {
 public:
  UnixSocketFile() = default;
  // Notes the file now at `path` (nothing if empty or absent).
  explicit UnixSocketFile(std::string path);
  // Unlinks the path if it is still the file noted. Idempotent.
  void remove_if_ours();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

class Listener {
 public:
  Listener() = default;
  ~Listener();
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  static Result<Listener> bind(const SocketAddress& address, const ListenOptions& options = {});
  // Adopts a listening socket made elsewhere (inherited from another process...).
  static Result<Listener> adopt(int fd);

  // The next connection. Backs off on nothing: EMFILE/ENFILE come back as kLimitExceeded and
  // the caller decides how long to wait. One accept() at a time per Listener.
  Task<Result<Stream>> accept();
  // Stops accepting for good (see runtime::Acceptor::stop) and returns every connection the
  // kernel had already accepted for this listener. Run from a task that is not cancelled.
  Task<std::vector<Stream>> stop_accepting();

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  Result<SocketAddress> local_address() const { return SocketAddress::local_of(fd_); }
  int release();

 private:
  explicit Listener(int fd) : fd_(fd) {}
  int fd_ = -1;
  bool nodelay_ = false;                         // set TCP_NODELAY on accepted connections
  std::unique_ptr<runtime::Acceptor> acceptor_;  // made on first accept, on the runtime thread
};

}  // namespace monolake::transport
