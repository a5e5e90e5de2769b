// A real gRPC C++ client (plaintext HTTP/2, "h2c") for testing the HTTP/2 proxy. It checks
// every reply itself and prints one line per check, "PASS ..." or "FAIL ...".
//
//   echo_client --target HOST:PORT [--mode unary|server_stream|bidi|error|all] [--count N]
//               [--size BYTES] [--authority NAME] [--timeout-ms MS]
//
// Exit status 0 only if every check passed; 1 if one failed; 2 for a usage error.
//   unary          N calls, payload Pattern(i, size): same payload and sequence back; the
//                  request header `x-test` comes back in the initial metadata;
//   server_stream  one call asking for N replies of `size` bytes: all of them, intact, in order;
//   bidi           one call, N request/reply round trips of `size` bytes, in order, then a clean
//                  half-close on both sides;
//   error          the server fails calls on request: status code, message (with characters
//                  that grpc-message percent-encodes), binary details and trailing metadata
//                  (`x-trailer`, `x-trailer-bin`) arrive intact, for a trailers-only response
//                  (unary), after replies (server_stream) and mid-stream (bidi); and a call whose
//                  deadline passes ends with DEADLINE_EXCEEDED on time;
//   all            the four in that order.
// --authority sets :authority on every call, and the server's `x-authority` must match it.
// Every call has a deadline (--timeout-ms, default 10000), so a broken proxy fails the run
// instead of hanging it.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "tests/grpc/echo.grpc.pb.h"
#include "tests/grpc/peer_util.h"

namespace monolake::test {
namespace {

constexpr const char* kUsage =
    "usage: echo_client --target HOST:PORT [--mode unary|server_stream|bidi|error|all]\n"
    "                   [--count N] [--size BYTES] [--authority NAME] [--timeout-ms MS]\n"
    "  Prints PASS/FAIL per check; exit status 0 only if all passed.";

using Clock = std::chrono::steady_clock;

std::string CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  int n = static_cast<int>(code);
  if (n >= 0 && n < static_cast<int>(std::size(kNames))) return kNames[n];
  return "code " + std::to_string(n);
}

std::string Describe(const grpc::Status& status) {
  std::string s = CodeName(status.error_code());
  if (!status.error_message().empty()) s += " \"" + status.error_message() + "\"";
  return s;
}

// The one value of metadata `key`, or "<absent>" / "<N values>".
std::string MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                          const std::string& key) {
  auto [begin, end] = md.equal_range(key);
  if (begin == end) return "<absent>";
  if (std::next(begin) != end) return "<" + std::to_string(std::distance(begin, end)) + " values>";
  return std::string(begin->second.data(), begin->second.size());
}

class Client {
 public:
  Client(std::shared_ptr<grpc::Channel> channel, std::string authority,
         std::chrono::milliseconds timeout)
      : stub_(Echo::NewStub(channel)), authority_(std::move(authority)), timeout_(timeout) {}

  int failures() const { return failures_; }
  int passes() const { return passes_; }

  // Each mode returns false when a call failed outright, so "all" stops there instead of
  // waiting for more deadlines.
  bool Unary(uint32_t count, uint32_t size) {
    for (uint32_t i = 0; i < count; ++i) {
      std::string what = "unary[" + std::to_string(i) + "]";
      grpc::ClientContext ctx;
      Prepare(ctx);
      std::string tag = "unary-" + std::to_string(i);
      ctx.AddMetadata("x-test", tag);
      EchoRequest req;
      req.set_payload(Pattern(i, size));
      req.set_sequence(i);
      EchoReply reply;
      grpc::Status status = stub_->Unary(&ctx, req, &reply);
      if (!Check(status.ok(), what + " status", Describe(status))) return false;
      Check(reply.sequence() == i, what + " sequence", "got " + std::to_string(reply.sequence()));
      CheckBytes(what + " payload (" + std::to_string(size) + " bytes)", req.payload(),
                 reply.payload());
      CheckInitialMetadata(what, ctx, tag);
    }
    return true;
  }

  bool ServerStream(uint32_t count, uint32_t size) {
    std::string what = "server_stream";
    grpc::ClientContext ctx;
    Prepare(ctx);
    ctx.AddMetadata("x-test", "server-stream");
    EchoRequest req;
    req.set_reply_count(count);
    req.set_reply_size(size);
    auto reader = stub_->ServerStream(&ctx, req);
    std::string bad;
    uint32_t received = ReadReplies(*reader, size, bad);
    grpc::Status status = reader->Finish();
    if (!Check(status.ok(), what + " status", Describe(status))) return false;
    Check(received == count, what + " reply count " + std::to_string(count),
          "got " + std::to_string(received));
    Check(bad.empty(),
          what + " " + std::to_string(received) + " replies of " + std::to_string(size) +
              " bytes intact and in order",
          bad);
    CheckInitialMetadata(what, ctx, "server-stream");
    return true;
  }

