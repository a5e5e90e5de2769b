#include "proxy/config/config.h"

#include <sched.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

// toml++ in its default (exception) mode: a syntax error is caught here and becomes an Error,
// so nothing escapes to callers. Only //proxy/config includes it; config.h does not expose it.
#include <fmt/format.h>
#include <toml++/toml.h>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config {

using internal::child;
using internal::element;
using internal::Errors;
using internal::Parser;

namespace {

std::string parse_error_location(const std::string& file, const toml::source_region& where) {
  return fmt::format("{}:{}:{}", file, where.begin.line, where.begin.column);
}
}  // namespace

std::string_view proxy_type_name(ProxyType type) {
  switch (type) {
    case ProxyType::kHttp:
      return "http";
    case ProxyType::kTcp:
      return "tcp";
    case ProxyType::kThrift:
      return "thrift";
    case ProxyType::kCustom:
      return "custom";
  }
  return "?";
}

size_t available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<size_t>(count);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

Result<Config> parse_config(std::string_view text, const std::string& file_name_for_errors,
                            const std::string& base_dir, const Catalog* catalog) {
  const std::string& file = file_name_for_errors;
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{}: {}", parse_error_location(file, e.source()), e.description()));
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInternal, fmt::format("{}: {}", file, e.what()));
  }

  Config config;
  config.source = file;
  config.base_dir = base_dir;
  config.runtime.worker_threads = available_cpus();
  Errors errors(file);
  static const Catalog kNone;
  Parser(errors, base_dir, catalog ? *catalog : kNone).parse_root(root, config);
  if (!errors.empty()) return errors.to_error();
  return config;
}

Result<Config> load_config_file(const std::string& path, const Catalog* catalog) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                 fmt::format("{}: cannot read the configuration: {}", path, std::strerror(err)),
                 err);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return Error(ErrorCode::kIo, fmt::format("{}: cannot read the configuration", path));
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(dir, ec);
  std::string base_dir = ec ? dir.string() : absolute.lexically_normal().string();
  if (base_dir.size() > 1 && base_dir.back() == '/') base_dir.pop_back();
  return parse_config(contents.str(), path, base_dir, catalog);
}

Result<void> check_files(const Config& config) {
  Errors errors(config.source);
  auto check = [&](const std::string& key_path, const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      int err = errno;
      errors.add(key_path, fmt::format("cannot open {}: {}", file, std::strerror(err)));
    }
  };
  for (const ServerConfig& server : config.servers) {
    if (!server.tls) continue;
    std::string tls_path = child(child("servers", server.key), "tls");
    check(child(tls_path, "chain"), server.tls->certificate.chain_file);
    check(child(tls_path, "key"), server.tls->certificate.key_file);
    for (size_t i = 0; i < server.tls->sni.size(); ++i) {
      std::string sni_path = element(child(tls_path, "sni"), i);
      check(child(sni_path, "chain"), server.tls->sni[i].chain_file);
      check(child(sni_path, "key"), server.tls->sni[i].key_file);
    }
    if (!server.tls->client_ca_file.empty()) {
      check(child(tls_path, "client_ca"), server.tls->client_ca_file);
    }
  }
  for (const ServerConfig& server : config.servers) {
    for (size_t i = 0; i < server.routes.size(); ++i) {
      const auto& up = server.routes[i].upstream_tls;
      if (up && !up->ca_file.empty()) {
        check(child(element(child(child("servers", server.key), "routes"), i), "upstream_tls.ca"),
              up->ca_file);
      }
    }
  }
  if (!errors.empty()) {
    Error error = errors.to_error();
    return Error(ErrorCode::kNotFound, error.message());
  }
  return ok();
}

}  // namespace monolake::proxy::config
