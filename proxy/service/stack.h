// Factory layers and stacks: a chain declared in one place, each layer built from the previous
// generation of its own layer (the service-async model: FactoryLayer, make_via_ref).
//
//   Stack<Req, Resp> stack;
//   stack.push("access_log", std::make_shared<AccessLogFactory>(...));   // outermost
//   stack.push("api_key", user_factory);                                 // a user's layer
//   stack.push("routes", std::make_shared<RouteTableFactory>(...));      // innermost
//   Result<std::shared_ptr<Service<Req, Resp>>> chain = stack.make(build);
//
// Stacks are type-erased at layer boundaries (each layer sees its inner service as a
// Service<Req, Resp>), so a stack can be assembled from configuration. A layer's identity is
// its stack's scope, then its name and occurrence ("access_log", "api_key", "api_key#2"), or an
// explicit id; its factory finds the service that the same identity built last time. Factories
// are made on the control thread and shared by every worker (const, so they hold no per-worker
// state); make() runs on each worker's own thread and must not block.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "proxy/service/generation.h"
#include "proxy/service/service.h"

namespace monolake::proxy {

// One layer of a stack, type-erased: builds its service around `inner` (nullptr for the
// innermost layer, which answers by itself). `build` is scoped to this layer's identity.
template <class Request, class Response>
class LayerFactory {
 public:
  using ServiceType = Service<Request, Response>;
  virtual ~LayerFactory() = default;
  virtual Result<std::shared_ptr<ServiceType>> make(std::shared_ptr<ServiceType> inner,
                                                    const Build& build) const = 0;
};

// A layer whose service is of type S. make_via_ref() gets the S that this layer built in the
// previous generation (nullptr on the first build, or when the layer is new), to take over its
// state; the S it returns is kept for the next generation.
template <class S>
class FactoryLayer : public LayerFactory<typename S::RequestType, typename S::ResponseType> {
 public:
  using Inner = Service<typename S::RequestType, typename S::ResponseType>;

  virtual Result<std::shared_ptr<S>> make_via_ref(const S* previous, std::shared_ptr<Inner> inner,
                                                  const Build& build) const = 0;

  Result<std::shared_ptr<Inner>> make(std::shared_ptr<Inner> inner,
                                      const Build& build) const final {
    const std::shared_ptr<S> previous = build.previous<S>();
    Result<std::shared_ptr<S>> made = make_via_ref(previous.get(), std::move(inner), build);
    if (!made) return std::move(made).error();
    if (!*made) return Error(ErrorCode::kInternal, build.scope() + ": the layer built nothing");
    if (auto kept = build.keep(*made); !kept) return std::move(kept).error();
    return std::shared_ptr<Inner>(std::move(*made));
  }
};

// Names siblings that may share a name (two layers of one kind, two routes with one path):
// the first "x" is "x", the next "x#2", and so on, so each keeps an identity of its own.
class OccurrenceNames {
 public:
  std::string next(const std::string& name) {
    const size_t n = ++seen_[name];
    return n == 1 ? name : name + "#" + std::to_string(n);
  }

 private:
  std::map<std::string, size_t> seen_;
};

template <class Request, class Response>
class Stack {
 public:
  using ServiceType = Service<Request, Response>;
  using Layer = LayerFactory<Request, Response>;

  // Adds a layer inside those pushed before it (the first pushed is the outermost). Its
  // identity is `name` with its occurrence among layers of that name ("name", "name#2"...),
  // or `id` when one is given.
  Stack& push(const std::string& name, std::shared_ptr<const Layer> layer, std::string id = "") {
    if (id.empty()) id = names_.next(name);
    layers_.push_back(Entry{std::move(id), std::move(layer)});
    return *this;
  }

  // Builds the chain, innermost layer first, each in its own scope under `build`.
  Result<std::shared_ptr<ServiceType>> make(const Build& build) const {
    if (layers_.empty()) return Error(ErrorCode::kInvalidArgument, build.scope() + ": no layers");
    std::shared_ptr<ServiceType> inner;
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
      Result<std::shared_ptr<ServiceType>> made =
          it->layer->make(std::move(inner), build.scoped(it->id));
      if (!made) return std::move(made).error();
      inner = std::move(*made);
    }
    return inner;
  }

  size_t size() const { return layers_.size(); }
  // The identities, outermost first (for docs, logs and tests).
  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    for (const Entry& e : layers_) out.push_back(e.id);
    return out;
  }

 private:
  struct Entry {
    std::string id;
    std::shared_ptr<const Layer> layer;
  };
  std::vector<Entry> layers_;
  OccurrenceNames names_;
};

}  // namespace monolake::proxy
