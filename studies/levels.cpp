#include "studies/levels.h"

#include <map>

#include "models/error.h"
#include "studies/hardware.h"
#include "sim/rtl_unit.h"

namespace faultline::studies {
namespace {

// Points each config's units at the simulation's: index[c] maps config c's unit names to the
// simulation's unit numbers.
template <class Simulation>
void install_wraps(std::vector<hwcfg::HardwareConfig>& configs, const std::vector<std::map<std::string, std::size_t>>& index,
                   Simulation& simulation) {
  for (std::size_t c = 0; c < configs.size(); ++c)
    configs[c].wrap = [s = &simulation, units = index[c]](const hwcfg::HardwareUnit& unit, std::unique_ptr<models::Substrate> functional) {
      return s->wrap(units.at(unit.name), std::move(functional));
    };
}

}  // namespace

const sim::RtlModuleInfo& rtl_module_of(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit) {
  try {
    return sim::find_rtl_module(unit.impl.substr(4)).info;
  } catch (const Error& e) {
    throw Error((unit.impl_at.empty() ? config.source : unit.impl_at) + ": 'units." + unit.name + ".impl': " + e.what() +
                " (a module is built in by configuring with -DFAULTLINE_USER_RTL, rtl/README.md)");
  }
}

std::vector<rtl::RegisterValue> rtl_registers_of(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit,
                                                 const sim::RtlModuleInfo& info) {
  const std::string where = unit.registers_at.empty() ? config.source + ": unit '" + unit.name + "'" : unit.registers_at;
  return sim::rtl_register_values(info, unit.registers, where + ": 'units." + unit.name + ".registers'");
}

namespace {

// Runs `step`, prefixing a faultline::Error it throws with the hwcfg and the unit.
template <class Step>
auto in_unit(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit, Step&& step) {
  try {
    return step();
  } catch (const Error& e) {
    throw Error(config.source + ": unit '" + unit.name + "': " + e.what());
  }
}

const sim::RtlBinding& rtl_binding_of(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit) {
  const sim::RtlBinding* binding = sim::find_rtl_binding(unit.kind);
  if (binding == nullptr) throw Error(config.source + ": unit '" + unit.name + "': kind " + unit.kind + " has no RTL binding");
  return *binding;
}

// What check_rtl_units checks for one `impl: rtl:` unit; returns the register values it runs with.
std::vector<rtl::RegisterValue> checked_rtl_registers(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit) {
  const sim::RtlModuleInfo& info = rtl_module_of(config, unit);
  std::vector<rtl::RegisterValue> registers = rtl_registers_of(config, unit, info);
  const sim::RtlBinding& binding = rtl_binding_of(config, unit);
  in_unit(config, unit, [&] { binding.check(unit.params, info, registers); });
  return registers;
}

// The functional level of `impl: rtl:NAME` units (studies/hardware.h): through the kind's RTL
// binding, which puts the module's twin in where it computes something the parameters do not.
std::unique_ptr<models::Substrate> rtl_functional(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit,
                                                  std::unique_ptr<models::Substrate> functional) {
  const sim::RtlModuleInfo& info = rtl_module_of(config, unit);
  const std::vector<rtl::RegisterValue> registers = rtl_registers_of(config, unit, info);
  const sim::RtlBinding& binding = rtl_binding_of(config, unit);
  return in_unit(config, unit, [&] { return binding.functional(unit.params, info, registers, std::move(functional)); });
}
[[maybe_unused]] const bool rtl_functional_registered = (register_rtl_impl_functional(&rtl_functional), true);

}  // namespace

void check_rtl_units(const hwcfg::HardwareConfig& config) {
  for (const auto& unit : config.units)
    if (unit.impl.rfind("rtl:", 0) == 0) checked_rtl_registers(config, unit);
}

std::unique_ptr<sim::CycleSimulation> attach_cycle_level(std::vector<hwcfg::HardwareConfig>& configs, nn::Graph& graph,
                                                         const std::string& vcd_path) {
  std::vector<sim::UnitSpec> specs;
  std::vector<std::map<std::string, std::size_t>> index(configs.size());  // unit name → spec, per config
  for (std::size_t c = 0; c < configs.size(); ++c) {
    const hwcfg::HardwareConfig& config = configs[c];
    for (nn::LinearLayer* layer : graph.layers()) {
      const hwcfg::HardwareUnit* unit = config.unit_for(layer->name(), layer->op_type());
      if (unit == nullptr) continue;  // unmapped layers run on the host, untimed
      if (!sim::has_cycle_model(unit->kind)) {
        std::string known;
        for (const auto& k : sim::cycle_model_kinds()) known += (known.empty() ? "" : ", ") + k;
        throw Error(config.source + ": unit '" + unit->name + "' (kind " + unit->kind + ", layer '" + layer->name() +
                    "') has no cycle-level model; the cycle level supports " + known);
      }
      auto it = index[c].find(unit->name);
      if (it == index[c].end()) {
        sim::UnitSpec spec;
        spec.name = config.name + "." + unit->name;
        spec.kind = unit->kind;
        spec.params = unit->params;
        spec.timing = unit->timing;
        spec.schedule = unit->schedule;
        spec.energy = unit->energy;
        it = index[c].emplace(unit->name, specs.size()).first;
        specs.push_back(std::move(spec));
      }
      for (const auto& block : layer->blocks()) specs[it->second].block_shapes.emplace_back(block.weights.cols(), block.weights.rows());
    }
  }
  auto simulation = std::make_unique<sim::CycleSimulation>(std::move(specs), vcd_path);
  install_wraps(configs, index, *simulation);
  return simulation;
}

std::unique_ptr<sim::RtlSimulation> attach_rtl_level(std::vector<hwcfg::HardwareConfig>& configs, nn::Graph& graph,
                                                     const std::string& waveform, bool fst, bool check, sim::RtlEngine engine) {
  std::vector<sim::RtlUnitSpec> specs;
  std::vector<std::map<std::string, std::size_t>> index(configs.size());
  for (std::size_t c = 0; c < configs.size(); ++c) {
    const hwcfg::HardwareConfig& config = configs[c];
    for (nn::LinearLayer* layer : graph.layers()) {
      const hwcfg::HardwareUnit* unit = config.unit_for(layer->name(), layer->op_type());
      if (unit == nullptr || index[c].count(unit->name)) continue;
      if (unit->impl.rfind("rtl:", 0) != 0)
        throw Error(config.source + ": unit '" + unit->name + "' (layer '" + layer->name() +
                    "') names no RTL module; --level rtl needs 'impl: rtl:NAME' on every mapped unit (e.g. --hw int8_mac_array)");
      // Unknown modules and modules that cannot be run are reported before any work.
      const std::vector<rtl::RegisterValue> registers = checked_rtl_registers(config, *unit);
      index[c][unit->name] = specs.size();
      specs.push_back({config.name + "." + unit->name, unit->impl.substr(4), 1000.0, registers});
    }
  }
  auto simulation = std::make_unique<sim::RtlSimulation>(std::move(specs), waveform, fst, check, engine);
  install_wraps(configs, index, *simulation);
  return simulation;
}

}  // namespace faultline::studies
