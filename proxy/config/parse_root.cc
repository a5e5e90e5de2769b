#include <fmt/format.h>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config::internal {

void Parser::parse_root(const toml::table& root, Config& config) {
  TableReader r(errors_, root, "", {"runtime", "servers", "admin", "log"});
  if (const toml::table* runtime = r.table("runtime")) parse_runtime(*runtime, config.runtime);
  if (const toml::table* log = r.table("log")) parse_log(*log, config.log);
  if (const toml::table* admin = r.table("admin")) {
    config.admin.emplace();
    parse_admin(*admin, *config.admin);
  }
  const toml::node* servers_node = r.get("servers");
  if (!servers_node) {
    errors_.add("servers", "no servers (add a [servers.<name>] table)");
  } else if (const toml::table* servers = r.table("servers")) {
    if (servers->empty()) errors_.add("servers", "no servers (add a [servers.<name>] table)");
    for (auto&& [key, node] : *servers) {
      std::string path = child("servers", key.str());
      const toml::table* table = node.as_table();
      if (!table) {
        errors_.add(path, wrong_type(toml::node_type::table, node));
        continue;
      }
      ServerConfig server;
      server.key = std::string(key.str());
      parse_server(*table, path, server);
      config.servers.push_back(std::move(server));
    }
    check_listener_conflicts(config.servers);
  }
}

void Parser::parse_runtime(const toml::table& table, RuntimeConfig& out) {
  TableReader r(
      errors_, table, "runtime",
      {"runtime_type", "worker_threads", "entries", "sqpoll_idle", "cpu_affinity", "max_open_files",
       "user", "control_socket", "drain_timeout_sec", "dns_refresh_sec"});
  if (auto type = r.string("runtime_type")) {
    if (auto kind = runtime::parse_backend_kind(*type)) {
      out.runtime_type = *kind;
    } else {
      errors_.add(r.path_of("runtime_type"),
                  fmt::format("unknown runtime type '{}': expected one of {} (\"legacy\" = "
                              "\"epoll\")",
                              *type, quoted_list({"auto", "io_uring", "epoll"})));
    }
  }
  if (auto n = r.integer("worker_threads", 1, 4096)) out.worker_threads = static_cast<size_t>(*n);
  // IORING_MAX_ENTRIES is 32768.
  if (auto n = r.integer("entries", 1, 32768)) out.entries = static_cast<unsigned>(*n);
  if (auto n = r.integer("sqpoll_idle", 0, kMaxInt32)) {
    out.sqpoll_idle_ms = static_cast<unsigned>(*n);
  }
  if (auto b = r.boolean("cpu_affinity")) out.cpu_affinity = *b;
  if (auto n = r.integer("max_open_files", 1, std::numeric_limits<int64_t>::max())) {
    out.max_open_files = static_cast<uint64_t>(*n);
  }
  if (auto user = r.string("user")) {
    if (user->empty()) {
      errors_.add(r.path_of("user"), "must not be empty");
    } else {
      out.user = *user;
    }
  }
  if (auto socket = r.string("control_socket")) {
    if (socket->empty()) {
      errors_.add(r.path_of("control_socket"), "must not be empty");
    } else {
      std::string path = resolve(base_dir_, *socket);
      if (auto address = transport::SocketAddress::unix_path(path); !address) {
        errors_.add(r.path_of("control_socket"), address.error().message());
      } else {
        out.control_socket = std::move(path);
      }
    }
  }
  if (auto n = r.integer("drain_timeout_sec", 0, kMaxSeconds)) {
    out.drain_timeout = std::chrono::seconds(*n);
  }
  if (auto n = r.integer("dns_refresh_sec", 0, kMaxSeconds)) {
    out.dns_refresh = std::chrono::seconds(*n);
  }
}

void Parser::parse_log(const toml::table& table, LogConfig& out) {
  TableReader r(errors_, table, "log", {"access_log"});
  if (auto target = r.string("access_log")) {
    if (*target == "off") {
      out.access_log = LogConfig::AccessLog::kOff;
    } else if (*target == "stderr") {
      out.access_log = LogConfig::AccessLog::kStderr;
    } else if (target->empty()) {
      errors_.add(r.path_of("access_log"), "empty (a path, \"stderr\" or \"off\")");
    } else {
      out.access_log = LogConfig::AccessLog::kFile;
      out.access_log_path = resolve(base_dir_, *target);
    }
  }
}

void Parser::parse_admin(const toml::table& table, AdminConfig& out) {
  TableReader r(errors_, table, "admin", {"listen", "allow_remote"});
  if (auto remote = r.boolean("allow_remote")) out.allow_remote = *remote;
  auto listen = r.string("listen", /*required=*/true);
  if (!listen) return;
  std::string text = *listen;
  if (text.rfind("unix:", 0) == 0) text = "unix:" + resolve(base_dir_, text.substr(5));
  auto address = transport::SocketAddress::parse(text);
  if (!address) {
    errors_.add(r.path_of("listen"), address.error().message());
    return;
  }
  out.listen = *address;
  const std::string shown = address->to_string();
  const bool loopback =
      address->is_unix() || shown.rfind("127.", 0) == 0 || shown.rfind("[::1]:", 0) == 0;
  if (!loopback && !out.allow_remote) {
    errors_.add(r.path_of("listen"),
                shown +
                    " is not a loopback address: the admin API can reload the proxy; set "
                    "allow_remote = true if that is really wanted");
  }
}

void Parser::check_listener_conflicts(const std::vector<ServerConfig>& servers) {
  std::map<std::string, std::string> seen;  // address -> server key
  for (const ServerConfig& server : servers) {
    if (!server.listener.address.valid()) continue;
    std::string address = server.listener.address.to_string();
    auto [it, inserted] = seen.emplace(address, server.key);
    if (!inserted) {
      errors_.add(child(child("servers", server.key), "listener"),
                  fmt::format("address {} is already the listener of {}", address,
                              child("servers", it->second)));
    }
  }
}

}  // namespace monolake::proxy::config::internal
