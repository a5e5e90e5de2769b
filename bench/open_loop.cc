// open_loop: a bounded open-loop HTTP/1.1 load generator for tail latency.
//
// Closed-loop tools (wrk, h2load) send the next request on a connection only when the previous
// answer arrived, so a server stall also stalls the client: the requests that should have been
// sent during the stall are never timed, and the tail looks short ("coordinated omission").
// Here request i is due at t0 + i / rate whatever the server does, and its latency runs from that
// DUE time to the moment its whole response was read. A request that finds no idle connection
// waits in a bounded FIFO, and that wait is part of its latency.
//
//   open_loop --port 8080 --rate 2000 --duration 3 [--host 127.0.0.1] [--path /]
//             [--connections 50] [--timeout-ms 2000] [--warmup 1] [--histogram FILE]
//
// Prints one line of JSON on stdout (counts and percentiles of the measured requests, after the
// warm-up) and a readable summary on stderr. Single-threaded: epoll, non-blocking sockets, a
// timerfd armed at the next due time (no spinning). Exit status 1 if no connection could be
// opened at the start, 2 for bad options.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Nanos = int64_t;
constexpr Nanos kNsPerSec = 1'000'000'000;
constexpr Nanos kNsPerMs = 1'000'000;
// A connection whose connect failed, or that died before answering anything, is retried after
// this long, so a refusing or crashing server does not turn the client into a connect loop.
constexpr Nanos kReconnectBackoff = 10 * kNsPerMs;
constexpr size_t kMaxHeadBytes = 64 * 1024;

Nanos Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kNsPerSec + ts.tv_nsec;
}

// --- options ------------------------------------------------------------------------------------

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  double rate = 0;
  double duration_s = 0;
  int connections = 50;
  int timeout_ms = 2000;
  double warmup_s = 1;
  std::string histogram_file;
};

[[noreturn]] void Usage(const char* why) {
  if (why != nullptr) std::fprintf(stderr, "open_loop: %s\n", why);
  std::fprintf(stderr,
               "usage: open_loop --port N --rate R --duration S [--host 127.0.0.1] [--path /]\n"
               "                 [--connections 50] [--timeout-ms 2000] [--warmup 1]\n"
               "                 [--histogram FILE]\n");
  std::exit(2);
}

bool ParseNumber(const char* text, double* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(text, &end);
  return errno == 0 && end != text && *end == '\0' && std::isfinite(*out);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") Usage(nullptr);
    if (i + 1 >= argc) Usage("every option takes a value");
    const char* value = argv[++i];
    double number = 0;
    const bool numeric = ParseNumber(value, &number);
    if (flag == "--host") {
      o.host = value;
    } else if (flag == "--path") {
      o.path = value;
    } else if (flag == "--histogram") {
      o.histogram_file = value;
    } else if (!numeric) {
      Usage("option needs a number");
    } else if (flag == "--port") {
      o.port = static_cast<int>(number);
    } else if (flag == "--rate") {
      o.rate = number;
    } else if (flag == "--duration") {
      o.duration_s = number;
    } else if (flag == "--connections") {
      o.connections = static_cast<int>(number);
    } else if (flag == "--timeout-ms") {
      o.timeout_ms = static_cast<int>(number);
    } else if (flag == "--warmup") {
      o.warmup_s = number;
    } else {
      Usage("unknown option");
    }
  }
  if (o.port < 1 || o.port > 65535) Usage("--port must be 1..65535");
  if (o.rate <= 0 || o.rate > 10'000'000) Usage("--rate must be in (0, 1e7]");
  if (o.duration_s <= 0 || o.duration_s > 3600) Usage("--duration must be in (0, 3600]");
  if (o.warmup_s < 0 || o.warmup_s > 3600) Usage("--warmup must be in [0, 3600]");
  if (o.connections < 1 || o.connections > 100'000) Usage("--connections must be 1..100000");
  if (o.timeout_ms < 1) Usage("--timeout-ms must be >= 1");
  if (o.path.empty() || o.path[0] != '/') Usage("--path must start with /");
  return o;
}

