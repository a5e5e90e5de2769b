#include "runtime/epoll/epoll_backend.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "runtime/ready_queue.h"

namespace monolake::runtime {

namespace {

constexpr size_t kScratchSize = 64 * 1024;
constexpr int kMaxEvents = 256;

enum Phase : uint8_t { kIssue = 0, kConnecting = 1 };

// Ops waiting for one direction of one fd, in arrival order.
struct WaitList {
  IoOp* head = nullptr;
  IoOp* tail = nullptr;

  bool empty() const { return head == nullptr; }
  void push(IoOp* op) {
    op->next = nullptr;
    if (tail) {
      tail->next = op;
    } else {
      head = op;
    }
    tail = op;
  }
  void pop() {
    head = head->next;
    if (!head) tail = nullptr;
  }
  bool remove(IoOp* op) {
    IoOp* prev = nullptr;
    for (IoOp* it = head; it; prev = it, it = it->next) {
      if (it != op) continue;
      if (prev) {
        prev->next = it->next;
      } else {
        head = it->next;
      }
      if (tail == it) tail = prev;
      return true;
    }
    return false;
  }
};

struct FdState {
  WaitList readers;
  WaitList writers;
  bool registered = false;
};

bool waits_for_read(const IoOp& op) {
  switch (op.code) {
    case OpCode::kAccept:
    case OpCode::kRecv:
    case OpCode::kRecvPooled:
      return true;
    case OpCode::kPoll:
      return (op.flags & POLLIN) != 0;
    default:
      return false;
  }
}

class EpollBackend final : public Backend {
 public:
  ~EpollBackend() override;
  Result<void> init();

  BackendKind kind() const override { return BackendKind::kEpoll; }
  int socket_flags() const override { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
  bool start(IoOp& op) override;
  void cancel(IoOp& op) override;
  void abandon(IoOp& op) override;
  void poll(std::optional<std::chrono::nanoseconds> timeout) override;
  void wake() override;
  void forget_fd(int fd) override;
  size_t in_flight() const override { return in_flight_; }

 private:
  // Tries the syscall. Returns false if it would block; else stores the result.
  bool attempt(IoOp& op);
  FdState& state_of(int fd);
  bool wait(IoOp& op);
  bool detach(IoOp& op);
  void on_ready(WaitList& list, uint32_t events);
  void finish(IoOp& op);

  int wait_for_events(epoll_event* events, int max, const timespec* timeout);

  int epfd_ = -1;
  bool have_pwait2_ = true;
  int wake_fd_ = -1;
  std::vector<FdState> fds_;
  size_t in_flight_ = 0;
  std::unique_ptr<char[]> scratch_{new char[kScratchSize]};
};

EpollBackend::~EpollBackend() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epfd_ >= 0) ::close(epfd_);
}

Result<void> EpollBackend::init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Error::from_errno(errno, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Error::from_errno(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return Error::from_errno(errno, "epoll_ctl(eventfd)");
  }
  return ok();
}

FdState& EpollBackend::state_of(int fd) {
  if (static_cast<size_t>(fd) >= fds_.size()) fds_.resize(static_cast<size_t>(fd) * 2 + 64);
  return fds_[static_cast<size_t>(fd)];
}

static int32_t result_of(ssize_t r) { return r < 0 ? -errno : static_cast<int32_t>(r); }

bool EpollBackend::attempt(IoOp& op) {
  int32_t r = 0;
  switch (op.code) {
    case OpCode::kAccept:
      r = result_of(::accept4(op.fd, op.addr, &op.addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC));
      break;
    case OpCode::kAcceptMultishot:
      r = -EOPNOTSUPP;
      break;
    case OpCode::kConnect:
      if (op.phase == kConnecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        r = -err;
      } else {
        r = result_of(::connect(op.fd, op.addr, op.addr_len));
        if (r == -EINPROGRESS) {
          op.phase = kConnecting;
          r = -EAGAIN;
        }
      }
      break;
    case OpCode::kRecv:
      r = result_of(::recv(op.fd, op.buf, op.len, MSG_DONTWAIT));
      break;
    case OpCode::kRecvPooled:
      r = read_available(op.fd, *op.into, scratch_.get(), kScratchSize);
      break;
    case OpCode::kSend:
      r = result_of(::send(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT));
      break;
    case OpCode::kSendmsg:
      r = result_of(::sendmsg(op.fd, op.msg, op.flags | MSG_DONTWAIT));
      break;
    case OpCode::kClose:
      forget_fd(op.fd);
      r = result_of(::close(op.fd));
      break;
    case OpCode::kShutdown:
      r = result_of(::shutdown(op.fd, op.flags));
      break;
    case OpCode::kPoll: {
      pollfd p{op.fd, static_cast<short>(op.flags), 0};
      const int n = ::poll(&p, 1, 0);
      if (n < 0) {
        r = -errno;
      } else if (n == 0) {
        r = -EAGAIN;
      } else {
        r = p.revents;
      }
      break;
    }
  }
  if (r == -EAGAIN || r == -EINTR) return false;
  op.result = r;
  return true;
}

bool EpollBackend::wait(IoOp& op) {
  FdState& state = state_of(op.fd);
  if (!state.registered) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = op.fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, op.fd, &ev) != 0 && errno != EEXIST) {
      op.result = -errno;
      return false;
    }
    state.registered = true;
  }
  (waits_for_read(op) ? state.readers : state.writers).push(&op);
  op.in_flight = true;
  ++in_flight_;
  return true;
}

