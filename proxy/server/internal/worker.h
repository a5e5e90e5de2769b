// One worker's state: its slot (the current ServiceSet) and the listeners it accepts on, and
// the accept loop that hands connections to the server's chain. Private to //proxy/server.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/server/server.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::proxy::server {

// Touched only on the worker's own thread (through pool_->post and update_all).
struct WorkerState {
  struct Accepting {
    std::string server_key;  // whose chain serves this listener's connections (may change)
    std::shared_ptr<ListenerShared> shared;
    std::vector<runtime::JoinHandle<void>> loops;  // one per socket this worker accepts on
  };
  Slot<ServiceSet> slot;
  std::map<std::string, std::shared_ptr<Accepting>> accepting;  // by listener address
  bool draining = false;      // HTTP connections end after their current response
  bool accepts_held = false;  // binary upgrade: wait for Proxy::release_accepts() to accept

  void stop_accepting(const std::string& address) {
    auto it = accepting.find(address);
    if (it == accepting.end()) return;
    for (auto& loop : it->second->loops) loop.cancel();  // each loop closes its socket as it ends
    accepting.erase(it);
  }
};

// The worker's current entry for a server (nullptr if the server is gone).
inline const ServerEntry* entry_of(const WorkerState& worker, const std::string& key) {
  const std::shared_ptr<ServiceSet>& services = worker.slot.current();
  if (!services) return nullptr;
  auto it = services->servers.find(key);
  return it == services->servers.end() ? nullptr : &it->second;
}

// Accepts on one worker's socket for one listener until cancelled (the socket closes with it;
// connections the kernel already accepted for it are served, not reset). Each connection takes
// the worker's current chain of the listener's server.
Task<void> accept_loop(transport::Listener listener, std::string address, WorkerState* worker,
                       std::shared_ptr<WorkerState::Accepting> accepting);

}  // namespace monolake::proxy::server
