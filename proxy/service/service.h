// The service framework of the proxy: the handler chain that can be replaced while traffic flows.
//
// A Service answers a request with a Task<Result<Response>>. A layer is a Service that wraps
// another (timeouts, routing, header rewrites, logging...). A Factory builds a worker's service
// chain, either fresh or *from the previous chain* (make_from), so state that should outlive a
// reload — upstream connection pools, counters, back-off state — passes to the new chain.
//
// Each worker keeps its chain in a Slot (slot.h) that only that worker's thread touches; an
// update is two-phase across workers (update.h). Which chain serves what is the caller's
// choice: an L4 connection keeps the chain it started with (it holds the shared_ptr), an HTTP
// connection takes Slot::current() at each request boundary.
#pragma once

#include <memory>

#include "base/result.h"
#include "runtime/task.h"

namespace monolake::proxy {

using runtime::Task;

template <class Request, class Response>
class Service {
 public:
  using RequestType = Request;
  using ResponseType = Response;
  virtual ~Service() = default;
  virtual Task<Result<Response>> call(Request request) = 0;
};

// Builds the service chain of one worker. `previous` is the chain being replaced (nullptr on
// the first build); an implementation takes over whatever state should live on. Called on the
// worker's own thread; must not block.
template <class S>
class Factory {
 public:
  virtual ~Factory() = default;
  virtual Result<std::shared_ptr<S>> make_from(const std::shared_ptr<S>& previous) const = 0;
};

// A layer: a service that wraps an inner one. Its factory wraps the inner factory, so a layer's
// own state and the inner chain's state are carried over together.
template <class Request, class Response>
class Layer : public Service<Request, Response> {
 public:
  using Inner = Service<Request, Response>;
  explicit Layer(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}
  const std::shared_ptr<Inner>& inner() const { return inner_; }

 protected:
  std::shared_ptr<Inner> inner_;
};

}  // namespace monolake::proxy
