// A proxy binary for tests/framework/connection_layers_test.py: the stock proxy plus two
// connection filters written against the public framework only, as a user would.
//
//   client_line  before TLS: the connection starts with "CLIENT <ip>:<port>\n" (at most
//                max_line bytes, within timeout_ms), which becomes the effective client; the
//                bytes after it stay for TLS or the protocol. A toy PROXY protocol: it reads
//                past its line whenever the client's first write carries more.
//   sni_allow    after TLS: only the server names in `names` are served.
//   subject_allow after TLS: only client certificates whose subject is in `subjects`.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "proxy/framework/framework.h"

namespace {

namespace framework = monolake::proxy::framework;
namespace connection = monolake::proxy::connection;
using monolake::Error;
using monolake::ErrorCode;
using monolake::IoBuffer;
using monolake::Result;
using monolake::runtime::Task;

class ClientLine final : public connection::ConnectionFilter {
 public:
  ClientLine(size_t max_line, std::chrono::milliseconds timeout)
      : max_line_(max_line), timeout_(timeout) {}

  Task<Result<void>> before_tls(monolake::transport::Stream& socket, IoBuffer& read_ahead,
                                connection::ConnectionContext& context) override {
    while (read_ahead.view().find('\n') == std::string_view::npos) {
      if (read_ahead.size() >= max_line_) co_return Error(ErrorCode::kProtocol, "line too long");
      Result<size_t> n = co_await connection::read_more(socket, read_ahead, timeout_);
      if (!n) co_return std::move(n).error();
      if (*n == 0) co_return Error(ErrorCode::kClosed, "closed before the CLIENT line");
    }
    const std::string_view bytes = read_ahead.view();
    const size_t end = bytes.find('\n');
    if (end > max_line_ || bytes.substr(0, 7) != "CLIENT ") {
      co_return Error(ErrorCode::kProtocol, "no CLIENT line");
    }
    Result<monolake::transport::SocketAddress> client =
        monolake::transport::SocketAddress::parse(bytes.substr(7, end - 7));
    if (!client) co_return std::move(client).error();
    context.client = *client;
    read_ahead.consume(end + 1);
    co_return monolake::ok();
  }

 private:
  size_t max_line_;
  std::chrono::milliseconds timeout_;
};

class SniAllow final : public connection::ConnectionFilter {
 public:
  explicit SniAllow(std::vector<std::string> names) : names_(std::move(names)) {}
  Result<void> after_tls(connection::ConnectionContext& context) override {
    if (!context.tls) return monolake::ok();  // plain listener: nothing to check
    for (const std::string& name : names_) {
      if (name == context.server_name) return monolake::ok();
    }
    return Error(ErrorCode::kProtocol, "server name '" + context.server_name + "' not allowed");
  }

 private:
  std::vector<std::string> names_;
};

class SubjectAllow final : public connection::ConnectionFilter {
 public:
  explicit SubjectAllow(std::vector<std::string> subjects) : subjects_(std::move(subjects)) {}
  Result<void> after_tls(connection::ConnectionContext& context) override {
    for (const std::string& subject : subjects_) {
      if (subject == context.client_subject) return monolake::ok();
    }
    return Error(ErrorCode::kProtocol,
                 "client certificate '" + context.client_subject + "' not allowed");
  }

 private:
  std::vector<std::string> subjects_;
};

// The filters are stateless: each generation makes a fresh one.
template <class F, class... Args>
class Fresh final : public connection::ConnectionFilterFactory {
 public:
  explicit Fresh(Args... args) : make_([=] { return std::make_shared<F>(args...); }) {}
  Result<std::shared_ptr<connection::ConnectionFilter>> make(
      const monolake::proxy::Build&) const override {
    return std::shared_ptr<connection::ConnectionFilter>(make_());
  }

 private:
  std::function<std::shared_ptr<F>()> make_;
};

Result<void> register_filters(framework::Registry& registry) {
  monolake::proxy::ParamSchema line;
  line.integer("max_line").default_value(108).range(16, 4096).doc("the longest CLIENT line");
  line.integer("timeout_ms").default_value(3000).range(1, 60000).doc("time to send it");
  Result<void> added = registry.add_connection_filter(
      "client_line", line,
      [](const framework::ConnectionFilterParams& p)
          -> Result<std::shared_ptr<const connection::ConnectionFilterFactory>> {
        return std::make_shared<Fresh<ClientLine, size_t, std::chrono::milliseconds>>(
            static_cast<size_t>(p.params.integer("max_line")),
            std::chrono::milliseconds(p.params.integer("timeout_ms")));
      });
  if (!added) return added;
  monolake::proxy::ParamSchema subjects;
  subjects.string_list("subjects").required().doc("client certificate subjects served");
  added = registry.add_connection_filter(
      "subject_allow", subjects,
      [](const framework::ConnectionFilterParams& p)
          -> Result<std::shared_ptr<const connection::ConnectionFilterFactory>> {
        return std::make_shared<Fresh<SubjectAllow, std::vector<std::string>>>(
            p.params.string_list("subjects"));
      });
  if (!added) return added;
  monolake::proxy::ParamSchema sni;
  sni.string_list("names").required().doc("the server names (SNI) served");
  return registry.add_connection_filter(
      "sni_allow", sni,
      [](const framework::ConnectionFilterParams& p)
          -> Result<std::shared_ptr<const connection::ConnectionFilterFactory>> {
        if (p.params.string_list("names").empty()) {
          return Error(ErrorCode::kInvalidArgument, "names: empty (every connection refused)");
        }
        return std::make_shared<Fresh<SniAllow, std::vector<std::string>>>(
            p.params.string_list("names"));
      });
}

}  // namespace

int main(int argc, char** argv) {
  auto registry = std::make_shared<framework::Registry>();
  if (auto added = register_filters(*registry); !added) {
    std::fprintf(stderr, "connection_layers_proxy: %s\n", added.error().message().c_str());
    return 1;
  }
  framework::AppInfo info;
  info.name = "connection_layers_proxy";
  info.version = "0.1.0";
  return framework::run(argc, argv, registry, std::move(info));
}