// --- latency histogram --------------------------------------------------------------------------

// Log-linear buckets over microseconds: 1 µs wide below 1,024 µs, then 128 buckets per power of
// two (each under 0.8 % of its value wide) up to 2^26 µs (67 s). A value is reported as the
// highest value of its bucket, capped at the exact maximum, so percentiles never read low.
class Histogram {
 public:
  void Record(Nanos latency_ns) {
    const uint64_t us = latency_ns > 0 ? static_cast<uint64_t>(latency_ns) / 1000 : 0;
    ++counts_[Index(us)];
    ++total_;
    max_us_ = std::max(max_us_, us);
  }

  uint64_t total() const { return total_; }
  uint64_t max_us() const { return max_us_; }

  // The smallest recorded value v such that at least `percent` % of the values are <= v.
  uint64_t Percentile(double percent) const {
    if (total_ == 0) return 0;
    const auto rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(percent / 100.0 * total_)));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(HighestValue(i), max_us_);
    }
    return max_us_;
  }

  // Two columns, `latency_us count`, one line per non-empty bucket, for plotting.
  bool Write(const std::string& file) const {
    FILE* out = std::fopen(file.c_str(), "w");
    if (out == nullptr) return false;
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i] != 0) {
        std::fprintf(out, "%llu %llu\n",
                     static_cast<unsigned long long>(std::min(HighestValue(i), max_us_)),
                     static_cast<unsigned long long>(counts_[i]));
      }
    }
    return std::fclose(out) == 0;
  }

 private:
  static constexpr int kLinearLog2 = 10;
  static constexpr int kSubLog2 = 7;
  static constexpr int kTopLog2 = 26;
  static constexpr size_t kLinear = size_t{1} << kLinearLog2;
  static constexpr size_t kSub = size_t{1} << kSubLog2;
  static constexpr size_t kBuckets = kLinear + (kTopLog2 - kLinearLog2) * kSub;

  static size_t Index(uint64_t us) {
    if (us < kLinear) return us;
    const int log2 = std::bit_width(us) - 1;
    if (log2 >= kTopLog2) return kBuckets - 1;
    const uint64_t sub = (us >> (log2 - kSubLog2)) - kSub;
    return kLinear + (log2 - kLinearLog2) * kSub + sub;
  }

  static uint64_t HighestValue(size_t index) {
    if (index < kLinear) return index;
    const size_t k = index - kLinear;
    const int log2 = kLinearLog2 + static_cast<int>(k / kSub);
    return ((kSub + k % kSub + 1) << (log2 - kSubLog2)) - 1;
  }

  std::vector<uint64_t> counts_ = std::vector<uint64_t>(kBuckets);
  uint64_t total_ = 0;
  uint64_t max_us_ = 0;
};

// --- response parsing ---------------------------------------------------------------------------

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct ResponseHead {
  int status = 0;
  int64_t content_length = -1;
  bool close = false;
};

// Parses a response head (without its final blank line). Only Content-Length framing is
// supported: this client measures servers that answer GETs with fixed bodies, so chunked (or
// read-until-close) answers are counted as errors rather than handled.
bool ParseHead(std::string_view head, ResponseHead* out) {
  size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return false;
  }
  out->status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (status_line[i] < '0' || status_line[i] > '9') return false;
    out->status = out->status * 10 + (status_line[i] - '0');
  }
  if (out->status < 200) return false;  // no 1xx expected for a GET without Expect
  out->close = status_line[7] == '0';   // HTTP/1.0 closes unless asked otherwise
  while (eol != std::string_view::npos) {
    const size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, eol == std::string_view::npos ? eol : eol - start);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      if (value.empty() || value.size() > 15) return false;
      int64_t length = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        length = length * 10 + (c - '0');
      }
      if (out->content_length >= 0 && out->content_length != length) return false;
      out->content_length = length;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      return false;
    } else if (EqualsIgnoreCase(name, "connection")) {
      out->close = EqualsIgnoreCase(value, "close");
    }
  }
  if (out->content_length < 0) {
    if (out->status != 204 && out->status != 304) return false;
    out->content_length = 0;
  }
  return true;
}

