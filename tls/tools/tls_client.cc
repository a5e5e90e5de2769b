// A TLS client for testing Monolake's TLS backends against other servers (openssl s_server,
// tls_echo_server): handshake, send one line, read one line back.
//
//   tls_client --backend gnutls --connect 127.0.0.1:4433 --name b.test --ca ca.pem
//       --alpn h2,http/1.1 --send hello
//
// Prints "ok alpn=h2 version=TLSv1.3 resumed=0 cipher=... reply=hello" and exits 0, or prints
// "error: <message>" and exits 1. With --repeat N it connects N times in a row with one client
// context (so later connections can resume the first one's session), one line each.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/time.h"
#include "tls/tls.h"
#include "tls/tools/cli.h"
#include "transport/stream.h"

using namespace monolake;
using runtime::Task;
using tls::tools::split;

namespace {

// Control characters of the reply made visible; the final line end dropped.
std::string printable(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::string out;
  for (unsigned char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

struct Options {
  transport::SocketAddress address;
  std::string name;
  std::string send;
  std::chrono::milliseconds timeout{5000};
};

// One connection: handshake, send the line, read until a line end (or end of stream).
Task<Result<std::string>> run_once(const tls::ClientContext& context, const Options& options) {
  transport::ConnectOptions connect_options;
  connect_options.timeout = options.timeout;
  Result<transport::Stream> tcp =
      co_await transport::Stream::connect(options.address, connect_options);
  if (!tcp) co_return Error(tcp.error().code(), "connect: " + tcp.error().to_string());
  Result<tls::TlsStream> tls = co_await context.connect(std::move(*tcp), options.name);
  if (!tls) co_return std::move(tls).error();

  auto [written, rest] = co_await tls->write_all(IoBuffer::copy_of(options.send + "\n"));
  if (!written) co_return Error(written.error().code(), "send: " + written.error().to_string());
  IoBuffer reply;
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  while (reply.view().find('\n') == std::string_view::npos) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      co_return Error(ErrorCode::kTimeout, "timed out waiting for the reply");
    }
    Result<size_t> n = co_await runtime::with_timeout(tls->read_some(reply), left);
    if (!n) co_return Error(n.error().code(), "receive: " + n.error().to_string());
    if (*n == 0) break;
  }
  (void)co_await tls->shutdown();

  co_return fmt::format("ok alpn={} version={} resumed={} cipher={} reply={}",
                        tls->alpn().empty() ? "-" : tls->alpn(), tls::version_name(tls->version()),
                        tls->resumed() ? 1 : 0, tls->cipher(), printable(reply.view()));
}

Task<int> run(const tls::ClientContext& context, const Options& options, int repeat) {
  for (int i = 0; i < repeat; ++i) {
    Result<std::string> line = co_await run_once(context, options);
    if (!line) {
      std::printf("error: %s\n", line.error().message().c_str());
      co_return 1;
    }
    std::printf("%s\n", line->c_str());
    std::fflush(stdout);
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"TLS client for testing Monolake's TLS backends"};
  std::string backend_name = "openssl";
  std::string connect;
  std::string ca;
  bool no_verify = false;
  std::string alpn;
  std::string min_version = "1.2";
  std::string max_version = "1.3";
  std::string client_cert;
  int repeat = 1;
  double timeout_seconds = 5;
  Options options;
  app.add_option("--backend", backend_name, "openssl | gnutls");
  app.add_option("--connect", connect, "server address, e.g. 127.0.0.1:4433")->required();
  app.add_option("--name", options.name, "SNI and the name the certificate must match");
  app.add_option("--ca", ca, "CA certificates to verify the server with (default: system)");
  app.add_flag("--no-verify", no_verify, "do not verify the server's certificate");
  app.add_option("--alpn", alpn, "protocols to offer, comma separated");
  app.add_option("--min-version", min_version, "1.2 | 1.3");
  app.add_option("--max-version", max_version, "1.2 | 1.3");
  app.add_option("--client-cert", client_cert, "CHAIN,KEY: present a client certificate");
  app.add_option("--send", options.send, "the line to send (a newline is appended)");
  app.add_option("--repeat", repeat, "connections to make in a row (sessions are resumed)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", timeout_seconds, "seconds for connect, handshake and reply");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& message) {
    std::printf("error: %s\n", message.c_str());
    return 1;
  };
  auto backend = tls::parse_backend(backend_name);
  if (!backend) return fail(backend.error().message());
  auto address = transport::SocketAddress::parse(connect);
  if (!address) return fail(address.error().to_string());
  options.address = *address;
  options.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::max(0.001, timeout_seconds) * 1000));

  tls::ClientConfig config;
  config.ca_file = ca;
  config.verify = !no_verify;
  config.alpn = split(alpn, ',');
  auto min = tls::parse_version(min_version);
  if (!min) return fail(min.error().message());
  auto max = tls::parse_version(max_version);
  if (!max) return fail(max.error().message());
  config.min_version = *min;
  config.max_version = *max;
  config.handshake_timeout = options.timeout;
  if (!client_cert.empty()) {
    std::vector<std::string> parts = split(client_cert, ',');
    if (parts.size() != 2) return fail("--client-cert: expected CHAIN,KEY");
    config.client_certificate.chain_file = parts[0];
    config.client_certificate.key_file = parts[1];
  }
  auto context = tls::ClientContext::create(*backend, config);
  if (!context) return fail(context.error().message());

  runtime::RuntimeOptions runtime_options;
  auto rt = runtime::Runtime::create(runtime_options);
  if (!rt) return fail(rt.error().to_string());
  return (*rt)->block_on(run(**context, options, repeat));
}
