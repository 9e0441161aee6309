#include "sim/unit_system.h"

#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>

#include "models/error.h"

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
std::map<std::string, CycleModel>& cycle_models() {
  static auto* models = new std::map<std::string, CycleModel>;  // filled from static initializers; never destroyed
  return *models;
}
std::mutex cycle_models_mutex;
}  // namespace

void register_cycle_model(const std::string& kind, CycleModel model) {
  std::lock_guard<std::mutex> lock(cycle_models_mutex);
  if (!cycle_models().emplace(kind, std::move(model)).second) throw std::logic_error("cycle model of '" + kind + "' registered twice");
}

const CycleModel* find_cycle_model(const std::string& kind) {
  std::lock_guard<std::mutex> lock(cycle_models_mutex);
  auto it = cycle_models().find(kind);
  return it == cycle_models().end() ? nullptr : &it->second;
}

std::vector<std::string> cycle_model_kinds() {
  std::lock_guard<std::mutex> lock(cycle_models_mutex);
  std::vector<std::string> kinds;
  for (const auto& entry : cycle_models()) kinds.push_back(entry.first);
  return kinds;
}

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