// --- the client ---------------------------------------------------------------------------------

struct Request {
  Nanos due = 0;
  bool measured = false;  // false during the warm-up
};

enum class ConnState { kBackoff, kConnecting, kIdle, kBusy };

struct Conn {
  int fd = -1;
  ConnState state = ConnState::kBackoff;
  Nanos retry_at = 0;       // kBackoff: when to connect again
  uint64_t seq = 0;         // bumped per connect and per request: stale deadlines are ignored
  uint64_t responses = 0;   // answered on this socket
  Request request;          // kBusy
  size_t written = 0;       // bytes of the request written
  bool want_write = false;  // EPOLLOUT is in the interest set
  std::string head;         // response head read so far
  bool head_done = false;
  ResponseHead response;
  int64_t body_left = 0;
};

struct Deadline {
  Nanos at;
  int conn;
  uint64_t seq;
};

struct Stats {
  uint64_t due = 0;        // measured requests whose due time came
  uint64_t sent = 0;       // of those, written to a connection
  uint64_t completed = 0;  // answered 2xx in full: these are in the histogram
  uint64_t non_2xx = 0;
  uint64_t timeouts = 0;
  uint64_t failed = 0;   // connection closed or reset, or an unparsable response
  uint64_t dropped = 0;  // never sent: the FIFO was full, or still queued at the end
  uint64_t reconnects = 0;
  uint64_t connect_errors = 0;
  // How late the client itself sent the requests that found an idle connection: if this is
  // not small next to the latencies, the client (its timer or a busy CPU) is part of them.
  uint64_t direct_sends = 0;
  Nanos send_lag_sum = 0;
  Nanos send_lag_max = 0;
  uint64_t errors() const { return non_2xx + timeouts + failed; }
};

class Client {
 public:
  explicit Client(const Options& options)
      : o_(options),
        timeout_ns_(static_cast<Nanos>(options.timeout_ms) * kNsPerMs),
        conns_(options.connections),
        // One second of requests: a longer backlog would only measure the FIFO.
        fifo_capacity_(static_cast<size_t>(std::max(1.0, std::ceil(options.rate)))) {
    request_ = "GET " + o_.path + " HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
               "\r\n\r\n";
  }

  int Run();

 private:
  bool Setup();
  bool ConnectAll();
  void Loop();
  Nanos Due(uint64_t i) const {
    return t0_ + static_cast<Nanos>(static_cast<long double>(i) * kNsPerSec / o_.rate);
  }
  void IssueDue(Nanos now);
  void StopSending();
  void ExpireDeadlines(Nanos now);
  void RetryConnections(Nanos now);
  Nanos NextWake() const;
  void ArmTimer(Nanos at);
  void OnEvent(int index, uint32_t events);
  void StartConnect(int index);
  void OnConnectDone(int index, uint32_t events);
  void BecomeIdle(int index);
  void Send(int index, const Request& request);
  void WriteMore(int index);
  void ReadResponse(int index);
  bool Consume(Conn& c, const char* data, size_t size, bool* done);
  void Complete(int index);
  void Fail(int index, uint64_t* counter);
  void CloseConn(int index, bool backoff);
  void SetInterest(int index, uint32_t events);
  void Report(Nanos measured_ns) const;

  const Options o_;
  const Nanos timeout_ns_;
  std::vector<Conn> conns_;
  const size_t fifo_capacity_;
  std::string request_;
  sockaddr_in addr_{};
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  Nanos armed_at_ = -1;

  Nanos t0_ = 0;
  uint64_t total_ = 0;         // requests due over warm-up + duration
  uint64_t warmup_count_ = 0;  // the first ones, not measured
  uint64_t next_ = 0;          // the next request to become due
  Nanos end_send_ = 0;         // the end of the duration: nothing is sent after it
  bool sending_ = true;
  int in_flight_ = 0;
  int backing_off_ = 0;
  std::deque<int> idle_;            // FIFO, so the load spreads over every connection
  std::deque<Request> fifo_;        // due, waiting for an idle connection
  std::deque<Deadline> deadlines_;  // in order of time: every deadline is now + timeout
  Histogram histogram_;
  Stats stats_;
};

