#include "examples/http_filter/client_limit.h"

namespace example {

namespace {

// Each connection counts under the client it was counted for, even if a later layer changes
// the context's client.
struct CountedAs {
  std::string client;
};

}  // namespace

monolake::runtime::Task<Result<void>> ClientLimit::before_tls(
    monolake::transport::Stream&, monolake::IoBuffer&, connection::ConnectionContext& context) {
  std::string client = context.client.ip_text();  // a Unix peer is one client, "unix"
  size_t& open = (*open_)[client];
  if (open >= max_) {
    if (open == 0) open_->erase(client);
    co_return monolake::Error(monolake::ErrorCode::kLimitExceeded,
                              client + " has " + std::to_string(max_) + " connections open");
  }
  ++open;
  context.slots.set(CountedAs{std::move(client)});
  co_return monolake::ok();
}

void ClientLimit::closed(const connection::ConnectionContext& context) {
  const CountedAs* counted = context.slots.get<CountedAs>();
  if (!counted) return;  // refused here: never counted
  auto it = open_->find(counted->client);
  if (it == open_->end()) return;
  if (--it->second == 0) open_->erase(it);  // the table holds only clients with connections
}

Result<std::shared_ptr<ClientLimit>> ClientLimitFactory::make_via_ref(
    const ClientLimit* previous, const monolake::proxy::Build&) const {
  auto open = previous ? previous->open() : std::make_shared<ClientLimit::OpenCounts>();
  return std::make_shared<ClientLimit>(max_, std::move(open));
}

monolake::proxy::ParamSchema client_limit_schema() {
  monolake::proxy::ParamSchema schema;
  schema.integer("max")
      .default_value(16)
      .range(1, 1 << 20)
      .doc("open connections per client address on each worker");
  return schema;
}

Result<std::shared_ptr<const connection::ConnectionFilterFactory>> make_client_limit(
    const framework::ConnectionFilterParams& params) {
  return std::make_shared<ClientLimitFactory>(static_cast<size_t>(params.params.integer("max")));
}

}  // namespace example
