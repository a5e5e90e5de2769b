#include "proxy/connection/chain.h"

#include "base/log.h"
#include "runtime/time.h"

namespace monolake::proxy::connection {

runtime::Task<Result<void>> ConnectionFilter::before_tls(transport::Stream&, IoBuffer&,
                                                         ConnectionContext&) {
  co_return ok();
}
Result<void> ConnectionFilter::after_tls(ConnectionContext&) { return ok(); }
void ConnectionFilter::closed(const ConnectionContext&) {}

namespace {
runtime::Task<Result<size_t>> read_once(transport::Stream& socket, IoBuffer& into) {
  co_return co_await socket.read_some(into);
}
}  // namespace

runtime::Task<Result<size_t>> read_more(transport::Stream& socket, IoBuffer& read_ahead,
                                        std::chrono::nanoseconds limit) {
  co_return co_await runtime::with_timeout(read_once(socket, read_ahead), limit);
}

void ConnectionStack::push(const std::string& name, const std::string& id,
                           std::shared_ptr<const ConnectionFilterFactory> factory) {
  std::string identity = id.empty() ? "filter:" + occurrences_.next(name) : "filter[" + id + "]";
  layers_.push_back({std::move(identity), std::move(factory)});
}

Result<std::shared_ptr<const ConnectionChain>> ConnectionStack::make(
    const Build& build, const std::string& server_name) const {
  std::vector<ConnectionChain::Entry> entries;
  const Build connection = build.scoped("connection");
  for (const Layer& layer : layers_) {
    const Build scoped = connection.scoped(layer.identity);
    Result<std::shared_ptr<ConnectionFilter>> filter = layer.factory->make(scoped);
    if (!filter) {
      return Error(filter.error().code(), scoped.scope() + ": " + filter.error().message());
    }
    // The refusal counter lives on while the server keeps its name and the layer its identity.
    std::shared_ptr<metrics::UserMetric> closed =
        connection.shared<metrics::UserMetric>("closed:" + layer.identity + ":" + server_name, [&] {
          return metrics::Registry::global().own(
              "monolake_connection_filter_closed_total",
              "Connections a connection layer closed before the protocol served them",
              {{"server", server_name}, {"filter", layer.identity}});
        });
    entries.push_back({layer.identity, std::move(*filter), std::move(closed)});
  }
  return std::make_shared<const ConnectionChain>(std::move(entries));
}

ConnectionRun::~ConnectionRun() {
  if (!chain_) return;
  const auto& entries = chain_->entries();
  for (size_t i = 0; i < entered_ && i < entries.size(); ++i) entries[i].filter->closed(*context_);
}

Error ConnectionRun::refused(const ConnectionChain::Entry& entry, Error error) {
  entry.closed->value.add();
  ML_LOG(kDebug, "server {}: connection from {} closed by {}: {}", context_->server,
         context_->client.to_string(), entry.identity, error.to_string());
  return Error(error.code(), entry.identity + ": " + error.message(), error.sys_errno());
}

runtime::Task<Result<void>> ConnectionRun::before_tls(transport::Stream& socket,
                                                      IoBuffer& read_ahead) {
  if (!chain_) co_return ok();
  for (const ConnectionChain::Entry& entry : chain_->entries()) {
    ++entered_;
    Result<void> passed = co_await entry.filter->before_tls(socket, read_ahead, *context_);
    if (!passed) co_return refused(entry, std::move(passed).error());
  }
  co_return ok();
}

Result<void> ConnectionRun::after_tls(std::string server_name, std::string alpn,
                                      std::string client_subject) {
  context_->tls = true;
  context_->client_subject = std::move(client_subject);
  context_->server_name = std::move(server_name);
  context_->alpn = std::move(alpn);
  return after_tls();
}

Result<void> ConnectionRun::after_tls() {
  if (!chain_) return ok();
  for (const ConnectionChain::Entry& entry : chain_->entries()) {
    if (Result<void> passed = entry.filter->after_tls(*context_); !passed) {
      return refused(entry, std::move(passed).error());
    }
  }
  return ok();
}

}  // namespace monolake::proxy::connection