bool Client::Setup() {
  addr_.sin_family = AF_INET;
  addr_.sin_port = htons(static_cast<uint16_t>(o_.port));
  if (inet_pton(AF_INET, o_.host.c_str(), &addr_.sin_addr) != 1) {
    std::fprintf(stderr, "open_loop: --host must be an IPv4 address, not %s\n", o_.host.c_str());
    return false;
  }
  // The default 50 µs timer slack would delay every timerfd wake-up, and so every send.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0) {
    std::perror("open_loop: epoll/timerfd");
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = UINT32_MAX;  // the timer; connections use their index
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) == 0;
}

void Client::SetInterest(int index, uint32_t events) {
  epoll_event ev{};
  ev.events = events | EPOLLRDHUP;
  ev.data.u32 = static_cast<uint32_t>(index);
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conns_[index].fd, &ev);
}

void Client::StartConnect(int index) {
  Conn& c = conns_[index];
  const uint64_t seq = c.seq;  // kept, so deadlines of the old socket stay stale
  c = Conn{};
  c.seq = seq + 1;
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    ++stats_.connect_errors;
    CloseConn(index, /*backoff=*/true);
    return;
  }
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLRDHUP;
  ev.data.u32 = static_cast<uint32_t>(index);
  if ((rc != 0 && errno != EINPROGRESS) || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
    ++stats_.connect_errors;
    CloseConn(index, /*backoff=*/true);
    return;
  }
  c.state = ConnState::kConnecting;
  deadlines_.push_back({Now() + timeout_ns_, index, c.seq});
}

void Client::OnConnectDone(int index, uint32_t events) {
  Conn& c = conns_[index];
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    ++stats_.connect_errors;
    CloseConn(index, /*backoff=*/true);
    return;
  }
  // Events are looked up by connection index, so one batch can still hold an event of the
  // socket this one replaced: only EPOLLOUT with no error says the connect finished.
  if ((events & EPOLLOUT) == 0) return;
  SetInterest(index, EPOLLIN);
  BecomeIdle(index);
}

// Closes the socket; the connection is opened again at once, or after the back-off when it
// never worked (connect failed, or it died before its first answer).
void Client::CloseConn(int index, bool backoff) {
  Conn& c = conns_[index];
  if (c.fd >= 0) close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.seq++;
  if (c.state == ConnState::kIdle) {
    idle_.erase(std::find(idle_.begin(), idle_.end(), index));
  }
  c.state = ConnState::kBackoff;
  c.retry_at = Now() + (backoff || c.responses == 0 ? kReconnectBackoff : 0);
  ++backing_off_;
}

void Client::RetryConnections(Nanos now) {
  if (backing_off_ == 0) return;
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].state == ConnState::kBackoff && conns_[i].retry_at <= now) {
      --backing_off_;
      ++stats_.reconnects;
      StartConnect(static_cast<int>(i));
    }
  }
}

bool Client::ConnectAll() {
  for (size_t i = 0; i < conns_.size(); ++i) {
    StartConnect(static_cast<int>(i));
  }
  // Wait until every connection is up or failed, or the timeout passed.
  const Nanos give_up = Now() + timeout_ns_;
  epoll_event events[256];
  auto pending = [&] {
    return std::any_of(conns_.begin(), conns_.end(),
                       [](const Conn& c) { return c.state == ConnState::kConnecting; });
  };
  while (pending() && Now() < give_up) {
    const int n = epoll_wait(epoll_fd_, events, 256, 10);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 != UINT32_MAX) {
        OnEvent(static_cast<int>(events[i].data.u32), events[i].events);
      }
    }
  }
  deadlines_.clear();  // connects still pending are timed again from the start of the run
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].state == ConnState::kConnecting) {
      deadlines_.push_back({Now() + timeout_ns_, static_cast<int>(i), conns_[i].seq});
    }
  }
  return !idle_.empty();
}