bool EpollBackend::start(IoOp& op) {
  op.phase = kIssue;
  op.cancel_requested = false;
  if (attempt(op)) return true;
  return !wait(op);  // a failed registration completes at once with its error
}

bool EpollBackend::detach(IoOp& op) {
  if (!op.in_flight) return false;
  FdState& state = state_of(op.fd);
  if (!state.readers.remove(&op) && !state.writers.remove(&op)) return false;
  op.in_flight = false;
  --in_flight_;
  return true;
}

void EpollBackend::cancel(IoOp& op) {
  if (!detach(op)) return;
  op.result = -ECANCELED;
  complete_op(op, *ready_);
}

void EpollBackend::abandon(IoOp& op) {
  op.waiter = {};
  detach(op);
}

void EpollBackend::finish(IoOp& op) {
  op.in_flight = false;
  --in_flight_;
  complete_op(op, *ready_);
}

void EpollBackend::on_ready(WaitList& list, uint32_t events) {
  while (!list.empty()) {
    IoOp& op = *list.head;
    if (op.code == OpCode::kPoll) {
      op.result = static_cast<int32_t>(events);
    } else if (!attempt(op)) {
      return;  // not ready after all; wait for the next edge
    }
    list.pop();
    finish(op);
  }
}

// epoll_pwait2 (Linux 5.11) takes a nanosecond timeout; older kernels (and valgrind) answer
// ENOSYS, and then epoll_wait with the timeout rounded up to whole milliseconds is used, so a
// timer never fires early and the loop never spins.
int EpollBackend::wait_for_events(epoll_event* events, int max, const timespec* timeout) {
  if (have_pwait2_) {
    const int n = ::epoll_pwait2(epfd_, events, max, timeout, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2_ = false;
  }
  int ms = -1;
  if (timeout) {
    const int64_t ns = int64_t{timeout->tv_sec} * 1'000'000'000 + timeout->tv_nsec;
    ms = static_cast<int>(std::min<int64_t>((ns + 999'999) / 1'000'000, INT32_MAX));
  }
  return ::epoll_wait(epfd_, events, max, ms);
}

void EpollBackend::poll(std::optional<std::chrono::nanoseconds> timeout) {
  epoll_event events[kMaxEvents];
  timespec ts{};
  const timespec* tsp = nullptr;
  if (timeout) {
    ts.tv_sec = timeout->count() / 1'000'000'000;
    ts.tv_nsec = timeout->count() % 1'000'000'000;
    tsp = &ts;
  }
  const int n = wait_for_events(events, kMaxEvents, tsp);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    const uint32_t ev = events[i].events;
    if (fd == wake_fd_) {
      uint64_t value;
      ssize_t ignored = ::read(wake_fd_, &value, sizeof value);
      (void)ignored;
      continue;
    }
    FdState& state = state_of(fd);
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      on_ready(state.readers, ev & ~static_cast<uint32_t>(EPOLLOUT));
    }
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      on_ready(state.writers, ev & ~static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP));
    }
  }
}

void EpollBackend::wake() {
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void EpollBackend::forget_fd(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return;
  FdState& state = fds_[static_cast<size_t>(fd)];
  for (WaitList* list : {&state.readers, &state.writers}) {
    while (!list->empty()) {
      IoOp& op = *list->head;
      list->pop();
      op.result = -ECANCELED;
      finish(op);
    }
  }
  if (state.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  state.registered = false;
}

}  // namespace

Result<std::unique_ptr<Backend>> make_epoll_backend() {
  auto backend = std::make_unique<EpollBackend>();
  if (auto r = backend->init(); !r) return std::move(r).error();
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace monolake::runtime
