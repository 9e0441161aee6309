// The behavioural twin of an RTL matrix-vector unit: what a user writes so that Faultline can
// check their RTL (rtl/README.md, "Twins"). A twin file (module.txt: `twin = my_twin.cpp`)
// includes this header and defines `faultline_rtl_twin`; the build compiles it under a name of the
// module's own, so every module can have one. The twin is called once per input vector with the
// weight matrix and register values in force for that vector (the contract's rules on weight
// rows and register writes decide which), and must give the result lanes the RTL gives.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace faultline::rtl {

struct RegisterValue {
  std::string name;  // as declared in module.txt's config
  long long value;   // in [0, 2^width)
};

struct TwinUnit {
  int outputs = 0;                     // N
  int inputs = 0;                      // M
  const std::int8_t* weights = nullptr;  // W[i][j] at weights[i * inputs + j]
  const std::vector<RegisterValue>* registers = nullptr;

  // The value of register `name`; throws std::invalid_argument for a register the module does
  // not declare (a twin reading an undeclared register is a bug in the twin).
  long long reg(const std::string& name) const {
    if (registers != nullptr)
      for (const auto& r : *registers)
        if (r.name == name) return r.value;
    throw std::invalid_argument("the twin reads register '" + name + "', which module.txt's config does not declare");
  }
};

}  // namespace faultline::rtl

// y[0..outputs) for the input vector x[0..inputs) (lanes as in rtl/README.md).
void faultline_rtl_twin(const faultline::rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y);
