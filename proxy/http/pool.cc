#include "proxy/http/pool.h"

#include "runtime/runtime.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

using mh::h1::ClientConnection;

void ConnectionPool::update_gauge() {
  if (!stats_) return;
  const uint64_t shown = stats_->idle_upstream_connections.get();
  if (idle_total_ > shown) stats_->idle_upstream_connections.add(idle_total_ - shown);
  if (idle_total_ < shown) stats_->idle_upstream_connections.sub(shown - idle_total_);
}

std::unique_ptr<ClientConnection> ConnectionPool::take(const std::string& address, bool probe) {
  auto it = idle_.find(address);
  if (it == idle_.end()) return nullptr;
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  std::vector<Idle>& idle = it->second;
  std::unique_ptr<ClientConnection> found;
  while (!idle.empty() && !found) {
    Idle candidate = std::move(idle.back());  // the most recently used: warmest, least stale
    idle.pop_back();
    --idle_total_;
    if (now - candidate.since > options_.idle_timeout) continue;
    if (probe ? !candidate.connection->idle_and_healthy() : !candidate.connection->idle()) {
      continue;
    }
    found = std::move(candidate.connection);
  }
  update_gauge();
  return found;
}

void ConnectionPool::give(const std::string& address,
                          std::unique_ptr<ClientConnection> connection) {
  if (connection->requests() >= options_.max_requests_per_connection) return;
  if (options_.max_idle_per_upstream == 0) return;
  std::vector<Idle>& idle = idle_[address];
  // Responses end in bursts, just before bursts of requests need connections again: closing
  // everything over the cap at once would make the next burst connect anew. So the excess may
  // stay idle up to a second (sweep() trims it), never beyond kBurstFactor times the cap.
  while (idle.size() >= kBurstFactor * options_.max_idle_per_upstream) {
    idle.erase(idle.begin());  // drop the oldest
    --idle_total_;
  }
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  idle.push_back(Idle{std::move(connection), now});
  ++idle_total_;
  sweep(now);
  update_gauge();
}

// Closes idle connections past the idle timeout under every address, at most once a second:
// take() only looks at the address asked for, and an address no route uses any more (after a
// reload or a DNS change) would otherwise keep its connections open for ever.
void ConnectionPool::sweep(runtime::TimePoint now) {
  if (now - last_sweep_ < std::chrono::seconds(1)) return;
  last_sweep_ = now;
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::vector<Idle>& idle = it->second;
    // Oldest first: the expired ones, then those over the cap idle for a second, are in front.
    auto end = idle.begin();
    size_t kept = idle.size();
    while (end != idle.end() && (now - end->since > options_.idle_timeout ||
                                 (kept > options_.max_idle_per_upstream &&
                                  now - end->since >= std::chrono::seconds(1)))) {
      ++end;
      --kept;
    }
    idle_total_ -= static_cast<size_t>(end - idle.begin());
    idle.erase(idle.begin(), end);
    it = idle.empty() ? idle_.erase(it) : std::next(it);
  }
  // HTTP/2 connections of upstreams no request asks for any more (a reload, a DNS change).
  for (auto it = h2_.begin(); it != h2_.end();) {
    std::erase_if(it->second, [&](Multiplexed& m) {
      const bool unused = m.connection->open_streams() == 0;
      if (m.connection->closed() || (unused && now - m.last_used > options_.idle_timeout)) {
        m.connection->shutdown();
        return true;
      }
      return false;
    });
    it = it->second.empty() ? h2_.erase(it) : std::next(it);
  }
}

std::shared_ptr<mh::h2::ClientConnection> ConnectionPool::take_h2(const std::string& key) {
  auto it = h2_.find(key);
  if (it == h2_.end()) return nullptr;
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  std::vector<Multiplexed>& list = it->second;
  std::shared_ptr<mh::h2::ClientConnection> found;
  for (auto c = list.begin(); c != list.end();) {
    const bool unused = c->connection->open_streams() == 0;
    const bool idle_too_long = unused && now - c->last_used > options_.idle_timeout;
    // After GOAWAY (or with its stream ids used up) a connection takes no stream: once its
    // last one ends it is of no more use.
    const bool spent = unused && c->connection->available_streams() == 0;
    if (c->connection->closed() || idle_too_long || spent) {
      c->connection->shutdown();
      c = list.erase(c);
      continue;
    }
    if (!found && c->connection->available_streams() > 0) {
      found = c->connection;
      c->last_used = now;
    }
    ++c;
  }
  if (list.empty()) h2_.erase(it);
  return found;
}

void ConnectionPool::add_h2(const std::string& key,
                            std::shared_ptr<mh::h2::ClientConnection> connection) {
  h2_capable_.insert(key);
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  h2_[key].push_back(Multiplexed{std::move(connection), now});
  sweep(now);
}

bool ConnectionPool::begin_h2_connect(const std::string& key) {
  return h2_connecting_.try_emplace(key).second;
}

void ConnectionPool::end_h2_connect(const std::string& key) {
  auto it = h2_connecting_.find(key);
  if (it == h2_connecting_.end()) return;
  std::vector<runtime::Notify*> waiters = std::move(it->second);
  h2_connecting_.erase(it);
  for (runtime::Notify* waiter : waiters) waiter->notify();
}

Task<void> ConnectionPool::wait_h2_connect(const std::string& key, std::chrono::nanoseconds limit) {
  auto it = h2_connecting_.find(key);
  if (it == h2_connecting_.end()) co_return;
  runtime::Notify done;
  it->second.push_back(&done);
  (void)co_await runtime::with_timeout(runtime::notified(done), limit);
  // Still listed (timed out or cancelled): take ourselves off before `done` goes away.
  if (auto again = h2_connecting_.find(key); again != h2_connecting_.end()) {
    std::erase(again->second, &done);
  }
}

size_t ConnectionPool::idle_count() const {
  size_t n = 0;
  for (const auto& [address, idle] : idle_) n += idle.size();
  return n;
}

}  // namespace monolake::proxy::http
