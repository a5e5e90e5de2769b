#include "transport/splice.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "base/error.h"
#include "runtime/io.h"

namespace monolake::transport {

namespace {

// One splice(2) call moves at most this much: a pipe's default capacity (16 pages).
constexpr size_t kChunk = 64 * 1024;
// Empty pipes a thread keeps for reuse; more are closed when given back.
constexpr size_t kMaxIdlePipes = 64;

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
};

void close_pipe(Pipe pipe) {
  ::close(pipe.read_fd);
  ::close(pipe.write_fd);
}

// This thread's empty pipes. A pipe is only ever given back empty, so any direction can take
// it; one that may still hold bytes (a direction failed or was cancelled mid-chunk) is closed.
class PipePool {
 public:
  ~PipePool() {
    for (Pipe pipe : idle_) close_pipe(pipe);
  }
  bool take(Pipe& out) {
    if (!idle_.empty()) {
      out = idle_.back();
      idle_.pop_back();
    } else {
      int fds[2];
      if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
      out = {fds[0], fds[1]};
    }
    ++in_use_;
    return true;
  }
  void give_back(Pipe pipe, bool empty) {
    --in_use_;
    if (empty && idle_.size() < kMaxIdlePipes) {
      idle_.push_back(pipe);
    } else {
      close_pipe(pipe);
    }
  }
  SplicePipes counts() const { return {in_use_, idle_.size()}; }
  size_t close_idle() {
    const size_t closed = idle_.size();
    for (Pipe pipe : idle_) close_pipe(pipe);
    idle_.clear();
    return closed;
  }

 private:
  std::vector<Pipe> idle_;
  size_t in_use_ = 0;
};

PipePool& pool() {
  thread_local PipePool pipes;
  return pipes;
}

// A pipe taken from the pool for one chunk, with the count of bytes it holds; given back when
// the lease ends, however the chunk ended (a coroutine destroyed mid-chunk included).
class PipeLease {
 public:
  PipeLease() { held_ = pool().take(pipe_); }
  ~PipeLease() {
    if (held_) pool().give_back(pipe_, pending_ == 0);
  }
  PipeLease(const PipeLease&) = delete;
  PipeLease& operator=(const PipeLease&) = delete;

  explicit operator bool() const { return held_; }
  int read_fd() const { return pipe_.read_fd; }
  int write_fd() const { return pipe_.write_fd; }
  size_t pending() const { return pending_; }
  void filled(size_t n) { pending_ += n; }
  void drained(size_t n) { pending_ -= n; }

 private:
  Pipe pipe_;
  bool held_ = false;
  size_t pending_ = 0;
};

constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

// Writes everything the pipe holds to `to`, waiting for room in its send buffer as needed.
runtime::Task<Result<void>> drain(PipeLease& pipe, Stream& to) {
  while (pipe.pending() > 0) {
    const ssize_t out =
        ::splice(pipe.read_fd(), nullptr, to.fd(), nullptr, pipe.pending(), kSpliceFlags);
    if (out > 0) {
      pipe.drained(static_cast<size_t>(out));
    } else if (out < 0 && errno == EAGAIN) {
      Result<uint32_t> writable = co_await runtime::poll(to.fd(), POLLOUT);
      if (!writable) co_return std::move(writable).error();
    } else if (out < 0 && errno != EINTR) {
      co_return Error::from_errno(errno, "splice to socket");
    }
  }
  co_return ok();
}

}  // namespace

bool splice_is_safe() {
  // Once seen ignored it is assumed to stay so (nothing here turns it back on); until then it
  // is asked again, two cheap syscalls per connection.
  thread_local bool known_safe = false;
  if (known_safe) return true;
  struct sigaction action {};
  sigset_t blocked;
  if (::sigaction(SIGPIPE, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) {
    known_safe = true;
  } else if (::pthread_sigmask(SIG_BLOCK, nullptr, &blocked) == 0 &&
             sigismember(&blocked, SIGPIPE) == 1) {
    known_safe = true;
  }
  return known_safe;
}

Result<void> prepare_for_splice(const Stream& stream) {
  const int flags = ::fcntl(stream.fd(), F_GETFL);
  if (flags < 0) return Error::from_errno(errno, "fcntl(F_GETFL)");
  if ((flags & O_NONBLOCK) != 0) return ok();
  if (::fcntl(stream.fd(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return Error::from_errno(errno, "fcntl(F_SETFL)");
  }
  return ok();
}

runtime::Task<Result<SpliceEnd>> splice_one_way(Stream& from, Stream& to, IdleWatch& idle,
                                                uint64_t& bytes) {
  // After a chunk that filled the pipe more is likely waiting: try before polling.
  bool more_likely = false;
  while (true) {
    if (!more_likely) {
      Result<uint32_t> readable = co_await runtime::poll(from.fd(), POLLIN);
      if (!readable) co_return std::move(readable).error();
    }
    PipeLease pipe;
    if (!pipe) co_return SpliceEnd::kNoPipe;
    const ssize_t in = ::splice(from.fd(), nullptr, pipe.write_fd(), nullptr, kChunk, kSpliceFlags);
    if (in < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        more_likely = false;
        continue;
      }
      co_return Error::from_errno(errno, "splice from socket");
    }
    if (in == 0) {
      (void)co_await to.shutdown_write();
      co_return SpliceEnd::kEndOfStream;
    }
    pipe.filled(static_cast<size_t>(in));
    if (Result<void> drained = co_await drain(pipe, to); !drained) {
      co_return std::move(drained).error();
    }
    bytes += static_cast<uint64_t>(in);
    idle.touch();
    more_likely = static_cast<size_t>(in) == kChunk;
  }
}

SplicePipes splice_pipes() { return pool().counts(); }

size_t close_idle_splice_pipes() { return pool().close_idle(); }

}  // namespace monolake::transport
