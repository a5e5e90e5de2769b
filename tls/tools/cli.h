// Small command-line helpers shared by the TLS test tools.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace monolake::tls::tools {

// "a,b,,c" -> {"a", "b", "", "c"}; "" -> {}.
inline std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    out.emplace_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace monolake::tls::tools
