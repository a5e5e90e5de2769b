// The engine under both sides of an HTTP/2 connection (server.h, client.h): a libnghttp2
// session driven by two tasks of our runtime, one reading (bytes in -> nghttp2 -> stream
// events) and one writing (frames nghttp2 has queued -> bytes out), plus the streams.
//
// Ownership: a Session is held by shared_ptr — by the connection (server.cc's serve(),
// client.cc's ClientConnection), by its two I/O tasks and by every task that works on one of
// its streams; so no task ever sees it freed. nghttp2 is only called on the connection's
// runtime thread.
//
// Flow control follows consumption: nghttp2's automatic WINDOW_UPDATE is off, and the window of
// a stream is given back only when whoever reads its body has taken the bytes. A slow reader
// therefore holds the peer at one stream window — the proxy never buffers a body without bound.
// On the server side the connection window waits for readers too (the client's own streams
// share it); on the client side (an upstream connection shared by many clients' requests) it
// is given back on arrival, so one slow reader cannot stall the others. Outgoing bodies are pulled
// from their Body only while less than Options::stream_send_buffer of them waits to be sent.
//
// Private to http/h2 (nghttp2's header is included by the .cc files only).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "http/body.h"
#include "http/exchange.h"
#include "http/h2/options.h"
#include "runtime/notify.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/byte_stream.h"

struct nghttp2_session;

namespace monolake::http::h2 {

// The Content-Length of a head, if it has a valid one (nghttp2 has checked it against DATA).
std::optional<uint64_t> content_length(const HeaderMap& headers);

// One stream's state, shared by the session and the tasks working on it.
struct StreamState {
  int32_t id = 0;

  // --- inbound: the peer's head, body and trailers
  HeaderMap headers;
  std::string method, path, scheme, authority;  // request pseudo-headers (server side)
  int status = 0;                               // :status (client side)
  size_t header_bytes = 0;
  bool head_too_large = false;
  bool trailers_too_large = false;
  bool head_done = false;
  bool in_trailers = false;  // the next header block is trailers
  HeaderMap trailers;
  std::deque<IoBuffer> in;
  size_t in_bytes = 0;
  uint64_t in_total = 0;     // body bytes received so far
  bool in_ended = false;     // END_STREAM received
  bool in_discard = false;   // nobody will read: give the window back at once
  runtime::Notify in_ready;  // the body reader / the head waiter

  // --- outbound: our body (and trailers) waiting for nghttp2 to send them
  std::deque<IoBuffer> out;
  size_t out_bytes = 0;
  bool out_ended = false;
  std::optional<HeaderMap> out_trailers;
  runtime::Notify out_space;  // the body pump waits for room

  // --- lifetime
  bool closed = false;      // nghttp2 closed the stream (reset or both sides ended)
  bool reset_sent = false;  // we have queued an RST_STREAM
  uint32_t close_code = 0;  // the RST_STREAM error code (0 = NO_ERROR)
  std::optional<runtime::JoinHandle<void>> task;  // the handler (server) or body pump (client)
  bool pump_running = false;                      // pump_body() is at work on this stream
  runtime::Notify pump_done;                      // notified when pump_body() ends
};

// A Body reading a stream's inbound DATA. Giving bytes out gives their window back.
class StreamBody final : public Body {
 public:
  StreamBody(std::shared_ptr<class Session> session, std::shared_ptr<StreamState> stream,
             std::optional<uint64_t> length);
  ~StreamBody() override;
  runtime::Task<Result<IoBuffer>> read() override;
  std::optional<uint64_t> length() const override { return length_; }
  const HeaderMap* trailers() const override;

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<StreamState> stream_;
  std::optional<uint64_t> length_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Role { kServer, kClient };

  // Called when a request head is complete (server role) — the server starts its handler.
  using OnRequest = std::function<void(std::shared_ptr<StreamState>)>;

