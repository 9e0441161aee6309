// Typed parameter declarations: a kind's parameters are the fields of one config struct, each
// declared once with its name, range, unit and meaning (gem5's Param.* and DRAMSys's typed config
// structs are the model: one declaration serves reading, writing, validation and documentation).
//
//   struct NoisyConfig { double sigma_add = 0, sigma_mul = 0; };
//   ParamTable<NoisyConfig> table;
//   table.number("sigma_add", &NoisyConfig::sigma_add, 0, 1e10, "", "σ of additive noise (source)");
//
// The defaults are the struct's own: `specs(defaults)` documents and validates against them (a
// kind that shares a struct with another passes its own defaults), `read(params)` builds the
// struct from validated values, so model code reads typed fields and a renamed parameter is a
// compile error, not a run-time one.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "models/params.h"

namespace faultline::models {

template <class Config>
class ParamTable {
 public:
  // A real-valued field (double or float) in [min, max].
  template <class V>
  ParamTable& number(std::string name, V Config::*field, double min, double max, std::string unit, std::string doc) {
    static_assert(std::is_floating_point_v<V>, "number() takes a float or double field");
    return add({std::move(name), ParamSpec::Type::Number, 0, min, max, {}, std::move(unit), std::move(doc)},
               [field](const Config& c) { return static_cast<double>(c.*field); },
               [field](Config& c, const Params& p, const std::string& n) { c.*field = static_cast<V>(p.number(n)); });
  }
  // Element `index` of a real-valued array field (a table given entry by entry).
  template <class V, std::size_t N>
  ParamTable& number(std::string name, std::array<V, N> Config::*field, std::size_t index, double min, double max, std::string unit,
                     std::string doc) {
    static_assert(std::is_floating_point_v<V>, "number() takes a float or double field");
    if (index >= N) throw std::logic_error("parameter '" + name + "': index past the array");
    return add({std::move(name), ParamSpec::Type::Number, 0, min, max, {}, std::move(unit), std::move(doc)},
               [field, index](const Config& c) { return static_cast<double>((c.*field)[index]); },
               [field, index](Config& c, const Params& p, const std::string& n) { (c.*field)[index] = static_cast<V>(p.number(n)); });
  }
  // An integer field (int or std::int64_t) in [min, max].
  template <class V>
  ParamTable& integer(std::string name, V Config::*field, double min, double max, std::string unit, std::string doc) {
    static_assert(std::is_integral_v<V> && !std::is_same_v<V, bool>, "integer() takes an integer field");
    return add({std::move(name), ParamSpec::Type::Integer, 0, min, max, {}, std::move(unit), std::move(doc)},
               [field](const Config& c) { return static_cast<double>(c.*field); },
               [field](Config& c, const Params& p, const std::string& n) { c.*field = static_cast<V>(std::llround(p.number(n))); });
  }
  ParamTable& flag(std::string name, bool Config::*field, std::string doc) {
    return add({std::move(name), ParamSpec::Type::Bool, 0, 0, 1, {}, "", std::move(doc)},
               [field](const Config& c) { return c.*field ? 1.0 : 0.0; },
               [field](Config& c, const Params& p, const std::string& n) { c.*field = p.flag(n); });
  }
  // One of `choices`; the struct's default must be one of them (it is listed first in the docs).
  ParamTable& choice(std::string name, std::string Config::*field, std::vector<std::string> choices, std::string doc) {
    Field f;
    f.spec = {std::move(name), ParamSpec::Type::Choice, 0, 0, 0, std::move(choices), "", std::move(doc)};
    f.fill_default = [field](const Config& c, ParamSpec& s) {
      auto it = std::find(s.choices.begin(), s.choices.end(), c.*field);
      if (it == s.choices.end()) throw std::logic_error("parameter '" + s.name + "': default '" + c.*field + "' is not a choice");
      std::rotate(s.choices.begin(), it, it + 1);  // the default first, the others in declared order
    };
    f.read = [field](Config& c, const Params& p, const std::string& n) { c.*field = p.choice(n); };
    fields_.push_back(std::move(f));
    return *this;
  }
  // Every field of `sub` (a struct shared by several kinds, e.g. a device model) as fields of
  // this struct's member `member`.
  template <class Sub>
  ParamTable& nest(Sub Config::*member, const ParamTable<Sub>& sub) {
    for (const auto& s : sub.fields_) {
      Field f;
      f.spec = s.spec;
      f.fill_default = [member, fill = s.fill_default](const Config& c, ParamSpec& spec) { fill(c.*member, spec); };
      f.read = [member, read = s.read](Config& c, const Params& p, const std::string& n) { read(c.*member, p, n); };
      fields_.push_back(std::move(f));
    }
    return *this;
  }

  // The declarations with `defaults` as their default values (validation, `hw kinds`, docs).
  std::vector<ParamSpec> specs(const Config& defaults = Config{}) const {
    std::vector<ParamSpec> out;
    for (const auto& f : fields_) {
      ParamSpec s = f.spec;
      f.fill_default(defaults, s);
      out.push_back(std::move(s));
    }
    return out;
  }
  // The struct from validated values (every declared parameter present, see hwcfg). Fields the
  // table does not declare keep `base`'s values.
  Config read(const Params& params, Config base = Config{}) const {
    for (const auto& f : fields_) f.read(base, params, f.spec.name);
    return base;
  }

 private:
  template <class>
  friend class ParamTable;

  struct Field {
    ParamSpec spec;
    std::function<void(const Config&, ParamSpec&)> fill_default;
    std::function<void(Config&, const Params&, const std::string&)> read;
  };

  ParamTable& add(ParamSpec spec, std::function<double(const Config&)> get,
                  std::function<void(Config&, const Params&, const std::string&)> read) {
    if (spec.type != ParamSpec::Type::Bool && spec.min > spec.max) throw std::logic_error("parameter '" + spec.name + "': empty range");
    Field f;
    f.spec = std::move(spec);
    f.fill_default = [get = std::move(get)](const Config& c, ParamSpec& s) {
      s.fallback = get(c);
      if (s.type != ParamSpec::Type::Bool && (s.fallback < s.min || s.fallback > s.max))
        throw std::logic_error("parameter '" + s.name + "': default outside its range");
    };
    f.read = std::move(read);
    fields_.push_back(std::move(f));
    return *this;
  }

  std::vector<Field> fields_;
};

}  // namespace faultline::models
