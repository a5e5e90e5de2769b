#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "proxy/server/internal/worker.h"
#include "proxy/server/server.h"

namespace monolake::proxy::server {

namespace {

// One listening socket per worker: SO_REUSEPORT sockets for TCP (the kernel spreads new
// connections across them), or one Unix socket dup'ed for each worker.
Result<std::vector<transport::Listener>> bind_per_worker(const transport::SocketAddress& address,
                                                         size_t workers) {
  std::vector<transport::Listener> out;
  transport::ListenOptions options;
  if (address.is_unix()) {
    Result<transport::Listener> first = transport::Listener::bind(address, options);
    if (!first) return std::move(first).error();
    for (size_t i = 1; i < workers; ++i) {
      const int fd = ::fcntl(first->fd(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return Error::from_errno(errno, "dup " + address.to_string());
      Result<transport::Listener> copy = transport::Listener::adopt(fd);
      if (!copy) {
        ::close(fd);
        return std::move(copy).error();
      }
      out.push_back(std::move(*copy));
    }
    out.insert(out.begin(), std::move(*first));
    return out;
  }
  options.reuse_port = true;
  for (size_t i = 0; i < workers; ++i) {
    Result<transport::Listener> listener = transport::Listener::bind(address, options);
    if (!listener) return std::move(listener).error();
    out.push_back(std::move(*listener));
  }
  return out;
}

}  // namespace

ListenerShared::~ListenerShared() { close_handover(); }

void ListenerShared::close_handover() {
  for (int fd : handover_fds) ::close(fd);
  handover_fds.clear();
}

namespace {
int dup_fd(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }
}  // namespace

// The sockets each worker accepts on for a new address: the ones inherited from the process
// being replaced when it had this address (distributed over the workers), else freshly bound.
// `shared.handover_fds` gets a duplicate of each socket for a later upgrade.
Result<std::vector<std::vector<transport::Listener>>> Proxy::listeners_for(
    const std::string& address, const transport::SocketAddress& socket_address,
    ListenerShared& shared) {
  const size_t workers = worker_states_.size();
  std::vector<std::vector<transport::Listener>> per_worker(workers);
  auto inherited = inherited_.sockets.find(address);
  if (inherited != inherited_.sockets.end() && !inherited->second.empty()) {
    std::vector<int> fds = std::move(inherited->second);
    inherited_.sockets.erase(inherited);
    // Every inherited socket gets a worker (several per worker when there are more sockets
    // than workers), and every worker a socket (shared when there are fewer).
    for (size_t n = 0; n < std::max(fds.size(), workers); ++n) {
      const int fd = dup_fd(fds[n % fds.size()]);
      if (fd < 0) return Error::from_errno(errno, "dup inherited " + address);
      Result<transport::Listener> listener = transport::Listener::adopt(fd);
      if (!listener) {
        ::close(fd);
        return std::move(listener).error();
      }
      per_worker[n % workers].push_back(std::move(*listener));
    }
    shared.handover_fds = std::move(fds);
    return per_worker;
  }
  Result<std::vector<transport::Listener>> bound = bind_per_worker(socket_address, workers);
  if (!bound) return std::move(bound).error();
  for (size_t i = 0; i < workers; ++i) {
    const int fd = dup_fd((*bound)[i].fd());
    if (fd < 0) return Error::from_errno(errno, "dup " + address);
    // A Unix listener is one socket dup'ed per worker: hand it over once.
    if (!socket_address.is_unix() || i == 0)
      shared.handover_fds.push_back(fd);
    else
      ::close(fd);
    per_worker[i].push_back(std::move((*bound)[i]));
  }
  return per_worker;
}

Handover Proxy::handover() {
  Handover out;
  for (const auto& [address, shared] : listeners_) {
    std::vector<int>& fds = out.sockets[address];
    for (int fd : shared->handover_fds) fds.push_back(fd);  // borrowed: sent, not closed
  }
  out.ticket_keys = ticket_keys_->export_keys();
  handed_over_ = true;
  return out;
}

}  // namespace monolake::proxy::server
