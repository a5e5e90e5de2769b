// TimerHeap: pending deadlines of one runtime. An indexed binary heap of intrusive nodes:
// insert, remove and pop are O(log n) with no allocation beyond the heap's vector, so 100k
// pending timers (an idle timeout per connection) stay cheap, and a removed timer leaves
// nothing behind.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace monolake::runtime {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::nanoseconds;

// Owned by whoever waits (a sleep awaiter, with_timeout's frame); must be removed from the heap
// before it is destroyed (the owners' destructors do that).
struct TimerNode {
  static constexpr size_t kNotQueued = static_cast<size_t>(-1);

  TimePoint deadline{};
  uint64_t sequence = 0;  // ties broken by insertion order, so equal deadlines fire FIFO
  size_t heap_index = kNotQueued;
  void (*fire)(TimerNode* node) = nullptr;
  void* context = nullptr;

  bool queued() const { return heap_index != kNotQueued; }
};

class TimerHeap {
 public:
  void insert(TimerNode* node);
  void remove(TimerNode* node);
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // Earliest deadline; only when !empty().
  TimePoint next_deadline() const { return heap_.front()->deadline; }
  // Removes and fires, in deadline order, every node due at `now`. A fire callback may insert
  // or remove other nodes. Returns how many fired.
  size_t fire_due(TimePoint now);

 private:
  bool before(const TimerNode* a, const TimerNode* b) const {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->sequence < b->sequence);
  }
  void place(size_t index, TimerNode* node) {
    heap_[index] = node;
    node->heap_index = index;
  }
  void sift_up(size_t index);
  void sift_down(size_t index);

  std::vector<TimerNode*> heap_;
  uint64_t next_sequence_ = 0;
};

}  // namespace monolake::runtime
