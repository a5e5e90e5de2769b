#include "runtime/io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/internal/backend.h"
#include "runtime/runtime.h"

namespace monolake::runtime {

namespace {
constexpr size_t kDefaultRecvReserve = 16 * 1024;

Backend& backend() { return Runtime::current()->backend(); }

Error error_of(int32_t result) { return Error::from_errno(-result); }
}  // namespace

OpAwaiter::~OpAwaiter() {
  if (op_.in_flight) backend().abandon(op_);
  if (cancel_) cancel_->clear_handler();
}

bool OpAwaiter::suspend(std::coroutine_handle<> h, CancelState* cancel) {
  if (cancel && cancel->cancelled()) {
    op_.result = -ECANCELED;
    return false;
  }
  op_.waiter = h;
  if (backend().start(op_)) return false;  // finished at once
  if (cancel) {
    cancel_ = cancel;
    cancel->set_handler(&OpAwaiter::on_cancel, this);
  }
  return true;
}

void OpAwaiter::on_cancel(void* p) {
  auto* self = static_cast<OpAwaiter*>(p);
  self->cancel_ = nullptr;  // the state dropped its handler before calling us
  if (self->op_.in_flight) backend().cancel(self->op_);
}

int32_t OpAwaiter::take_result() {
  if (cancel_) {
    cancel_->clear_handler();
    cancel_ = nullptr;
  }
  return op_.result;
}

RecvAwaiter::RecvAwaiter(int fd, IoBuffer buffer)
    : OpAwaiter(OpCode::kRecv, fd), buffer_(std::move(buffer)) {
  if (buffer_.writable_size() == 0) buffer_.reserve(kDefaultRecvReserve);
  op_.buf = buffer_.write_ptr();
  op_.len = static_cast<uint32_t>(buffer_.writable_size());
}

BufResult<size_t> RecvAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return {error_of(r), std::move(buffer_)};
  buffer_.commit(static_cast<size_t>(r));
  return {static_cast<size_t>(r), std::move(buffer_)};
}

ReadSomeAwaiter::ReadSomeAwaiter(int fd, IoBuffer& into) : OpAwaiter(OpCode::kRecvPooled, fd) {
  op_.into = &into;
}

Result<size_t> ReadSomeAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return error_of(r);
  return static_cast<size_t>(r);
}

SendAwaiter::SendAwaiter(int fd, IoBuffer buffer)
    : OpAwaiter(OpCode::kSend, fd), buffer_(std::move(buffer)) {
  op_.buf = buffer_.data();
  op_.len = static_cast<uint32_t>(buffer_.size());
  op_.flags = MSG_NOSIGNAL;
}

BufResult<size_t> SendAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return {error_of(r), std::move(buffer_)};
  buffer_.consume(static_cast<size_t>(r));
  return {static_cast<size_t>(r), std::move(buffer_)};
}

SendChainAwaiter::SendChainAwaiter(int fd, BufferChain chain)
    : OpAwaiter(OpCode::kSendmsg, fd), chain_(std::move(chain)) {
  msg_.msg_iov = iov_;
  msg_.msg_iovlen = chain_.fill_iovecs(iov_, kMaxIovecs);
  op_.msg = &msg_;
  op_.flags = MSG_NOSIGNAL;
}

ChainResult SendChainAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return {error_of(r), std::move(chain_)};
  chain_.consume(static_cast<size_t>(r));
  return {static_cast<size_t>(r), std::move(chain_)};
}

AcceptAwaiter::AcceptAwaiter(int listen_fd) : OpAwaiter(OpCode::kAccept, listen_fd) {
  op_.addr = reinterpret_cast<sockaddr*>(&peer_);
  op_.addr_len = sizeof peer_;
}

Result<AcceptedSocket> AcceptAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return error_of(r);
  AcceptedSocket s;
  s.fd = r;
  s.peer = peer_;
  s.peer_len = op_.addr_len;
  return s;
}

ConnectAwaiter::ConnectAwaiter(int fd, const sockaddr* addr, socklen_t len)
    : OpAwaiter(OpCode::kConnect, fd) {
  std::memcpy(&addr_, addr, std::min<size_t>(len, sizeof addr_));
  op_.addr = reinterpret_cast<sockaddr*>(&addr_);
  op_.addr_len = len;
}

Result<void> ConnectAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return error_of(r);
  return ok();
}

SimpleAwaiter::SimpleAwaiter(OpCode code, int fd, int flags) : OpAwaiter(code, fd) {
  op_.flags = flags;
}

Result<void> SimpleAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return error_of(r);
  return ok();
}

PollAwaiter::PollAwaiter(int fd, uint32_t events) : OpAwaiter(OpCode::kPoll, fd) {
  op_.flags = static_cast<int>(events);
}

Result<uint32_t> PollAwaiter::await_resume() {
  const int32_t r = take_result();
  if (r < 0) return error_of(r);
  return static_cast<uint32_t>(r);
}

Task<BufResult<size_t>> send_all(int fd, IoBuffer buffer) {
  size_t total = 0;
  while (!buffer.empty()) {
    auto [sent, rest] = co_await send(fd, std::move(buffer));
    buffer = std::move(rest);
    if (!sent) co_return BufResult<size_t>{std::move(sent).error(), std::move(buffer)};
    total += *sent;
  }
  co_return BufResult<size_t>{total, std::move(buffer)};
}

