#include "proxy/framework/registry.h"

namespace monolake::proxy::framework {

namespace {

Result<void> check_name(std::string_view what, const std::string& name) {
  bool ok = !name.empty();
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (ok) return monolake::ok();
  return Error(ErrorCode::kInvalidArgument,
               std::string(what) + " name '" + name + "': use lower-case letters, digits, _ and -");
}

Result<void> check_schema(std::string_view what, const std::string& name,
                          const ParamSchema& schema) {
  if (std::string problem = schema.check(); !problem.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(what) + " '" + name + "': its schema: " + problem);
  }
  return ok();
}

}  // namespace

Result<void> Registry::add_http_filter(std::string name, ParamSchema schema, HttpFilterMaker make) {
  if (auto r = check_name("filter", name); !r) return r;
  if (auto r = check_schema("filter", name, schema); !r) return r;
  if (!make) return Error(ErrorCode::kInvalidArgument, "filter '" + name + "': no maker");
  if (http_filters_.count(name)) {
    return Error(ErrorCode::kInvalidArgument, "filter '" + name + "' is registered already");
  }
  catalog_.add_filter(name, std::move(schema));
  http_filters_.emplace(std::move(name), std::move(make));
  return ok();
}

Result<void> Registry::add_server_kind(std::string name, ParamSchema schema, ServerKindMaker make) {
  if (auto r = check_name("server kind", name); !r) return r;
  if (name == "http" || name == "tcp" || name == "thrift") {
    return Error(ErrorCode::kInvalidArgument,
                 "server kind '" + name + "' is built in; choose another name");
  }
  if (auto r = check_schema("server kind", name, schema); !r) return r;
  if (!make) return Error(ErrorCode::kInvalidArgument, "server kind '" + name + "': no maker");
  if (server_kinds_.count(name)) {
    return Error(ErrorCode::kInvalidArgument, "server kind '" + name + "' is registered already");
  }
  catalog_.add_server_kind(name, std::move(schema));
  server_kinds_.emplace(std::move(name), std::move(make));
  return ok();
}

Result<void> Registry::add_connection_filter(std::string name, ParamSchema schema,
                                             ConnectionFilterMaker make) {
  if (auto r = check_name("connection filter", name); !r) return r;
  if (auto r = check_schema("connection filter", name, schema); !r) return r;
  if (!make) return Error(ErrorCode::kInvalidArgument, "connection filter '" + name + "': no maker");
  if (connection_filters_.count(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 "connection filter '" + name + "' is registered already");
  }
  catalog_.add_connection_filter(name, std::move(schema));
  connection_filters_.emplace(std::move(name), std::move(make));
  return ok();
}

const ConnectionFilterMaker* Registry::connection_filter(std::string_view name) const {
  auto it = connection_filters_.find(name);
  return it == connection_filters_.end() ? nullptr : &it->second;
}

const HttpFilterMaker* Registry::http_filter(std::string_view name) const {
  auto it = http_filters_.find(name);
  return it == http_filters_.end() ? nullptr : &it->second;
}

const ServerKindMaker* Registry::server_kind(std::string_view name) const {
  auto it = server_kinds_.find(name);
  return it == server_kinds_.end() ? nullptr : &it->second;
}

}  // namespace monolake::proxy::framework
