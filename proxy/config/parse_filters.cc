// Filters (`[[servers.X.filters]]`, a route's `filters`) and the keys of user server kinds:
// tables checked against the schemas a user binary registered (proxy/params), with the same
// errors as every built-in key.
#include <fmt/format.h>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config::internal {

namespace {

std::string joined(const std::vector<std::string>& names) {
  if (names.empty()) return "none are registered";
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return "expected one of: " + out;
}

// The value of `node` as `spec` declares it, or an error message.
Result<ParamValue> param_value(const ParamSpec& spec, const toml::node& node) {
  auto wrong = [&] {
    return Error(
        ErrorCode::kInvalidArgument,
        fmt::format("expected {}, got {}", param_type_phrase(spec.type), type_phrase(node.type())));
  };
  switch (spec.type) {
    case ParamType::kString:
      if (const auto* s = node.as_string()) return ParamValue(s->get());
      return wrong();
    case ParamType::kBoolean:
      if (const auto* b = node.as_boolean()) return ParamValue(b->get());
      return wrong();
    case ParamType::kInteger: {
      const auto* i = node.as_integer();
      if (!i) return wrong();
      const int64_t n = i->get();
      if (n < spec.min) {
        return Error(ErrorCode::kInvalidArgument,
                     fmt::format("must be at least {}, got {}", spec.min, n));
      }
      if (n > spec.max) {
        return Error(ErrorCode::kInvalidArgument,
                     fmt::format("must be at most {}, got {}", spec.max, n));
      }
      return ParamValue(n);
    }
    case ParamType::kStringList: {
      const auto* list = node.as_array();
      if (!list) return wrong();
      std::vector<std::string> out;
      for (size_t i = 0; i < list->size(); ++i) {
        const auto* s = list->get(i)->as_string();
        if (!s) {
          return Error(
              ErrorCode::kInvalidArgument,
              fmt::format("[{}]: expected a string, got {}", i, type_phrase(list->get(i)->type())));
        }
        out.push_back(s->get());
      }
      return ParamValue(std::move(out));
    }
    case ParamType::kStringMap: {
      const auto* table = node.as_table();
      if (!table) return wrong();
      StringMap out;
      for (auto&& [key, value] : *table) {
        const auto* s = value.as_string();
        if (!s) {
          return Error(
              ErrorCode::kInvalidArgument,
              fmt::format("{}: expected a string, got {}", key.str(), type_phrase(value.type())));
        }
        out.emplace_back(std::string(key.str()), s->get());
      }
      return ParamValue(std::move(out));
    }
  }
  return wrong();
}

}  // namespace

void Parser::parse_params(const toml::table& table, const std::string& path,
                          const ParamSchema& schema,
                          const std::vector<std::string_view>& other_keys, Params& out,
                          bool report_unknown) {
  for (auto&& [key, node] : table) {
    const std::string_view name = key.str();
    bool other = false;
    for (std::string_view k : other_keys) other = other || k == name;
    if (other) continue;
    const ParamSpec* spec = schema.find(name);
    if (!spec) {
      if (!report_unknown) continue;
      std::string expected;
      for (std::string_view k : other_keys)
        expected += (expected.empty() ? "" : ", ") + std::string(k);
      for (const ParamSpec& s : schema.specs()) expected += (expected.empty() ? "" : ", ") + s.key;
      errors_.add(child(path, name), fmt::format("unknown key (expected one of: {})", expected));
      continue;
    }
    Result<ParamValue> value = param_value(*spec, node);
    if (!value) {
      // A list or table element names itself first ("[2]: expected a string..."): no ": ".
      const std::string& why = value.error().message();
      if (!why.empty() && why.front() == '[') {
        errors_.add(child(path, name) + why.substr(0, why.find(':')),
                    why.substr(why.find(':') + 2));
      } else {
        errors_.add(child(path, name), why);
      }
      continue;
    }
    out.set(std::string(name), std::move(*value));
  }
  for (const ParamSpec& spec : schema.specs()) {
    if (out.has(spec.key) || table.get(spec.key)) continue;
    if (spec.required) {
      errors_.add(child(path, spec.key), "missing (required)");
    } else if (spec.default_value) {
      out.set(spec.key, *spec.default_value);
    }
  }
}

void Parser::parse_filters(const toml::array& list, const std::string& path,
                           std::vector<FilterConfig>& out, bool connection) {
  const char* what = connection ? "connection filter" : "filter";
  std::map<std::string, size_t> ids;  // explicit id -> index
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = element(path, i);
    const toml::table* table = list.get(i)->as_table();
    if (!table) {
      errors_.add(item_path, wrong_type(toml::node_type::table, *list.get(i)));
      continue;
    }
    FilterConfig filter;
    const toml::node* name = table->get("name");
    if (!name) {
      errors_.add(child(item_path, "name"),
                  fmt::format("missing (required: the {}'s registered name)", what));
      continue;
    }
    if (!name->as_string()) {
      errors_.add(child(item_path, "name"), wrong_type(toml::node_type::string, *name));
      continue;
    }
    filter.name = name->as_string()->get();
    const ParamSchema* schema =
        connection ? catalog_.connection_filter(filter.name) : catalog_.filter(filter.name);
    if (!schema) {
      errors_.add(child(item_path, "name"),
                  fmt::format("unknown {} '{}' ({})", what, filter.name,
                              joined(connection ? catalog_.connection_filter_names()
                                                : catalog_.filter_names())));
      continue;
    }
    if (const toml::node* id = table->get("id")) {
      const auto* text = id->as_string();
      if (!text) {
        errors_.add(child(item_path, "id"), wrong_type(toml::node_type::string, *id));
      } else if (text->get().empty() || text->get().find_first_of("/[]#") != std::string::npos) {
        errors_.add(child(item_path, "id"), "an id is non-empty and has no '/', '[', ']' or '#'");
      } else if (auto [it, added] = ids.emplace(text->get(), i); !added) {
        errors_.add(child(item_path, "id"), fmt::format("duplicate id '{}' (also {})", text->get(),
                                                        element(path, it->second)));
      } else {
        filter.id = text->get();
      }
    }
    parse_params(*table, item_path, *schema, {"name", "id"}, filter.params);
    out.push_back(std::move(filter));
  }
}

}  // namespace monolake::proxy::config::internal
