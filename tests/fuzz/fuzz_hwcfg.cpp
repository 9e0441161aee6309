// libFuzzer target: the hardware-description loader (hwcfg/hardware_config.h). faultline::Error
// is the answer to bad input; anything else is a bug. A description that loads must write out
// (to_yaml) as a description that loads again with the same units.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hwcfg/hardware_config.h"
#include "models/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using faultline::hwcfg::HardwareConfig;
  HardwareConfig config;
  try {
    config = faultline::hwcfg::parse_hardware_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const faultline::Error&) {
    return 0;
  }
  const HardwareConfig again = faultline::hwcfg::parse_hardware_config(config.to_yaml(), "fuzz-roundtrip.yaml");
  if (again.units.size() != config.units.size() || again.mapping.size() != config.mapping.size()) std::abort();
  for (std::size_t k = 0; k < config.units.size(); ++k)
    if (again.units[k].kind != config.units[k].kind || again.units[k].name != config.units[k].name) std::abort();
  return 0;
}
