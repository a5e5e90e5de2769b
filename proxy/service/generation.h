// Generation and Build: how a layer's state passes from one build of a chain to the next.
//
// Every build of a worker's chains (the first one, and each reload) writes a Generation: each
// layer's service, and any per-worker object that layers share (a connection pool, counters),
// under a stable identity. The next build reads the previous Generation by the same identities,
// so a layer finds *its own* previous service — typed, without walking the old chain or casting
// — and takes over what should live on (balancer positions, pools, counters). An identity is a
// path of scopes: "servers.web/route[example.com/api/{*p}]/forward". Inserting a route or a
// layer elsewhere does not change the identity of the others, so no state moves between them.
//
// A Generation is written on one worker's thread and read by the next build on that thread; it
// holds shared_ptrs, so the objects it names live as long as the chain that owns it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace monolake::proxy {

class Generation {
 public:
  // The object kept under `id`, if it is a T; nullptr otherwise (a T under another id, or an
  // object of another type under this id, is never handed out).
  template <class T>
  std::shared_ptr<T> find(const std::string& id) const {
    auto it = kept_.find(id);
    if (it == kept_.end() || it->second.type != type_tag<T>()) return nullptr;
    return std::static_pointer_cast<T>(it->second.object);
  }

  // Keeps `object` under `id` for the next build. Two objects under one id are an error.
  template <class T>
  Result<void> keep(const std::string& id, std::shared_ptr<T> object) {
    auto [it, added] = kept_.try_emplace(id, Kept{type_tag<T>(), std::move(object)});
    if (!added) return Error(ErrorCode::kInvalidArgument, "two layers with the identity " + id);
    return ok();
  }

  bool contains(const std::string& id) const { return kept_.count(id) > 0; }
  size_t size() const { return kept_.size(); }

 private:
  // One address per type: a type identity without RTTI.
  template <class T>
  static const void* type_tag() {
    static const char tag = 0;
    return &tag;
  }
  struct Kept {
    const void* type;
    std::shared_ptr<void> object;
  };
  std::map<std::string, Kept> kept_;
};

// One build of a chain on one worker: the scope being built, the previous Generation (nullptr
// on the first build) and the one being written. Cheap to copy; scoped() makes a child scope.
class Build {
 public:
  Build(const Generation* previous, Generation& next, std::string scope)
      : previous_(previous), next_(&next), root_(scope), scope_(std::move(scope)) {}

  // A child scope "<scope>/<part>" (a route, a layer of a stack). The root stays the same.
  Build scoped(std::string_view part) const {
    Build child = *this;
    child.scope_ = scope_ + "/" + std::string(part);
    return child;
  }
  const std::string& scope() const { return scope_; }

  // This scope's own object from the previous build, if it was a T.
  template <class T>
  std::shared_ptr<T> previous() const {
    return previous_ ? previous_->find<T>(scope_) : nullptr;
  }
  // Keeps this scope's own object for the next build.
  template <class T>
  Result<void> keep(std::shared_ptr<T> object) const {
    return next_->keep(scope_, std::move(object));
  }

  // A per-worker object shared by every layer under the root scope (a server's connection
  // pool, its counters): the one already made in this build, else the previous build's, else
  // `make()`. `name` should say what the object depends on (e.g. the server's name for its
  // counters), so that a change of it makes a fresh object.
  template <class T, class Make>
  std::shared_ptr<T> shared(std::string_view name, Make make) const {
    const std::string id = root_ + "#" + std::string(name);
    if (std::shared_ptr<T> made = next_->find<T>(id)) return made;
    std::shared_ptr<T> object = previous_ ? previous_->find<T>(id) : nullptr;
    if (!object) object = make();
    // Fails only when another type took the name in this build: that user gets its own object.
    (void)next_->keep(id, object);
    return object;
  }

 private:
  const Generation* previous_;
  Generation* next_;
  std::string root_;
  std::string scope_;
};

}  // namespace monolake::proxy
