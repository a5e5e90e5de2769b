// Command-line flags and transport/protocol set-up shared by calc_server and calc_client.
#pragma once

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/protocol/THeaderProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

namespace calc_peer {

// --name value pairs; a flag without a value is an error.
class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string name = argv[i];
      if (name.rfind("--", 0) != 0 || i + 1 >= argc) {
        std::fprintf(stderr, "bad argument '%s' (flags are --name value)\n", argv[i]);
        std::exit(2);
      }
      values_[name.substr(2)] = argv[++i];
    }
  }
  std::string get(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  long number(const std::string& name, long fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::strtol(it->second.c_str(), nullptr, 10);
  }

 private:
  std::map<std::string, std::string> values_;
};

struct Kind {
  bool header = false;   // --transport framed|header
  bool compact = false;  // --protocol binary|compact
};

inline Kind kind_of(const Flags& flags) {
  Kind k;
  const std::string transport = flags.get("transport", "framed");
  const std::string protocol = flags.get("protocol", "binary");
  if ((transport != "framed" && transport != "header") ||
      (protocol != "binary" && protocol != "compact")) {
    std::fprintf(stderr, "--transport framed|header, --protocol binary|compact\n");
    std::exit(2);
  }
  k.header = transport == "header";
  k.compact = protocol == "compact";
  return k;
}

// A client protocol over `socket` in the given transport and protocol.
inline std::shared_ptr<apache::thrift::protocol::TProtocol> client_protocol(
    const Kind& kind, const std::shared_ptr<apache::thrift::transport::TTransport>& socket) {
  using namespace apache::thrift;
  if (kind.header) {
    return std::make_shared<protocol::THeaderProtocol>(
        socket, kind.compact ? protocol::T_COMPACT_PROTOCOL : protocol::T_BINARY_PROTOCOL);
  }
  auto framed = std::make_shared<transport::TFramedTransport>(socket);
  if (kind.compact) return std::make_shared<protocol::TCompactProtocol>(framed);
  return std::make_shared<protocol::TBinaryProtocol>(framed);
}

}  // namespace calc_peer
