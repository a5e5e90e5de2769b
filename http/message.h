// HTTP messages, independent of the wire version: header fields, request and response heads,
// and the body a message carries (http/body.h).
//
// HeaderMap keeps fields in arrival order with their names as received; lookups ignore case.
// A name may repeat (Set-Cookie, or a list split across lines): get() returns the first value,
// get_all() every one. It owns its bytes (one string for all names and values); a head is
// small (a few hundred bytes) and moved, not copied, along the proxy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace monolake::http {

enum class Version : uint8_t { kHttp10, kHttp11, kHttp2 };
std::string_view version_name(Version version);  // "HTTP/1.0", "HTTP/1.1", "HTTP/2"

namespace detail {
// Byte tables: lower-case ASCII, and RFC 9110 token characters.
inline constexpr std::array<unsigned char, 256> kLower = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return t;
}();
inline constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 32] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
}  // namespace detail

// ASCII case-insensitive equality (field names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (detail::kLower[static_cast<unsigned char>(a[i])] !=
        detail::kLower[static_cast<unsigned char>(b[i])]) {
      return false;
    }
  }
  return true;
}

class HeaderMap {
  // Storage: every name and value is appended to one byte string, and a field is four 32-bit
  // offsets into it (16 bytes), so a parsed head costs two allocations whatever its field
  // count, and a copy is a string copy plus a memcpy. Removing or replacing a field leaves its
  // bytes behind as dead space; the bytes are compacted when the dead outweigh the live.
  struct Slot {
    uint32_t name_at;
    uint32_t name_size;
    uint32_t value_at;
    uint32_t value_size;
  };

 public:
  // One field as the map shows it: views of the map's own storage, valid until the map is
  // changed or destroyed. How the map stores its fields is private.
  struct Field {
    std::string_view name;
    std::string_view value;
  };

  // The fields in order, as a range of Field values (for loops, size(), [i]).
  class Fields {
   public:
    class iterator {
     public:
      using iterator_category = std::forward_iterator_tag;
      using value_type = Field;
      using difference_type = std::ptrdiff_t;
      using pointer = void;
      using reference = Field;
      iterator() = default;
      iterator(const char* bytes, const Slot* at) : bytes_(bytes), at_(at) {}
      Field operator*() const { return field_of(bytes_, *at_); }
      iterator& operator++() {
        ++at_;
        return *this;
      }
      iterator operator++(int) {
        iterator before = *this;
        ++at_;
        return before;
      }
      bool operator==(const iterator& other) const { return at_ == other.at_; }
      bool operator!=(const iterator& other) const { return at_ != other.at_; }

     private:
      const char* bytes_ = nullptr;
      const Slot* at_ = nullptr;
    };
    Fields(const char* bytes, const Slot* begin, size_t size)
        : bytes_(bytes), begin_(begin), size_(size) {}
    iterator begin() const { return iterator(bytes_, begin_); }
    iterator end() const { return iterator(bytes_, begin_ + size_); }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Field operator[](size_t i) const { return field_of(bytes_, begin_[i]); }

   private:
    const char* bytes_;
    const Slot* begin_;
    size_t size_;
  };