  bool Bidi(uint32_t count, uint32_t size) {
    std::string what = "bidi";
    grpc::ClientContext ctx;
    Prepare(ctx);
    ctx.AddMetadata("x-test", "bidi");
    auto stream = stub_->Bidi(&ctx);
    std::string bad;
    uint32_t done = 0;
    for (; done < count && bad.empty(); ++done) {
      EchoRequest req;
      req.set_payload(Pattern(done + 1000, size));
      req.set_sequence(done);
      if (!stream->Write(req)) {
        bad = "write " + std::to_string(done) + " failed";
        break;
      }
      EchoReply reply;
      if (!stream->Read(&reply)) {
        bad = "no reply " + std::to_string(done);
        break;
      }
      if (reply.sequence() != done) {
        bad = "reply " + std::to_string(done) + " has sequence " + std::to_string(reply.sequence());
      } else if (std::string m = Mismatch(req.payload(), reply.payload()); !m.empty()) {
        bad = "reply " + std::to_string(done) + ": " + m;
      }
    }
    bool closed = stream->WritesDone();
    EchoReply extra;
    bool more = closed && stream->Read(&extra);
    grpc::Status status = stream->Finish();
    if (!Check(status.ok(), what + " status", Describe(status))) return false;
    Check(bad.empty(),
          what + " " + std::to_string(count) + " round trips of " + std::to_string(size) +
              " bytes intact and in order",
          bad);
    Check(closed && !more, what + " half-close, then end of replies",
          closed ? "an extra reply arrived" : "WritesDone failed");
    CheckInitialMetadata(what, ctx, "bidi");
    return true;
  }

  bool Errors() {
    // Characters grpc-message must percent-encode: '%', non-ASCII, control characters.
    const std::string message =
        "failed on request: 100% \xc3\xbcnic\xc3\xb6"
        "de, \"quoted\"\ttab";
    const std::string details = Pattern(42, 300);

    {  // Unary: a trailers-only response.
      grpc::ClientContext ctx;
      Prepare(ctx);
      EchoRequest req;
      Spec(req.mutable_error(), grpc::StatusCode::FAILED_PRECONDITION, message, details,
           "value-unary", 0);
      EchoReply reply;
      grpc::Status status = stub_->Unary(&ctx, req, &reply);
      CheckError("error unary", ctx, status, grpc::StatusCode::FAILED_PRECONDITION, message,
                 details, "value-unary");
    }
    {  // ServerStream: replies first, then the error in the trailers.
      grpc::ClientContext ctx;
      Prepare(ctx);
      EchoRequest req;
      req.set_reply_size(100);
      Spec(req.mutable_error(), grpc::StatusCode::RESOURCE_EXHAUSTED, message, details,
           "value-stream", 3);
      auto reader = stub_->ServerStream(&ctx, req);
      std::string bad;
      uint32_t received = ReadReplies(*reader, 100, bad);
      grpc::Status status = reader->Finish();
      Check(received == 3 && bad.empty(), "error server_stream 3 replies before the error",
            "got " + std::to_string(received) + (bad.empty() ? "" : ", " + bad));
      CheckError("error server_stream", ctx, status, grpc::StatusCode::RESOURCE_EXHAUSTED, message,
                 details, "value-stream");
    }
    {  // Bidi: one round trip, then a request that fails the call.
      grpc::ClientContext ctx;
      Prepare(ctx);
      auto stream = stub_->Bidi(&ctx);
      EchoRequest req;
      req.set_payload(Pattern(5, 50));
      req.set_sequence(0);
      EchoReply reply;
      bool first = stream->Write(req) && stream->Read(&reply) && reply.payload() == req.payload() &&
                   reply.sequence() == 0;
      Check(first, "error bidi round trip before the error",
            "the write or read failed, or the reply differs");
      Spec(req.mutable_error(), grpc::StatusCode::ABORTED, message, details, "value-bidi", 0);
      stream->Write(req);
      stream->WritesDone();
      bool more = stream->Read(&reply);
      grpc::Status status = stream->Finish();
      Check(!more, "error bidi no reply after the error", "a reply arrived");
      CheckError("error bidi", ctx, status, grpc::StatusCode::ABORTED, message, details,
                 "value-bidi");
    }
    {  // The deadline passes while the server waits: DEADLINE_EXCEEDED, on time.
      grpc::ClientContext ctx;
      Prepare(ctx);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
      EchoRequest req;
      req.set_delay_ms(5000);
      EchoReply reply;
      auto start = Clock::now();
      grpc::Status status = stub_->Unary(&ctx, req, &reply);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
      Check(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED,
            "error deadline status DEADLINE_EXCEEDED", "got " + Describe(status));
      Check(ms < 3000, "error deadline ends within 3 s of the call",
            "took " + std::to_string(ms) + " ms");
    }
    return true;
  }

