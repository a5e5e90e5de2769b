#include "proxy/params/params.h"

namespace monolake::proxy {

std::string_view param_type_phrase(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "a string";
    case ParamType::kInteger:
      return "an integer";
    case ParamType::kBoolean:
      return "a boolean";
    case ParamType::kStringList:
      return "an array of strings";
    case ParamType::kStringMap:
      return "a table of strings";
  }
  return "a value";
}

namespace {

// Keys with a meaning of their own in a filter's table.
bool reserved(std::string_view key) { return key == "name" || key == "id"; }

bool same_type(ParamType type, const ParamValue& value) {
  switch (type) {
    case ParamType::kString:
      return std::holds_alternative<std::string>(value);
    case ParamType::kInteger:
      return std::holds_alternative<int64_t>(value);
    case ParamType::kBoolean:
      return std::holds_alternative<bool>(value);
    case ParamType::kStringList:
      return std::holds_alternative<std::vector<std::string>>(value);
    case ParamType::kStringMap:
      return std::holds_alternative<StringMap>(value);
  }
  return false;
}

}  // namespace

ParamSchema::Key ParamSchema::Key::required() {
  spec().required = true;
  return *this;
}

ParamSchema::Key ParamSchema::Key::range(int64_t min, int64_t max) {
  spec().min = min;
  spec().max = max;
  return *this;
}

ParamSchema::Key ParamSchema::Key::doc(std::string text) {
  spec().doc = std::move(text);
  return *this;
}

ParamSchema::Key ParamSchema::Key::set_default(ParamValue value) {
  spec().default_value = std::move(value);
  return *this;
}

ParamSchema::Key ParamSchema::add(std::string key, ParamType type) {
  ParamSpec spec;
  spec.key = std::move(key);
  spec.type = type;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].key == spec.key) {
      specs_[i] = std::move(spec);
      return Key(this, i);
    }
  }
  specs_.push_back(std::move(spec));
  return Key(this, specs_.size() - 1);
}

std::string ParamSchema::check() const {
  for (const ParamSpec& spec : specs_) {
    if (reserved(spec.key)) return "key '" + spec.key + "' is reserved (name, id)";
    if (spec.key.empty()) return "a key with no name";
    if (!spec.default_value) continue;
    if (spec.required) return "key '" + spec.key + "' is required and has a default";
    if (!same_type(spec.type, *spec.default_value)) {
      return "key '" + spec.key + "': the default is not " +
             std::string(param_type_phrase(spec.type));
    }
    if (const int64_t* n = std::get_if<int64_t>(&*spec.default_value);
        n && (*n < spec.min || *n > spec.max)) {
      return "key '" + spec.key + "': the default is outside its range";
    }
  }
  return "";
}

const ParamSpec* ParamSchema::find(std::string_view key) const {
  for (const ParamSpec& spec : specs_) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

const std::string& Params::string(std::string_view key) const {
  static const std::string empty;
  const std::string* value = get<std::string>(key);
  return value ? *value : empty;
}

int64_t Params::integer(std::string_view key) const {
  const int64_t* value = get<int64_t>(key);
  return value ? *value : 0;
}

bool Params::boolean(std::string_view key) const {
  const bool* value = get<bool>(key);
  return value ? *value : false;
}

const std::vector<std::string>& Params::string_list(std::string_view key) const {
  static const std::vector<std::string> empty;
  const std::vector<std::string>* value = get<std::vector<std::string>>(key);
  return value ? *value : empty;
}

const StringMap& Params::string_map(std::string_view key) const {
  static const StringMap empty;
  const StringMap* value = get<StringMap>(key);
  return value ? *value : empty;
}

}  // namespace monolake::proxy
