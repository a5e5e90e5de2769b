#include "proxy/upstream/hash_on.h"

namespace monolake::proxy {

std::string hash_on_text(const HashOn& hash_on) {
  switch (hash_on.source) {
    case HashOn::Source::kHeader:
      return "header:" + hash_on.name;
    case HashOn::Source::kCookie:
      return "cookie:" + hash_on.name;
    case HashOn::Source::kSourceIp:
      return "source_ip";
    case HashOn::Source::kPath:
      return "path";
  }
  return "?";
}

}  // namespace monolake::proxy
