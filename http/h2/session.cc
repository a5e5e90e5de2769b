#include "http/h2/session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "base/log.h"
#include "runtime/time.h"

namespace monolake::http::h2 {

namespace {

// Connection-specific fields (RFC 9113 8.2.2) never appear in HTTP/2; `te` is allowed with the
// value "trailers" only (requests), `host` becomes :authority.
bool connection_specific(std::string_view name) {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "proxy-connection") || iequals(name, "transfer-encoding") ||
         iequals(name, "upgrade");
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(detail::kLower[static_cast<unsigned char>(c)]);
  return out;
}

// nghttp2 copies names and values during submit; this keeps them alive until then.
class HeaderList {
 public:
  void add(std::string name, std::string_view value) {
    names_.push_back(std::move(name));
    values_.emplace_back(value);
  }
  std::vector<nghttp2_nv> build() {
    std::vector<nghttp2_nv> nva;
    nva.reserve(names_.size());
    for (size_t i = 0; i < names_.size(); ++i) {
      nva.push_back({reinterpret_cast<uint8_t*>(names_[i].data()),
                     reinterpret_cast<uint8_t*>(values_[i].data()), names_[i].size(),
                     values_[i].size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nva;
  }

 private:
  std::deque<std::string> names_;
  std::deque<std::string> values_;
};

// Regular fields of `headers` in HTTP/2 form: lower-case names, no connection-specific ones.
void add_fields(const HeaderMap& headers, bool request, HeaderList& out) {
  for (const HeaderMap::Field& f : headers.fields()) {
    if (connection_specific(f.name) || iequals(f.name, "host")) continue;
    if (iequals(f.name, "te") && !(request && iequals(f.value, "trailers"))) continue;
    out.add(lower(f.name), f.value);
  }
}

Error h2_error(const char* what, int code) {
  return Error(ErrorCode::kProtocol, std::string(what) + ": " + nghttp2_strerror(code));
}

}  // namespace

std::optional<uint64_t> content_length(const HeaderMap& headers) {
  auto value = headers.get("content-length");
  if (!value) return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (ec != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return n;
}

// --- nghttp2 callbacks ----------------------------------------------------------------------

struct Callbacks {
  // What a callback returns after abuse(): nghttp2_session_mem_recv() stops at once (feed()
  // then ends the connection; the GOAWAY abuse() queued is still sent). Returning 0 would let
  // it go on parsing after it has reset its frame state: a later broken frame then has it
  // terminate the session a second time, which fails nghttp2's
  // `iframe->state == NGHTTP2_IB_IGN_ALL` assertion (1.52) and aborts the process.
  static constexpr int kStopReading = NGHTTP2_ERR_CALLBACK_FAILURE;

  static Session& of(void* user_data) { return *static_cast<Session*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& s = of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    const int32_t id = frame->hd.stream_id;
    if (s.role_ == Session::Role::kServer && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto stream = std::make_shared<StreamState>();
      stream->id = id;
      nghttp2_session_set_stream_user_data(s.ng_, id, stream.get());
      s.streams_.emplace(id, std::move(stream));
      ++s.streams_opened_;
      s.update_idle();
      return 0;
    }
    std::shared_ptr<StreamState> stream = s.find(id);
    if (stream && stream->head_done) {
      stream->in_trailers = true;
      stream->header_bytes = 0;
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_p,
                       size_t namelen, const uint8_t* value_p, size_t valuelen, uint8_t,
                       void* user_data) {
    Session& s = of(user_data);
    std::shared_ptr<StreamState> stream = s.find(frame->hd.stream_id);
    if (!stream) return 0;
    // Counted as SETTINGS_MAX_HEADER_LIST_SIZE counts (RFC 9113 6.5.2): name, value, 32.
    stream->header_bytes += namelen + valuelen + 32;
    bool& too_large = stream->in_trailers ? stream->trailers_too_large : stream->head_too_large;
    if (stream->header_bytes > s.options_.max_header_list_size) too_large = true;
    if (too_large) return 0;
    const std::string_view name(reinterpret_cast<const char*>(name_p), namelen);
    const std::string_view value(reinterpret_cast<const char*>(value_p), valuelen);
    if (stream->in_trailers) {
      if (!name.empty() && name.front() != ':') stream->trailers.add(name, value);
      return 0;
    }
    if (!name.empty() && name.front() == ':') {
      // nghttp2 has checked the pseudo-header set (HTTP messaging validation is on).
      if (name == ":method")
        stream->method = value;
      else if (name == ":path")
        stream->path = value;
      else if (name == ":scheme")
        stream->scheme = value;
      else if (name == ":authority")
        stream->authority = value;
      else if (name == ":status") {
        int status = 0;
        for (char c : value) status = status * 10 + (c - '0');
        stream->status = status;
      }
      return 0;
    }
    // Cookie crumbs are joined into one field for HTTP/1.1 (RFC 9113 8.2.3).
    if (name == "cookie") {
      for (const HeaderMap::Field& f : stream->headers.fields()) {
        if (f.name == "cookie") {
          std::string joined = std::string(f.value) + "; " + std::string(value);
          stream->headers.set("cookie", joined);
          return 0;
        }
      }
    }
    stream->headers.add(name, value);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& s = of(user_data);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end_stream) {
          if (++s.consecutive_empty_frames_ > s.options_.max_consecutive_empty_frames) {
            s.abuse(NGHTTP2_ENHANCE_YOUR_CALM, "empty DATA frame flood");
            return kStopReading;
          }
        } else {
          s.consecutive_empty_frames_ = 0;
        }
        break;
      case NGHTTP2_HEADERS:
        s.consecutive_empty_frames_ = 0;
        header_block_done(s, frame->hd.stream_id, end_stream);
        return 0;
      case NGHTTP2_PRIORITY:
        if (++s.priority_frames_ >
            uint64_t{s.options_.max_priority_frames_per_stream} * (1 + s.streams_opened_)) {
          s.abuse(NGHTTP2_ENHANCE_YOUR_CALM, "PRIORITY frame flood");
          return kStopReading;
        }
        return 0;
      case NGHTTP2_SETTINGS:
      case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            !s.control_frames_.take(runtime::Runtime::current()->now())) {
          s.abuse(NGHTTP2_ENHANCE_YOUR_CALM, "SETTINGS/PING flood");
          return kStopReading;
        }
        return 0;
      case NGHTTP2_RST_STREAM:
        // Rapid Reset (CVE-2023-44487): streams opened and cancelled at once cost us the work
        // behind them. nghttp2 has its own limit (answered with INTERNAL_ERROR); ours is
        // reached first and says what it is.
        if (s.role_ == Session::Role::kServer &&
            !s.resets_.take(runtime::Runtime::current()->now())) {
          s.abuse(NGHTTP2_ENHANCE_YOUR_CALM, "stream reset flood (Rapid Reset)");
          return kStopReading;
        }
        return 0;
      case NGHTTP2_GOAWAY:
        s.goaway_received_ = true;
        s.goaway_last_stream_ = frame->goaway.last_stream_id;
        return 0;
      default:
        return 0;
    }
    if (end_stream) {
      if (std::shared_ptr<StreamState> stream = s.find(frame->hd.stream_id)) {
        stream->in_ended = true;
        stream->in_ready.notify();
      }
    }
    return 0;
  }

  // A whole header block (HEADERS + CONTINUATION) has arrived on `id`.
  static void header_block_done(Session& s, int32_t id, bool end_stream) {
    std::shared_ptr<StreamState> stream = s.find(id);
    if (!stream) return;
    if (stream->in_trailers || stream->head_done) {
      if (end_stream) stream->in_ended = true;
      stream->in_ready.notify();
      return;
    }
    if (s.role_ == Session::Role::kClient && stream->status < 200) {
      // An interim response (1xx): forget it, the final one follows.
      stream->headers.clear();
      stream->status = 0;
      stream->header_bytes = 0;
      return;
    }
    stream->head_done = true;
    if (end_stream) stream->in_ended = true;
    if (s.role_ == Session::Role::kServer) {
      if (s.on_request_) s.on_request_(stream);
    } else {
      stream->in_ready.notify();
    }
  }

  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* user_data) {
    Session& s = of(user_data);
    // An upstream connection is shared by many clients' requests: one client that reads slowly
    // must not stall the others' responses on it, so there the connection window is given back
    // at once and only each stream's window waits for its reader (which still bounds memory).
    if (s.role_ == Session::Role::kClient) nghttp2_session_consume_connection(s.ng_, len);
    std::shared_ptr<StreamState> stream = s.find(id);
    if (!stream || stream->in_discard) {
      // Nobody will read it: give the window back now.
      s.give_back(id, len);
      return 0;
    }
    stream->in_total += len;
    if (s.role_ == Session::Role::kServer && stream->in_total > s.options_.max_request_body) {
      s.give_back(id, len);
      nghttp2_submit_rst_stream(s.ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      return 0;
    }
    stream->in.push_back(IoBuffer::copy_of({reinterpret_cast<const char*>(data), len}));
    stream->in_bytes += len;
    stream->in_ready.notify();
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    Session& s = of(user_data);
    auto it = s.streams_.find(id);
    if (it == s.streams_.end()) return 0;
    std::shared_ptr<StreamState> stream = std::move(it->second);
    s.streams_.erase(it);
    s.update_idle();
    stream->closed = true;
    stream->close_code = error_code;
    // Bytes still queued for a reader no longer count against the connection window (on the
    // client side it was given back on arrival).
    if (s.role_ == Session::Role::kServer && stream->in_bytes > 0 && !stream->in_discard) {
      nghttp2_session_consume_connection(s.ng_, stream->in_bytes);
    }
    stream->in_ready.notify();
    stream->out_space.notify();
    // Work still going on for a closed stream is abandoned (the upstream request behind it
    // too): nothing of it can be sent any more. The code does not tell: a peer may reset a
    // stream with NO_ERROR before we answered. (A stream that ended both ways has no task
    // left: the response was the task's last step.) On the client side the task is the
    // request body pump, which has nothing left to do either.
    if (stream->task && !stream->task->done()) {
      stream->task->cancel();
      // run() still awaits it: it may hold references its caller owns (the handler, the
      // connection info), so it must not outlive the connection.
      std::erase_if(s.closed_stream_tasks_,
                    [](const runtime::JoinHandle<void>& t) { return t.done(); });
      s.closed_stream_tasks_.push_back(*stream->task);
    }
    return 0;
  }

  static ssize_t read_data(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    Session& s = of(user_data);
    std::shared_ptr<StreamState> stream = s.find(id);
    if (!stream) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t copied = 0;
    while (copied < length && !stream->out.empty()) {
      IoBuffer& front = stream->out.front();
      const size_t n = std::min(length - copied, front.size());
      std::memcpy(buf + copied, front.data(), n);
      front.consume(n);
      copied += n;
      if (front.empty()) stream->out.pop_front();
    }
    stream->out_bytes -= copied;
    if (copied > 0) stream->out_space.notify();
    if (stream->out.empty() && stream->out_ended) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (stream->out_trailers && !stream->out_trailers->empty()) {
        HeaderList list;
        add_fields(*stream->out_trailers, /*request=*/false, list);
        std::vector<nghttp2_nv> nva = list.build();
        if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0) {
          *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
      return static_cast<ssize_t>(copied);
    }
    if (copied == 0) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(copied);
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* frame, int error_code, void*) {
    ML_LOG(kDebug, "h2: invalid frame type {} on stream {}: {}", frame->hd.type,
           frame->hd.stream_id, nghttp2_strerror(error_code));
    return 0;
  }
};

// --- StreamBody -----------------------------------------------------------------------------

StreamBody::StreamBody(std::shared_ptr<Session> session, std::shared_ptr<StreamState> stream,
                       std::optional<uint64_t> length)
    : session_(std::move(session)), stream_(std::move(stream)), length_(length) {}

StreamBody::~StreamBody() {
  // Whatever is left will not be read: hand its window back and drop what still comes. An
  // upstream response nobody reads any more is cancelled (else an endless one — a gRPC stream,
  // server-sent events — would hold its stream and keep sending for ever).
  if (!stream_->in_ended) session_->abandon(stream_);
  stream_->in_discard = true;
  const size_t unread = stream_->in_bytes;
  stream_->in.clear();
  stream_->in_bytes = 0;
  if (unread > 0) session_->consumed(*stream_, unread);
}

runtime::Task<Result<IoBuffer>> StreamBody::read() {
  while (true) {
    if (!stream_->in.empty()) {
      IoBuffer piece = std::move(stream_->in.front());
      stream_->in.pop_front();
      stream_->in_bytes -= piece.size();
      session_->consumed(*stream_, piece.size());
      co_return piece;
    }
    if (stream_->in_ended) {
      if (stream_->trailers_too_large) {
        co_return Error(ErrorCode::kProtocol, "HTTP/2 trailers over max_header_list_size");
      }
      co_return IoBuffer();
    }
    if (stream_->closed || session_->closed()) {
      co_return Error(ErrorCode::kConnectionReset, "HTTP/2 stream reset before its body ended");
    }
    Result<void> woken = co_await runtime::with_timeout(runtime::notified(stream_->in_ready),
                                                        session_->options().read_body_timeout);
    if (!woken) co_return woken.error();
  }
}

const HeaderMap* StreamBody::trailers() const {
  return stream_->trailers.empty() ? nullptr : &stream_->trailers;
}

// --- Session --------------------------------------------------------------------------------

Session::Session(Role role, transport::ByteStream& stream, const Options& options)
    : role_(role), stream_(&stream), options_(options) {
  init_limits();
}

Session::Session(Role role, std::unique_ptr<transport::ByteStream> stream, const Options& options)
    : role_(role),
      owned_stream_(std::move(stream)),
      stream_(owned_stream_.get()),
      options_(options) {
  init_limits();
}

void Session::init_limits() {
  const double control = options_.max_control_frames_per_sec;
  control_frames_ = {control, control, control, {}};
  resets_ = {static_cast<double>(options_.reset_burst),
             static_cast<double>(options_.reset_rate_per_sec),
             static_cast<double>(options_.reset_burst),
             {}};
}

Session::~Session() {
  if (ng_) nghttp2_session_del(ng_);
}

Result<void> Session::init(OnRequest on_request) {
  on_request_ = std::move(on_request);
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return Error(ErrorCode::kInternal, "h2: no memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &Callbacks::on_invalid_frame);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows follow what readers have taken (see the header), not what nghttp2 has parsed.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, options_.max_outbound_ack);
  nghttp2_option_set_max_continuations(opt, options_.max_continuations);
  // A backstop behind our own reset limit (resets_), which answers ENHANCE_YOUR_CALM.
  nghttp2_option_set_stream_reset_rate_limit(opt, options_.reset_burst * 2 + 1,
                                             options_.reset_rate_per_sec * 2 + 1);
  // Closed streams are kept (nghttp2 bounds how many) so frames on a stream that has ended
  // get the STREAM_CLOSED error RFC 9113 5.1 asks for rather than being ignored.
  int rv = role_ == Role::kServer ? nghttp2_session_server_new2(&ng_, cbs, this, opt)
                                  : nghttp2_session_client_new2(&ng_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return h2_error("h2: session", rv);

  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
  };
  if (role_ == Role::kServer) {
    settings.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams});
  } else {
    settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  }
  rv = nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  if (rv != 0) return h2_error("h2: SETTINGS", rv);
  rv = nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0,
                                             static_cast<int32_t>(options_.connection_window));
  if (rv != 0) return h2_error("h2: connection window", rv);
  return ok();
}

