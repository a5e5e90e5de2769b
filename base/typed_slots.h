// TypedSlots: a small map from a type to one value of that type, for data one layer writes and
// another reads without either knowing the other (a request's context: the effective client,
// a user layer's findings). Keyed by type, not by name, so two layers cannot collide by
// accident: a layer that wants a slot of its own defines its own struct.
//
//   struct TenantId { std::string value; };
//   slots.set(TenantId{"acme"});                    // one layer
//   if (const TenantId* t = slots.get<TenantId>())  // a later one
//
// No RTTI: each type's identity is the address of a per-type tag. A handful of entries is the
// expected size, so lookup is a linear scan over a vector. Single-threaded, like a request.
#pragma once

#include <memory>
#include <utility>
#include <vector>

namespace monolake {

class TypedSlots {
 public:
  template <class T>
  T* get() {
    for (Entry& e : entries_) {
      if (e.type == tag<T>()) return static_cast<T*>(e.value.get());
    }
    return nullptr;
  }
  template <class T>
  const T* get() const {
    return const_cast<TypedSlots*>(this)->get<T>();
  }

  // Sets (or replaces) the T slot; returns the stored value.
  template <class T>
  T& set(T value) {
    if (T* existing = get<T>()) {
      *existing = std::move(value);
      return *existing;
    }
    auto* stored = new T(std::move(value));
    entries_.push_back(Entry{tag<T>(), Owned(stored, [](void* p) { delete static_cast<T*>(p); })});
    return *stored;
  }

  bool empty() const { return entries_.empty(); }

 private:
  using Owned = std::unique_ptr<void, void (*)(void*)>;
  struct Entry {
    const void* type;
    Owned value;
  };
  template <class T>
  static const void* tag() {
    static const char t = 0;
    return &t;
  }
  std::vector<Entry> entries_;
};

}  // namespace monolake
