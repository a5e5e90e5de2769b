// A real gRPC C++ server (plaintext HTTP/2, "h2c") for testing the HTTP/2 proxy.
//
//   echo_server --port N [--host 127.0.0.1] [--corrupt]
//
// Prints "listening PORT" on stdout once it accepts calls (--port 0 picks a free port; the line
// says which), and exits 0 on SIGTERM or SIGINT. Service monolake.test.Echo (echo.proto):
//   Unary         echoes payload and sequence;
//   ServerStream  sends reply_count replies of reply_size bytes, Pattern(i, reply_size), seq i;
//   Bidi          answers every request with its payload and sequence, in order.
// Every call copies the request header `x-test` into the response's initial metadata and adds
// `x-authority` (the :authority the server saw). A request with `error` set fails the call
// with that status code, message and details, and trailing metadata `x-trailer:
// <trailer_value>` and `x-trailer-bin: Pattern(7, 64)`; ServerStream first sends
// replies_before_error replies. --corrupt (for testing the client) flips the last byte of every
// payload and leaves out `x-trailer`.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "tests/grpc/echo.grpc.pb.h"
#include "tests/grpc/peer_util.h"

namespace monolake::test {
namespace {

constexpr const char* kUsage =
    "usage: echo_server --port N [--host 127.0.0.1] [--corrupt 0|1]\n"
    "  --port 0 picks a free port; prints \"listening PORT\" when ready; SIGTERM stops it.";

class EchoService final : public Echo::Service {
 public:
  explicit EchoService(bool corrupt) : corrupt_(corrupt) {}

  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest* req, EchoReply* reply) override {
    AddInitialMetadata(ctx);
    // Sleep in small steps so a cancelled call (deadline passed, RST_STREAM) ends early.
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(req->delay_ms());
    while (std::chrono::steady_clock::now() < until) {
      if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (req->has_error()) return Fail(ctx, req->error());
    reply->set_payload(Damage(req->payload()));
    reply->set_sequence(req->sequence());
    return grpc::Status::OK;
  }

  grpc::Status ServerStream(grpc::ServerContext* ctx, const EchoRequest* req,
                            grpc::ServerWriter<EchoReply>* writer) override {
    AddInitialMetadata(ctx);
    uint32_t count = req->has_error() ? req->error().replies_before_error() : req->reply_count();
    EchoReply reply;
    for (uint32_t i = 0; i < count; ++i) {
      reply.set_payload(Damage(Pattern(i, req->reply_size())));
      reply.set_sequence(i);
      if (!writer->Write(reply)) return grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    if (req->has_error()) return Fail(ctx, req->error());
    return grpc::Status::OK;
  }

  grpc::Status Bidi(grpc::ServerContext* ctx,
                    grpc::ServerReaderWriter<EchoReply, EchoRequest>* stream) override {
    AddInitialMetadata(ctx);
    EchoRequest req;
    EchoReply reply;
    while (stream->Read(&req)) {
      if (req.has_error()) return Fail(ctx, req.error());
      reply.set_payload(Damage(req.payload()));
      reply.set_sequence(req.sequence());
      if (!stream->Write(reply)) return grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    return grpc::Status::OK;
  }

 private:
  static void AddInitialMetadata(grpc::ServerContext* ctx) {
    const auto& md = ctx->client_metadata();
    if (auto it = md.find("x-test"); it != md.end()) {
      ctx->AddInitialMetadata("x-test", std::string(it->second.data(), it->second.size()));
    }
    grpc::string_ref authority = ctx->ExperimentalGetAuthority();
    ctx->AddInitialMetadata("x-authority", std::string(authority.data(), authority.size()));
  }

  grpc::Status Fail(grpc::ServerContext* ctx, const ErrorSpec& error) const {
    if (!corrupt_) ctx->AddTrailingMetadata("x-trailer", error.trailer_value());
    ctx->AddTrailingMetadata("x-trailer-bin", Pattern(7, 64));
    return grpc::Status(static_cast<grpc::StatusCode>(error.code()), error.message(),
                        error.details());
  }

  std::string Damage(std::string payload) const {
    if (corrupt_ && !payload.empty()) payload.back() ^= 1;
    return payload;
  }

  bool corrupt_;
};

int Main(int argc, char** argv) {
  Flags flags(argc, argv, {"port", "host", "corrupt"}, kUsage);
  if (!flags.Has("port")) flags.Fail("--port is required");
  int port = static_cast<int>(flags.Num("port", 0, 65535));
  std::string host = flags.Str("host", "127.0.0.1");
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";

  // Block the stop signals in every thread (gRPC's threads inherit this mask); the main thread
  // takes them with sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  EchoService service(flags.Num("corrupt", 0, 1) != 0);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    std::fprintf(stderr, "echo_server: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  std::printf("listening %d\n", bound_port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  // Calls still running get two seconds, then are cancelled.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace monolake::test

int main(int argc, char** argv) { return monolake::test::Main(argc, argv); }
