#include "sim/unit_system.h"

#include <cctype>
#include <cmath>

#include "models/error.h"
#include "models/named_registry.h"

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

namespace {
models::NamedRegistry<CycleModel>& cycle_models() {
  static auto* registry = new models::NamedRegistry<CycleModel>("cycle model of");
  return *registry;
}
}  // namespace

void register_cycle_model(const std::string& kind, CycleModel model) { cycle_models().add(kind, std::move(model)); }
const CycleModel* find_cycle_model(const std::string& kind) { return cycle_models().find(kind); }
std::vector<std::string> cycle_model_kinds() { return cycle_models().names(); }

bool has_cycle_model(const std::string& kind) { return find_cycle_model(kind) != nullptr; }

std::unique_ptr<UnitSystem> make_unit_system(const UnitSpec& spec) {
  // SystemC names may not contain the hierarchy separator.
  std::string name = spec.name;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  const CycleModel* model = find_cycle_model(spec.kind);
  if (model == nullptr) {
    std::string known;
    for (const auto& k : cycle_model_kinds()) known += (known.empty() ? "" : ", ") + k;
    throw Error("unit " + spec.name + ": kind '" + spec.kind + "' has no cycle-level model (cycle models: " + known + ")");
  }
  return model->create(name.c_str(), spec);
}

}  // namespace faultline::sim
