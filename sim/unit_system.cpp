#include "sim/unit_system.h"

#include <cmath>

#include "models/error.h"
#include "sim/analog_array.h"
#include "sim/memory_mac_system.h"

namespace faultline::sim {

UnitSystem::UnitSystem(const sc_core::sc_module_name& name, double clock_mhz)
    : sc_module(name), busy("busy"), current_layer("layer"), energy_pj("energy_pj"), macs("macs"), clock_mhz_(clock_mhz),
      // The period in whole picoseconds (SystemC's default resolution); time_ns is reported
      // from the exact clock, cycles from the simulated time.
      period_(std::max(1.0, std::round(1e6 / clock_mhz)), sc_core::SC_PS) {}

void UnitSystem::trace(sc_core::sc_trace_file* file) const {
  sc_core::sc_trace(file, busy, busy.name());
  sc_core::sc_trace(file, current_layer, current_layer.name());
  sc_core::sc_trace(file, energy_pj, energy_pj.name());
  sc_core::sc_trace(file, macs, macs.name());
}

bool has_cycle_model(const std::string& kind) {
  return kind == "analog_crossbar" || kind == "analog_mac" || kind == "rram_memory";
}

std::unique_ptr<UnitSystem> make_unit_system(const UnitSpec& spec) {
  // SystemC names may not contain the hierarchy separator.
  std::string name = spec.name;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  if (spec.kind == "analog_crossbar" || spec.kind == "analog_mac") return std::make_unique<AnalogArraySystem>(name.c_str(), spec);
  if (spec.kind == "rram_memory") return std::make_unique<MemoryMacSystem>(name.c_str(), spec);
  throw Error("unit " + spec.name + ": kind '" + spec.kind + "' has no cycle-level model (cycle models: analog_crossbar, analog_mac, rram_memory)");
}

}  // namespace faultline::sim
