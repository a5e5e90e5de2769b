// A real Apache Thrift C++ server of tests/thrift/calc.thrift (TThreadedServer: a thread per
// connection, calls on one connection answered in order).
//
//   calc_server --port N [--transport framed|header] [--protocol binary|compact]
//
// With --transport header it answers THeader in the client's protocol (either). Prints
// "listening N" once it accepts connections; runs until killed.
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TServerSocket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "Calc.h"
#include "tests/thrift/peer_options.h"

namespace {

std::atomic<int32_t> g_notes{0};
std::atomic<int32_t> g_connections{0};

class Handler : public calc::CalcIf {
 public:
  int32_t add(const int32_t a, const int32_t b) override { return a + b; }
  void echo(std::string& out, const std::string& s) override { out = s; }
  void note(const std::string&) override { ++g_notes; }
  void fail(const std::string& why) override {
    calc::Oops oops;
    oops.__set_why(why);
    throw oops;
  }
  int32_t slow(const int32_t ms) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  int32_t notes() override { return g_notes.load(); }
  int32_t connections() override { return g_connections.load(); }
};

class Events : public apache::thrift::server::TServerEventHandler {
 public:
  void preServe() override {
    std::printf("listening\n");
    std::fflush(stdout);
  }
  void* createContext(std::shared_ptr<apache::thrift::protocol::TProtocol>,
                      std::shared_ptr<apache::thrift::protocol::TProtocol>) override {
    ++g_connections;
    return nullptr;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace apache::thrift;
  calc_peer::Flags flags(argc, argv);
  const calc_peer::Kind kind = calc_peer::kind_of(flags);
  const int port = static_cast<int>(flags.number("port", 0));
  if (port <= 0) {
    std::fprintf(stderr, "--port N is required\n");
    return 2;
  }
  auto socket = std::make_shared<transport::TServerSocket>("127.0.0.1", port);
  std::shared_ptr<transport::TTransportFactory> transports;
  std::shared_ptr<protocol::TProtocolFactory> protocols;
  if (kind.header) {
    transports = std::make_shared<transport::TTransportFactory>();  // THeaderProtocol wraps it
    protocols = std::make_shared<protocol::THeaderProtocolFactory>();
  } else {
    transports = std::make_shared<transport::TFramedTransportFactory>();
    if (kind.compact) {
      protocols = std::make_shared<protocol::TCompactProtocolFactory>();
    } else {
      protocols = std::make_shared<protocol::TBinaryProtocolFactory>();
    }
  }
  server::TThreadedServer server(std::make_shared<calc::CalcProcessor>(std::make_shared<Handler>()),
                                 socket, transports, protocols);
  server.setServerEventHandler(std::make_shared<Events>());
  server.serve();
  return 0;
}
