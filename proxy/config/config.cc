#include "proxy/config/config.h"

#include <netinet/in.h>
#include <sched.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <thread>
#include <utility>

// Only this file includes toml++, with its default (exception) mode; a syntax error is caught
// here and becomes an Error, so nothing escapes to callers.
#include <fmt/format.h>
#include <toml++/toml.h>

namespace monolake::proxy::config {

namespace {

// --- error collection and key paths ----------------------------------------------------------

class Errors {
 public:
  explicit Errors(const std::string& file) : file_(file) {}

  void add(std::string_view key_path, std::string_view reason) {
    lines_.push_back(fmt::format("{}: {}: {}", file_, key_path, reason));
  }
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }

  Error to_error() const {
    std::string message;
    for (const std::string& line : lines_) {
      if (!message.empty()) message += '\n';
      message += line;
    }
    return Error(ErrorCode::kInvalidArgument, std::move(message));
  }

 private:
  const std::string& file_;
  std::vector<std::string> lines_;
};

bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "a.b", with TOML quoting for keys that need it: servers."my.server".
std::string child(std::string_view path, std::string_view key) {
  std::string part = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
  if (path.empty()) return part;
  return fmt::format("{}.{}", path, part);
}

std::string element(std::string_view path, size_t index) {
  return fmt::format("{}[{}]", path, index);
}

std::string_view type_phrase(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string wrong_type(toml::node_type want, const toml::node& got) {
  return fmt::format("expected {}, got {}", type_phrase(want), type_phrase(got.type()));
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A host name ("api.example.com", "localhost") or "*.suffix"; no port, no brackets.
bool valid_route_host(std::string_view host) {
  if (host.substr(0, 2) == "*.") host.remove_prefix(2);
  if (host.empty() || host.size() > 253) return false;
  for (unsigned char c : host) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return host.front() != '.' && host.back() != '.';
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && !std::strchr("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

// "10.0.0.0/8", "::1/128", or a bare address (all its bits).
std::optional<Cidr> parse_cidr(std::string_view text) {
  const size_t slash = text.find('/');
  std::string ip(text.substr(0, slash));
  const bool v6 = ip.find(':') != std::string::npos;
  auto address = transport::SocketAddress::parse(v6 ? "[" + ip + "]:0" : ip + ":0");
  if (!address) return std::nullopt;
  Cidr cidr;
  cidr.network = *address;
  cidr.prefix = v6 ? 128 : 32;
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    int n = -1;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (ec != std::errc() || end != bits.data() + bits.size() || n < 0 || n > cidr.prefix) {
      return std::nullopt;
    }
    cidr.prefix = n;
  }
  return cidr;
}

std::string quoted_list(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += fmt::format("\"{}\"", name);
  }
  return out;
}

// Resolves a relative path against the configuration file's directory.
std::string resolve(const std::string& base_dir, std::string_view path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return std::string(path);
  return (std::filesystem::path(base_dir) / std::filesystem::path(path))
      .lexically_normal()
      .string();
}

// --- typed access to one table ----------------------------------------------------------------

// Reads the keys of one table. Keys not in `allowed` are reported at construction as unknown;
// a getter reports a wrong type and returns nothing (so the caller keeps its default).
class TableReader {
 public:
  TableReader(Errors& errors, const toml::table& table, std::string path,
              std::initializer_list<std::string_view> allowed)
      : errors_(errors), table_(table), path_(std::move(path)) {
    for (auto&& [key, node] : table_) {
      (void)node;
      bool known = false;
      for (std::string_view name : allowed) known = known || key.str() == name;
      if (!known) {
        errors_.add(child(path_, key.str()),
                    fmt::format("unknown key (expected one of: {})", join(allowed)));
      }
    }
  }

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return child(path_, key); }
  bool has(std::string_view key) const { return table_.get(key) != nullptr; }
  const toml::node* get(std::string_view key) const { return table_.get(key); }

  void missing(std::string_view key) { errors_.add(path_of(key), "missing (required)"); }

  std::optional<std::string> string(std::string_view key, bool required = false) {
    const toml::node* node = get(key);
    if (!node) {
      if (required) missing(key);
      return std::nullopt;
    }
    if (const auto* s = node->as_string()) return s->get();
    errors_.add(path_of(key), wrong_type(toml::node_type::string, *node));
    return std::nullopt;
  }

  // Also rejects values outside [min, max], naming the bound.
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max) {
    const toml::node* node = get(key);
    if (!node) return std::nullopt;
    const auto* i = node->as_integer();
    if (!i) {
      errors_.add(path_of(key), wrong_type(toml::node_type::integer, *node));
      return std::nullopt;
    }
    int64_t value = i->get();
    if (value < min) {
      errors_.add(path_of(key), fmt::format("must be at least {}, got {}", min, value));
      return std::nullopt;
    }
    if (value > max) {
      errors_.add(path_of(key), fmt::format("must be at most {}, got {}", max, value));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* node = get(key);
    if (!node) return std::nullopt;
    if (const auto* b = node->as_boolean()) return b->get();
    errors_.add(path_of(key), wrong_type(toml::node_type::boolean, *node));
    return std::nullopt;
  }

  const toml::table* table(std::string_view key, bool required = false) {
    const toml::node* node = get(key);
    if (!node) {
      if (required) missing(key);
      return nullptr;
    }
    if (const auto* t = node->as_table()) return t;
    errors_.add(path_of(key), wrong_type(toml::node_type::table, *node));
    return nullptr;
  }

  const toml::array* array(std::string_view key, bool required = false) {
    const toml::node* node = get(key);
    if (!node) {
      if (required) missing(key);
      return nullptr;
    }
    if (const auto* a = node->as_array()) return a;
    errors_.add(path_of(key), wrong_type(toml::node_type::array, *node));
    return nullptr;
  }

 private:
  static std::string join(std::initializer_list<std::string_view> names) {
    std::string out;
    for (std::string_view name : names) {
      if (!out.empty()) out += ", ";
      out += name;
    }
    return out;
  }

  Errors& errors_;
  const toml::table& table_;
  std::string path_;
};

// --- the parser -------------------------------------------------------------------------------

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxSeconds = 365LL * 24 * 3600;  // a year: anything longer is a typo

class Parser {
 public:
  Parser(Errors& errors, const std::string& base_dir) : errors_(errors), base_dir_(base_dir) {}

  void parse_root(const toml::table& root, Config& config) {
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

 private:
  void parse_runtime(const toml::table& table, RuntimeConfig& out) {
    TableReader r(
        errors_, table, "runtime",
        {"runtime_type", "worker_threads", "entries", "sqpoll_idle", "cpu_affinity",
         "max_open_files", "user", "control_socket", "drain_timeout_sec", "dns_refresh_sec"});
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

  void parse_log(const toml::table& table, LogConfig& out) {
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

  void parse_admin(const toml::table& table, AdminConfig& out) {
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

  void parse_http2(const toml::table& table, const std::string& path, Http2Config& out) {
    TableReader r(errors_, table, path,
                  {"enabled", "max_concurrent_streams", "initial_stream_window",
                   "connection_window", "max_header_list_size", "max_continuations",
                   "max_resets_burst", "max_resets_per_sec", "max_control_frames_per_sec",
                   "max_consecutive_empty_frames", "max_priority_frames_per_stream"});
    if (auto b = r.boolean("enabled")) out.enabled = *b;
    // HTTP/2 window sizes may not exceed 2^31-1 (RFC 9113 6.9.1); the others are counts.
    const int64_t kMaxWindow = (int64_t{1} << 31) - 1;
    auto read = [&](std::string_view key, int64_t min, int64_t max, uint32_t& field) {
      if (auto n = r.integer(key, min, max)) field = static_cast<uint32_t>(*n);
    };
    read("max_concurrent_streams", 1, kMaxInt32, out.max_concurrent_streams);
    read("initial_stream_window", 1024, kMaxWindow, out.initial_stream_window);
    read("connection_window", 65535, kMaxWindow, out.connection_window);
    read("max_header_list_size", 1024, kMaxInt32, out.max_header_list_size);
    read("max_continuations", 0, 1024, out.max_continuations);
    read("max_resets_burst", 1, kMaxInt32, out.max_resets_burst);
    read("max_resets_per_sec", 1, kMaxInt32, out.max_resets_per_sec);
    read("max_control_frames_per_sec", 1, kMaxInt32, out.max_control_frames_per_sec);
    read("max_consecutive_empty_frames", 0, kMaxInt32, out.max_consecutive_empty_frames);
    read("max_priority_frames_per_stream", 1, kMaxInt32, out.max_priority_frames_per_stream);
  }

  void parse_server(const toml::table& table, const std::string& path, ServerConfig& out) {
    TableReader r(errors_, table, path,
                  {"name", "proxy_type", "listener", "tls", "timeout", "max_connections", "routes",
                   "route", "trusted_proxies", "max_request_body_bytes", "upstream_http_version",
                   "http2", "max_calls_in_flight", "upstream_max_idle_connections"});
    if (auto n = r.integer("upstream_max_idle_connections", 0, 1000000)) {
      out.upstream_max_idle_connections = static_cast<size_t>(*n);
    }
    if (auto n = r.integer("max_calls_in_flight", 1, 1000000)) {
      out.max_calls_in_flight = static_cast<size_t>(*n);
    }
    if (auto version = r.string("upstream_http_version")) {
      if (*version == "http11") {
        out.upstream_http_version = UpstreamHttpVersion::kHttp11;
      } else if (*version == "http2") {
        out.upstream_http_version = UpstreamHttpVersion::kHttp2;
      } else if (*version == "auto") {
        out.upstream_http_version = UpstreamHttpVersion::kAuto;
      } else {
        errors_.add(r.path_of("upstream_http_version"),
                    fmt::format("unknown HTTP version '{}': expected one of {}", *version,
                                quoted_list({"http11", "http2", "auto"})));
      }
    }
    if (const toml::table* http2 = r.table("http2")) {
      parse_http2(*http2, r.path_of("http2"), out.http2);
    }
    if (auto n = r.integer("max_request_body_bytes", 0, std::numeric_limits<int64_t>::max())) {
      out.max_request_body_bytes = static_cast<uint64_t>(*n);
    }
    if (const toml::array* trusted = r.array("trusted_proxies")) {
      for (size_t i = 0; i < trusted->size(); ++i) {
        const auto* text = trusted->get(i)->as_string();
        std::string item_path = element(r.path_of("trusted_proxies"), i);
        if (!text) {
          errors_.add(item_path, wrong_type(toml::node_type::string, *trusted->get(i)));
        } else if (auto cidr = parse_cidr(text->get())) {
          out.trusted_proxies.push_back(*cidr);
        } else {
          errors_.add(item_path, "'" + text->get() + "' is not an address or CIDR block");
        }
      }
    }
    out.name = out.key;
    if (auto name = r.string("name")) {
      if (name->empty()) {
        errors_.add(r.path_of("name"), "must not be empty");
      } else {
        out.name = *name;
      }
    }
    if (auto type = r.string("proxy_type")) {
      if (*type == "http") {
        out.proxy_type = ProxyType::kHttp;
      } else if (*type == "tcp") {
        out.proxy_type = ProxyType::kTcp;
      } else if (*type == "thrift") {
        out.proxy_type = ProxyType::kThrift;
      } else {
        errors_.add(r.path_of("proxy_type"),
                    fmt::format("unknown proxy type '{}': expected one of {}", *type,
                                quoted_list({"http", "tcp", "thrift"})));
      }
    }
    if (const toml::table* listener = r.table("listener", /*required=*/true)) {
      parse_listener(*listener, r.path_of("listener"), out.listener);
    }
    if (const toml::table* tls = r.table("tls")) {
      out.tls.emplace();
      parse_tls(*tls, r.path_of("tls"), *out.tls);
    }
    if (const toml::table* timeout = r.table("timeout")) {
      parse_timeout(*timeout, r.path_of("timeout"), out.timeout);
    }
    if (auto n = r.integer("max_connections", 1, kMaxInt32)) {
      out.max_connections = static_cast<size_t>(*n);
    }

    if (r.has("max_calls_in_flight") && out.proxy_type != ProxyType::kThrift) {
      errors_.add(r.path_of("max_calls_in_flight"), "only thrift servers have max_calls_in_flight");
    }

    // Routes: [[servers.x.routes]] (an array of tables) or Monolake's [servers.x.route].
    bool has_routes = r.has("routes");
    bool has_route = r.has("route");
    if (has_routes && has_route) {
      errors_.add(r.path_of("route"), "give either \"routes\" or \"route\", not both");
    } else if (!has_routes && !has_route) {
      errors_.add(r.path_of("routes"),
                  "no routes (add a [[" + r.path_of("routes") + "]] table with upstreams)");
    } else if (has_route) {
      if (const toml::table* route = r.table("route")) {
        RouteConfig parsed;
        if (parse_route(*route, r.path_of("route"), out.proxy_type, parsed)) {
          out.routes.push_back(std::move(parsed));
        }
      }
    } else if (const toml::array* routes = r.array("routes")) {
      std::string routes_path = r.path_of("routes");
      if (routes->empty()) errors_.add(routes_path, "no routes (the list is empty)");
      std::map<std::string, size_t> seen;  // path -> index
      for (size_t i = 0; i < routes->size(); ++i) {
        const toml::node& node = *routes->get(i);
        std::string route_path = element(routes_path, i);
        const toml::table* route = node.as_table();
        if (!route) {
          errors_.add(route_path, wrong_type(toml::node_type::table, node));
          continue;
        }
        RouteConfig parsed;
        if (!parse_route(*route, route_path, out.proxy_type, parsed)) continue;
        if (out.proxy_type == ProxyType::kHttp) {
          auto [it, inserted] = seen.emplace(parsed.host + " " + parsed.path, i);
          if (!inserted) {
            errors_.add(child(route_path, "path"),
                        fmt::format("duplicate route path '{}'{} (also {})", parsed.path,
                                    parsed.host.empty() ? "" : " for host " + parsed.host,
                                    element(routes_path, it->second)));
            continue;
          }
        }
        out.routes.push_back(std::move(parsed));
      }
      if (out.proxy_type == ProxyType::kTcp && routes->size() > 1) {
        errors_.add(routes_path, fmt::format("a {} server has exactly one route, got {}",
                                             proxy_type_name(out.proxy_type), routes->size()));
      }
    }
  }

  void parse_listener(const toml::table& table, const std::string& path, ListenerConfig& out) {
    TableReader r(errors_, table, path, {"type", "value"});
    auto type = r.string("type", /*required=*/true);
    auto value = r.string("value", /*required=*/true);
    if (type && *type != "socket" && *type != "unix") {
      errors_.add(r.path_of("type"), fmt::format("unknown listener type '{}': expected {}", *type,
                                                 quoted_list({"socket", "unix"})));
      return;
    }
    if (!type || !value) return;
    if (*type == "socket") {
      out.kind = ListenerConfig::Kind::kSocket;
      auto address = parse_ip_address(*value, r.path_of("value"), "listener");
      if (address) out.address = *address;
    } else {
      out.kind = ListenerConfig::Kind::kUnix;
      auto address = parse_unix_address(*value, r.path_of("value"));
      if (address) out.address = *address;
    }
  }

  std::optional<transport::SocketAddress> parse_ip_address(const std::string& value,
                                                           const std::string& path,
                                                           std::string_view what) {
    if (value.rfind("unix:", 0) == 0 || (!value.empty() && value.front() == '/')) {
      errors_.add(path, fmt::format("'{}' is a path: a \"socket\" {} takes ip:port (use type = "
                                    "\"unix\" for a Unix socket)",
                                    value, what));
      return std::nullopt;
    }
    auto address = transport::SocketAddress::parse(value);
    if (!address) {
      errors_.add(path, address.error().message());
      return std::nullopt;
    }
    return *address;
  }

  std::optional<transport::SocketAddress> parse_unix_address(const std::string& value,
                                                             const std::string& path) {
    std::string text = value.rfind("unix:", 0) == 0 ? value.substr(5) : value;
    if (text.empty()) {
      errors_.add(path, "empty Unix socket path");
      return std::nullopt;
    }
    auto address = transport::SocketAddress::unix_path(resolve(base_dir_, text));
    if (!address) {
      errors_.add(path, address.error().message());
      return std::nullopt;
    }
    return *address;
  }

  std::optional<tls::Backend> parse_stack(TableReader& r) {
    auto stack = r.string("stack");
    if (!stack) return std::nullopt;
    if (*stack == "native_tls") return tls::Backend::kOpenSsl;  // OpenSSL on Linux
    if (*stack == "rustls") {
      errors_.add(r.path_of("stack"),
                  "rustls is not available here: use \"openssl\" or \"gnutls\"");
      return std::nullopt;
    }
    if (auto backend = tls::parse_backend(*stack))
      return *backend;
    else
      errors_.add(r.path_of("stack"), backend.error().message());
    return std::nullopt;
  }

  void parse_upstream_tls(const toml::table& table, const std::string& path,
                          UpstreamTlsConfig& out) {
    TableReader r(errors_, table, path, {"stack", "ca", "verify", "sni"});
    if (auto stack = parse_stack(r)) out.stack = *stack;
    if (auto ca = r.string("ca")) out.ca_file = resolve(base_dir_, *ca);
    if (auto verify = r.boolean("verify")) out.verify = *verify;
    if (auto sni = r.string("sni")) out.sni = *sni;
  }

  void parse_sni(const toml::array& array, const std::string& path, TlsConfig& out) {
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

  void parse_tls(const toml::table& table, const std::string& path, TlsConfig& out) {
    TableReader r(errors_, table, path,
                  {"chain", "key", "stack", "sni", "client_ca", "min_version"});
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

  void parse_timeout(const toml::table& table, const std::string& path, TimeoutConfig& out) {
    TableReader r(errors_, table, path,
                  {"server_keepalive_timeout_sec", "server_read_header_timeout_sec",
                   "server_read_body_timeout_sec", "upstream_connect_timeout_sec",
                   "upstream_read_timeout_sec", "server_message_timeout_sec",
                   "tcp_idle_timeout_sec", "server_write_timeout_sec"});
    auto read = [&](std::string_view key, int64_t min, std::chrono::seconds& into) {
      if (auto n = r.integer(key, min, kMaxSeconds)) into = std::chrono::seconds(*n);
    };
    read("server_keepalive_timeout_sec", 0, out.server_keepalive);
    read("server_read_header_timeout_sec", 1, out.server_read_header);
    read("server_read_body_timeout_sec", 1, out.server_read_body);
    read("upstream_connect_timeout_sec", 1, out.upstream_connect);
    read("upstream_read_timeout_sec", 1, out.upstream_read);
    read("server_message_timeout_sec", 1, out.server_message);
    read("tcp_idle_timeout_sec", 0, out.tcp_idle);
    read("server_write_timeout_sec", 1, out.server_write);
  }

  // False when the route is unusable (its errors are reported).
  bool parse_route(const toml::table& table, const std::string& path, ProxyType proxy_type,
                   RouteConfig& out) {
    size_t errors_before = errors_.size();
    TableReader r(errors_, table, path,
                  {"path", "upstreams", "load_balancer", "host", "return", "upstream_tls",
                   "host_rewrite", "strip_prefix", "add_prefix", "request_headers",
                   "response_headers", "websocket", "method"});
    if (r.has("method")) {
      if (proxy_type != ProxyType::kThrift) {
        fail(r.path_of("method"), "only thrift routes match on method");
      } else if (const toml::node* node = table.get("method")) {
        parse_methods(*node, r.path_of("method"), out.methods);
      }
    }
    if (proxy_type == ProxyType::kHttp) {
      if (auto ws = r.boolean("websocket")) out.websocket = *ws;
      if (auto host = r.string("host_rewrite")) {
        if (!valid_header_value(*host) || host->empty()) {
          fail(r.path_of("host_rewrite"), "not a valid Host value");
        } else {
          out.host_rewrite = *host;
        }
      }
      for (const char* key : {"strip_prefix", "add_prefix"}) {
        if (auto prefix = r.string(key)) {
          if (prefix->empty() || prefix->front() != '/' ||
              prefix->find_first_of(" ?#") != std::string::npos) {
            fail(r.path_of(key), "a path prefix starts with '/' and has no space, '?' or '#'");
          } else {
            (std::string_view(key) == "strip_prefix" ? out.strip_prefix : out.add_prefix) = *prefix;
          }
        }
      }
      if (const toml::table* t = r.table("request_headers")) {
        parse_header_rewrite(*t, r.path_of("request_headers"), out.request_headers);
      }
      if (const toml::table* t = r.table("response_headers")) {
        parse_header_rewrite(*t, r.path_of("response_headers"), out.response_headers);
      }
    } else {
      for (const char* key : {"host_rewrite", "strip_prefix", "add_prefix", "request_headers",
                              "response_headers", "websocket"}) {
        if (r.has(key)) fail(r.path_of(key), "only http routes rewrite requests");
      }
    }
    if (const toml::table* upstream_tls = r.table("upstream_tls")) {
      if (proxy_type != ProxyType::kHttp) {
        fail(r.path_of("upstream_tls"), "only http routes have upstream_tls");
      } else {
        out.upstream_tls.emplace();
        parse_upstream_tls(*upstream_tls, r.path_of("upstream_tls"), *out.upstream_tls);
      }
    }
    auto route_path = r.string("path", /*required=*/proxy_type == ProxyType::kHttp);
    if (auto host = r.string("host")) {
      if (proxy_type != ProxyType::kHttp) {
        fail(r.path_of("host"), "only http routes match on host");
      } else if (!valid_route_host(*host)) {
        fail(r.path_of("host"), fmt::format("'{}' is not a host name or *.suffix pattern", *host));
      } else {
        out.host = lowercase(*host);
      }
    }
    if (r.has("return")) {
      if (proxy_type != ProxyType::kHttp) {
        fail(r.path_of("return"), "only http routes can answer directly");
        return false;
      }
      if (const toml::table* direct = r.table("return")) {
        DirectResponse parsed;
        if (!parse_direct_response(*direct, r.path_of("return"), parsed)) return false;
        out.direct = std::move(parsed);
      }
      if (r.has("upstreams")) {
        fail(r.path_of("upstreams"), "a route with \"return\" has no upstreams");
        return false;
      }
    }
    if (route_path) {
      if (proxy_type == ProxyType::kTcp) {
        fail(r.path_of("path"), "a tcp route has no path (tcp servers forward every connection)");
      } else if (auto normalised = normalise_route_path(*route_path); !normalised) {
        fail(r.path_of("path"), normalised.error().message());
      } else {
        out.path = std::move(*normalised);
      }
    }
    if (auto lb = r.string("load_balancer")) {
      if (auto parsed = parse_balancer(*lb)) {
        out.load_balancer = *parsed;
      } else {
        fail(r.path_of("load_balancer"), parsed.error().message());
      }
    }
    if (out.direct) return errors_.size() == errors_before;
    const toml::array* upstreams = r.array("upstreams", /*required=*/true);
    if (!upstreams) return false;
    std::string upstreams_path = r.path_of("upstreams");
    if (upstreams->empty()) {
      fail(upstreams_path, "empty upstream list: a route needs at least one upstream");
      return false;
    }
    for (size_t i = 0; i < upstreams->size(); ++i) {
      const toml::node& node = *upstreams->get(i);
      std::string upstream_path = element(upstreams_path, i);
      const toml::table* upstream = node.as_table();
      if (!upstream) {
        fail(upstream_path, wrong_type(toml::node_type::table, node));
        continue;
      }
      Upstream parsed;
      if (parse_upstream(*upstream, upstream_path, proxy_type, parsed)) {
        out.upstreams.push_back(std::move(parsed));
      }
    }
    // https:// endpoints imply upstream TLS; one route speaks one scheme to all its upstreams.
    size_t https = 0;
    for (const Upstream& u : out.upstreams) {
      https += u.endpoint.kind == Endpoint::Kind::kUri && u.endpoint.uri.scheme == "https";
    }
    if (https > 0 && https != out.upstreams.size()) {
      fail(upstreams_path, "mixes https:// and other upstreams: one route, one scheme");
    } else if (https > 0 && !out.upstream_tls) {
      out.upstream_tls.emplace();
    }
    if (out.upstream_tls && out.upstream_tls->verify && out.upstream_tls->sni.empty() &&
        https == 0) {
      fail(r.path_of("upstream_tls"),
           "verify is on but there is no name to verify: give \"sni\" (or use https:// endpoints)");
    }
    return errors_.size() == errors_before && !out.upstreams.empty();
  }

  // method = "name" | ["a", "b"]: Thrift method names (non-empty, no spaces).
  void parse_methods(const toml::node& node, const std::string& path,
                     std::vector<std::string>& out) {
    auto add = [&](const toml::node& item, const std::string& item_path) {
      const auto* text = item.as_string();
      if (!text) {
        errors_.add(item_path, wrong_type(toml::node_type::string, item));
      } else if (text->get().empty() || text->get().find_first_of(" \t\r\n") != std::string::npos) {
        errors_.add(item_path, "'" + text->get() + "' is not a method name");
      } else {
        out.push_back(text->get());
      }
    };
    if (const toml::array* list = node.as_array()) {
      if (list->empty()) errors_.add(path, "an empty method list matches nothing");
      for (size_t i = 0; i < list->size(); ++i) add(*list->get(i), element(path, i));
    } else {
      add(node, path);
    }
  }

  void parse_header_rewrite(const toml::table& table, const std::string& path, HeaderRewrite& out) {
    TableReader r(errors_, table, path, {"add", "remove"});
    if (const toml::table* add = r.table("add")) {
      for (auto&& [key, node] : *add) {
        std::string field_path = child(r.path_of("add"), key.str());
        const auto* value = node.as_string();
        if (!value) {
          errors_.add(field_path, wrong_type(toml::node_type::string, node));
        } else if (!valid_header_name(key.str()) || !valid_header_value(value->get())) {
          errors_.add(field_path, "not a valid header field");
        } else {
          out.add.emplace_back(std::string(key.str()), value->get());
        }
      }
    }
    if (const toml::array* remove = r.array("remove")) {
      for (size_t i = 0; i < remove->size(); ++i) {
        const auto* name = remove->get(i)->as_string();
        if (!name || !valid_header_name(name->get())) {
          errors_.add(element(r.path_of("remove"), i), "expected a header field name");
        } else {
          out.remove.push_back(name->get());
        }
      }
    }
  }

  bool parse_direct_response(const toml::table& table, const std::string& path,
                             DirectResponse& out) {
    TableReader r(errors_, table, path, {"status", "body", "headers"});
    size_t errors_before = errors_.size();
    if (auto status = r.integer("status", 100, 599)) out.status = static_cast<int>(*status);
    if (auto body = r.string("body")) out.body = *body;
    if (const toml::table* headers = r.table("headers")) {
      for (auto&& [key, node] : *headers) {
        std::string header_path = child(r.path_of("headers"), key.str());
        const auto* value = node.as_string();
        if (!value) {
          errors_.add(header_path, wrong_type(toml::node_type::string, node));
        } else if (!valid_header_name(key.str()) || !valid_header_value(value->get())) {
          errors_.add(header_path, "not a valid header field");
        } else {
          out.headers.emplace_back(std::string(key.str()), value->get());
        }
      }
    }
    return errors_.size() == errors_before;
  }

  bool parse_upstream(const toml::table& table, const std::string& path, ProxyType proxy_type,
                      Upstream& out) {
    TableReader r(errors_, table, path, {"endpoint", "weight"});
    bool ok = true;
    if (r.has("weight")) {
      if (auto n = r.integer("weight", 1, kMaxInt32)) {
        out.weight = static_cast<uint32_t>(*n);
      } else {
        ok = false;
      }
    }
    const toml::table* endpoint = r.table("endpoint", /*required=*/true);
    if (!endpoint) return false;
    return parse_endpoint(*endpoint, r.path_of("endpoint"), proxy_type, out.endpoint) && ok;
  }

  bool parse_endpoint(const toml::table& table, const std::string& path, ProxyType proxy_type,
                      Endpoint& out) {
    TableReader r(errors_, table, path, {"type", "value"});
    auto type = r.string("type", /*required=*/true);
    auto value = r.string("value", /*required=*/true);
    if (!type || !value) return false;
    if (*type == "socket") {
      out.kind = Endpoint::Kind::kSocket;
      auto address = parse_ip_address(*value, r.path_of("value"), "endpoint");
      if (!address) return false;
      if (address->port() == 0) {
        errors_.add(r.path_of("value"), fmt::format("port 0 in upstream address '{}'", *value));
        return false;
      }
      out.address = *address;
      return true;
    }
    if (*type == "unix") {
      out.kind = Endpoint::Kind::kUnix;
      auto address = parse_unix_address(*value, r.path_of("value"));
      if (!address) return false;
      out.address = *address;
      return true;
    }
    if (*type == "uri") {
      if (proxy_type == ProxyType::kTcp) {
        errors_.add(r.path_of("type"),
                    "a tcp upstream is a \"socket\" or \"unix\" endpoint, not a \"uri\"");
        return false;
      }
      out.kind = Endpoint::Kind::kUri;
      auto uri = parse_uri(*value);
      if (!uri) {
        errors_.add(r.path_of("value"), uri.error().message());
        return false;
      }
      out.uri = std::move(*uri);
      return true;
    }
    errors_.add(r.path_of("type"), fmt::format("unknown endpoint type '{}': expected one of {}",
                                               *type, quoted_list({"socket", "unix", "uri"})));
    return false;
  }

  void check_listener_conflicts(const std::vector<ServerConfig>& servers) {
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

  void fail(std::string_view path, std::string_view reason) { errors_.add(path, reason); }

  // matchit route syntax: "/", "/a/b", "/u/{id}", "/files/{*rest}" (catch-all: last segment
  // only). "{{" and "}}" are literal braces. Monolake's older "/*rest" becomes "/{*rest}".
  static Result<std::string> normalise_route_path(std::string_view path) {
    auto bad = [&](std::string_view why) {
      return Error(ErrorCode::kInvalidArgument, fmt::format("bad route path '{}': {}", path, why));
    };
    if (path.empty() || path.front() != '/') return bad("it must start with '/'");
    std::string out;
    size_t i = 0;
    while (i < path.size()) {
      char c = path[i];
      bool segment_start = i > 0 && path[i - 1] == '/';
      if (c == '*' && segment_start) {
        // Older catch-all spelling: the rest of the path must be the name.
        std::string_view name = path.substr(i + 1);
        if (name.empty() || name.find_first_of("/{}*") != std::string_view::npos) {
          return bad("a catch-all '*name' must be the whole last segment");
        }
        out += fmt::format("{{*{}}}", name);
        break;
      }
      if (c == '{' || c == '}') {
        if (i + 1 < path.size() && path[i + 1] == c) {  // escaped literal brace
          out += path.substr(i, 2);
          i += 2;
          continue;
        }
        if (c == '}') return bad("unmatched '}' (write '}}' for a literal brace)");
        size_t close = path.find('}', i);
        if (close == std::string_view::npos) return bad("unclosed '{'");
        std::string_view name = path.substr(i + 1, close - i - 1);
        bool catch_all = !name.empty() && name.front() == '*';
        if (catch_all) name.remove_prefix(1);
        if (name.empty()) return bad("a parameter needs a name: {name} or {*name}");
        if (name.find_first_of("{/*") != std::string_view::npos) {
          return bad(fmt::format("bad parameter name '{}'", name));
        }
        if (catch_all && (!segment_start || close + 1 != path.size())) {
          return bad("a catch-all {*name} must be the whole last segment");
        }
        // One parameter per segment.
        size_t segment_begin = path.rfind('/', i);
        size_t segment_end = path.find('/', close);
        std::string_view segment = path.substr(segment_begin, segment_end - segment_begin);
        size_t params = 0;
        for (size_t j = 0; j < segment.size(); ++j) {
          if (segment[j] == '{' && (j + 1 >= segment.size() || segment[j + 1] != '{')) ++params;
          if (segment[j] == '{' && j + 1 < segment.size() && segment[j + 1] == '{') ++j;
        }
        if (params > 1) return bad("only one parameter per segment");
        out += path.substr(i, close - i + 1);
        i = close + 1;
        continue;
      }
      out += c;
      ++i;
    }
    return out;
  }

  static Result<Uri> parse_uri(std::string_view text) {
    auto bad = [&](std::string_view why) {
      return Error(ErrorCode::kInvalidArgument, fmt::format("bad uri '{}': {}", text, why));
    };
    Uri uri;
    uri.text = std::string(text);
    std::string_view rest;
    if (text.rfind("http://", 0) == 0) {
      uri.scheme = "http";
      uri.port = 80;
      rest = text.substr(7);
    } else if (text.rfind("https://", 0) == 0) {
      uri.scheme = "https";
      uri.port = 443;
      rest = text.substr(8);
    } else {
      return bad("expected http:// or https://");
    }
    size_t authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view tail =
        authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
    if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
      size_t close = authority.find(']');
      if (close == std::string_view::npos) return bad("unclosed '[' in the host");
      host = authority.substr(1, close - 1);
      std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return bad("junk after the IPv6 host");
        port = after.substr(1);
        if (port.empty()) return bad("empty port");
      }
    } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("no host");
    for (char c : host) {
      if (c == ' ' || c == '\t' || c == '/' || c == '[' || c == ']') return bad("bad host");
    }
    if (!port.empty()) {
      uint32_t value = 0;
      for (char c : port) {
        if (c < '0' || c > '9') return bad("the port is not a number");
        value = value * 10 + static_cast<uint32_t>(c - '0');
        if (value > 65535) return bad("the port is out of range");
      }
      if (value == 0) return bad("port 0");
      uri.port = static_cast<uint16_t>(value);
    }
    uri.host = std::string(host);
    if (tail.empty() || tail.front() == '#') {
      uri.path = "/";
    } else if (tail.front() == '?') {
      uri.path = "/" + std::string(tail.substr(0, tail.find('#')));
    } else {
      uri.path = std::string(tail.substr(0, tail.find('#')));
    }
    return uri;
  }

  Errors& errors_;
  const std::string& base_dir_;
};

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
                            const std::string& base_dir) {
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
  Parser(errors, base_dir).parse_root(root, config);
  if (!errors.empty()) return errors.to_error();
  return config;
}

Result<Config> load_config_file(const std::string& path) {
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
  return parse_config(contents.str(), path, base_dir);
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

bool Cidr::contains(const transport::SocketAddress& address) const {
  if (address.family() != network.family()) return false;
  const unsigned char* a = nullptr;
  const unsigned char* b = nullptr;
  if (address.family() == AF_INET) {
    a = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr);
    b = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(network.data())->sin_addr);
  } else if (address.family() == AF_INET6) {
    a = reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr.s6_addr;
    b = reinterpret_cast<const sockaddr_in6*>(network.data())->sin6_addr.s6_addr;
  } else {
    return false;
  }
  int bits = prefix;
  for (int byte = 0; bits > 0; ++byte, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a[byte] & mask) != (b[byte] & mask)) return false;
  }
  return true;
}

}  // namespace monolake::proxy::config
