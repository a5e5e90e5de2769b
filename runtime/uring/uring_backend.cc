#include "runtime/uring/uring_backend.h"

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/log.h"
#include "runtime/ready_queue.h"

namespace monolake::runtime {

namespace {

constexpr uint16_t kBufferGroup = 0;
constexpr size_t kScratchSize = 64 * 1024;

// IoOp::phase values for this backend.
enum Phase : uint8_t {
  kIssue = 0,      // the op itself is submitted
  kPollThenRetry,  // the op said EAGAIN; waiting for readiness, then resubmit it
  kPollConnect,    // connect said EINPROGRESS; waiting for POLLOUT, then read SO_ERROR
  kPollThenRead,   // read_some without a usable buffer ring: readiness, then read here
};

struct OpcodeNeed {
  int opcode;
  const char* name;
};

constexpr OpcodeNeed kNeededOpcodes[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_SHUTDOWN, "SHUTDOWN"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_READ, "READ"},
};

int sysctl_io_uring_disabled() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = 0;
  if (in >> value) return value;
  return 0;  // absent on kernels before 6.6: enabled
}

class UringBackend final : public Backend {
 public:
  UringBackend() = default;
  ~UringBackend() override;

  Result<void> init(const RuntimeOptions& options);

  BackendKind kind() const override { return BackendKind::kIoUring; }
  int socket_flags() const override { return SOCK_CLOEXEC; }
  bool start(IoOp& op) override;
  void cancel(IoOp& op) override;
  void abandon(IoOp& op) override;
  void poll(std::optional<std::chrono::nanoseconds> timeout) override;
  void wake() override;
  void forget_fd(int fd) override;
  bool supports_multishot_accept() const override { return multishot_accept_; }
  size_t in_flight() const override { return in_flight_; }

 private:
  io_uring_sqe* get_sqe();
  void submit(IoOp& op);
  void prep(IoOp& op, io_uring_sqe* sqe);
  void submit_poll(IoOp& op, uint32_t events, uint8_t phase);
  void process_completions();
  void handle(io_uring_cqe* cqe);
  // Returns true when the op was resubmitted (no completion yet).
  bool continue_pooled_read(IoOp& op, int32_t res, uint32_t flags);
  bool continue_after_poll(IoOp& op, int32_t res);
  void finish(IoOp& op, int32_t res);
  void arm_wake();
  Result<void> setup_buffer_ring(const RuntimeOptions& options);
  void recycle_buffer(uint16_t bid);

  io_uring ring_{};
  bool ring_ready_ = false;
  bool multishot_accept_ = false;
  size_t in_flight_ = 0;
  // Operations in flight per fd, so a close cancels (a syscall) only when something is pending.
  std::vector<uint32_t> pending_by_fd_;
  void track(int fd, int delta) {
    if (fd < 0) return;
    if (static_cast<size_t>(fd) >= pending_by_fd_.size()) {
      pending_by_fd_.resize(static_cast<size_t>(fd) * 2 + 64);
    }
    pending_by_fd_[static_cast<size_t>(fd)] += static_cast<uint32_t>(delta);
  }
  bool has_pending(int fd) const {
    return fd >= 0 && static_cast<size_t>(fd) < pending_by_fd_.size() &&
           pending_by_fd_[static_cast<size_t>(fd)] > 0;
  }

  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  IoOp wake_op_;

  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  std::unique_ptr<char[]> buf_memory_;
  unsigned buf_count_ = 0;
  unsigned buf_size_ = 0;
  std::unique_ptr<char[]> scratch_{new char[kScratchSize]};
};

UringBackend::~UringBackend() {
  if (ring_ready_) {
    if (buf_ring_) io_uring_unregister_buf_ring(&ring_, kBufferGroup);
    io_uring_queue_exit(&ring_);
  }
  if (buf_ring_) munmap(buf_ring_, buf_ring_bytes_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Result<void> UringBackend::init(const RuntimeOptions& options) {
  if (sysctl_io_uring_disabled() == 2) {
    return Error(ErrorCode::kUnsupported, "kernel.io_uring_disabled=2");
  }
  io_uring_params params{};
  unsigned base_flags = 0;
  if (options.sqpoll_idle_ms) {
    base_flags |= IORING_SETUP_SQPOLL;
    params.sq_thread_idle = *options.sqpoll_idle_ms;
  }
  // Newer flags first; older kernels reject them with EINVAL, so retry without.
  // DEFER_TASKRUN (6.1): completions are posted only when this thread enters the kernel to
  // wait for them (poll()), not by task work that interrupts it while it runs tasks; with
  // TASKRUN_FLAG, liburing enters when some are pending even if nothing is to be submitted.
  // It needs SINGLE_ISSUER: a runtime's ring is only used by the thread that made it.
  const unsigned extra_flag_sets[] = {
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
          IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
          IORING_SETUP_SINGLE_ISSUER,
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      0,
  };
  int r = -EINVAL;
  for (unsigned extra : extra_flag_sets) {
    if (options.sqpoll_idle_ms) {
      extra &=
          ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_DEFER_TASKRUN);
    }
    params.flags = base_flags | extra;
    r = io_uring_queue_init_params(options.entries, &ring_, &params);
    if (r != -EINVAL) break;
  }
  if (r == -ENOSYS) return Error(ErrorCode::kUnsupported, "io_uring_setup: ENOSYS", ENOSYS);
  if (r == -EPERM) {
    return Error(ErrorCode::kUnsupported,
                 "io_uring_setup: EPERM (seccomp filter or kernel.io_uring_disabled)", EPERM);
  }
  if (r < 0) return Error::from_errno(-r, "io_uring_setup");
  ring_ready_ = true;

  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) return Error(ErrorCode::kUnsupported, "io_uring probe failed");
  for (const OpcodeNeed& need : kNeededOpcodes) {
    if (!io_uring_opcode_supported(probe, need.opcode)) {
      io_uring_free_probe(probe);
      return Error(ErrorCode::kUnsupported, fmt::format("io_uring lacks opcode {}", need.name));
    }
  }
  // Multishot accept arrived in 5.19 together with IORING_OP_SOCKET.
  multishot_accept_ = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
  io_uring_free_probe(probe);

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Error::from_errno(errno, "eventfd");
  arm_wake();

  if (auto ring = setup_buffer_ring(options); !ring) {
    ML_LOG(kDebug, "io_uring: no provided-buffer ring ({}); read_some polls first",
           ring.error().to_string());
  }
  return ok();
}

