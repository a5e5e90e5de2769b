// A TLS echo server on one worker, for testing the TLS backends against other TLS stacks
// (openssl s_client, gnutls-cli, testssl). Every connection's plaintext is echoed back as is.
//
//   tls_echo_server --backend gnutls --listen 127.0.0.1:0
//       --cert a.pem,a.key,'a.test;*.a.test' --cert b.pem,b.key,b.test --alpn h2,http/1.1
//
// Prints "listening on 127.0.0.1:PORT" once bound, then one line per handshake:
//   handshake ok alpn=h2 sni=b.test resumed=0 version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256
//   handshake failed: <reason>
// and exits 0 on SIGTERM or SIGINT.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/time.h"
#include "runtime/worker_pool.h"
#include "tls/tls.h"
#include "tls/tools/cli.h"
#include "transport/stream.h"

using namespace monolake;
using runtime::Task;
using tls::tools::split;

namespace {

// Lines from the worker and the main thread; flushed at once so a test reading the output
// sees each line as soon as it is printed.
void print_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// "CHAIN,KEY[,NAME1;NAME2...]"
Result<tls::Certificate> parse_certificate(std::string_view spec) {
  std::vector<std::string> parts = split(spec, ',');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--cert '{}': expected CHAIN,KEY[,NAME1;NAME2...]", spec));
  }
  tls::Certificate cert;
  cert.chain_file = parts[0];
  cert.key_file = parts[1];
  if (parts.size() == 3) {
    for (std::string& name : split(parts[2], ';')) {
      if (!name.empty()) cert.names.push_back(std::move(name));
    }
  }
  return cert;
}

// The keys in `path` if it exists; else fresh keys, written there for the next run.
Result<std::shared_ptr<tls::TicketKeys>> load_ticket_keys(const std::string& path) {
  if (path.empty()) return tls::TicketKeys::generate();
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    std::string keys = text.str();
    while (!keys.empty() && std::isspace(static_cast<unsigned char>(keys.back()))) keys.pop_back();
    auto imported = tls::TicketKeys::import_keys(keys);
    if (!imported) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("--ticket-keys-file {}: {}", path, imported.error().message()));
    }
    return imported;
  }
  auto keys = tls::TicketKeys::generate();
  std::ofstream out(path);
  out << keys->export_keys() << "\n";
  if (!out) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--ticket-keys-file {}: cannot write", path));
  }
  return keys;
}

// Handshake, then echo until the peer closes.
Task<void> serve_connection(std::shared_ptr<tls::ServerContext> context, transport::Stream tcp) {
  Result<tls::TlsStream> tls = co_await context->accept(std::move(tcp));
  if (!tls) {
    print_line("handshake failed: " + tls.error().message());
    co_return;
  }
  const std::string alpn = tls->alpn();
  const std::string sni = tls->server_name();
  print_line(fmt::format("handshake ok alpn={} sni={} resumed={} version={} cipher={}",
                         alpn.empty() ? "-" : alpn, sni.empty() ? "-" : sni, tls->resumed() ? 1 : 0,
                         tls::version_name(tls->version()), tls->cipher()));
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await tls->read_some(buffer);
    if (!n || *n == 0) break;
    auto [written, rest] = co_await tls->write_all(std::move(buffer));
    if (!written) co_return;
    buffer = std::move(rest);
    buffer.release();
  }
  // Answer the peer's close_notify with ours.
  if (tls->closed_cleanly()) (void)co_await tls->shutdown();
}

// Accepts on the socket that main() bound. The worker adopts it, so the listener is made and
// destroyed on the worker's own runtime.
Task<void> serve(int listen_fd, std::shared_ptr<tls::ServerContext> context) {
  auto listener = transport::Listener::adopt(listen_fd);
  if (!listener) {
    std::fprintf(stderr, "tls_echo_server: %s\n", listener.error().to_string().c_str());
    std::exit(1);
  }
  while (true) {
    Result<transport::Stream> tcp = co_await listener->accept();
    if (tcp) {
      runtime::spawn(serve_connection(context, std::move(*tcp)));
    } else {
      (void)co_await runtime::sleep(std::chrono::milliseconds(10));  // EMFILE...: back off
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"TLS echo server for testing Monolake's TLS backends"};
  std::string backend_name = "openssl";
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> cert_specs;
  std::string alpn;
  std::string min_version = "1.2";
  std::string max_version = "1.3";
  std::string cipher_policy = std::string(tls::kDefaultCipherPolicy);
  std::string client_ca;
  bool require_client_certificate = false;
  bool no_tickets = false;
  std::string ticket_keys_file;
  app.add_option("--backend", backend_name, "openssl | gnutls");
  app.add_option("--listen", listen, "address to listen on (port 0: any free port)");
  app.add_option("--cert", cert_specs, "CHAIN,KEY[,NAME1;NAME2...]; the first is the default")
      ->required();
  app.add_option("--alpn", alpn, "protocols in preference order, comma separated");
  app.add_option("--min-version", min_version, "1.2 | 1.3");
  app.add_option("--max-version", max_version, "1.2 | 1.3");
  app.add_option("--cipher-policy", cipher_policy, "intermediate | modern");
  app.add_option("--client-ca", client_ca, "ask for client certificates verified against it");
  app.add_flag("--require-client-cert", require_client_certificate,
               "with --client-ca: refuse clients without a certificate");
  app.add_flag("--no-tickets", no_tickets, "issue no session tickets");
  app.add_option("--ticket-keys-file", ticket_keys_file,
                 "session ticket keys: imported if the file exists, else generated into it");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "tls_echo_server: %s\n", message.c_str());
    return 1;
  };
  auto backend = tls::parse_backend(backend_name);
  if (!backend) return fail(backend.error().message());
  tls::ServerConfig config;
  for (const std::string& spec : cert_specs) {
    auto cert = parse_certificate(spec);
    if (!cert) return fail(cert.error().message());
    config.certificates.push_back(std::move(*cert));
  }
  config.alpn = split(alpn, ',');
  auto min = tls::parse_version(min_version);
  if (!min) return fail(min.error().message());
  auto max = tls::parse_version(max_version);
  if (!max) return fail(max.error().message());
  config.min_version = *min;
  config.max_version = *max;
  config.cipher_policy = cipher_policy;
  config.client_ca_file = client_ca;
  config.require_client_certificate = require_client_certificate;
  config.session_tickets = !no_tickets;
  auto keys = load_ticket_keys(ticket_keys_file);
  if (!keys) return fail(keys.error().message());
  auto context = tls::ServerContext::create(*backend, config, *keys);
  if (!context) return fail(context.error().message());

  auto address = transport::SocketAddress::parse(listen);
  if (!address) return fail(address.error().to_string());
  auto bound = transport::Listener::bind(*address);
  if (!bound) return fail(bound.error().to_string());
  auto local = bound->local_address();
  if (!local) return fail(local.error().to_string());
  const int listen_fd = bound->release();

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // the worker inherits the mask

  runtime::WorkerPoolOptions options;
  options.workers = 1;
  std::shared_ptr<tls::ServerContext> shared_context = std::move(*context);
  auto pool =
      runtime::WorkerPool::start(options, [&](size_t) { return serve(listen_fd, shared_context); });
  if (!pool) return fail(pool.error().to_string());
  // Connections made from now on are accepted (the kernel queues them until the worker runs).
  print_line("listening on " + local->to_string());
  int signal = 0;
  sigwait(&signals, &signal);
  (*pool)->stop();
  print_line(fmt::format("stopped by signal {}", signal));
  return 0;
}