void Client::BecomeIdle(int index) {
  Conn& c = conns_[index];
  c.state = ConnState::kIdle;
  if (!fifo_.empty()) {
    const Request next = fifo_.front();
    fifo_.pop_front();
    Send(index, next);
    return;
  }
  idle_.push_back(index);
}

void Client::Send(int index, const Request& request) {
  Conn& c = conns_[index];
  c.state = ConnState::kBusy;
  c.request = request;
  c.written = 0;
  c.head.clear();
  c.head_done = false;
  c.seq++;
  deadlines_.push_back({Now() + timeout_ns_, index, c.seq});
  ++in_flight_;
  if (request.measured) ++stats_.sent;
  WriteMore(index);
}

void Client::WriteMore(int index) {
  Conn& c = conns_[index];
  while (c.written < request_.size()) {
    const ssize_t n =
        send(c.fd, request_.data() + c.written, request_.size() - c.written, MSG_NOSIGNAL);
    if (n > 0) {
      c.written += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      SetInterest(index, EPOLLIN | EPOLLOUT);  // rare: a full socket buffer
      c.want_write = true;
      return;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      Fail(index, &stats_.failed);
      return;
    }
  }
  if (c.want_write) {  // only then: an epoll_ctl per request would cost as much as the send
    SetInterest(index, EPOLLIN);
    c.want_write = false;
  }
}

// A request failed (counted in *counter if measured); the connection is closed and reopened.
void Client::Fail(int index, uint64_t* counter) {
  Conn& c = conns_[index];
  if (c.state == ConnState::kBusy) {
    --in_flight_;
    if (c.request.measured) ++*counter;
  }
  CloseConn(index, /*backoff=*/false);
}

// Feeds received bytes to the response in progress. False on a malformed or unsupported
// response; *done once the whole response was read.
bool Client::Consume(Conn& c, const char* data, size_t size, bool* done) {
  if (!c.head_done) {
    const size_t old = c.head.size();
    c.head.append(data, size);
    const size_t end = c.head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) return c.head.size() <= kMaxHeadBytes;
    if (!ParseHead(std::string_view(c.head).substr(0, end), &c.response)) return false;
    c.head_done = true;
    c.body_left = c.response.content_length;
    const size_t body_bytes = c.head.size() - (end + 4);
    data = nullptr;
    size = body_bytes;
  }
  // No pipelining: bytes past the end of the body are a server bug.
  if (static_cast<int64_t>(size) > c.body_left) return false;
  c.body_left -= static_cast<int64_t>(size);
  *done = c.body_left == 0;
  return true;
}