std::shared_ptr<StreamState> Session::find(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

size_t Session::available_streams() const {
  if (closed_ || goaway_received_ || terminate_) return 0;
  // Stream ids run out after 2^30 client streams: such a connection takes no more.
  if (role_ == Role::kClient && nghttp2_session_get_next_stream_id(ng_) > (1u << 31) - 1024) {
    return 0;
  }
  const uint32_t limit =
      nghttp2_session_get_remote_settings(ng_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return limit > streams_.size() ? limit - streams_.size() : 0;
}

bool Session::TokenBucket::take(runtime::TimePoint now) {
  if (refilled != runtime::TimePoint{}) {
    const double seconds = std::chrono::duration<double>(now - refilled).count();
    tokens = std::min(burst, tokens + seconds * rate);
  }
  refilled = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

void Session::abuse(uint32_t code, const std::string& why) {
  if (terminate_) return;
  ML_LOG(kInfo, "h2: {}: {}; closing the connection", peer_, why);
  nghttp2_session_terminate_session(ng_, code);
  terminate_ = true;
  end_reason_ = why;
  abused_ = true;
  wake_writer();
}

void Session::end(const std::string& reason) {
  if (end_reason_.empty()) end_reason_ = reason;
  closed_ = true;
  wake_writer();
}

void Session::close(std::optional<uint32_t> goaway_code) {
  if (closed_) return;
  if (goaway_code && !terminate_) {
    nghttp2_session_terminate_session(ng_, *goaway_code);
    terminate_ = true;
    if (end_reason_.empty()) end_reason_ = "closed";
    wake_writer();
    return;
  }
  end("closed");
}

void Session::shutdown() {
  if (closed_ || terminate_) return;
  // GOAWAY with the last stream we have seen: those finish, newer ones are refused.
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  wake_writer();
}

bool Session::feed(std::string_view bytes) {
  const ssize_t rv =
      nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) {
    // Fatal for the connection. nghttp2 reports some floods (unread ACKs) without a GOAWAY;
    // a bad preface or a broken frame gets one where it still can be sent.
    if (rv == NGHTTP2_ERR_FLOODED) {
      abused_ = true;
      end("flood: the peer does not read its SETTINGS/PING acknowledgements");
      return false;
    }
    if (!terminate_) {
      nghttp2_session_terminate_session(ng_, NGHTTP2_PROTOCOL_ERROR);
      terminate_ = true;
    }
    if (end_reason_.empty()) end_reason_ = nghttp2_strerror(static_cast<int>(rv));
    return false;
  }
  return !terminate_;
}

runtime::Task<void> Session::read_loop(IoBuffer pending) {
  bool go_on = pending.empty() || feed(pending.view());
  IoBuffer buffer;
  while (go_on && !closed_ && nghttp2_session_want_read(ng_)) {
    wake_writer();
    buffer.clear();
    // (The idle timeout is a Deadline armed while no stream is open: see update_idle().)
    Result<size_t> n = co_await stream_->read_some(buffer);
    if (!n) {
      if (n.error().code() != ErrorCode::kCancelled) end("read: " + n.error().to_string());
      break;
    }
    if (*n == 0) {
      end("closed by the peer");
      break;
    }
    go_on = feed(buffer.view());
  }
  // nghttp2 wants nothing more (e.g. the peer's GOAWAY with no stream open): an orderly end,
  // which would otherwise leave the connection without a reason.
  if (end_reason_.empty() && !nghttp2_session_want_read(ng_)) end_reason_ = "finished";
  reading_done_ = true;
  wake_writer();
}

Result<IoBuffer> Session::collect_output() {
  IoBuffer out;
  while (out.size() < 64 * 1024) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(ng_, &data);
    if (n < 0) return h2_error("h2: send", static_cast<int>(n));
    if (n == 0) break;
    out.append(data, static_cast<size_t>(n));
  }
  return out;
}

runtime::Task<void> Session::write_loop() {
  while (true) {
    Result<IoBuffer> out = collect_output();
    if (!out) {
      end(out.error().to_string());
      break;
    }
    if (!out->empty()) {
      auto written = co_await runtime::with_timeout(stream_->write_all(std::move(*out)),
                                                    options_.write_timeout);
      if (!written.result) {
        end("write: " + written.result.error().to_string());
        break;
      }
      continue;
    }
    // Everything queued has been written.
    if (closed_ || terminate_ || reading_done_) break;
    if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) {
      end("finished");
      break;
    }
    if (!co_await want_write_.wait()) break;
  }
}

