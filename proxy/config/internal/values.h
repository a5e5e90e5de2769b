// Checks and conversions of configuration values (host names, header names, CIDRs, paths),
// shared by the section parsers. Private to //proxy/config.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/config/config.h"

namespace monolake::proxy::config::internal {

// ASCII lower case.
std::string lowercase(std::string_view s);

// A host name ("api.example.com", "localhost") or "*.suffix"; no port, no brackets.
// A host name ("api.example.com", "localhost") or "*.suffix"; no port, no brackets.
bool valid_route_host(std::string_view host);

// A field name (RFC 9110 token) and a field value (no CTL but HTAB).
bool valid_header_name(std::string_view name);
bool valid_header_value(std::string_view value);

// "\"a\", \"b\"", for error messages.
std::string quoted_list(std::initializer_list<std::string_view> names);

// Resolves a relative path against the configuration file's directory.
// Resolves a relative path against the configuration file's directory.
std::string resolve(const std::string& base_dir, std::string_view path);

}  // namespace monolake::proxy::config::internal
