// Errors in the configuration's format ("FILE: KEY.PATH: reason") for what is found while
// applying a configuration (binding, TLS files, names). Private to //proxy/server.
#pragma once

#include <string>

#include "base/error.h"
#include "proxy/config/config.h"

namespace monolake::proxy::server::internal {

// "FILE: KEY.PATH: reason", the configuration's error format.
inline Error config_error(const config::Config& config, const std::string& key_path,
                          const std::string& reason) {
  return Error(ErrorCode::kInvalidArgument, config.source + ": " + key_path + ": " + reason);
}

inline std::string server_path(const config::ServerConfig& server) {
  return "servers." + server.key;
}

}  // namespace monolake::proxy::server::internal