void Session::update_idle() {
  if (role_ != Role::kServer) return;
  if (!streams_.empty() || closed_ || terminate_) {
    idle_.disarm();
    return;
  }
  idle_.arm(
      runtime::Runtime::current()->now() + options_.idle_timeout,
      [](void* p) {
        auto* self = static_cast<Session*>(p);
        if (self->closed_ || !self->streams_.empty()) return;
        if (self->end_reason_.empty()) self->end_reason_ = "idle timeout";
        self->close(NGHTTP2_NO_ERROR);  // GOAWAY, then the connection ends
      },
      this);
}

runtime::Task<void> Session::run(IoBuffer pending) {
  std::shared_ptr<Session> self = shared_from_this();
  update_idle();
  runtime::JoinHandle<void> writer = runtime::spawn_with_handle(write_loop());
  reader_.emplace(runtime::spawn_with_handle(read_loop(std::move(pending))));
  co_await writer;
  closed_ = true;
  idle_.disarm();
  reader_->cancel();
  co_await *reader_;
  // Every stream still open ends with the connection; their tasks are cancelled and awaited
  // (they may hold references the caller owns, like the request handler).
  std::vector<std::shared_ptr<StreamState>> open;
  for (auto& [id, stream] : streams_) open.push_back(stream);
  streams_.clear();
  for (const std::shared_ptr<StreamState>& stream : open) {
    stream->closed = true;
    stream->close_code = NGHTTP2_CANCEL;
    stream->in_ready.notify();
    stream->out_space.notify();
    if (stream->task) stream->task->cancel();
  }
  for (const std::shared_ptr<StreamState>& stream : open) {
    if (stream->task) co_await *stream->task;
  }
  for (const runtime::JoinHandle<void>& task : closed_stream_tasks_) co_await task;
  closed_stream_tasks_.clear();
  on_request_ = nullptr;  // it may hold references the caller owns
}

