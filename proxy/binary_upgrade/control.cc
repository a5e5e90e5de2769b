#include "proxy/binary_upgrade/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/log.h"

namespace monolake::proxy::binary_upgrade {

namespace {

constexpr size_t kFdsPerMessage = 200;  // well under the kernel's SCM_MAX_FD (253)
constexpr int kIoTimeoutMs = 30000;     // one step of the exchange

Error sys_error(const std::string& what) { return Error::from_errno(errno, what); }

// Waits until `fd` is readable (or writable), up to kIoTimeoutMs.
bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  int n;
  do {
    n = ::poll(&p, 1, kIoTimeoutMs);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    if (!wait_for(fd, POLLOUT)) return false;
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads one line, a byte at a time: the sockets follow the text, and their SCM_RIGHTS data
// rides on bytes a buffered read must not swallow.
bool read_line(int fd, std::string& line) {
  line.clear();
  while (line.size() < 64 * 1024) {
    if (!wait_for(fd, POLLIN)) return false;
    char c;
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    line.push_back(c);
  }
  return false;
}

bool send_fds(int fd, const std::vector<int>& fds) {
  for (size_t at = 0; at < fds.size(); at += kFdsPerMessage) {
    const size_t n = std::min(kFdsPerMessage, fds.size() - at);
    char byte = 'F';
    iovec iov{&byte, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * n));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(cmsg), fds.data() + at, sizeof(int) * n);
    if (!wait_for(fd, POLLOUT)) return false;
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != 1) return false;
  }
  return true;
}

Result<std::vector<int>> receive_fds(int fd, size_t count) {
  std::vector<int> fds;
  while (fds.size() < count) {
    const size_t n = std::min(kFdsPerMessage, count - fds.size());
    char byte = 0;
    iovec iov{&byte, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * n));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    if (!wait_for(fd, POLLIN)) return Error(ErrorCode::kTimeout, "upgrade: no sockets came");
    if (::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) != 1 || (msg.msg_flags & MSG_CTRUNC)) {
      for (int f : fds) ::close(f);
      return Error(ErrorCode::kProtocol, "upgrade: bad socket message from the old process");
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      fds.insert(fds.end(), data, data + k);
    }
  }
  return fds;
}

Result<int> connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "control socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sys_error("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Error e = sys_error("connect to the control socket " + path);
    ::close(fd);
    return e;
  }
  return fd;
}

}  // namespace

// --- old process -----------------------------------------------------------------------------

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& path, bool replace,
                                                            Hooks hooks) {
  std::unique_ptr<ControlServer> server(new ControlServer());
  server->hooks_ = std::move(hooks);
  server->path_ = path;
  if (!replace) {
    // A live control socket means a monolake already runs with this configuration.
    Result<int> probe = connect_unix(path);
    if (probe) {
      ::close(*probe);
      return Error(ErrorCode::kInvalidArgument,
                   "control socket " + path +
                       " is in use by a running monolake (use --upgrade to replace it)");
    }
  }
  ::unlink(path.c_str());  // stale, or (upgrade) the old process's: ours replaces it
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "control socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  server->fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (server->fd_ < 0) return sys_error("socket");
  const mode_t old_mask = ::umask(0177);  // the socket file is created 0600
  const int bound = ::bind(server->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (bound != 0 || ::listen(server->fd_, 8) != 0) {
    Error e = sys_error("bind control socket " + path);
    ::close(server->fd_);
    server->fd_ = -1;
    return e;
  }
  server->file_ = transport::UnixSocketFile(path);
  server->thread_ = std::thread([s = server.get()] { s->run(); });
  return server;
}

ControlServer::~ControlServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  file_.remove_if_ours();  // not if the new process of an upgrade has bound the path since
}

void ControlServer::run() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const int connection = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    serve(connection);
    ::close(connection);
  }
}

void ControlServer::serve(int connection) {
  std::string line;
  if (!read_line(connection, line) || line != "upgrade") {
    (void)send_all(connection, "error expected \"upgrade\"\n");
    return;
  }
  ML_LOG(kInfo, "upgrade: a new process asks for the listening sockets");
  server::Handover state = hooks_.handover();
  std::ostringstream text;
  std::vector<int> fds;
  for (const auto& [address, sockets] : state.sockets) {
    text << "listener " << sockets.size() << " " << address << "\n";
    fds.insert(fds.end(), sockets.begin(), sockets.end());
  }
  text << "tickets " << state.ticket_keys << "\nend\n";
  if (!send_all(connection, text.str()) || !send_fds(connection, fds)) {
    ML_LOG(kWarn, "upgrade: the new process went away during the handover; still serving");
    return;
  }
  if (!read_line(connection, line) || line != "ready") {
    ML_LOG(kWarn, "upgrade: the new process did not get ready ({}); still serving",
           line.empty() ? "it closed the connection" : line);
    return;
  }
  ML_LOG(kInfo, "upgrade: the new process is ready; this one stops accepting and drains");
  hooks_.on_ready();
  (void)send_all(connection, "bye\n");
}

// --- new process -----------------------------------------------------------------------------

Result<server::Handover> request_handover(const std::string& path, int* connection) {
  Result<int> fd = connect_unix(path);
  if (!fd) return std::move(fd).error();
  auto fail = [&](std::string why) {
    ::close(*fd);
    return Error(ErrorCode::kProtocol, "upgrade: " + why);
  };
  if (!send_all(*fd, "upgrade\n")) return fail("could not write to the control socket");
  server::Handover handover;
  std::vector<std::pair<std::string, size_t>> counts;
  size_t total = 0;
  std::string line;
  while (true) {
    if (!read_line(*fd, line)) return fail("the old process closed the control connection");
    if (line == "end") break;
    if (line.rfind("listener ", 0) == 0) {
      std::istringstream in(line.substr(9));
      size_t n = 0;
      std::string address;
      in >> n >> address;
      if (!in || address.empty()) return fail("bad line: " + line);
      counts.emplace_back(address, n);
      total += n;
    } else if (line.rfind("tickets ", 0) == 0) {
      handover.ticket_keys = line.substr(8);
    } else {
      return fail("unexpected answer: " + line);
    }
  }
  Result<std::vector<int>> fds = receive_fds(*fd, total);
  if (!fds) {
    ::close(*fd);
    return std::move(fds).error();
  }
  size_t at = 0;
  for (const auto& [address, n] : counts) {
    handover.sockets[address].assign(fds->begin() + at, fds->begin() + at + n);
    at += n;
  }
  *connection = *fd;
  return handover;
}

Result<void> confirm_ready(int connection) {
  // Bounded: an old process that hangs must not keep this one from accepting.
  timeval limit{};
  limit.tv_sec = 5;
  ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string line;
  const bool ok_sent = send_all(connection, "ready\n") && read_line(connection, line);
  ::close(connection);
  if (!ok_sent || line != "bye") {
    return Error(ErrorCode::kProtocol, "upgrade: the old process did not acknowledge");
  }
  return ok();
}

}  // namespace monolake::proxy::binary_upgrade
