// A real Apache Thrift C++ client of tests/thrift/calc.thrift.
//
//   calc_client --port N [--transport framed|header] [--protocol binary|compact] --mode MODE
//
// Modes:
//   check      a functional script (add, echo small and 200 kB, oneway note, the declared
//              exception, the generated client pipelining with sequence id 0, and --pipeline
//              calls (default 20) sent with distinct sequence ids before any reply is read, whose
//              replies must come back in order with those ids). Prints "ok STEP" per step;
//              exit 0 when all pass, 1 otherwise.
//   call       one call with the generated client: --method add|slow|notes|connections|echo
//              [--arg N]. Prints "result V", "application_exception TYPE MESSAGE" or "oops WHY";
//              exit 3 on a transport error.
//   pipeline   load: --threads T connections, each with --depth D calls in flight (sent before
//              their replies are read, distinct sequence ids checked on return) until --calls N
//              calls in all; --method add|echo|slow (--size bytes for echo, --arg ms for
//              slow). Prints
//              "calls=N seconds=S calls_per_sec=R errors=E".
// --timeout_ms (default 10000) bounds every socket read and write.
#include <thrift/TApplicationException.h>
#include <thrift/transport/TTransportException.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "Calc.h"
#include "tests/thrift/peer_options.h"

namespace {

using apache::thrift::TApplicationException;
using apache::thrift::protocol::T_CALL;
using apache::thrift::protocol::T_EXCEPTION;
using apache::thrift::protocol::T_REPLY;
using apache::thrift::protocol::TMessageType;
using apache::thrift::protocol::TProtocol;

struct Connection {
  std::shared_ptr<apache::thrift::transport::TSocket> socket;
  std::shared_ptr<TProtocol> protocol;
};

Connection connect(const calc_peer::Flags& flags) {
  Connection c;
  c.socket = std::make_shared<apache::thrift::transport::TSocket>(
      "127.0.0.1", static_cast<int>(flags.number("port", 0)));
  const int timeout = static_cast<int>(flags.number("timeout_ms", 10000));
  c.socket->setConnTimeout(timeout);
  c.socket->setRecvTimeout(timeout);
  c.socket->setSendTimeout(timeout);
  c.socket->setNoDelay(true);
  c.protocol = calc_peer::client_protocol(calc_peer::kind_of(flags), c.socket);
  c.socket->open();
  return c;
}

void finish_write(TProtocol& p) {
  p.writeMessageEnd();
  p.getTransport()->writeEnd();
  p.getTransport()->flush();
}

void send_add(TProtocol& p, int32_t seqid, int32_t a, int32_t b) {
  p.writeMessageBegin("add", T_CALL, seqid);
  calc::Calc_add_pargs args;
  args.a = &a;
  args.b = &b;
  args.write(&p);
  finish_write(p);
}

void send_echo(TProtocol& p, int32_t seqid, const std::string& s) {
  p.writeMessageBegin("echo", T_CALL, seqid);
  calc::Calc_echo_pargs args;
  args.s = &s;
  args.write(&p);
  finish_write(p);
}

void send_slow(TProtocol& p, int32_t seqid, int32_t ms) {
  p.writeMessageBegin("slow", T_CALL, seqid);
  calc::Calc_slow_pargs args;
  args.ms = &ms;
  args.write(&p);
  finish_write(p);
}

// Reads one reply's header; throws on a TApplicationException.
void begin_reply(TProtocol& p, const std::string& method, int32_t seqid) {
  std::string name;
  TMessageType type;
  int32_t got = -1;
  p.readMessageBegin(name, type, got);
  if (type == T_EXCEPTION) {
    TApplicationException x;
    x.read(&p);
    p.readMessageEnd();
    p.getTransport()->readEnd();
    throw x;
  }
  if (type != T_REPLY || name != method || got != seqid) {
    throw std::runtime_error("expected the " + method + " reply with seqid " +
                             std::to_string(seqid) + ", got " + name + " seqid " +
                             std::to_string(got));
  }
}

void end_reply(TProtocol& p) {
  p.readMessageEnd();
  p.getTransport()->readEnd();
}

int32_t recv_add(TProtocol& p, int32_t seqid) {
  begin_reply(p, "add", seqid);
  calc::Calc_add_presult r;
  int32_t v = 0;
  r.success = &v;
  r.read(&p);
  end_reply(p);
  if (!r.__isset.success) throw std::runtime_error("add: no result");
  return v;
}

std::string recv_echo(TProtocol& p, int32_t seqid) {
  begin_reply(p, "echo", seqid);
  calc::Calc_echo_presult r;
  std::string v;
  r.success = &v;
  r.read(&p);
  end_reply(p);
  if (!r.__isset.success) throw std::runtime_error("echo: no result");
  return v;
}

int32_t recv_slow(TProtocol& p, int32_t seqid) {
  begin_reply(p, "slow", seqid);
  calc::Calc_slow_presult r;
  int32_t v = 0;
  r.success = &v;
  r.read(&p);
  end_reply(p);
  if (!r.__isset.success) throw std::runtime_error("slow: no result");
  return v;
}

bool g_failed = false;

void step(const char* name, bool ok, const std::string& detail = "") {
  if (ok) {
    std::printf("ok %s\n", name);
  } else {
    std::printf("FAIL %s %s\n", name, detail.c_str());
    g_failed = true;
  }
  std::fflush(stdout);
}

int check(const calc_peer::Flags& flags) {
  Connection c = connect(flags);
  calc::CalcClient client(c.protocol);
  step("add", client.add(2, 3) == 5);
  std::string out;
  client.echo(out, "h\xc3\xa9llo \xe2\x9c\x93");
  step("echo", out == "h\xc3\xa9llo \xe2\x9c\x93");
  const std::string big(200000, 'x');
  client.echo(out, big);
  step("echo_big", out == big);
  client.note("from the C++ client");
  step("oneway_then_call", client.add(1, 1) == 2);
  try {
    client.fail("on purpose");
    step("exception", false, "no exception");
  } catch (const calc::Oops& oops) {
    step("exception", oops.why == "on purpose", oops.why);
  }
  // The generated client pipelining: every call with sequence id 0, replies read in order.
  for (int32_t i = 0; i < 5; ++i) client.send_add(i, 1);
  bool in_order = true;
  for (int32_t i = 0; i < 5; ++i) in_order = in_order && client.recv_add() == i + 1;
  step("pipelined_seqid_0", in_order);
  // Distinct sequence ids, adds and echoes mixed, all sent before any reply is read.
  const int n = static_cast<int>(flags.number("pipeline", 20));
  TProtocol& p = *c.protocol;
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      send_add(p, 1000 + i, i, 100);
    } else {
      send_echo(p, 1000 + i, "p" + std::to_string(i));
    }
  }
  bool ok = true;
  std::string detail;
  for (int i = 0; i < n && ok; ++i) {
    try {
      if (i % 2 == 0) {
        const int32_t v = recv_add(p, 1000 + i);
        ok = v == i + 100;
      } else {
        ok = recv_echo(p, 1000 + i) == "p" + std::to_string(i);
      }
      if (!ok) detail = "wrong value for call " + std::to_string(i);
    } catch (const std::exception& e) {
      ok = false;
      detail = e.what();
    }
  }
  step("pipelined_seqids", ok, detail);
  c.socket->close();
  return g_failed ? 1 : 0;
}