  void add(std::string_view name, std::string_view value);
  // Replaces every field named `name` with one (added at the end if there was none).
  void set(std::string_view name, std::string_view value);
  // Removes every field named `name`; returns how many.
  size_t remove(std::string_view name);
  // Removes every field for which pred(field) is true, in one pass.
  template <class Pred>
  void remove_if(Pred&& pred) {
    size_t out = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (pred(field_of(bytes_.data(), slots_[i]))) {
        dead_ += slots_[i].name_size + slots_[i].value_size;
        continue;
      }
      slots_[out++] = slots_[i];
    }
    slots_.resize(out);
    maybe_compact();
  }

  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> get_all(std::string_view name) const;
  size_t count(std::string_view name) const;
  bool has(std::string_view name) const { return count(name) > 0; }
  // True if a comma-separated list field (Connection, TE...) holds `token`, in any of its lines.
  bool has_token(std::string_view name, std::string_view token) const;

  Fields fields() const { return Fields(bytes_.data(), slots_.data(), slots_.size()); }
  size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  void clear() {
    slots_.clear();
    bytes_.clear();
    dead_ = 0;
  }
  // Room for `fields` fields of `bytes` bytes of names and values in all, so that filling the
  // map allocates once for each (the HTTP/1.1 parser passes the head's size).
  void reserve(size_t fields, size_t bytes = 0) {
    slots_.reserve(fields);
    bytes_.reserve(bytes);
  }

  // Calls fn(token) for each comma-separated element of every `name` line, trimmed, skipping
  // empty elements.
  template <class Fn>
  void for_each_token(std::string_view name, Fn&& fn) const {
    for (const Field f : fields()) {
      if (!iequals(f.name, name)) continue;
      std::string_view rest = f.value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view token = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
          token.remove_prefix(1);
        }
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
          token.remove_suffix(1);
        }
        if (!token.empty()) fn(token);
      }
    }
  }

 private:
  static Field field_of(const char* bytes, const Slot& slot) {
    return Field{std::string_view(bytes + slot.name_at, slot.name_size),
                 std::string_view(bytes + slot.value_at, slot.value_size)};
  }
  std::string_view name_of(const Slot& slot) const {
    return std::string_view(bytes_.data() + slot.name_at, slot.name_size);
  }
  // Appends `text` to the bytes; returns where it starts.
  uint32_t append(std::string_view text);
  // Rewrites the bytes without the dead ones, when they are most of it.
  void maybe_compact();

  // The names and values: a growable byte array whose append is inline (std::string's is a
  // call with checks; a head appends two dozen times). Copies copy only the bytes in use.
  class Bytes {
   public:
    Bytes() = default;
    Bytes(const Bytes& other) { assign(other); }
    Bytes& operator=(const Bytes& other) {
      if (this != &other) assign(other);
      return *this;
    }
    Bytes(Bytes&& other) noexcept
        : data_(std::move(other.data_)),
          size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    Bytes& operator=(Bytes&& other) noexcept {
      data_ = std::move(other.data_);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
      return *this;
    }
    const char* data() const { return data_.get(); }
    char* data() { return data_.get(); }
    size_t size() const { return size_; }
    void clear() { size_ = 0; }
    void reserve(size_t n) {
      if (n > capacity_) grow(n, {});
    }
    void append(std::string_view text) {
      if (text.size() > capacity_ - size_) {
        grow(size_ + text.size(), text);  // copies `text` too: it may be a view of these bytes
      } else if (!text.empty()) {
        std::memcpy(data_.get() + size_, text.data(), text.size());
      }
      size_ += text.size();
    }

   private:
    // Moves to a buffer of at least `capacity`, copying the bytes and then `tail` after them
    // (before the old buffer is freed).
    void grow(size_t capacity, std::string_view tail);
    void assign(const Bytes& other);
    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
    size_t capacity_ = 0;
  };

  Bytes bytes_;
  std::vector<Slot> slots_;
  size_t dead_ = 0;  // bytes of removed or replaced names and values still in bytes_
};

struct RequestHead {
  std::string method;  // as received: methods are case-sensitive
  std::string target;  // origin-form "/a?b", absolute-form "http://h/a", or "*"
  Version version = Version::kHttp11;
  HeaderMap headers;

  // The path and query of the target, whatever its form ("/a?b"; "*" stays "*").
  std::string_view path_and_query() const;
  // The path without the query.
  std::string_view path() const;
  // The authority: the absolute-form target's, else Host. Empty if neither.
  std::string_view authority() const;
};

struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard phrase is written
  Version version = Version::kHttp11;
  HeaderMap headers;
};

// "OK", "Not Found"... ("Unknown" for a code without one).
std::string_view reason_phrase(int status);

// Methods that may be retried on another upstream after a connect failure (RFC 9110 9.2.2).
bool is_idempotent(std::string_view method);

// RFC 9110 token characters (field names, methods).
inline bool is_tchar(unsigned char c) { return detail::kTchar[c]; }

}  // namespace monolake::http
