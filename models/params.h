// Parameters of a hardware unit: each substrate kind declares its parameters (type, default,
// valid range, unit, meaning, source), the hardware description supplies values, and the kind's
// typed config struct is built from the validated values. models/ knows nothing of YAML.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace faultline::models {

struct ParamSpec {
  enum class Type { Number, Integer, Bool, Choice };
  std::string name;
  Type type = Type::Number;
  double fallback = 0;                 // default for Number/Integer/Bool (0/1)
  double min = 0, max = 0;             // valid closed range for Number/Integer
  std::vector<std::string> choices;    // for Choice; the first is the default
  std::string unit;                    // "µS", "s", "bits", "" ...
  std::string doc;                     // meaning, and the source of the default
};

// Validated values, every declared parameter present (defaults filled in).
class Params {
 public:
  double number(const std::string& name) const;
  int integer(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::string& choice(const std::string& name) const;

  void set_number(const std::string& name, double v) { numbers_[name] = v; }
  void set_choice(const std::string& name, const std::string& v) { choices_[name] = v; }
  const std::map<std::string, double>& numbers() const { return numbers_; }
  const std::map<std::string, std::string>& choices() const { return choices_; }

 private:
  std::map<std::string, double> numbers_;
  std::map<std::string, std::string> choices_;
};

// Params with every declared parameter at its default.
Params default_params(const std::vector<ParamSpec>& specs);

// Checks one value against its spec; returns "" or what is wrong ("must be in [1, 16]").
std::string check_number(const ParamSpec& spec, double value);

}  // namespace faultline::models
