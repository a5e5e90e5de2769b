// Message bodies, pulled piece by piece. Pulling is the back-pressure: a body reads from its
// peer only when its consumer asks for the next piece, so a slow reader never makes the proxy
// buffer a whole body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/buffer.h"
#include "base/result.h"
#include "http/message.h"
#include "runtime/task.h"

namespace monolake::http {

class Body {
 public:
  virtual ~Body() = default;
  // The next piece of the body; an empty buffer at the end (then trailers() is final).
  virtual runtime::Task<Result<IoBuffer>> read() = 0;
  // The total length when it is known up front (Content-Length), else nullopt.
  virtual std::optional<uint64_t> length() const = 0;
  // Trailer fields, once read() has returned the end; nullptr if none.
  virtual const HeaderMap* trailers() const { return nullptr; }
};

// A body held in memory (direct responses, error pages, tests).
class StringBody final : public Body {
 public:
  explicit StringBody(std::string text) : text_(std::move(text)) {}
  runtime::Task<Result<IoBuffer>> read() override {
    if (done_) co_return IoBuffer();
    done_ = true;
    co_return IoBuffer::copy_of(text_);
  }
  std::optional<uint64_t> length() const override { return text_.size(); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool done_ = false;
};

}  // namespace monolake::http
