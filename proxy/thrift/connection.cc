#include "proxy/thrift/connection.h"

#include <deque>
#include <optional>
#include <utility>

#include "base/log.h"
#include "runtime/notify.h"
#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::proxy::thrift {

using runtime::Notify;

namespace {

// A place in the reply order, filled when its call is answered.
struct Slot {
  bool ready = false;
  bool close = false;  // the chain failed without a reply: the connection ends here
  std::optional<ct::Frame> frame;
};

// What the reader, the writer and the call tasks of one connection share.
struct State {
  explicit State(const ConnectionOptions& o) : options(o) {}
  ConnectionOptions options;
  std::deque<std::shared_ptr<Slot>> replies;  // calls in the order they came
  size_t in_flight = 0;  // read and not yet answered (oneway: not yet forwarded)
  size_t answered = 0;
  runtime::TimePoint idle_since{};  // when in_flight last became 0
  bool reading_done = false;
  bool broken = false;  // stop now: a write failed, a call failed, a malformed frame...
  Notify reader_wake;   // in_flight went down, or the writer stopped
  Notify writer_wake;   // a reply is ready, or reading ended
  runtime::CancelState stop_reading;  // the writer broke: end the reader's pending read
  std::shared_ptr<Session> session = std::make_shared<Session>();
};

void finished(State& state, size_t calls) {
  state.in_flight -= calls;
  state.answered += calls;
  if (state.in_flight == 0) state.idle_since = runtime::Runtime::current()->now();
  state.reader_wake.notify();
}

Task<void> run_call(std::shared_ptr<State> state, std::shared_ptr<ThriftService> chain, Call call,
                    std::shared_ptr<Slot> slot) {
  Result<Reply> reply = co_await chain->call(std::move(call));
  if (!slot) {  // oneway: forwarded (or failed), nothing to send back
    finished(*state, 1);
    co_return;
  }
  slot->ready = true;
  if (!reply) {
    slot->close = true;
  } else {
    slot->frame = std::move(reply->frame);
  }
  state->writer_wake.notify();
}

// Writes replies in call order, as many as are ready in one write.
Task<void> write_replies(std::shared_ptr<State> state, transport::ByteStream* stream) {
  IoBuffer out;
  while (!state->broken) {
    size_t taken = 0;
    bool close = false;
    while (!state->replies.empty() && state->replies.front()->ready) {
      Slot& slot = *state->replies.front();
      if (slot.close) {
        close = true;
        break;
      }
      if (slot.frame) out.append(slot.frame->wire);
      state->replies.pop_front();
      ++taken;
    }
    if (!out.empty()) {
      runtime::BufResult<size_t> written = co_await runtime::with_timeout(
          stream->write_all(std::move(out)), state->options.write_timeout);
      if (!written.result) {
        state->broken = true;
        break;
      }
      out = std::move(written.buffer);
      out.clear();
    }
    if (taken > 0) finished(*state, taken);
    if (close) {
      state->broken = true;
      break;
    }
    if (taken > 0) continue;  // more may have become ready meanwhile
    if (state->replies.empty()) {
      out.release();  // an idle connection keeps no buffer
      if (state->reading_done) break;
    }
    Result<void> woken = co_await state->writer_wake.wait();
    if (!woken) break;
  }
  if (state->broken) state->stop_reading.cancel();
  state->reader_wake.notify();
}

}  // namespace

Task<void> serve_connection(transport::ByteStream& stream, std::string client,
                            ConnectionOptions options, ChainSource chains) {
  runtime::Runtime* rt = runtime::Runtime::current();
  auto state = std::make_shared<State>(options);
  const runtime::TimePoint opened = rt->now();
  state->idle_since = opened;
  std::shared_ptr<State> for_writer = state;
  runtime::JoinHandle<void> writer =
      runtime::spawn_with_handle(write_replies(std::move(for_writer), &stream));
  ct::Codec codec(options.limits);
  IoBuffer in;
  runtime::TimePoint frame_start = opened;
  while (!state->broken) {
    Result<std::optional<ct::Frame>> frame = codec.decode(in);
    if (!frame) {
      ML_LOG(kDebug, "thrift: {}: {}", client, frame.error().to_string());
      state->broken = true;
      break;
    }
    if (frame->has_value()) {
      if (!in.empty()) frame_start = rt->now();  // the next frame has begun
      while (state->in_flight >= options.max_in_flight && !state->broken) {
        Result<void> woken = co_await state->reader_wake.wait();
        if (!woken) state->broken = true;
      }
      if (state->broken) break;
      std::shared_ptr<ThriftService> chain = chains();
      if (!chain) {
        state->broken = true;
        break;
      }
      // A named Call, not a braced temporary in the call: GCC 12 byte-copied that one into the
      // callee's frame and destroyed it twice (docs/architecture.md).
      Call call;
      call.frame = std::move(**frame);
      call.client = client;
      call.session = state->session;
      std::shared_ptr<Slot> slot;
      if (call.frame.type != ct::MessageType::kOneway) {
        slot = std::make_shared<Slot>();
        state->replies.push_back(slot);
      }
      ++state->in_flight;
      std::shared_ptr<State> for_call = state;
      runtime::spawn(
          run_call(std::move(for_call), std::move(chain), std::move(call), std::move(slot)));
      continue;
    }
    // No whole frame buffered: read, within the limit that applies now.
    const runtime::TimePoint now = rt->now();
    runtime::TimePoint deadline;
    if (!in.empty()) {
      deadline = frame_start + options.message_timeout;
    } else if (state->in_flight > 0) {  // not idle: wait, then look again
      deadline = now + (options.keepalive_timeout.count() > 0 ? options.keepalive_timeout
                                                              : options.message_timeout);
    } else if (options.keepalive_timeout.count() > 0) {
      deadline = state->idle_since + options.keepalive_timeout;
    } else if (state->answered > 0) {
      break;  // no keep-alive: the connection's calls are answered
    } else {
      deadline = opened + options.message_timeout;
    }
    if (deadline <= now) {
      ML_LOG(kDebug, "thrift: {}: {}", client,
             in.empty() ? "idle timeout" : "frame not complete within server_message_timeout_sec");
      state->broken = !in.empty();
      break;
    }
    if (in.empty()) in.release();  // an idle connection keeps no buffer
    const bool was_empty = in.empty();
    runtime::Task<Result<size_t>> read =
        runtime::with_timeout(stream.read_some(in), deadline - now);
    read.set_cancel_state(&state->stop_reading);
    Result<size_t> n = co_await std::move(read);
    if (!n) {
      if (n.error().code() == ErrorCode::kTimeout) continue;  // the limit is checked above
      ML_LOG(kDebug, "thrift: {}: {}", client, n.error().to_string());
      state->broken = true;
      break;
    }
    if (*n == 0) {
      if (!in.empty()) {
        ML_LOG(kDebug, "thrift: {}: end of stream inside a frame", client);
        state->broken = true;
      }
      break;  // the client closed its side: the calls in flight are still answered
    }
    if (was_empty) frame_start = rt->now();
  }
  state->reading_done = true;
  state->writer_wake.notify();
  co_await writer;
}

}  // namespace monolake::proxy::thrift
