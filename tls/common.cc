#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "tls/engine.h"
#include "tls/tls.h"

// What tls/ and its backends share: names, ticket keys, file and name helpers.
namespace monolake::tls {

Result<Backend> parse_backend(std::string_view name) {
  if (name == "openssl") return Backend::kOpenSsl;
  if (name == "gnutls") return Backend::kGnuTls;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unknown TLS stack '{}': expected \"openssl\" or \"gnutls\"", name));
}

std::string_view backend_name(Backend backend) {
  return backend == Backend::kOpenSsl ? "openssl" : "gnutls";
}

Result<Version> parse_version(std::string_view text) {
  if (text == "1.2" || text == "TLSv1.2") return Version::kTls12;
  if (text == "1.3" || text == "TLSv1.3") return Version::kTls13;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unsupported TLS version '{}': expected 1.2 or 1.3", text));
}

std::string_view version_name(Version version) {
  return version == Version::kTls12 ? "TLSv1.2" : "TLSv1.3";
}

// --- TicketKeys -----------------------------------------------------------------------------

namespace {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    ML_CHECK_MSG(r > 0, "getrandom failed");
    got += static_cast<size_t>(r);
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace

std::shared_ptr<TicketKeys> TicketKeys::generate() {
  auto keys = std::make_shared<TicketKeys>();
  keys->keys_.push_back(random_bytes(kKeySize));
  return keys;
}

Result<std::shared_ptr<TicketKeys>> TicketKeys::import_keys(std::string_view text) {
  auto keys = std::make_shared<TicketKeys>();
  while (!text.empty() && keys->keys_.size() < kMaxKeys) {
    const size_t colon = text.find(':');
    auto raw = from_hex(text.substr(0, colon));
    if (!raw || raw->size() != kKeySize) {
      return Error(ErrorCode::kInvalidArgument, "ticket keys: malformed key");
    }
    keys->keys_.push_back(std::move(*raw));
    text = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  }
  if (keys->keys_.empty()) return Error(ErrorCode::kInvalidArgument, "ticket keys: none");
  return keys;
}

std::string TicketKeys::export_keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const std::string& key : keys_) {
    if (!out.empty()) out.push_back(':');
    out += to_hex(key);
  }
  return out;
}

void TicketKeys::rotate() {
  std::string fresh = random_bytes(kKeySize);
  std::lock_guard<std::mutex> lock(mutex_);
  keys_.insert(keys_.begin(), std::move(fresh));
  if (keys_.size() > kMaxKeys) keys_.resize(kMaxKeys);
}

std::vector<std::string> TicketKeys::keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return keys_;
}

std::optional<std::string> TicketKeys::find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& key : keys_) {
    if (std::string_view(key).substr(0, 16) == name) return key;
  }
  return std::nullopt;
}

std::string TicketKeys::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return keys_.front();
}

// --- shared backend helpers ------------------------------------------------------------------

namespace detail {

bool name_matches(std::string_view pattern, std::string_view name) {
  auto lower_equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  };
  if (pattern.substr(0, 2) == "*.") {
    const size_t dot = name.find('.');
    return dot != std::string_view::npos && dot > 0 &&
           lower_equal(pattern.substr(1), name.substr(dot));
  }
  return lower_equal(pattern, name);
}

Result<std::string> resumption_policy(const ServerConfig& config) {
  std::string policy = "monolake-resumption-v1;require=";
  policy += config.require_client_certificate ? "1" : "0";
  policy += ";ca=";
  if (!config.client_ca_file.empty()) {
    auto ca = read_file(config.client_ca_file, "tls: client CA");
    if (!ca) return std::move(ca).error();
    policy += *ca;
  }
  return policy;
}

Result<std::string> read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::from_errno(errno, fmt::format("{} {}: cannot open", what, path));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace detail

}  // namespace monolake::tls
