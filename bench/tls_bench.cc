// TLS microbenchmarks per backend: full and resumed handshakes per second, and bulk throughput
// in 16 KiB writes. The client is always OpenSSL (the same client for both servers), client and
// server run in one runtime on loopback, so a number is the CPU of both ends together.
//   bazel run --config=opt //bench:tls_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "runtime/runtime.h"
#include "tls/tls.h"
#include "transport/stream.h"

namespace monolake {
namespace {

using runtime::Task;

// A throw-away PKI from tls/testing/make_test_certs.sh (found through the runfiles).
const std::string& cert_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/monolake-tls-bench.XXXXXX";
    std::string d = mkdtemp(tmpl);
    const std::string cmd = "tls/testing/make_test_certs.sh " + d + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }();
  return dir;
}

struct Setup {
  std::unique_ptr<runtime::Runtime> rt;
  std::shared_ptr<tls::ServerContext> server;
  std::shared_ptr<tls::ClientContext> client;
  transport::Listener listener;
  transport::SocketAddress address;
};

Setup make_setup(tls::Backend server_backend, bool resumption) {
  Setup s;
  runtime::RuntimeOptions options;
  options.backend = runtime::BackendKind::kIoUring;
  options.honor_env = false;
  s.rt = std::move(*runtime::Runtime::create(options));
  tls::ServerConfig sc;
  sc.certificates.push_back({cert_dir() + "/b.pem", cert_dir() + "/b.key", "", {"b.test"}});
  sc.session_tickets = resumption;
  s.server = std::move(*tls::ServerContext::create(server_backend, sc, nullptr));
  tls::ClientConfig cc;
  cc.ca_file = cert_dir() + "/ca.pem";
  cc.session_resumption = resumption;
  s.client = std::move(*tls::ClientContext::create(tls::Backend::kOpenSsl, cc));
  s.listener =
      std::move(*transport::Listener::bind(*transport::SocketAddress::parse("127.0.0.1:0")));
  s.address = *s.listener.local_address();
  return s;
}

// One handshake and one small round trip after it (so TLS 1.3 tickets arrive, and full and
// resumed iterations do the same work apart from the handshake itself).
// Returns -1 on failure, else 1 if the handshake resumed a session and 0 if not.
Task<int> handshake_once(Setup& s) {
  auto accepted = runtime::spawn_with_handle([](Setup* s) -> Task<Result<tls::TlsStream>> {
    auto tcp = co_await s->listener.accept();
    if (!tcp) co_return std::move(tcp).error();
    auto tls = co_await s->server->accept(std::move(*tcp));
    if (tls) {
      IoBuffer in;
      auto n = co_await tls->read_some(in);
      if (n && *n > 0) (void)co_await tls->write_all(std::move(in));
    }
    co_return tls;
  }(&s));
  auto tcp = co_await transport::Stream::connect(s.address);
  if (!tcp) co_return -1;
  auto client = co_await s.client->connect(std::move(*tcp), "b.test");
  if (!client) co_return -1;
  (void)co_await client->write_all(IoBuffer::copy_of("x"));
  IoBuffer in;
  (void)co_await client->read_some(in);
  auto server = co_await accepted;
  if (!server || client->resumed() != server->resumed()) co_return -1;
  co_return client->resumed() ? 1 : 0;
}

void BM_Handshake(benchmark::State& state, tls::Backend backend, bool resumed) {
  Setup s = make_setup(backend, resumed);
  s.rt->block_on([](benchmark::State& st, Setup& s, bool resumed) -> Task<void> {
    if (resumed && co_await handshake_once(s) < 0) std::abort();  // prime the session
    int64_t resumptions = 0;
    for (auto _ : st) {
      const int r = co_await handshake_once(s);
      if (r < 0) {
        st.SkipWithError("handshake failed");
        break;
      }
      resumptions += r;
    }
    // Proves what was measured: 0 for full handshakes, 1 when every one resumed.
    st.counters["resumed"] = static_cast<double>(resumptions) /
                             static_cast<double>(std::max<int64_t>(1, st.iterations()));
  }(state, s, resumed));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Handshake, openssl_full, tls::Backend::kOpenSsl, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Handshake, gnutls_full, tls::Backend::kGnuTls, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Handshake, openssl_resumed, tls::Backend::kOpenSsl, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_Handshake, gnutls_resumed, tls::Backend::kGnuTls, true)->UseRealTime();

// Bulk: the client writes 16 KiB records, the server reads them; one iteration = 1 MiB.
void BM_Bulk16K(benchmark::State& state, tls::Backend backend) {
  Setup s = make_setup(backend, false);
  s.rt->block_on([](benchmark::State& st, Setup& s) -> Task<void> {
    auto accepted = runtime::spawn_with_handle([](Setup* s) -> Task<uint64_t> {
      auto tcp = co_await s->listener.accept();
      if (!tcp) std::abort();
      auto tls = co_await s->server->accept(std::move(*tcp));
      if (!tls) std::abort();
      uint64_t total = 0;
      IoBuffer in;
      while (true) {
        auto n = co_await tls->read_some(in);
        if (!n || *n == 0) break;
        total += *n;
        in.clear();
      }
      co_return total;
    }(&s));
    auto tcp = co_await transport::Stream::connect(s.address);
    auto client = co_await s.client->connect(std::move(*tcp), "b.test");
    if (!client) std::abort();
    const std::string record(16 * 1024, 'r');
    for (auto _ : st) {
      for (int i = 0; i < 64; ++i) {
        auto [w, rest] = co_await client->write_all(IoBuffer::copy_of(record));
        if (!w) std::abort();
      }
    }
    (void)co_await client->shutdown();
    client->transport() = transport::Stream();
    (void)co_await accepted;
  }(state, s));
  state.SetBytesProcessed(state.iterations() * 64 * 16 * 1024);
}
BENCHMARK_CAPTURE(BM_Bulk16K, openssl, tls::Backend::kOpenSsl)->UseRealTime();
BENCHMARK_CAPTURE(BM_Bulk16K, gnutls, tls::Backend::kGnuTls)->UseRealTime();

}  // namespace
}  // namespace monolake
