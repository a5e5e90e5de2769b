#include "runtime/timer.h"

#include "base/assert.h"

namespace monolake::runtime {

void TimerHeap::insert(TimerNode* node) {
  ML_DCHECK(!node->queued());
  node->sequence = next_sequence_++;
  heap_.push_back(node);
  node->heap_index = heap_.size() - 1;
  sift_up(node->heap_index);
}

void TimerHeap::remove(TimerNode* node) {
  if (!node->queued()) return;
  const size_t index = node->heap_index;
  ML_DCHECK(index < heap_.size() && heap_[index] == node);
  TimerNode* last = heap_.back();
  heap_.pop_back();
  node->heap_index = TimerNode::kNotQueued;
  if (last == node) return;
  place(index, last);
  sift_up(index);
  sift_down(last->heap_index);
}

size_t TimerHeap::fire_due(TimePoint now) {
  size_t fired = 0;
  while (!heap_.empty() && heap_.front()->deadline <= now) {
    TimerNode* node = heap_.front();
    remove(node);
    node->fire(node);
    ++fired;
  }
  return fired;
}

void TimerHeap::sift_up(size_t index) {
  TimerNode* node = heap_[index];
  while (index > 0) {
    const size_t parent = (index - 1) / 2;
    if (!before(node, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, node);
}

void TimerHeap::sift_down(size_t index) {
  TimerNode* node = heap_[index];
  const size_t count = heap_.size();
  while (true) {
    size_t child = 2 * index + 1;
    if (child >= count) break;
    if (child + 1 < count && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], node)) break;
    place(index, heap_[child]);
    index = child;
  }
  place(index, node);
}

}  // namespace monolake::runtime