Task<ChainResult> send_all(int fd, BufferChain chain) {
  size_t total = 0;
  while (!chain.empty()) {
    auto [sent, rest] = co_await send_chain(fd, std::move(chain));
    chain = std::move(rest);
    if (!sent) co_return ChainResult{std::move(sent).error(), std::move(chain)};
    total += *sent;
  }
  co_return ChainResult{total, std::move(chain)};
}

int socket_flags() { return backend().socket_flags(); }

// --- Acceptor ---------------------------------------------------------------------------

class Acceptor::WaitAwaiter {
 public:
  explicit WaitAwaiter(Acceptor* acceptor) : acceptor_(acceptor) {}
  ~WaitAwaiter() {
    if (acceptor_->waiter_ == handle_ && handle_) acceptor_->waiter_ = {};
    if (cancel_) cancel_->clear_handler();
  }
  bool await_ready() const noexcept { return !acceptor_->ready_.empty(); }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    handle_ = h;
    acceptor_->waiter_ = h;
    CancelState* cancel = detail::cancel_state_of(h);
    if (cancel) {
      if (cancel->cancelled()) {
        on_cancel(this);
        return;
      }
      cancel_ = cancel;
      cancel->set_handler(&WaitAwaiter::on_cancel, this);
    }
  }
  bool await_resume() {
    if (cancel_) {
      cancel_->clear_handler();
      cancel_ = nullptr;
    }
    return !cancelled_;
  }

 private:
  static void on_cancel(void* p) {
    auto* self = static_cast<WaitAwaiter*>(p);
    self->cancel_ = nullptr;
    // Already woken by a connection: it is scheduled, so scheduling it again would resume twice.
    if (self->acceptor_->waiter_ != self->handle_) return;
    self->cancelled_ = true;
    self->acceptor_->waiter_ = {};
    Runtime::current()->schedule(self->handle_);
  }

  Acceptor* acceptor_;
  std::coroutine_handle<> handle_;
  CancelState* cancel_ = nullptr;
  bool cancelled_ = false;
};

Acceptor::Acceptor(int listen_fd)
    : listen_fd_(listen_fd), multishot_(backend().supports_multishot_accept()) {
  op_.code = OpCode::kAcceptMultishot;
  op_.fd = listen_fd;
  op_.on_complete = &Acceptor::on_accepted;
  op_.context = this;
}

std::vector<int> Acceptor::take_ready() {
  std::vector<int> fds;
  while (!ready_.empty()) {
    if (ready_.front() >= 0) fds.push_back(ready_.front());
    ready_.pop_front();
  }
  return fds;
}

Task<std::vector<int>> Acceptor::stop() {
  stopping_ = true;
  if (multishot_ && op_.in_flight) {
    backend().cancel(op_);
    struct LastCompletion {
      Acceptor* self;
      bool await_ready() const noexcept { return !self->op_.in_flight; }
      void await_suspend(std::coroutine_handle<> h) noexcept { self->stop_waiter_ = h; }
      void await_resume() const noexcept {}
    };
    while (op_.in_flight) co_await LastCompletion{this};
  }
  co_return take_ready();
}

Acceptor::~Acceptor() {
  if (op_.in_flight) backend().abandon(op_);
  for (int32_t fd : ready_) {
    if (fd >= 0) ::close(fd);
  }
}

void Acceptor::on_accepted(IoOp* op) {
  auto* self = static_cast<Acceptor*>(op->context);
  if (self->stopping_) {
    if (op->result >= 0) self->ready_.push_back(op->result);
    if (!op->in_flight && self->stop_waiter_) {
      Runtime::current()->schedule(std::exchange(self->stop_waiter_, {}));
    }
    return;
  }
  if (op->result == -EAGAIN && !op->in_flight) {
    // A non-blocking listener can end the multishot with EAGAIN: re-arm it now if someone
    // waits, else at the next accept().
    if (self->waiter_) backend().start(*op);
    return;
  }
  self->ready_.push_back(op->result);
  if (self->waiter_) Runtime::current()->schedule(std::exchange(self->waiter_, {}));
}

Task<Result<AcceptedSocket>> Acceptor::accept() {
  if (!multishot_) co_return co_await runtime::accept(listen_fd_);
  ML_CHECK_MSG(!waiter_, "Acceptor::accept() called concurrently");
  if (ready_.empty() && !op_.in_flight) {
    op_.result = 0;
    backend().start(op_);
  }
  if (!co_await WaitAwaiter(this)) co_return Error(ErrorCode::kCancelled);
  const int32_t r = ready_.front();
  ready_.pop_front();
  if (r < 0) co_return error_of(r);
  AcceptedSocket s;
  s.fd = r;
  s.peer_len = sizeof s.peer;
  if (::getpeername(r, reinterpret_cast<sockaddr*>(&s.peer), &s.peer_len) != 0) {
    s.peer_len = 0;
  }
  co_return s;
}

}  // namespace monolake::runtime
