#include "base/buffer.h"

#include <algorithm>

#include "base/assert.h"

namespace monolake {

namespace {
constexpr size_t kMinGrowth = 512;
}

IoBuffer::IoBuffer(size_t capacity)
    : data_(capacity ? new char[capacity] : nullptr), capacity_(capacity) {}

IoBuffer IoBuffer::copy_of(std::string_view bytes) {
  IoBuffer buffer(bytes.size());
  buffer.append(bytes);
  return buffer;
}

IoBuffer::IoBuffer(IoBuffer&& other) noexcept
    : data_(std::move(other.data_)),
      capacity_(other.capacity_),
      head_(other.head_),
      tail_(other.tail_) {
  other.capacity_ = other.head_ = other.tail_ = 0;
}

IoBuffer& IoBuffer::operator=(IoBuffer&& other) noexcept {
  if (this != &other) {
    data_ = std::move(other.data_);
    capacity_ = other.capacity_;
    head_ = other.head_;
    tail_ = other.tail_;
    other.capacity_ = other.head_ = other.tail_ = 0;
  }
  return *this;
}

void IoBuffer::reserve(size_t n) {
  if (writable_size() >= n) return;
  const size_t readable = size();
  if (head_ > 0 && capacity_ - readable >= n) {
    // Enough room once the consumed front is reclaimed.
    std::memmove(data_.get(), data_.get() + head_, readable);
    head_ = 0;
    tail_ = readable;
    return;
  }
  const size_t wanted = std::max({readable + n, capacity_ * 2, kMinGrowth});
  std::unique_ptr<char[]> grown(new char[wanted]);
  if (readable) std::memcpy(grown.get(), data_.get() + head_, readable);
  data_ = std::move(grown);
  capacity_ = wanted;
  head_ = 0;
  tail_ = readable;
}

void IoBuffer::commit(size_t n) {
  ML_CHECK_MSG(n <= writable_size(), "IoBuffer::commit past capacity");
  tail_ += n;
}

void IoBuffer::append_slow(std::string_view bytes) {
  if (bytes.empty()) return;
  reserve(bytes.size());
  std::memcpy(write_ptr(), bytes.data(), bytes.size());
  tail_ += bytes.size();
}

void IoBuffer::consume(size_t n) {
  ML_CHECK_MSG(n <= size(), "IoBuffer::consume past the readable bytes");
  head_ += n;
  if (head_ == tail_) head_ = tail_ = 0;
}

void IoBuffer::release() {
  data_.reset();
  capacity_ = head_ = tail_ = 0;
}

BufferChain::BufferChain(BufferChain&& other) noexcept
    : buffers_(std::move(other.buffers_)), first_(other.first_), total_(other.total_) {
  other.buffers_.clear();
  other.first_ = other.total_ = 0;
}

BufferChain& BufferChain::operator=(BufferChain&& other) noexcept {
  if (this != &other) {
    buffers_ = std::move(other.buffers_);
    first_ = other.first_;
    total_ = other.total_;
    other.buffers_.clear();
    other.first_ = other.total_ = 0;
  }
  return *this;
}

void BufferChain::push_back(IoBuffer buffer) {
  if (buffer.empty()) return;
  total_ += buffer.size();
  buffers_.push_back(std::move(buffer));
}

size_t BufferChain::fill_iovecs(iovec* out, size_t max) const {
  size_t count = 0;
  for (size_t i = first_; i < buffers_.size() && count < max; ++i) {
    const IoBuffer& b = buffers_[i];
    out[count].iov_base = const_cast<char*>(b.data());
    out[count].iov_len = b.size();
    ++count;
  }
  return count;
}

void BufferChain::consume(size_t n) {
  ML_CHECK_MSG(n <= total_, "BufferChain::consume past the end");
  total_ -= n;
  while (n > 0) {
    IoBuffer& front = buffers_[first_];
    const size_t take = std::min(n, front.size());
    front.consume(take);
    n -= take;
    if (front.empty()) {
      front.release();
      ++first_;
    }
  }
  if (first_ == buffers_.size()) {
    buffers_.clear();
    first_ = 0;
  } else if (first_ > 16 && first_ * 2 > buffers_.size()) {
    buffers_.erase(buffers_.begin(), buffers_.begin() + static_cast<ptrdiff_t>(first_));
    first_ = 0;
  }
}

void BufferChain::clear() {
  buffers_.clear();
  first_ = 0;
  total_ = 0;
}

std::string BufferChain::to_string() const {
  std::string out;
  out.reserve(total_);
  for (size_t i = first_; i < buffers_.size(); ++i) out.append(buffers_[i].view());
  return out;
}

}  // namespace monolake