Result<void> UringBackend::setup_buffer_ring(const RuntimeOptions& options) {
  const unsigned count = options.pooled_buffers;
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    return Error(ErrorCode::kInvalidArgument, "pooled_buffers must be a power of two <= 32768");
  }
  const size_t bytes = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return Error::from_errno(errno, "mmap buffer ring");
  auto* ring = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(ring);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = count;
  reg.bgid = kBufferGroup;
  const int r = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (r < 0) {
    munmap(mem, bytes);
    return Error::from_errno(-r, "io_uring_register_buf_ring");
  }
  buf_ring_ = ring;
  buf_ring_bytes_ = bytes;
  buf_count_ = count;
  buf_size_ = options.pooled_buffer_size;
  buf_memory_.reset(new char[static_cast<size_t>(count) * buf_size_]);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(ring, buf_memory_.get() + static_cast<size_t>(i) * buf_size_, buf_size_,
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(ring, static_cast<int>(count));
  return ok();
}

void UringBackend::recycle_buffer(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buf_memory_.get() + static_cast<size_t>(bid) * buf_size_,
                        buf_size_, bid, io_uring_buf_ring_mask(buf_count_), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

io_uring_sqe* UringBackend::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void UringBackend::arm_wake() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data(sqe, &wake_op_);
}

void UringBackend::wake() {
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void UringBackend::prep(IoOp& op, io_uring_sqe* sqe) {
  switch (op.code) {
    case OpCode::kAccept:
      io_uring_prep_accept(sqe, op.fd, op.addr, &op.addr_len, SOCK_CLOEXEC);
      break;
    case OpCode::kAcceptMultishot:
      io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, SOCK_CLOEXEC);
      break;
    case OpCode::kConnect:
      io_uring_prep_connect(sqe, op.fd, op.addr, op.addr_len);
      break;
    case OpCode::kRecv:
      io_uring_prep_recv(sqe, op.fd, op.buf, op.len, 0);
      break;
    case OpCode::kRecvPooled:
      io_uring_prep_recv(sqe, op.fd, nullptr, buf_size_, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufferGroup;
      break;
    case OpCode::kSend:
      io_uring_prep_send(sqe, op.fd, op.buf, op.len, op.flags);
      break;
    case OpCode::kSendmsg:
      io_uring_prep_sendmsg(sqe, op.fd, op.msg, static_cast<unsigned>(op.flags));
      break;
    case OpCode::kClose:
      io_uring_prep_close(sqe, op.fd);
      break;
    case OpCode::kShutdown:
      io_uring_prep_shutdown(sqe, op.fd, op.flags);
      break;
    case OpCode::kPoll:
      io_uring_prep_poll_add(sqe, op.fd, static_cast<unsigned>(op.flags));
      break;
  }
  io_uring_sqe_set_data(sqe, &op);
}

void UringBackend::submit(IoOp& op) { prep(op, get_sqe()); }

void UringBackend::submit_poll(IoOp& op, uint32_t events, uint8_t phase) {
  op.phase = phase;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_poll_add(sqe, op.fd, events);
  io_uring_sqe_set_data(sqe, &op);
}

void UringBackend::forget_fd(int fd) {
  // io_uring holds its own reference to the file, so ops still pending on `fd` would outlive
  // the close: they would never complete, and the socket would stay open (no FIN to the peer).
  // Cancel them first, as the epoll backend does. Wait for the cancel itself, so it is matched
  // against this file and not a later one that reuses the number (SQPOLL issues it late).
  if (!has_pending(fd)) return;
  IoOp cancel;
  cancel.in_flight = true;
  cancel.cancel_requested = true;  // its completion is final, whatever the result
  ++in_flight_;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data(sqe, &cancel);
  while (cancel.in_flight) {
    io_uring_submit_and_wait(&ring_, 1);
    process_completions();
  }
}

bool UringBackend::start(IoOp& op) {
  if (op.code == OpCode::kShutdown) {
    // shutdown(2) on a socket never blocks, and io_uring hands IORING_OP_SHUTDOWN to a worker
    // thread (a context switch or two per connection): do it here.
    op.result = ::shutdown(op.fd, op.flags) == 0 ? 0 : -errno;
    return true;
  }
  if (op.code == OpCode::kClose) forget_fd(op.fd);  // same reason as for a synchronous close
  op.in_flight = true;
  op.cancel_requested = false;
  ++in_flight_;
  track(op.fd, +1);
  if (op.code == OpCode::kRecvPooled && buf_ring_ == nullptr) {
    submit_poll(op, POLLIN, kPollThenRead);
  } else {
    op.phase = kIssue;
    submit(op);
  }
  return false;
}

void UringBackend::cancel(IoOp& op) {
  if (!op.in_flight || op.cancel_requested) return;
  op.cancel_requested = true;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(&op), 0);
  io_uring_sqe_set_data(sqe, nullptr);
}

