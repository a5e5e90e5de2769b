// Fuzz target for the HTTP/2 server connection (http/h2/server.h, session.cc).
//
// Each input is what a client sends: it goes through a real AF_UNIX socketpair to
// http::h2::serve() on a runtime (epoll backend) made once per process. A handler reads each
// request body (bounded) and answers by path (bodies, trailers, failing and mis-sized bodies,
// cancellation while it sleeps), so the response side runs too. Meanwhile the client drains
// everything the server sends until EOF.
//
// The first byte of an input is the harness's own (not sent):
//   0x01  raw: send the rest as is; otherwise it is sent after the client preface and an empty
//         SETTINGS frame, so most mutations get past the connection preface
//   0x02  small Options (few streams, small windows, low flood thresholds, 100-byte bodies)
//   0x04  half-close as soon as the input is written (EOF races the handlers)
//   0x08  hand the preface (raw: the first bytes) to serve() as already-read `pending` bytes
//   0x30  write in one piece / 9-byte / 3-byte / 1000-byte pieces, yielding in between so the
//         server reads partial frames
//   0xc4  all set: linger, i.e. wait (up to 60 ms) for the server to end the connection on its
//         own (idle and body timeouts) before half-closing; rare on purpose (it costs time)
// Otherwise the client half-closes once the server has gone quiet (a few loop turns without a
// byte from it: no timer, so an input costs little).
//
// Besides "no crash, no sanitizer report" it checks:
//   - the exchange ends (a watchdog aborts after 5 s: a hang is a failure, not a stuck fuzzer);
//   - nothing outlives serve(): no task, timer or I/O left on the runtime, both fds closed;
//   - what the server sends is a frame sequence starting with its SETTINGS, never a push, never
//     HEADERS/DATA on stream 0 or an even stream;
//   - a request body that ends cleanly has its Content-Length, within max_request_body.
//
// Built two ways:
//   - `bazel build --config=asan //http/h2:server_fuzz` (clang, libFuzzer + ASan + UBSan):
//     bazel-bin/http/h2/server_fuzz -max_total_time=300 NEW_DIR http/h2/testdata/fuzz_corpus
//   - with ML_FUZZ_REPLAY_MAIN, as the ordinary test server_fuzz_replay_test (gcc), which
//     replays every file of the seed corpus.
#include <fcntl.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/log.h"
#include "http/exchange.h"
#include "http/h2/options.h"
#include "http/h2/server.h"
#include "runtime/io.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "testing/fuzz_check.h"
#include "transport/byte_stream.h"
#include "transport/stream.h"

namespace monolake::http::h2 {
namespace {

constexpr uint8_t kRaw = 0x01;
constexpr uint8_t kSmall = 0x02;
constexpr uint8_t kCloseAtOnce = 0x04;
constexpr uint8_t kPending = 0x08;
constexpr uint8_t kSplitMask = 0x30;
constexpr uint8_t kLinger = 0xc4;

// Longer inputs only slow the fuzzer down; they also could fill the socket buffers both ways
// (the client writes the whole input before it waits for the server).
constexpr size_t kMaxInput = 64 * 1024;
// Loop turns without a byte from the server after which the client takes it as quiet.
constexpr int kQuietTurns = 48;
constexpr auto kLingerLimit = std::chrono::milliseconds(60);
constexpr auto kWatchdog = std::chrono::seconds(5);
// Request bytes a handler reads at most (then it drops the body).
constexpr uint64_t kMaxBodyRead = 256 * 1024;

runtime::Runtime& fuzz_runtime() {
  static runtime::Runtime* rt = [] {
    set_log_level(LogLevel::kError);  // flood verdicts are logged at kInfo, once per input
    runtime::RuntimeOptions options;
    options.backend = runtime::BackendKind::kEpoll;
    options.honor_env = false;
    auto created = runtime::Runtime::create(options);
    if (!created) {
      std::fprintf(stderr, "runtime: %s\n", created.error().to_string().c_str());
      std::abort();
    }
    return created->release();  // lives as long as the process: inputs share it
  }();
  return *rt;
}

Options options_for(uint8_t flags) {
  Options o;
  // Short, but they only cost time in linger mode (else the client half-closes first).
  o.idle_timeout = std::chrono::milliseconds(20);
  o.read_body_timeout = std::chrono::milliseconds(10);
  o.write_timeout = std::chrono::milliseconds(100);
  if (flags & kSmall) {
    o.max_concurrent_streams = 4;
    o.initial_stream_window = 1024;
    o.connection_window = 65535;
    o.max_header_list_size = 512;
    o.max_continuations = 2;
    o.reset_burst = 5;
    o.reset_rate_per_sec = 1;
    o.max_control_frames_per_sec = 20;
    o.max_outbound_ack = 20;
    o.max_consecutive_empty_frames = 3;
    o.max_priority_frames_per_stream = 3;
    o.max_request_body = 100;
    o.stream_send_buffer = 1024;
  }
  return o;
}

// H2FUZZ_VERBOSE=1: how each connection ended (for looking at what a corpus file does).
const bool g_verbose = std::getenv("H2FUZZ_VERBOSE") != nullptr;

// The Options of the connection under test (for the handler's checks).
const Options* g_options = nullptr;

// --- the handler ----------------------------------------------------------------------------

// A response body given in `count` pieces of `piece`, then the end (with trailers) or an error.
// `length` may be a lie (the server must then reset the stream, not send a short message).
class FuzzBody final : public Body {
 public:
  FuzzBody(std::string piece, int count, bool fail, std::optional<uint64_t> length,
           HeaderMap trailers)
      : piece_(std::move(piece)),
        count_(count),
        fail_(fail),
        length_(length),
        trailers_(std::move(trailers)) {}
  runtime::Task<Result<IoBuffer>> read() override {
    if (sent_ < count_) {
      ++sent_;
      co_return IoBuffer::copy_of(piece_);
    }
    if (fail_) co_return Error(ErrorCode::kConnectionReset, "fuzz: upstream body cut");
    co_return IoBuffer();
  }
  std::optional<uint64_t> length() const override { return length_; }
  const HeaderMap* trailers() const override { return trailers_.empty() ? nullptr : &trailers_; }

