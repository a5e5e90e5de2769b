#include <fmt/format.h>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config::internal {

std::optional<tls::Backend> Parser::parse_stack(TableReader& r) {
  auto stack = r.string("stack");
  if (!stack) return std::nullopt;
  if (*stack == "native_tls") return tls::Backend::kOpenSsl;  // OpenSSL on Linux
  if (*stack == "rustls") {
    errors_.add(r.path_of("stack"), "rustls is not available here: use \"openssl\" or \"gnutls\"");
    return std::nullopt;
  }
  if (auto backend = tls::parse_backend(*stack))
    return *backend;
  else
    errors_.add(r.path_of("stack"), backend.error().message());
  return std::nullopt;
}

void Parser::parse_upstream_tls(const toml::table& table, const std::string& path,
                                UpstreamTlsConfig& out) {
  TableReader r(errors_, table, path, {"stack", "ca", "verify", "sni"});
  if (auto stack = parse_stack(r)) out.stack = *stack;
  if (auto ca = r.string("ca")) out.ca_file = resolve(base_dir_, *ca);
  if (auto verify = r.boolean("verify")) out.verify = *verify;
  if (auto sni = r.string("sni")) out.sni = *sni;
}

void Parser::parse_sni(const toml::array& array, const std::string& path, TlsConfig& out) {
  for (size_t i = 0; i < array.size(); ++i) {
    std::string entry_path = element(path, i);
    const toml::table* entry = array.get(i)->as_table();
    if (!entry) {
      errors_.add(entry_path, wrong_type(toml::node_type::table, *array.get(i)));
      continue;
    }
    TableReader r(errors_, *entry, entry_path, {"names", "chain", "key"});
    tls::Certificate cert;
    if (auto chain = r.string("chain", true)) cert.chain_file = resolve(base_dir_, *chain);
    if (auto key = r.string("key", true)) cert.key_file = resolve(base_dir_, *key);
    if (const toml::array* names = r.array("names", true)) {
      for (size_t n = 0; n < names->size(); ++n) {
        const auto* name = names->get(n)->as_string();
        if (!name || name->get().empty()) {
          errors_.add(element(r.path_of("names"), n), "expected a non-empty string");
        } else {
          cert.names.push_back(name->get());
        }
      }
      if (names->empty()) errors_.add(r.path_of("names"), "empty: give at least one name");
    }
    out.sni.push_back(std::move(cert));
  }
}

void Parser::parse_tls(const toml::table& table, const std::string& path, TlsConfig& out) {
  TableReader r(errors_, table, path, {"chain", "key", "stack", "sni", "client_ca", "min_version"});
  if (const toml::array* sni = r.array("sni")) parse_sni(*sni, r.path_of("sni"), out);
  if (auto ca = r.string("client_ca")) out.client_ca_file = resolve(base_dir_, *ca);
  if (auto version = r.string("min_version")) {
    if (auto parsed = tls::parse_version(*version)) {
      out.min_version = *parsed;
    } else {
      errors_.add(r.path_of("min_version"), parsed.error().message());
    }
  }
  if (auto chain = r.string("chain", /*required=*/true)) {
    if (chain->empty()) {
      errors_.add(r.path_of("chain"), "must not be empty");
    } else {
      out.certificate.chain_file = resolve(base_dir_, *chain);
    }
  }
  if (auto key = r.string("key", /*required=*/true)) {
    if (key->empty()) {
      errors_.add(r.path_of("key"), "must not be empty");
    } else {
      out.certificate.key_file = resolve(base_dir_, *key);
    }
  }
  if (auto stack = parse_stack(r)) out.stack = *stack;
}

}  // namespace monolake::proxy::config::internal