 private:
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    if (!authority_.empty()) ctx.set_authority(authority_);
  }

  static void Spec(ErrorSpec* spec, grpc::StatusCode code, const std::string& message,
                   const std::string& details, const std::string& trailer, uint32_t replies) {
    spec->set_code(static_cast<int32_t>(code));
    spec->set_message(message);
    spec->set_details(details);
    spec->set_trailer_value(trailer);
    spec->set_replies_before_error(replies);
  }

  // Reads replies until the end of the stream; `bad` gets the first wrong one.
  template <typename Reader>
  static uint32_t ReadReplies(Reader& reader, uint32_t size, std::string& bad) {
    uint32_t received = 0;
    EchoReply reply;
    while (reader.Read(&reply)) {
      if (bad.empty()) {
        if (reply.sequence() != received) {
          bad = "reply " + std::to_string(received) + " has sequence " +
                std::to_string(reply.sequence());
        } else if (std::string m = Mismatch(Pattern(received, size), reply.payload()); !m.empty()) {
          bad = "reply " + std::to_string(received) + ": " + m;
        }
      }
      ++received;
    }
    return received;
  }

  void CheckInitialMetadata(const std::string& what, const grpc::ClientContext& ctx,
                            const std::string& tag) {
    const auto& md = ctx.GetServerInitialMetadata();
    std::string echoed = MetadataValue(md, "x-test");
    Check(echoed == tag, what + " x-test echoed in initial metadata", "got " + echoed);
    std::string authority = MetadataValue(md, "x-authority");
    if (authority_.empty()) {
      Check(authority != "<absent>", what + " server saw :authority " + authority, "");
    } else {
      Check(authority == authority_, what + " server saw :authority " + authority_,
            "got " + authority);
    }
  }

  void CheckError(const std::string& what, const grpc::ClientContext& ctx,
                  const grpc::Status& status, grpc::StatusCode code, const std::string& message,
                  const std::string& details, const std::string& trailer) {
    Check(status.error_code() == code, what + " status " + CodeName(code),
          "got " + Describe(status));
    Check(status.error_message() == message, what + " message intact",
          "got \"" + status.error_message() + "\"");
    Check(status.error_details() == details, what + " details (300 binary bytes) intact",
          Mismatch(details, status.error_details()));
    const auto& md = ctx.GetServerTrailingMetadata();
    std::string got = MetadataValue(md, "x-trailer");
    Check(got == trailer, what + " trailer x-trailer: " + trailer, "got " + got);
    got = MetadataValue(md, "x-trailer-bin");
    Check(got == Pattern(7, 64), what + " trailer x-trailer-bin (64 binary bytes) intact",
          got == "<absent>" ? got : Mismatch(Pattern(7, 64), got));
  }

  void CheckBytes(const std::string& what, const std::string& expected, const std::string& got) {
    std::string m = Mismatch(expected, got);
    Check(m.empty(), what, m);
  }

  bool Check(bool ok, const std::string& what, const std::string& detail) {
    if (ok) {
      ++passes_;
      std::printf("PASS %s\n", what.c_str());
    } else {
      ++failures_;
      std::printf("FAIL %s%s%s\n", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    }
    std::fflush(stdout);
    return ok;
  }

  std::unique_ptr<Echo::Stub> stub_;
  std::string authority_;
  std::chrono::milliseconds timeout_;
  int failures_ = 0;
  int passes_ = 0;
};

int Main(int argc, char** argv) {
  Flags flags(argc, argv, {"target", "mode", "count", "size", "authority", "timeout-ms"}, kUsage);
  if (!flags.Has("target")) flags.Fail("--target is required");
  std::string mode = flags.Str("mode", "all");
  if (mode != "unary" && mode != "server_stream" && mode != "bidi" && mode != "error" &&
      mode != "all") {
    flags.Fail("unknown --mode '" + mode + "'");
  }
  auto count = static_cast<uint32_t>(flags.Num("count", 5, 1000000));
  auto size = static_cast<uint32_t>(flags.Num("size", 1024, kMaxMessageBytes - 1024));
  auto timeout = std::chrono::milliseconds(flags.Num("timeout-ms", 10000, 3600000));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  Client client(
      grpc::CreateCustomChannel(flags.Str("target", ""), grpc::InsecureChannelCredentials(), args),
      flags.Str("authority", ""), timeout);

  bool all = mode == "all";
  bool ok = true;
  if (ok && (all || mode == "unary")) ok = client.Unary(count, size);
  if (ok && (all || mode == "server_stream")) ok = client.ServerStream(count, size);
  if (ok && (all || mode == "bidi")) ok = client.Bidi(count, size);
  if (ok && (all || mode == "error")) ok = client.Errors();

  if (client.failures() > 0 || !ok) {
    std::printf("echo_client: FAILED, %d of %d checks failed%s\n", client.failures(),
                client.failures() + client.passes(),
                ok ? "" : " (stopped at the first failed call)");
    return 1;
  }
  std::printf("echo_client: all %d checks passed\n", client.passes());
  return 0;
}

}  // namespace
}  // namespace monolake::test

int main(int argc, char** argv) { return monolake::test::Main(argc, argv); }
