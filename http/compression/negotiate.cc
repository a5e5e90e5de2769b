#include "http/compression/negotiate.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace monolake::http::compression {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
std::optional<int> parse_qvalue(std::string_view text) {
  if (text.empty() || (text[0] != '0' && text[0] != '1')) return std::nullopt;
  int value = text[0] == '1' ? 1000 : 0;
  if (text.size() == 1) return value;
  if (text[1] != '.' || text.size() > 5) return std::nullopt;
  int scale = 100;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    value += (c - '0') * scale;
    scale /= 10;
  }
  return value <= 1000 ? std::optional<int>(value) : std::nullopt;
}

struct Member {
  std::string coding;  // lower case
  int q = 1000;
};

// One member "coding [ ; q=value ]"; nothing when malformed (other parameters are refused too:
// Accept-Encoding has none but q).
std::optional<Member> parse_member(std::string_view text) {
  Member m;
  const size_t semicolon = text.find(';');
  std::string_view name = trim(text.substr(0, semicolon));
  if (name.empty()) return std::nullopt;
  for (char c : name) {
    if (!token_char(c)) return std::nullopt;
    m.coding.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (semicolon == std::string_view::npos) return m;
  std::string_view param = trim(text.substr(semicolon + 1));
  if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') {
    return std::nullopt;
  }
  std::optional<int> q = parse_qvalue(trim(param.substr(2)));
  if (!q) return std::nullopt;
  m.q = *q;
  return m;
}

}  // namespace

std::optional<Coding> negotiate(std::string_view accept_encoding,
                                const std::vector<Coding>& offered) {
  std::vector<int> q(offered.size(), -1);  // -1: not listed
  int star = -1;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::optional<Member> m = parse_member(accept_encoding.substr(0, comma));
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    if (!m) continue;
    if (m->coding == "*") {
      star = m->q;
      continue;
    }
    for (size_t i = 0; i < offered.size(); ++i) {
      // "x-gzip" is gzip (RFC 9110 8.4.1.3).
      if (m->coding == coding_name(offered[i]) ||
          (offered[i] == Coding::kGzip && m->coding == "x-gzip")) {
        q[i] = std::max(q[i], m->q);
      }
    }
  }
  std::optional<Coding> best;
  int best_q = 0;
  for (size_t i = 0; i < offered.size(); ++i) {
    const int value = q[i] >= 0 ? q[i] : star;
    if (value > best_q) {
      best = offered[i];
      best_q = value;
    }
  }
  return best;
}

}  // namespace monolake::http::compression
