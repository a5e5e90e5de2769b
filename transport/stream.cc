#include "transport/stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::transport {

namespace {

void close_now(int fd) {
  if (fd < 0) return;
  if (runtime::Runtime* rt = runtime::Runtime::current()) {
    rt->close_fd(fd);
  } else {
    ::close(fd);
  }
}

Result<void> set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    return Error::from_errno(errno, what);
  }
  return ok();
}

Task<Result<void>> connect_fd(int fd, SocketAddress address) {
  co_return co_await runtime::connect(fd, address.data(), address.size());
}

}  // namespace

Stream::~Stream() { close_now(fd_); }

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    close_now(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Task<Result<Stream>> Stream::connect(SocketAddress address, ConnectOptions options) {
  const int fd = ::socket(address.family(), SOCK_STREAM | runtime::socket_flags(), 0);
  if (fd < 0) co_return Error::from_errno(errno, "socket");
  Stream stream(fd);
  if (options.nodelay && !address.is_unix()) (void)stream.set_nodelay(true);
  Result<void> connected = co_await runtime::with_timeout(connect_fd(fd, address), options.timeout);
  if (!connected) {
    const Error& e = connected.error();
    co_return Error(e.code(), "connect " + address.to_string(), e.sys_errno());
  }
  co_return stream;
}

Task<Result<void>> Stream::close() {
  if (fd_ < 0) co_return ok();
  co_return co_await runtime::close(std::exchange(fd_, -1));
}

Result<void> Stream::set_nodelay(bool on) {
  return set_int_option(fd_, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
}

Result<void> Stream::set_keepalive(const KeepAlive& k) {
  if (auto r = set_int_option(fd_, SOL_SOCKET, SO_KEEPALIVE, k.enabled ? 1 : 0, "SO_KEEPALIVE");
      !r || !k.enabled) {
    return r;
  }
  if (auto r = set_int_option(fd_, IPPROTO_TCP, TCP_KEEPIDLE, k.idle_seconds, "TCP_KEEPIDLE"); !r) {
    return r;
  }
  if (auto r = set_int_option(fd_, IPPROTO_TCP, TCP_KEEPINTVL, k.interval_seconds, "TCP_KEEPINTVL");
      !r) {
    return r;
  }
  return set_int_option(fd_, IPPROTO_TCP, TCP_KEEPCNT, k.probes, "TCP_KEEPCNT");
}

// --- Listener -------------------------------------------------------------------------------

Listener::~Listener() {
  acceptor_.reset();
  close_now(fd_);
}

Listener::Listener(Listener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      nodelay_(other.nodelay_),
      acceptor_(std::move(other.acceptor_)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    acceptor_.reset();
    close_now(fd_);
    fd_ = std::exchange(other.fd_, -1);
    nodelay_ = other.nodelay_;
    acceptor_ = std::move(other.acceptor_);
  }
  return *this;
}

static Result<void> prepare_unix_path(const SocketAddress& address, const ListenOptions& options) {
  if (!options.unlink_stale_unix) return ok();
  const std::string path = address.to_string().substr(5);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Error(ErrorCode::kInvalidArgument,
                   "bind " + path + ": exists and is not a socket; not replacing it");
    }
    // Stale only if nobody listens there: never take the path from a running server.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const bool refused = probe >= 0 && ::connect(probe, address.data(), address.size()) != 0 &&
                         errno == ECONNREFUSED;
    if (probe >= 0) ::close(probe);
    if (!refused) {
      return Error(ErrorCode::kInvalidArgument,
                   "bind " + path + ": a server is listening there; not replacing it");
    }
    ::unlink(path.c_str());
  }
  return ok();
}

Result<Listener> Listener::bind(const SocketAddress& address, const ListenOptions& options) {
  if (!address.valid()) return Error(ErrorCode::kInvalidArgument, "bind: empty address");
  // Listening sockets are created non-blocking whatever the backend: they may be handed to
  // another process or runtime later.
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error::from_errno(errno, "socket");
  Listener listener(fd);
  listener.nodelay_ = options.nodelay && !address.is_unix();
  if (address.is_unix()) {
    if (auto r = prepare_unix_path(address, options); !r) return std::move(r).error();
  } else {
    if (options.reuse_addr) (void)set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (options.reuse_port) {
      if (auto r = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !r) {
        return std::move(r).error();
      }
    }
    if (address.family() == AF_INET6) {
      (void)set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.ipv6_only ? 1 : 0, "IPV6_V6ONLY");
    }
  }
  if (::bind(fd, address.data(), address.size()) != 0) {
    return Error::from_errno(errno, "bind " + address.to_string());
  }
  if (address.is_unix() && options.unix_mode != 0) {
    const std::string path = address.to_string().substr(5);
    if (::chmod(path.c_str(), options.unix_mode) != 0) {
      return Error::from_errno(errno, "chmod " + path);
    }
  }
  if (::listen(fd, options.backlog) != 0) {
    return Error::from_errno(errno, "listen " + address.to_string());
  }
  return listener;
}

Result<Listener> Listener::adopt(int fd) {
  int listening = 0;
  socklen_t len = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) {
    return Error::from_errno(errno, "adopt listener");
  }
  if (!listening) return Error(ErrorCode::kInvalidArgument, "adopt: fd is not listening");
  int domain = AF_UNIX;
  len = sizeof domain;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  Listener listener(fd);
  listener.nodelay_ = domain != AF_UNIX;
  return listener;
}

Task<std::vector<Stream>> Listener::stop_accepting() {
  std::vector<Stream> streams;
  if (!acceptor_) co_return streams;
  for (int fd : co_await acceptor_->stop()) {
    Stream stream(fd);
    if (nodelay_) (void)stream.set_nodelay(true);
    streams.push_back(std::move(stream));
  }
  co_return streams;
}

UnixSocketFile::UnixSocketFile(std::string path) : path_(std::move(path)) {
  struct stat st {};
  if (!path_.empty() && ::stat(path_.c_str(), &st) == 0) {
    device_ = st.st_dev;
    inode_ = st.st_ino;
  } else {
    path_.clear();
  }
}

void UnixSocketFile::remove_if_ours() {
  struct stat st {};
  if (!path_.empty() && ::stat(path_.c_str(), &st) == 0 && st.st_dev == device_ &&
      st.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
  path_.clear();
}

int Listener::release() {
  acceptor_.reset();
  return std::exchange(fd_, -1);
}

Task<Result<Stream>> Listener::accept() {
  if (!acceptor_) acceptor_ = std::make_unique<runtime::Acceptor>(fd_);
  Result<runtime::AcceptedSocket> accepted = co_await acceptor_->accept();
  if (!accepted) co_return std::move(accepted).error();
  Stream stream(accepted->fd);
  if (nodelay_) (void)stream.set_nodelay(true);
  co_return stream;
}

}  // namespace monolake::transport
