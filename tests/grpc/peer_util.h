// Shared by echo_server and echo_client (header only, so each program stays one translation
// unit besides the generated code): the payload pattern both sides agree on, the mismatch
// report, and a small command-line parser.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace monolake::test {

// Payload number `seq` of `size` bytes: every byte value occurs, and two payloads with
// different sequence numbers differ, so reordered, truncated or corrupted data shows.
inline std::string Pattern(uint64_t seq, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    s[i] = static_cast<char>((seq * 131 + i * 7 + (i >> 8) + (seq >> 8)) & 0xff);
  }
  return s;
}

// "" when equal, otherwise what differs.
inline std::string Mismatch(std::string_view expected, std::string_view got) {
  if (expected == got) return "";
  size_t n = std::min(expected.size(), got.size());
  size_t at = 0;
  while (at < n && expected[at] == got[at]) ++at;
  return "got " + std::to_string(got.size()) + " bytes, expected " +
         std::to_string(expected.size()) + ", first difference at offset " + std::to_string(at);
}

// "--name value" or "--name=value"; names not in `known` and missing values are usage errors
// (exit status 2).
class Flags {
 public:
  Flags(int argc, char** argv, std::set<std::string> known, const char* usage) : usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::printf("%s\n", usage_);
        std::exit(0);
      }
      if (arg.rfind("--", 0) != 0) Fail("unexpected argument '" + arg + "'");
      std::string name = arg.substr(2);
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        Fail("--" + name + " needs a value");
      }
      if (!known.contains(name)) Fail("unknown option --" + name);
      values_[name] = value;
    }
  }

  bool Has(const std::string& name) const { return values_.contains(name); }

  std::string Str(const std::string& name, std::string fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }

  uint64_t Num(const std::string& name, uint64_t fallback, uint64_t max) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    const std::string& v = it->second;
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n > max) {
      Fail("--" + name + ": expected a number from 0 to " + std::to_string(max) + ", got '" + v +
           "'");
    }
    return n;
  }

  [[noreturn]] void Fail(const std::string& message) const {
    std::fprintf(stderr, "error: %s\n%s\n", message.c_str(), usage_);
    std::exit(2);
  }

 private:
  const char* usage_;
  std::map<std::string, std::string> values_;
};

// Larger than gRPC's 4 MiB default, so big-message tests through the proxy are possible.
inline constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace monolake::test
