#include "runtime/internal/backend.h"

#include <sys/socket.h>

#include <cerrno>

#include "runtime/ready_queue.h"

namespace monolake::runtime {

namespace {
// Below this much free space, reading straight into the caller's buffer is not worth an iovec.
constexpr size_t kMinDirectSpace = 512;
}  // namespace

int32_t read_available(int fd, IoBuffer& into, char* scratch, size_t scratch_size) {
  iovec iov[2];
  size_t count = 0;
  const size_t direct = into.writable_size() >= kMinDirectSpace ? into.writable_size() : 0;
  if (direct) iov[count++] = {into.write_ptr(), direct};
  iov[count++] = {scratch, scratch_size};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  const size_t got = static_cast<size_t>(n);
  const size_t in_place = got < direct ? got : direct;
  into.commit(in_place);
  if (got > in_place) into.append(scratch, got - in_place);
  return static_cast<int32_t>(n);
}

void complete_op(IoOp& op, ReadyQueue& ready) {
  if (op.on_complete) {
    op.on_complete(&op);
  } else if (op.waiter) {
    ready.push(op.waiter);
  }
}

}  // namespace monolake::runtime
