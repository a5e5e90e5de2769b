// IoOp: one I/O operation as the reactor backends see it. Awaiters in io.h embed an IoOp in the
// awaiting coroutine's frame; a backend starts it and, when it finishes, stores the result and
// schedules the waiter. While in_flight is true the kernel may still read or write the memory
// the op points at, so whoever owns an in-flight op must not free it: awaiters that are
// destroyed early call Backend::abandon(), which cancels the op and waits for its completion.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <coroutine>
#include <cstdint>

namespace monolake {
class IoBuffer;
}

namespace monolake::runtime {

enum class OpCode : uint8_t {
  kAccept,           // accept one connection; result: the new fd
  kAcceptMultishot,  // io_uring only: keeps accepting; on_complete runs per connection
  kConnect,          // result: 0
  kRecv,             // into buf/len; result: bytes (0 = end of stream)
  kRecvPooled,       // waits for data holding no buffer of the caller's; appends to `into`
  kSend,             // from buf/len; result: bytes sent
  kSendmsg,          // msg (iovecs); result: bytes sent
  kClose,            // result: 0
  kShutdown,         // how in `flags`; result: 0
  kPoll,             // readiness: POLLIN/POLLOUT mask in `flags`; result: revents
};

struct IoOp {
  OpCode code = OpCode::kRecv;
  int fd = -1;

  // Arguments (which ones depends on the code).
  void* buf = nullptr;
  uint32_t len = 0;
  int flags = 0;
  msghdr* msg = nullptr;
  sockaddr* addr = nullptr;
  socklen_t addr_len = 0;
  IoBuffer* into = nullptr;  // kRecvPooled destination

  // Completion. result is the syscall's return value, or -errno.
  int32_t result = 0;
  uint32_t cqe_flags = 0;
  std::coroutine_handle<> waiter;
  // When set, called on each completion instead of scheduling `waiter` (multishot ops,
  // abandoned ops).
  void (*on_complete)(IoOp* op) = nullptr;
  void* context = nullptr;

  // Backend bookkeeping.
  bool in_flight = false;
  bool cancel_requested = false;
  uint8_t phase = 0;     // backend-private state machine (e.g. "polling before retry")
  IoOp* next = nullptr;  // backend-private intrusive list link
};

}  // namespace monolake::runtime
