#include "models/params.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace faultline::models {

double Params::number(const std::string& name) const {
  auto it = numbers_.find(name);
  if (it == numbers_.end()) throw std::logic_error("parameter '" + name + "' was not declared");
  return it->second;
}

int Params::integer(const std::string& name) const { return static_cast<int>(std::lround(number(name))); }
bool Params::flag(const std::string& name) const { return number(name) != 0.0; }

const std::string& Params::choice(const std::string& name) const {
  auto it = choices_.find(name);
  if (it == choices_.end()) throw std::logic_error("choice parameter '" + name + "' was not declared");
  return it->second;
}

Params default_params(const std::vector<ParamSpec>& specs) {
  Params p;
  for (const auto& s : specs) {
    if (s.type == ParamSpec::Type::Choice) p.set_choice(s.name, s.choices.at(0));
    else p.set_number(s.name, s.fallback);
  }
  return p;
}

std::string check_number(const ParamSpec& spec, double value) {
  if (!std::isfinite(value)) return "must be a finite number";
  if (spec.type == ParamSpec::Type::Integer && value != std::floor(value)) return "must be an integer";
  if (spec.type == ParamSpec::Type::Bool) return (value == 0 || value == 1) ? "" : "must be true or false";
  if (value < spec.min || value > spec.max) {
    std::ostringstream s;
    s << "must be in [" << spec.min << ", " << spec.max << "]";
    return s.str();
  }
  return "";
}

}  // namespace faultline::models