  // `stream` must outlive run() (the server side: serve() owns it on its frame).
  Session(Role role, transport::ByteStream& stream, const Options& options);
  // The session owns `stream` (the client side).
  Session(Role role, std::unique_ptr<transport::ByteStream> stream, const Options& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Creates the nghttp2 session and queues our SETTINGS.
  Result<void> init(OnRequest on_request = nullptr);

  // The I/O tasks. run() starts both, and ends when the connection is over (both have ended):
  // then every stream is woken and closed. `pending`: bytes already read from the peer.
  runtime::Task<void> run(IoBuffer pending);
  // Asks run() to end now (GOAWAY first if `code` is set and the session can still send).
  void close(std::optional<uint32_t> goaway_code = std::nullopt);
  // Graceful: GOAWAY with the last stream we accepted; run() ends once open streams finish.
  void shutdown();

  // --- used by stream tasks
  // Submits a response (server) for `stream`, and queues its body if `body` is not null. The
  // body is then pumped by pump_body(), which the caller awaits.
  Result<void> submit_response(const std::shared_ptr<StreamState>& stream, const ResponseHead& head,
                               bool has_body);
  // Submits a request (client) and returns the new stream.
  Result<std::shared_ptr<StreamState>> submit_request(const RequestHead& head, bool has_body,
                                                      std::optional<uint64_t> length);
  // Pulls `body` into `stream`'s send queue as nghttp2 takes it. Resets the stream when the body
  // fails (a cut upstream response must not look complete).
  runtime::Task<void> pump_body(std::shared_ptr<StreamState> stream, std::unique_ptr<Body> body);
  // A stream whose inbound body nobody will read: the client side cancels it (RST_STREAM).
  void abandon(const std::shared_ptr<StreamState>& stream);
  // Resets `stream` with `code` (RST_STREAM).
  void reset_stream(const std::shared_ptr<StreamState>& stream, uint32_t code);
  // Called by StreamBody when bytes were handed on: gives their window back.
  void consumed(StreamState& stream, size_t n);
  // Window credit for `n` bytes of stream `id` (the stream's, and on the server side the
  // connection's too).
  void give_back(int32_t id, size_t n);

  bool closed() const { return closed_; }
  bool goaway_received() const { return goaway_received_; }
  int32_t goaway_last_stream() const { return goaway_last_stream_; }
  // Streams the peer lets us open now (client role).
  size_t available_streams() const;
  size_t open_streams() const { return streams_.size(); }
  const std::string& end_reason() const { return end_reason_; }
  // Whether a flood limit ended the connection.
  bool abused() const { return abused_; }
  const Options& options() const { return options_; }
  uint64_t streams_opened() const { return streams_opened_; }
  // For logs: who the peer is. For requests (client role): the :scheme they carry.
  void set_peer(std::string peer) { peer_ = std::move(peer); }
  void set_scheme(std::string scheme) { scheme_ = std::move(scheme); }

 private:
  friend struct Callbacks;
  runtime::Task<void> read_loop(IoBuffer pending);
  runtime::Task<void> write_loop();
  // Frames nghttp2 has ready, as bytes (at most ~64 KiB at a time).
  Result<IoBuffer> collect_output();
  // Feeds bytes to nghttp2; false once the connection must end.
  bool feed(std::string_view bytes);
  // A flood or protocol abuse: GOAWAY with `code`, then the connection ends.
  void abuse(uint32_t code, const std::string& why);
  void wake_writer() { want_write_.notify(); }
  void end(const std::string& reason);
  void init_limits();
  // Server role: while no stream is open, the idle timeout runs (GOAWAY when it fires).
  void update_idle();
  std::shared_ptr<StreamState> find(int32_t id) const;

  Role role_;
  std::unique_ptr<transport::ByteStream> owned_stream_;
  transport::ByteStream* stream_;
  Options options_;
  nghttp2_session* ng_ = nullptr;
  OnRequest on_request_;
  std::string peer_;
  std::string scheme_ = "http";
  std::unordered_map<int32_t, std::shared_ptr<StreamState>> streams_;
  runtime::Notify want_write_;
  std::optional<runtime::JoinHandle<void>> reader_;
  // Tasks of streams that closed while their task still ran (cancelled then); run() awaits
  // them before it ends.
  std::vector<runtime::JoinHandle<void>> closed_stream_tasks_;
  runtime::Deadline idle_;
  bool closed_ = false;  // no more I/O
  bool reading_done_ = false;
  bool terminate_ = false;  // flush what is queued (a GOAWAY), then end
  bool abused_ = false;
  std::string end_reason_;
  bool goaway_received_ = false;
  int32_t goaway_last_stream_ = 0;
  uint64_t streams_opened_ = 0;
  // Abuse accounting.
  // Allows `burst` events at once and `rate` per second after that.
  struct TokenBucket {
    double burst = 0, rate = 0, tokens = 0;
    runtime::TimePoint refilled{};
    bool take(runtime::TimePoint now);
  };
  uint32_t consecutive_empty_frames_ = 0;
  uint64_t priority_frames_ = 0;
  TokenBucket control_frames_;
  TokenBucket resets_;
};

}  // namespace monolake::http::h2