Result<void> Session::submit_response(const std::shared_ptr<StreamState>& stream,
                                      const ResponseHead& head, bool has_body) {
  if (closed_ || stream->closed) return Error(ErrorCode::kClosed, "h2: stream closed");
  HeaderList list;
  list.add(":status", std::to_string(head.status));
  add_fields(head.headers, /*request=*/false, list);
  std::vector<nghttp2_nv> nva = list.build();
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::read_data;
  const int rv = nghttp2_submit_response(ng_, stream->id, nva.data(), nva.size(),
                                         has_body ? &provider : nullptr);
  if (rv != 0) return h2_error("h2: response", rv);
  wake_writer();
  return ok();
}

Result<std::shared_ptr<StreamState>> Session::submit_request(const RequestHead& head, bool has_body,
                                                             std::optional<uint64_t> length) {
  if (available_streams() == 0) return Error(ErrorCode::kLimitExceeded, "h2: no stream free");
  HeaderList list;
  list.add(":method", head.method);
  list.add(":scheme", scheme_);
  list.add(":authority", head.authority());
  if (head.method != "CONNECT") {
    std::string_view path = head.path_and_query();
    list.add(":path", path.empty() ? std::string_view("/") : path);
  }
  add_fields(head.headers, /*request=*/true, list);
  if (length && !head.headers.has("content-length")) {
    list.add("content-length", std::to_string(*length));
  }
  std::vector<nghttp2_nv> nva = list.build();
  auto stream = std::make_shared<StreamState>();
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::read_data;
  const int32_t id = nghttp2_submit_request(ng_, nullptr, nva.data(), nva.size(),
                                            has_body ? &provider : nullptr, stream.get());
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
    return Error(ErrorCode::kLimitExceeded, "h2: stream ids exhausted on this connection");
  }
  if (id < 0) return h2_error("h2: request", id);
  stream->id = id;
  streams_.emplace(id, stream);
  ++streams_opened_;
  wake_writer();
  return stream;
}