int call(const calc_peer::Flags& flags) {
  Connection c = connect(flags);
  calc::CalcClient client(c.protocol);
  const std::string method = flags.get("method", "add");
  const int32_t arg = static_cast<int32_t>(flags.number("arg", 1));
  try {
    int32_t v = 0;
    std::string s;
    if (method == "add") {
      v = client.add(arg, 1);
    } else if (method == "slow") {
      v = client.slow(arg);
    } else if (method == "notes") {
      v = client.notes();
    } else if (method == "connections") {
      v = client.connections();
    } else if (method == "echo") {
      client.echo(s, std::to_string(arg));
      v = std::stoi(s);
    } else if (method == "fail") {
      client.fail(std::to_string(arg));
    } else {
      std::fprintf(stderr, "unknown --method %s\n", method.c_str());
      return 2;
    }
    std::printf("result %d\n", v);
  } catch (const calc::Oops& oops) {
    std::printf("oops %s\n", oops.why.c_str());
  } catch (const TApplicationException& x) {
    std::printf("application_exception %d %s\n", static_cast<int>(x.getType()), x.what());
  } catch (const apache::thrift::transport::TTransportException& x) {
    std::printf("transport_error %s\n", x.what());
    return 3;
  }
  return 0;
}

int pipeline(const calc_peer::Flags& flags) {
  const long total = flags.number("calls", 10000);
  const int depth = static_cast<int>(std::max(1L, flags.number("depth", 1)));
  const int threads = static_cast<int>(std::max(1L, flags.number("threads", 1)));
  const std::string method = flags.get("method", "add");
  const bool echo = method == "echo";
  const bool slow = method == "slow";
  const int32_t ms = static_cast<int32_t>(flags.number("arg", 100));
  const std::string payload(static_cast<size_t>(flags.number("size", 16)), 'e');
  std::atomic<long> done{0}, errors{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const long mine = total / threads + (t < total % threads ? 1 : 0);
    workers.emplace_back([&, mine] {
      try {
        Connection c = connect(flags);
        TProtocol& p = *c.protocol;
        long sent = 0, received = 0;
        auto send_one = [&] {
          const int32_t seqid = static_cast<int32_t>(sent);
          if (echo) {
            send_echo(p, seqid, payload);
          } else if (slow) {
            send_slow(p, seqid, ms);
          } else {
            send_add(p, seqid, seqid, 1);
          }
          ++sent;
        };
        while (sent < mine && sent < depth) send_one();
        while (received < mine) {
          const int32_t seqid = static_cast<int32_t>(received);
          try {
            if (echo) {
              if (recv_echo(p, seqid) != payload) ++errors;
            } else if (slow) {
              if (recv_slow(p, seqid) != ms) ++errors;
            } else if (recv_add(p, seqid) != seqid + 1) {
              ++errors;
            }
          } catch (const TApplicationException&) {
            ++errors;
          }
          ++received;
          ++done;
          if (sent < mine) send_one();
        }
        c.socket->close();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "connection failed: %s\n", e.what());
        ++errors;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("calls=%ld seconds=%.3f calls_per_sec=%.0f errors=%ld\n", done.load(), seconds,
              static_cast<double>(done.load()) / seconds, errors.load());
  return errors.load() == 0 && done.load() == total ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  calc_peer::Flags flags(argc, argv);
  const std::string mode = flags.get("mode", "check");
  try {
    if (mode == "check") return check(flags);
    if (mode == "call") return call(flags);
    if (mode == "pipeline") return pipeline(flags);
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown --mode %s\n", mode.c_str());
  return 2;
}
