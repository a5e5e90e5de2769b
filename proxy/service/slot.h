// Slot: one worker's current service chain, with a two-phase replacement.
//
// Only the owning worker's thread touches a Slot, so it needs no lock: the update coordinator
// (update.h) posts prepare/commit/abort to each worker. prepare() builds the new chain from
// the current one and keeps it staged; commit() makes it current; abort() drops it. Holders of
// the old chain (connections in flight) keep it alive until they let go.
#pragma once

#include <memory>

#include "base/result.h"
#include "proxy/service/service.h"

namespace monolake::proxy {

template <class S>
class Slot {
 public:
  // The chain new work should use. Empty until the first commit.
  const std::shared_ptr<S>& current() const { return current_; }
  bool staged() const { return staged_ != nullptr; }
  uint64_t generation() const { return generation_; }

  Result<void> prepare(const Factory<S>& factory) {
    auto built = factory.make_from(current_);
    if (!built) return std::move(built).error();
    if (!*built) return Error(ErrorCode::kInternal, "factory built no service");
    staged_ = std::move(*built);
    return ok();
  }

  // Makes the staged chain current. Returns false if nothing was staged.
  bool commit() {
    if (!staged_) return false;
    current_ = std::move(staged_);
    ++generation_;
    return true;
  }

  void abort() { staged_.reset(); }

 private:
  std::shared_ptr<S> current_;
  std::shared_ptr<S> staged_;
  uint64_t generation_ = 0;
};

}  // namespace monolake::proxy
