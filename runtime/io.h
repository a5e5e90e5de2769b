// I/O operations on file descriptors, as awaitables for tasks on the current runtime.
//
// Buffers are passed by ownership: an operation takes the IoBuffer, keeps it while the kernel
// may use it, and hands it back in its result (BufResult), as monoio's "rent" model does. If a
// task is cancelled or destroyed while an operation is pending, the operation is cancelled
// and its completion still awaited before the buffer is released.
//
// read_some() is the read for connections that are mostly idle: it holds none of the caller's
// memory while waiting (io_uring provided-buffer ring, or readiness then read on epoll) and
// appends what arrived to the caller's buffer.
//
// All results follow the syscalls: a byte count of 0 from a read means end of stream.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstdint>
#include <deque>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/op.h"
#include "runtime/task.h"

namespace monolake::runtime {

template <class T>
struct BufResult {
  Result<T> result;
  IoBuffer buffer;
};

struct ChainResult {
  Result<size_t> result;
  BufferChain chain;
};

// Base of the operation awaiters: starts the op on suspension, registers for cancellation,
// and abandons the op safely if destroyed while it is in flight.
class OpAwaiter {
 public:
  OpAwaiter(const OpAwaiter&) = delete;
  OpAwaiter& operator=(const OpAwaiter&) = delete;

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return suspend(h, detail::cancel_state_of(h));
  }

 protected:
  OpAwaiter(OpCode code, int fd) {
    op_.code = code;
    op_.fd = fd;
  }
  ~OpAwaiter();
  // Unregisters from cancellation and returns the raw result (-errno on failure).
  int32_t take_result();

  IoOp op_;

 private:
  bool suspend(std::coroutine_handle<> h, CancelState* cancel);
  static void on_cancel(void* self);
  CancelState* cancel_ = nullptr;
};

// Reads into `buffer`'s writable space (16 KiB is reserved if it has none).
class RecvAwaiter : public OpAwaiter {
 public:
  RecvAwaiter(int fd, IoBuffer buffer);
  BufResult<size_t> await_resume();

 private:
  IoBuffer buffer_;
};

// Waits for data without holding `into`'s memory, then appends what arrived to it.
class ReadSomeAwaiter : public OpAwaiter {
 public:
  ReadSomeAwaiter(int fd, IoBuffer& into);
  Result<size_t> await_resume();
};

// Sends from `buffer`; the returned buffer has the sent bytes consumed.
class SendAwaiter : public OpAwaiter {
 public:
  SendAwaiter(int fd, IoBuffer buffer);
  BufResult<size_t> await_resume();

 private:
  IoBuffer buffer_;
};

// One sendmsg over the chain's buffers (scatter/gather); sent bytes are consumed.
class SendChainAwaiter : public OpAwaiter {
 public:
  static constexpr size_t kMaxIovecs = 64;
  SendChainAwaiter(int fd, BufferChain chain);
  ChainResult await_resume();

 private:
  BufferChain chain_;
  iovec iov_[kMaxIovecs];
  msghdr msg_{};
};

struct AcceptedSocket {
  int fd = -1;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
};

class AcceptAwaiter : public OpAwaiter {
 public:
  explicit AcceptAwaiter(int listen_fd);
  Result<AcceptedSocket> await_resume();

 private:
  sockaddr_storage peer_{};
};

class ConnectAwaiter : public OpAwaiter {
 public:
  ConnectAwaiter(int fd, const sockaddr* addr, socklen_t len);
  Result<void> await_resume();

 private:
  sockaddr_storage addr_{};
};

// Close, shutdown: result 0 or an error.
class SimpleAwaiter : public OpAwaiter {
 public:
  SimpleAwaiter(OpCode code, int fd, int flags);
  Result<void> await_resume();
};

// Waits for readiness (POLLIN / POLLOUT); the result is the revents mask.
class PollAwaiter : public OpAwaiter {
 public:
  PollAwaiter(int fd, uint32_t events);
  Result<uint32_t> await_resume();
};

inline RecvAwaiter recv(int fd, IoBuffer buffer) { return RecvAwaiter(fd, std::move(buffer)); }
inline ReadSomeAwaiter read_some(int fd, IoBuffer& into) { return ReadSomeAwaiter(fd, into); }
inline SendAwaiter send(int fd, IoBuffer buffer) { return SendAwaiter(fd, std::move(buffer)); }
inline SendChainAwaiter send_chain(int fd, BufferChain chain) {
  return SendChainAwaiter(fd, std::move(chain));
}
inline AcceptAwaiter accept(int listen_fd) { return AcceptAwaiter(listen_fd); }
inline ConnectAwaiter connect(int fd, const sockaddr* addr, socklen_t len) {
  return ConnectAwaiter(fd, addr, len);
}
inline SimpleAwaiter close(int fd) { return SimpleAwaiter(OpCode::kClose, fd, 0); }
inline SimpleAwaiter shutdown(int fd, int how) { return SimpleAwaiter(OpCode::kShutdown, fd, how); }
inline PollAwaiter poll(int fd, uint32_t events) { return PollAwaiter(fd, events); }

// Sends all of `buffer` (looping over partial sends). On error, the buffer holds what was not
// sent.
Task<BufResult<size_t>> send_all(int fd, IoBuffer buffer);
Task<ChainResult> send_all(int fd, BufferChain chain);

// Socket flags for new sockets on the current runtime's backend (SOCK_CLOEXEC, plus
// SOCK_NONBLOCK where the backend needs it).
int socket_flags();

// Accepts connections on a listening socket. On io_uring with multishot accept, one
// submission keeps delivering connections; otherwise each accept() is one operation.
// Does not own the listening fd. One accept() at a time per Acceptor.
class Acceptor {
 public:
  explicit Acceptor(int listen_fd);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  Task<Result<AcceptedSocket>> accept();
  bool multishot() const { return multishot_; }
  // Stops accepting for good: cancels the multishot accept and waits for its last completion,
  // so that every connection the kernel accepted on its behalf is returned (none is left in a
  // completion nobody reads, to be reset when the process exits). Run it from a task that is
  // not cancelled; accept() must not be waiting.
  Task<std::vector<int>> stop();

 private:
  class WaitAwaiter;
  static void on_accepted(IoOp* op);
  // Connections the kernel has already handed over (multishot) that accept() has not returned
  // yet; the caller owns them.
  std::vector<int> take_ready();

  int listen_fd_;
  bool multishot_;
  IoOp op_;
  std::deque<int32_t> ready_;  // accepted fds, or -errno
  std::coroutine_handle<> waiter_;
  std::coroutine_handle<> stop_waiter_;  // stop(): resumed by the multishot's last completion
  bool stopping_ = false;
};

}  // namespace monolake::runtime
