// Reading a TOML document with errors collected as "FILE: KEY.PATH: reason": the error list,
// key-path helpers and TableReader, typed access to one table that reports unknown keys and
// wrong types. Private to //proxy/config (the only package that includes toml++).
#pragma once

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace monolake::proxy::config::internal {

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

inline bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "a.b", with TOML quoting for keys that need it: servers."my.server".
inline std::string child(std::string_view path, std::string_view key) {
  std::string part = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
  if (path.empty()) return part;
  return fmt::format("{}.{}", path, part);
}

inline std::string element(std::string_view path, size_t index) {
  return fmt::format("{}[{}]", path, index);
}

inline std::string_view type_phrase(toml::node_type type) {
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

inline std::string wrong_type(toml::node_type want, const toml::node& got) {
  return fmt::format("expected {}, got {}", type_phrase(want), type_phrase(got.type()));
}

// --- typed access to one table ----------------------------------------------------------------

// Reads the keys of one table. Keys not in `allowed` are reported at construction as unknown;
// a getter reports a wrong type and returns nothing (so the caller keeps its default).
class TableReader {
 public:
  TableReader(Errors& errors, const toml::table& table, std::string path,
              std::initializer_list<std::string_view> allowed)
      : TableReader(errors, table, std::move(path), std::vector<std::string_view>(allowed)) {}

  TableReader(Errors& errors, const toml::table& table, std::string path,
              const std::vector<std::string_view>& allowed)
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

  // An integer or a float, in [min, max] (rates: "0.5" a second is a rate too).
  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* node = get(key);
    if (!node) return std::nullopt;
    std::optional<double> value;
    if (const auto* i = node->as_integer()) value = static_cast<double>(i->get());
    if (const auto* f = node->as_floating_point()) value = f->get();
    if (!value) {
      errors_.add(path_of(key), fmt::format("expected a number, got {}", type_phrase(node->type())));
      return std::nullopt;
    }
    if (!(*value >= min && *value <= max)) {  // also refuses nan
      errors_.add(path_of(key), fmt::format("must be between {} and {}, got {}", min, max, *value));
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
  static std::string join(const std::vector<std::string_view>& names) {
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

}  // namespace monolake::proxy::config::internal
