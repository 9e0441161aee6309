#include "apps/levels.h"

#include <map>

#include "models/error.h"

namespace faultline::app {

std::unique_ptr<sim::CycleSimulation> attach_cycle_level(std::vector<nn::HardwareConfig>& configs, nn::Graph& graph,
                                                         const std::string& vcd_path) {
  std::vector<sim::UnitSpec> specs;
  std::vector<std::map<std::string, std::size_t>> index(configs.size());  // unit name → spec, per config
  for (std::size_t c = 0; c < configs.size(); ++c) {
    const nn::HardwareConfig& config = configs[c];
    for (nn::LinearLayer* layer : graph.layers()) {
      const nn::HardwareUnit* unit = config.unit_for(*layer);
      if (unit == nullptr) continue;  // unmapped layers run on the host, untimed
      if (!sim::has_cycle_model(unit->kind))
        throw Error(config.source + ": unit '" + unit->name + "' (kind " + unit->kind + ", layer '" + layer->name() +
                    "') has no cycle-level model; --level cycle supports analog_crossbar, analog_mac and rram_memory");
      auto it = index[c].find(unit->name);
      if (it == index[c].end()) {
        sim::UnitSpec spec;
        spec.name = config.name + "." + unit->name;
        spec.kind = unit->kind;
        spec.params = unit->params;
        spec.timing = unit->timing;
        spec.energy = unit->energy;
        it = index[c].emplace(unit->name, specs.size()).first;
        specs.push_back(std::move(spec));
      }
      for (const auto& block : layer->blocks()) specs[it->second].block_shapes.emplace_back(block.weights.cols(), block.weights.rows());
    }
  }
  auto simulation = std::make_unique<sim::CycleSimulation>(std::move(specs), vcd_path);
  sim::CycleSimulation* s = simulation.get();
  for (std::size_t c = 0; c < configs.size(); ++c) {
    const auto units = index[c];
    configs[c].wrap = [s, units](const nn::HardwareUnit& unit, std::unique_ptr<models::Substrate> functional) {
      return s->wrap(units.at(unit.name), std::move(functional));
    };
  }
  return simulation;
}

}  // namespace faultline::app