void UringBackend::abandon(IoOp& op) {
  op.waiter = {};
  cancel(op);
  while (op.in_flight) {
    io_uring_submit_and_wait(&ring_, 1);
    process_completions();
  }
}

void UringBackend::poll(std::optional<std::chrono::nanoseconds> timeout) {
  if (timeout && timeout->count() == 0) {
    io_uring_submit(&ring_);
  } else if (timeout) {
    __kernel_timespec ts{};
    ts.tv_sec = timeout->count() / 1'000'000'000;
    ts.tv_nsec = timeout->count() % 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  } else {
    io_uring_submit_and_wait(&ring_, 1);
  }
  process_completions();
}

void UringBackend::process_completions() {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    handle(cqe);
  }
  io_uring_cq_advance(&ring_, count);
}

void UringBackend::handle(io_uring_cqe* cqe) {
  auto* op = static_cast<IoOp*>(io_uring_cqe_get_data(cqe));
  if (op == nullptr) return;  // a cancel request's own completion
  if (op == &wake_op_) {
    arm_wake();
    return;
  }
  const int32_t res = cqe->res;
  if (op->code == OpCode::kAcceptMultishot) {
    op->result = res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
      op->in_flight = false;
      --in_flight_;
      track(op->fd, -1);
    }
    complete_op(*op, *ready_);
    return;
  }
  if (op->phase != kIssue) {
    if (continue_after_poll(*op, res)) return;
    return;
  }
  if (op->code == OpCode::kRecvPooled) {
    if (continue_pooled_read(*op, res, cqe->flags)) return;
    return;
  }
  if ((res == -EAGAIN || (res == -EINPROGRESS && op->code == OpCode::kConnect)) &&
      !op->cancel_requested) {
    const bool reads = op->code == OpCode::kAccept || op->code == OpCode::kRecv;
    submit_poll(*op, reads ? POLLIN : POLLOUT,
                op->code == OpCode::kConnect ? kPollConnect : kPollThenRetry);
    return;
  }
  finish(*op, res);
}

bool UringBackend::continue_pooled_read(IoOp& op, int32_t res, uint32_t flags) {
  if (flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0) op.into->append(buf_memory_.get() + static_cast<size_t>(bid) * buf_size_, res);
    recycle_buffer(bid);
  }
  if ((res == -ENOBUFS || res == -EAGAIN) && !op.cancel_requested) {
    // Every shared buffer is in use: wait for readiness and read with our scratch instead.
    submit_poll(op, POLLIN, kPollThenRead);
    return true;
  }
  finish(op, res);
  return false;
}

bool UringBackend::continue_after_poll(IoOp& op, int32_t res) {
  if (res < 0 || op.cancel_requested) {
    finish(op, res < 0 ? res : -ECANCELED);
    return false;
  }
  switch (op.phase) {
    case kPollThenRetry:
      op.phase = kIssue;
      submit(op);
      return true;
    case kPollConnect: {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      finish(op, -err);
      return false;
    }
    case kPollThenRead: {
      const int32_t n = read_available(op.fd, *op.into, scratch_.get(), kScratchSize);
      if (n == -EAGAIN) {
        submit_poll(op, POLLIN, kPollThenRead);
        return true;
      }
      finish(op, n);
      return false;
    }
    default:
      finish(op, res);
      return false;
  }
}

void UringBackend::finish(IoOp& op, int32_t res) {
  op.result = res;
  op.in_flight = false;
  --in_flight_;
  track(op.fd, -1);
  complete_op(op, *ready_);
}

}  // namespace

Result<std::unique_ptr<Backend>> make_uring_backend(const RuntimeOptions& options) {
  auto backend = std::make_unique<UringBackend>();
  if (auto r = backend->init(options); !r) return std::move(r).error();
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace monolake::runtime