void Client::ReadResponse(int index) {
  static char buffer[64 * 1024];
  Conn& c = conns_[index];
  for (;;) {
    const ssize_t n = recv(c.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {  // closed or reset before the response was complete
      Fail(index, &stats_.failed);
      return;
    }
    bool done = false;
    if (!Consume(c, buffer, static_cast<size_t>(n), &done)) {
      Fail(index, &stats_.failed);
      return;
    }
    if (done) {
      Complete(index);
      return;
    }
  }
}

void Client::Complete(int index) {
  Conn& c = conns_[index];
  const Nanos latency = Now() - c.request.due;
  --in_flight_;
  ++c.responses;
  if (c.request.measured) {
    if (c.response.status >= 200 && c.response.status < 300) {
      ++stats_.completed;
      histogram_.Record(latency);
    } else {
      ++stats_.non_2xx;
    }
  }
  c.seq++;  // its deadline no longer applies
  if (c.response.close) {
    CloseConn(index, /*backoff=*/false);
    return;
  }
  BecomeIdle(index);
}

void Client::OnEvent(int index, uint32_t events) {
  Conn& c = conns_[index];
  switch (c.state) {
    case ConnState::kConnecting:
      OnConnectDone(index, events);
      break;
    case ConnState::kIdle: {
      // An idle keep-alive connection became readable: the server closed it (or sent bytes
      // nobody asked for). Not a request error: reopen it. Unless nothing is there: then the
      // event was for the socket this one replaced (see OnConnectDone).
      char byte;
      if (recv(c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) break;
      CloseConn(index, /*backoff=*/false);
      break;
    }
    case ConnState::kBusy:
      if ((events & EPOLLOUT) != 0 && c.written < request_.size()) WriteMore(index);
      if (c.state == ConnState::kBusy && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ReadResponse(index);
      }
      break;
    case ConnState::kBackoff:
      break;  // a stale event for a socket already closed
  }
}

void Client::IssueDue(Nanos now) {
  while (sending_ && next_ < total_ && Due(next_) <= now) {
    const Request request{Due(next_), next_ >= warmup_count_};
    ++next_;
    if (request.measured) ++stats_.due;
    if (!idle_.empty()) {
      const int index = idle_.front();
      idle_.pop_front();
      if (request.measured) {
        const Nanos lag = Now() - request.due;
        ++stats_.direct_sends;
        stats_.send_lag_sum += lag;
        stats_.send_lag_max = std::max(stats_.send_lag_max, lag);
      }
      Send(index, request);
    } else if (fifo_.size() < fifo_capacity_) {
      fifo_.push_back(request);
    } else if (request.measured) {
      ++stats_.dropped;
    }
  }
}

// At the end of the duration: requests still waiting were never sent; they count as dropped.
void Client::StopSending() {
  sending_ = false;
  for (const Request& request : fifo_) {
    if (request.measured) ++stats_.dropped;
  }
  fifo_.clear();
}

void Client::ExpireDeadlines(Nanos now) {
  while (!deadlines_.empty() && deadlines_.front().at <= now) {
    const Deadline d = deadlines_.front();
    deadlines_.pop_front();
    Conn& c = conns_[d.conn];
    if (c.seq != d.seq) continue;  // answered, or closed, since
    if (c.state == ConnState::kBusy) {
      Fail(d.conn, &stats_.timeouts);
    } else if (c.state == ConnState::kConnecting) {
      ++stats_.connect_errors;
      CloseConn(d.conn, /*backoff=*/true);
    }
  }
}

Nanos Client::NextWake() const {
  Nanos wake = end_send_ + timeout_ns_;
  if (sending_) wake = std::min(wake, next_ < total_ ? Due(next_) : end_send_);
  if (!deadlines_.empty()) wake = std::min(wake, deadlines_.front().at);
  if (backing_off_ > 0) {
    for (const Conn& c : conns_) {
      if (c.state == ConnState::kBackoff) wake = std::min(wake, c.retry_at);
    }
  }
  return wake;
}

void Client::ArmTimer(Nanos at) {
  if (at == armed_at_) return;
  armed_at_ = at;
  itimerspec spec{};
  const Nanos when = std::max<Nanos>(at, 1);  // zero would disarm it
  spec.it_value.tv_sec = when / kNsPerSec;
  spec.it_value.tv_nsec = when % kNsPerSec;
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void Client::Loop() {
  epoll_event events[256];
  for (;;) {
    const Nanos now = Now();
    IssueDue(now);
    if (sending_ && now >= end_send_) StopSending();
    ExpireDeadlines(now);
    RetryConnections(now);
    if (!sending_ && in_flight_ == 0) return;
    if (!sending_ && now >= end_send_ + timeout_ns_) return;  // the rest count as timeouts
    ArmTimer(NextWake());
    const int n = epoll_wait(epoll_fd_, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == UINT32_MAX) {
        uint64_t expirations;
        if (read(timer_fd_, &expirations, sizeof expirations) < 0) { /* EAGAIN: spurious */
        }
        armed_at_ = -1;
      } else {
        OnEvent(static_cast<int>(events[i].data.u32), events[i].events);
      }
    }
  }
}

int Client::Run() {
  if (!Setup()) return 2;
  if (!ConnectAll()) {
    std::fprintf(stderr, "open_loop: could not connect to %s:%d\n", o_.host.c_str(), o_.port);
    return 1;
  }
  t0_ = Now();
  warmup_count_ = static_cast<uint64_t>(std::llround(o_.warmup_s * o_.rate));
  total_ = warmup_count_ + static_cast<uint64_t>(std::llround(o_.duration_s * o_.rate));
  end_send_ = Due(total_);
  const Nanos measured_start = Due(warmup_count_);
  Loop();
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].state == ConnState::kBusy) Fail(static_cast<int>(i), &stats_.timeouts);
  }
  Report(end_send_ - measured_start);
  if (!o_.histogram_file.empty() && !histogram_.Write(o_.histogram_file)) {
    std::fprintf(stderr, "open_loop: could not write %s\n", o_.histogram_file.c_str());
    return 2;
  }
  return 0;
}