 private:
  std::string piece_;
  int count_;
  int sent_ = 0;
  bool fail_;
  std::optional<uint64_t> length_;
  HeaderMap trailers_;
};

struct Received {
  uint64_t bytes = 0;
  bool ended = false;  // read to the end without error
  HeaderMap trailers;
};

// Reads the request body to its end (or kMaxBodyRead, or an error).
runtime::Task<Received> read_body(Body& body) {
  Received r;
  while (r.bytes <= kMaxBodyRead) {
    Result<IoBuffer> piece = co_await body.read();
    if (!piece) co_return r;
    if (piece->empty()) {
      r.ended = true;
      if (const HeaderMap* t = body.trailers()) r.trailers = *t;
      co_return r;
    }
    r.bytes += piece->size();
  }
  co_return r;
}

std::optional<uint64_t> declared_length(const HeaderMap& headers) {
  auto value = headers.get("content-length");
  if (!value || value->empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

Response respond(int status, std::unique_ptr<Body> body) {
  Response r;
  r.head.status = status;
  r.head.headers.add("server", "fuzz");
  r.body = std::move(body);
  return r;
}

HeaderMap some_trailers(std::string_view value) {
  HeaderMap t;
  t.add("grpc-status", "0");
  t.add("x-trailer", value);
  return t;
}

// What the handler of the connection under test does; chosen by the request path.
runtime::Task<Response> handle(Request request) {
  FUZZ_CHECK(request.head.version == Version::kHttp2);
  FUZZ_CHECK(!request.head.method.empty());
  FUZZ_CHECK(request.connection != nullptr);
  const std::string path = request.head.target;
  Received got;
  if (path != "/noread" && request.body) {
    const std::optional<uint64_t> declared = declared_length(request.head.headers);
    if (declared) FUZZ_CHECK(request.body->length() == declared);
    got = co_await read_body(*request.body);
    if (got.ended && declared) FUZZ_CHECK(got.bytes == *declared);
    if (got.ended) FUZZ_CHECK(got.bytes <= g_options->max_request_body);
  }
  // The connection info must still be there after the awaits (the proxy logs with it).
  FUZZ_CHECK(request.connection->peer_text == "fuzz");
  request.body.reset();

  if (path == "/sleep") {
    // Cancelled here when the stream is reset or the connection ends.
    (void)co_await runtime::sleep(std::chrono::milliseconds(1));
  }
  if (path == "/trailers") {
    co_return respond(
        200, std::make_unique<FuzzBody>("trailers ", 3, false, std::nullopt, some_trailers("t")));
  }
  if (path == "/echo") {
    // The request's trailers go back as the response's, plus ours.
    HeaderMap trailers = got.trailers;
    trailers.add("x-received", std::to_string(got.bytes));
    co_return respond(200, std::make_unique<FuzzBody>(std::string(got.bytes % 512, 'e'), 1, false,
                                                      std::nullopt, std::move(trailers)));
  }
  if (path == "/big") {
    // More than a stream window: needs the client's WINDOW_UPDATEs, and back-pressure.
    co_return respond(200, std::make_unique<FuzzBody>(std::string(8192, 'b'), 12, false,
                                                      uint64_t{8192 * 12}, some_trailers("big")));
  }
  if (path == "/fail") {
    co_return respond(200,
                      std::make_unique<FuzzBody>("partial", 2, true, std::nullopt, HeaderMap()));
  }
  if (path == "/short") {
    co_return respond(
        200, std::make_unique<FuzzBody>("0123456789", 1, false, uint64_t{100}, HeaderMap()));
  }
  if (path == "/long") {
    co_return respond(200,
                      std::make_unique<FuzzBody>("0123456789", 1, false, uint64_t{5}, HeaderMap()));
  }
  if (path == "/empty") co_return respond(204, nullptr);
  if (path == "/nobody") co_return respond(200, nullptr);
  if (path == "/upgrade") {
    Response r = respond(101, nullptr);
    r.upgrade = [](transport::ByteStream&, IoBuffer) -> runtime::Task<void> { co_return; };
    co_return r;
  }
  std::string text = "ok " + std::to_string(got.bytes) + "\n";
  const uint64_t size = text.size();
  co_return respond(200, std::make_unique<FuzzBody>(std::move(text), 1, false, size, HeaderMap()));
}

// --- the client -----------------------------------------------------------------------------

// Walks the server's bytes as HTTP/2 frames.
class FrameChecker {
 public:
  void feed(std::string_view bytes) {
    while (!bytes.empty()) {
      if (skip_ > 0) {
        const size_t n = std::min<size_t>(skip_, bytes.size());
        skip_ -= n;
        bytes.remove_prefix(n);
        continue;
      }
      const size_t n = std::min(bytes.size(), 9 - header_.size());
      header_.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      if (header_.size() < 9) return;
      const auto b = [&](size_t i) { return static_cast<uint8_t>(header_[i]); };
      const uint32_t length = (uint32_t{b(0)} << 16) | (uint32_t{b(1)} << 8) | b(2);
      const uint8_t type = b(3);
      const uint8_t flags = b(4);
      const uint32_t stream =
          ((uint32_t{b(5)} << 24) | (uint32_t{b(6)} << 16) | (uint32_t{b(7)} << 8) | b(8)) &
          0x7fffffff;
      if (frames_ == 0) {
        // RFC 9113 3.4: the server's preface is a SETTINGS frame.
        FUZZ_CHECK(type == 0x4 && stream == 0 && (flags & 0x1) == 0);
      }
      FUZZ_CHECK(type != 0x5);  // PUSH_PROMISE: we never push
      if (type == 0x0 || type == 0x1) FUZZ_CHECK(stream % 2 == 1);
      ++frames_;
      skip_ = length;
      header_.clear();
    }
  }

 private:
  std::string header_;
  uint32_t skip_ = 0;
  uint64_t frames_ = 0;
};

struct Client {
  transport::Stream socket;
  uint64_t received = 0;
  bool eof = false;
  FrameChecker frames;
};

// Reads and checks everything the server sends, until EOF.
runtime::Task<void> drain(Client& client) {
  IoBuffer buffer;
  while (true) {
    buffer.clear();
    Result<size_t> n = co_await client.socket.read_some(buffer);
    if (!n || *n == 0) break;
    client.received += *n;
    client.frames.feed(buffer.view());
  }
  client.eof = true;
}

// Waits until the server has sent nothing for kQuietTurns loop turns (or has closed).
runtime::Task<void> wait_quiet(Client& client) {
  int quiet = 0;
  uint64_t seen = client.received;
  while (quiet < kQuietTurns && !client.eof) {
    co_await runtime::yield_now{};
    if (client.received != seen) {
      seen = client.received;
      quiet = 0;
    } else {
      ++quiet;
    }
  }
}

// Writes `bytes` (in pieces, letting the server run in between), then half-closes when the
// input's flags say.
runtime::Task<void> feed(Client& client, std::string bytes, uint8_t flags) {
  static constexpr size_t kPieces[] = {0, 9, 3, 1000};
  const size_t piece = kPieces[(flags & kSplitMask) >> 4];
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t n = piece == 0 ? bytes.size() - pos : std::min(piece, bytes.size() - pos);
    IoBuffer out = IoBuffer::copy_of(std::string_view(bytes).substr(pos, n));
    runtime::BufResult<size_t> written = co_await client.socket.write_all(std::move(out));
    if (!written.result) break;  // the server has closed
    pos += n;
    if (piece != 0) co_await runtime::yield_now{};
  }
  if ((flags & kLinger) == kLinger) {
    // The server ends idle connections itself; a stream stuck on flow control keeps it open.
    const runtime::TimePoint until = runtime::Runtime::current()->now() + kLingerLimit;
    while (!client.eof && runtime::Runtime::current()->now() < until) {
      (void)co_await runtime::sleep(std::chrono::milliseconds(5));
    }
  } else if (!(flags & kCloseAtOnce)) {
    co_await wait_quiet(client);
  }
  (void)co_await client.socket.shutdown_write();
}

struct Watchdog {
  runtime::Deadline deadline;
  static void fire(void*) {
    std::fprintf(stderr, "server_fuzz: the exchange did not end within %lld s (hang)\n",
                 static_cast<long long>(kWatchdog.count()));
    std::abort();
  }
};

runtime::Task<void> exchange(std::string_view input) {
  const uint8_t flags = input.empty() ? 0 : static_cast<uint8_t>(input[0]);
  if (!input.empty()) input.remove_prefix(1);
  std::string bytes;
  if (!(flags & kRaw)) {
    bytes.append(kClientPreface, kClientPrefaceSize);
    bytes.append("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);  // SETTINGS, empty
  }
  bytes.append(input);
  IoBuffer pending;
  if (flags & kPending) {
    const size_t n = (flags & kRaw) ? std::min<size_t>(bytes.size(), kClientPrefaceSize)
                                    : kClientPrefaceSize + 9;
    pending = IoBuffer::copy_of(std::string_view(bytes).substr(0, n));
    bytes.erase(0, n);
  }

  int fds[2] = {-1, -1};
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | runtime::socket_flags(), 0, fds) == 0);
  {
    auto server =
        std::make_unique<transport::ByteStreamOf<transport::Stream>>(transport::Stream(fds[0]));
    Client client;
    client.socket = transport::Stream(fds[1]);
    ConnectionInfo info;
    info.peer_text = "fuzz";
    info.client_ip = "unix";
    const Options options = options_for(flags);
    g_options = &options;
    const Handler handler = &handle;

    runtime::JoinHandle<ServeStats> served =
        runtime::spawn_with_handle(serve(*server, info, options, handler, std::move(pending)));
    runtime::JoinHandle<void> drained = runtime::spawn_with_handle(drain(client));
    // The client writes in its own task: once the server has ended it reads no more, and a
    // client still writing (small pieces fill the socket buffer fast) only stops when the
    // server's socket closes.
    runtime::JoinHandle<void> fed =
        runtime::spawn_with_handle(feed(client, std::move(bytes), flags));
    const ServeStats stats = co_await served;
    FUZZ_CHECK(!stats.ended.empty());
    if (g_verbose) {
      std::fprintf(stderr, "  flags=0x%02x streams=%llu ended=[%s]\n", flags,
                   static_cast<unsigned long long>(stats.streams), stats.ended.c_str());
    }
    server.reset();  // the client reads EOF, its writes fail
    co_await fed;
    co_await drained;
    FUZZ_CHECK(client.eof);
    if (g_verbose) {
      std::fprintf(stderr, "  server sent %llu bytes\n",
                   static_cast<unsigned long long>(client.received));
    }
  }
  // Both ends are closed (nothing else opens fds meanwhile, so the numbers are not reused).
  FUZZ_CHECK(::fcntl(fds[0], F_GETFD) == -1);
  FUZZ_CHECK(::fcntl(fds[1], F_GETFD) == -1);
}

void fuzz_one(std::string_view input) {
  if (input.size() > kMaxInput) return;
  // Whether an input would be taken for HTTP/2 by a plain listener (pure, cheap).
  const PrefaceMatch m = match_preface(input);
  const std::string_view preface(kClientPreface, kClientPrefaceSize);
  FUZZ_CHECK((m == PrefaceMatch::kYes) == input.starts_with(preface));
  FUZZ_CHECK((m == PrefaceMatch::kNo) != preface.starts_with(input.substr(0, preface.size())));

  runtime::Runtime& rt = fuzz_runtime();
  Watchdog watchdog;
  watchdog.deadline.arm(rt.now() + kWatchdog, &Watchdog::fire, nullptr);
  rt.block_on(exchange(input));
  watchdog.deadline.disarm();
  // Nothing of the connection outlives serve(): its stream tasks hold references to its frame.
  if (rt.live_tasks() != 0) {
    std::fprintf(stderr, "server_fuzz: %zu task(s) still alive after serve() returned\n",
                 rt.live_tasks());
    std::abort();
  }
  FUZZ_CHECK(rt.timers().size() == 0);
  FUZZ_CHECK(rt.operations_in_flight() == 0);
}

}  // namespace
}  // namespace monolake::http::h2

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  monolake::http::h2::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifdef ML_FUZZ_REPLAY_MAIN
// Nothing is too slow to check in replay: the fuzzer checks the same.
extern "C" void MlFuzzReplayBegin() {}
#endif
