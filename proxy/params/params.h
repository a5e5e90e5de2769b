// Parameters of a layer (a filter in `[[servers.<key>.filters]]`, a route's `filters`) or of a
// user server kind: the schema its author declares, and the values a configuration gives.
//
//   ParamSchema schema;
//   schema.string_list("keys").required().doc("the API keys accepted");
//   schema.string("header").default_value("x-api-key");
//   schema.integer("status").default_value(401).range(400, 599);
//   ...
//   const Params& p = ...;          // checked against `schema` by the configuration parser
//   p.string("header");             // "x-api-key" unless the file says otherwise
//
// The configuration parser (proxy/config) checks a filter's table against its schema with the
// same "FILE: KEY.PATH: reason" errors as every other key: unknown keys, wrong types, values out
// of range and missing required keys are errors. So a layer's factory reads values that are
// there and of the declared type; no TOML type reaches it. Plain values, copied freely.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace monolake::proxy {

enum class ParamType {
  kString,
  kInteger,
  kBoolean,
  kStringList,  // ["a", "b"]
  kStringMap,   // { name = "value", ... }, in the file's order
};
std::string_view param_type_phrase(ParamType type);  // "a string", "an array of strings"...

using StringMap = std::vector<std::pair<std::string, std::string>>;
using ParamValue = std::variant<std::string, int64_t, bool, std::vector<std::string>, StringMap>;

// One key of a schema. A key with a default is always present in Params; a required one must
// be in the file; any other may be absent (Params::has).
struct ParamSpec {
  std::string key;
  ParamType type = ParamType::kString;
  bool required = false;
  std::optional<ParamValue> default_value;
  int64_t min = std::numeric_limits<int64_t>::min();  // integers only
  int64_t max = std::numeric_limits<int64_t>::max();
  std::string doc;  // one line, for --help-like listings and docs
};

class ParamSchema {
 public:
  // One declared key, to refine: schema.integer("status").default_value(401).range(400, 599).
  class Key {
   public:
    Key required();
    Key range(int64_t min, int64_t max);  // integers only
    Key doc(std::string text);
    // The value used when the file does not give the key. Of the key's type (an integer for an
    // integer key...); check() reports one that is not.
    template <class T>
    Key default_value(T value) {
      if constexpr (std::is_same_v<T, bool>) {
        return set_default(ParamValue(value));
      } else if constexpr (std::is_integral_v<T>) {
        return set_default(ParamValue(static_cast<int64_t>(value)));
      } else if constexpr (std::is_convertible_v<T, std::string>) {
        return set_default(ParamValue(std::string(value)));
      } else {
        return set_default(ParamValue(std::move(value)));
      }
    }

   private:
    friend class ParamSchema;
    Key(ParamSchema* schema, size_t index) : schema_(schema), index_(index) {}
    Key set_default(ParamValue value);
    ParamSpec& spec() const { return schema_->specs_[index_]; }
    ParamSchema* schema_;
    size_t index_;
  };

  // Declares `key` (declaring it again replaces the earlier declaration).
  Key string(std::string key) { return add(std::move(key), ParamType::kString); }
  Key integer(std::string key) { return add(std::move(key), ParamType::kInteger); }
  Key boolean(std::string key) { return add(std::move(key), ParamType::kBoolean); }
  Key string_list(std::string key) { return add(std::move(key), ParamType::kStringList); }
  Key string_map(std::string key) { return add(std::move(key), ParamType::kStringMap); }

  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec* find(std::string_view key) const;
  // "" when the schema is sound; else what is wrong (a default of the wrong type, a default
  // outside the range, a required key with a default, a reserved key name: name, id).
  std::string check() const;

 private:
  Key add(std::string key, ParamType type);
  std::vector<ParamSpec> specs_;
};

// The values of one filter's (or server kind's) keys, with the schema's defaults filled in.
// A getter for a key that is absent, or of another type, returns an empty value (the schema
// rules that out for required and defaulted keys).
class Params {
 public:
  void set(std::string key, ParamValue value) { values_[std::move(key)] = std::move(value); }
  bool has(std::string_view key) const { return values_.find(key) != values_.end(); }

  const std::string& string(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  bool boolean(std::string_view key) const;
  const std::vector<std::string>& string_list(std::string_view key) const;
  const StringMap& string_map(std::string_view key) const;

  const std::map<std::string, ParamValue, std::less<>>& values() const { return values_; }
  bool operator==(const Params& other) const { return values_ == other.values_; }

 private:
  template <class T>
  const T* get(std::string_view key) const {
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : std::get_if<T>(&it->second);
  }
  std::map<std::string, ParamValue, std::less<>> values_;
};

// What a configuration may name beyond the built-ins: filters (`[[servers.X.filters]]`, a
// route's `filters`) and server kinds (`proxy_type = "<name>"`), each with its schema. The
// framework's Registry fills one in; the configuration parser checks files against it.
class Catalog {
 public:
  void add_filter(std::string name, ParamSchema schema) {
    filters_[std::move(name)] = std::move(schema);
  }
  void add_server_kind(std::string name, ParamSchema schema) {
    server_kinds_[std::move(name)] = std::move(schema);
  }
  void add_connection_filter(std::string name, ParamSchema schema) {
    connection_filters_[std::move(name)] = std::move(schema);
  }
  const ParamSchema* filter(std::string_view name) const { return find(filters_, name); }
  const ParamSchema* server_kind(std::string_view name) const { return find(server_kinds_, name); }
  const ParamSchema* connection_filter(std::string_view name) const {
    return find(connection_filters_, name);
  }
  std::vector<std::string> filter_names() const { return names(filters_); }
  std::vector<std::string> server_kind_names() const { return names(server_kinds_); }
  std::vector<std::string> connection_filter_names() const { return names(connection_filters_); }

 private:
  using Schemas = std::map<std::string, ParamSchema, std::less<>>;
  static const ParamSchema* find(const Schemas& schemas, std::string_view name) {
    auto it = schemas.find(name);
    return it == schemas.end() ? nullptr : &it->second;
  }
  static std::vector<std::string> names(const Schemas& schemas) {
    std::vector<std::string> out;
    for (const auto& [name, schema] : schemas) out.push_back(name);
    return out;
  }
  Schemas filters_;
  Schemas server_kinds_;
  Schemas connection_filters_;
};

}  // namespace monolake::proxy