// Appends `"key":value` to a one-line JSON object under construction.
void AddField(std::string* json, const char* key, const std::string& value) {
  *json += (json->size() > 1 ? ",\"" : "\"") + std::string(key) + "\":" + value;
}

std::string Number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.10g", value);
  return text;
}

void Client::Report(Nanos measured_ns) const {
  const double seconds = static_cast<double>(measured_ns) / kNsPerSec;
  auto percentile = [&](double p) {
    // No answer, no latency: null rather than a zero that would read as fast.
    return histogram_.total() > 0 ? std::to_string(histogram_.Percentile(p)) : "null";
  };
  auto count = [](uint64_t n) { return std::to_string(n); };
  std::string json = "{";
  AddField(&json, "rate", Number(o_.rate));
  AddField(&json, "duration_s", Number(o_.duration_s));
  AddField(&json, "sent", count(stats_.sent));
  AddField(&json, "completed", count(stats_.completed));
  AddField(&json, "errors", count(stats_.errors()));
  AddField(&json, "dropped", count(stats_.dropped));
  AddField(&json, "achieved_rate", Number(std::round(stats_.completed / seconds * 10) / 10));
  AddField(&json, "p50_us", percentile(50));
  AddField(&json, "p90_us", percentile(90));
  AddField(&json, "p99_us", percentile(99));
  AddField(&json, "p999_us", percentile(99.9));
  AddField(&json, "p9999_us", percentile(99.99));
  AddField(&json, "max_us", percentile(100));
  // Beyond the fields asked for: the break-down, so a reader can check the counts add up
  // (due = sent + dropped, sent = completed + errors).
  AddField(&json, "due", count(stats_.due));
  AddField(&json, "non_2xx", count(stats_.non_2xx));
  AddField(&json, "timeouts", count(stats_.timeouts));
  AddField(&json, "failed", count(stats_.failed));
  AddField(&json, "connections", count(conns_.size()));
  AddField(&json, "reconnects", count(stats_.reconnects));
  AddField(&json, "connect_errors", count(stats_.connect_errors));
  const Nanos lag_sum = stats_.send_lag_sum;
  const uint64_t direct = std::max<uint64_t>(stats_.direct_sends, 1);
  AddField(&json, "send_lag_mean_us", Number(std::round(lag_sum / 1e3 / direct * 10) / 10));
  AddField(&json, "send_lag_max_us", count(stats_.send_lag_max / 1000));
  std::printf("%s}\n", json.c_str());

  std::fprintf(
      stderr,
      "open_loop: %s due, %s sent, %s completed (2xx), %s errors (%s non-2xx, %s timeouts, "
      "%s failed), %s dropped\n",
      count(stats_.due).c_str(), count(stats_.sent).c_str(), count(stats_.completed).c_str(),
      count(stats_.errors()).c_str(), count(stats_.non_2xx).c_str(), count(stats_.timeouts).c_str(),
      count(stats_.failed).c_str(), count(stats_.dropped).c_str());
  if (stats_.dropped > 0) {
    std::fprintf(stderr,
                 "open_loop: %s requests were dropped (never sent: the queue of %zu was full, or "
                 "they were still queued when sending stopped). Their latency is unknown and NOT "
                 "in the percentiles, which therefore understate the tail.\n",
                 count(stats_.dropped).c_str(), fifo_capacity_);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  Client client(options);
  return client.Run();
}
