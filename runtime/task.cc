#include "runtime/task.h"

#include <array>
#include <cstdlib>
#include <new>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ML_FRAME_CACHE_OFF 1  // let ASan see every frame's lifetime
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ML_FRAME_CACHE_OFF 1
#endif

namespace monolake::runtime::detail {

namespace {

constexpr size_t kClassBytes = 64;        // size classes of 64 bytes...
constexpr size_t kClasses = 32;           // ...up to 2 KiB; larger frames go to malloc
constexpr size_t kFrameCacheDepth = 512;  // frames kept per class and thread

struct FreeFrame {
  FreeFrame* next;
};

// This thread's recycled frames. Freed (to malloc) when the thread ends.
struct FrameCache {
  std::array<FreeFrame*, kClasses> heads{};
  std::array<size_t, kClasses> counts{};
  ~FrameCache() {
    for (size_t c = 0; c < kClasses; ++c) {
      for (FreeFrame* f = heads[c]; f;) {
        FreeFrame* next = f->next;
        std::free(f);
        f = next;
      }
      // A frame freed after this (by another thread-local's destructor) goes to free(), and
      // one allocated comes from malloc: the lists are gone.
      heads[c] = nullptr;
      counts[c] = kFrameCacheDepth;
    }
  }
};

thread_local FrameCache t_cache;

inline size_t class_of(size_t size) { return (size + kClassBytes - 1) / kClassBytes; }

}  // namespace

void* allocate_frame(size_t size) {
#ifdef ML_FRAME_CACHE_OFF
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
#endif
  const size_t c = class_of(size);
  if (c < kClasses) {
    if (FreeFrame* f = t_cache.heads[c]) {
      t_cache.heads[c] = f->next;
      --t_cache.counts[c];
      return f;
    }
    if (void* p = std::malloc(c * kClassBytes)) return p;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}

void free_frame(void* frame, size_t size) noexcept {
#ifdef ML_FRAME_CACHE_OFF
  std::free(frame);
  return;
#endif
  const size_t c = class_of(size);
  if (c < kClasses && t_cache.counts[c] < kFrameCacheDepth) {
    auto* f = static_cast<FreeFrame*>(frame);
    f->next = t_cache.heads[c];
    t_cache.heads[c] = f;
    ++t_cache.counts[c];
    return;
  }
  std::free(frame);
}

}  // namespace monolake::runtime::detail
