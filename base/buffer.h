// Owned I/O buffers.
//
// IoBuffer is a growable, contiguous byte buffer with a read cursor: bytes between the read and
// write positions are "readable"; space after the write position is "writable". It owns its
// memory and is move-only, so an I/O operation can take it by value, keep it while the kernel
// uses it, and hand it back when the operation completes (the runtime's ownership rule).
// A default-constructed IoBuffer allocates nothing, so an idle connection holding an empty one
// costs only the object itself.
//
// BufferChain is an ordered list of IoBuffers written with one writev/sendmsg (scatter/gather).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace monolake {

class IoBuffer {
 public:
  IoBuffer() = default;
  explicit IoBuffer(size_t capacity);
  static IoBuffer copy_of(std::string_view bytes);

  IoBuffer(IoBuffer&& other) noexcept;
  IoBuffer& operator=(IoBuffer&& other) noexcept;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  // Readable bytes.
  size_t size() const { return tail_ - head_; }
  bool empty() const { return tail_ == head_; }
  const char* data() const { return data_.get() + head_; }
  char* data() { return data_.get() + head_; }
  std::string_view view() const { return {data(), size()}; }
  std::string to_string() const { return std::string(view()); }

  // Writable space after the readable bytes.
  size_t capacity() const { return capacity_; }
  size_t writable_size() const { return capacity_ - tail_; }
  char* write_ptr() { return data_.get() + tail_; }
  // Makes at least `n` bytes writable, compacting first and growing only if needed.
  void reserve(size_t n);
  // Marks `n` bytes after the write position as readable (after a read into write_ptr()).
  void commit(size_t n);

  void append(std::string_view bytes) {
    if (bytes.size() <= writable_size() && !bytes.empty()) {  // the common case, inline
      std::memcpy(write_ptr(), bytes.data(), bytes.size());
      tail_ += bytes.size();
      return;
    }
    append_slow(bytes);
  }
  void append(const void* bytes, size_t n) { append({static_cast<const char*>(bytes), n}); }

  // Drops `n` readable bytes from the front.
  void consume(size_t n);
  // Drops all readable bytes; keeps the memory.
  void clear() { head_ = tail_ = 0; }
  // Drops everything and frees the memory (for buffers of idle connections).
  void release();

 private:
  void append_slow(std::string_view bytes);
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t head_ = 0;
  size_t tail_ = 0;
};

class BufferChain {
 public:
  BufferChain() = default;
  // Leave the source empty and reusable (defaulted moves would copy first_ and total_ while
  // emptying buffers_).
  BufferChain(BufferChain&& other) noexcept;
  BufferChain& operator=(BufferChain&& other) noexcept;

  void push_back(IoBuffer buffer);
  void append(std::string_view bytes) { push_back(IoBuffer::copy_of(bytes)); }

  size_t size() const { return total_; }
  bool empty() const { return total_ == 0; }
  size_t buffer_count() const { return buffers_.size() - first_; }

  // Fills `out` with at most `max` iovecs over the readable bytes, in order. Returns the count.
  size_t fill_iovecs(iovec* out, size_t max) const;
  // Drops `n` bytes from the front (after a partial writev), freeing finished buffers.
  void consume(size_t n);
  void clear();
  // Joins everything into one string (tests and small control messages).
  std::string to_string() const;

 private:
  std::vector<IoBuffer> buffers_;
  size_t first_ = 0;  // buffers_[0, first_) are consumed; erased lazily
  size_t total_ = 0;
};

}  // namespace monolake
