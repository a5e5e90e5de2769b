// ReadyQueue: coroutines that are ready to resume, in FIFO order. A growable ring, so the
// steady state allocates nothing.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>

namespace monolake::runtime {

class ReadyQueue {
 public:
  ReadyQueue() : slots_(new std::coroutine_handle<>[kInitial]), capacity_(kInitial) {}

  void push(std::coroutine_handle<> h) {
    if (size_ == capacity_) grow();
    slots_[(head_ + size_) & (capacity_ - 1)] = h;
    ++size_;
  }
  std::coroutine_handle<> pop() {
    std::coroutine_handle<> h = slots_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return h;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  void clear() { head_ = size_ = 0; }

 private:
  static constexpr size_t kInitial = 256;

  void grow() {
    std::unique_ptr<std::coroutine_handle<>[]> bigger(new std::coroutine_handle<>[capacity_ * 2]);
    for (size_t i = 0; i < size_; ++i) bigger[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(bigger);
    capacity_ *= 2;
    head_ = 0;
  }

  std::unique_ptr<std::coroutine_handle<>[]> slots_;
  size_t capacity_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace monolake::runtime