runtime::Task<void> Session::pump_body(std::shared_ptr<StreamState> stream,
                                       std::unique_ptr<Body> body) {
  // Says "done" however the pump ends (a caller may wait for it: ClientConnection::request).
  // A body that did not reach its end leaves the stream reset, never half-sent and open.
  struct Done {
    Session* session;
    const std::shared_ptr<StreamState>& stream;
    ~Done() {
      if (!stream->out_ended) session->reset_stream(stream, NGHTTP2_CANCEL);
      stream->pump_running = false;
      stream->pump_done.notify();
    }
  } done{this, stream};
  stream->pump_running = true;
  const std::optional<uint64_t> length = body->length();
  uint64_t sent = 0;
  while (true) {
    while (stream->out_bytes >= options_.stream_send_buffer && !stream->closed && !closed_) {
      // A peer that never opens its window does not hold the stream (and what feeds it) for
      // ever.
      Result<void> room = co_await runtime::with_timeout(runtime::notified(stream->out_space),
                                                         options_.write_timeout);
      if (!room) {
        if (room.error().code() == ErrorCode::kTimeout) reset_stream(stream, NGHTTP2_CANCEL);
        co_return;
      }
    }
    if (stream->closed || closed_) co_return;
    Result<IoBuffer> piece = co_await body->read();
    if (stream->closed || closed_) co_return;
    if (!piece) {
      ML_LOG(kDebug, "h2: stream {} body failed: {}", stream->id, piece.error().to_string());
      reset_stream(stream, NGHTTP2_INTERNAL_ERROR);
      co_return;
    }
    sent += piece->size();
    if (length && sent > *length) {
      reset_stream(stream, NGHTTP2_INTERNAL_ERROR);
      co_return;
    }
    if (piece->empty()) {
      if (length && sent != *length) {
        reset_stream(stream, NGHTTP2_INTERNAL_ERROR);
        co_return;
      }
      if (const HeaderMap* trailers = body->trailers()) stream->out_trailers = *trailers;
      stream->out_ended = true;
      nghttp2_session_resume_data(ng_, stream->id);
      wake_writer();
      co_return;
    }
    stream->out_bytes += piece->size();
    stream->out.push_back(std::move(*piece));
    nghttp2_session_resume_data(ng_, stream->id);
    wake_writer();
  }
}

void Session::abandon(const std::shared_ptr<StreamState>& stream) {
  if (role_ == Role::kClient) reset_stream(stream, NGHTTP2_CANCEL);
}

void Session::reset_stream(const std::shared_ptr<StreamState>& stream, uint32_t code) {
  if (closed_ || stream->closed || stream->reset_sent) return;
  stream->reset_sent = true;
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, stream->id, code);
  wake_writer();
}

void Session::consumed(StreamState& stream, size_t n) {
  if (closed_ || n == 0) return;
  if (stream.closed) return;  // its window went back when it closed
  give_back(stream.id, n);
  wake_writer();
}

void Session::give_back(int32_t id, size_t n) {
  if (role_ == Role::kClient) {
    nghttp2_session_consume_stream(ng_, id, n);  // the connection's share went back on arrival
  } else {
    nghttp2_session_consume(ng_, id, n);
  }
}

}  // namespace monolake::http::h2
