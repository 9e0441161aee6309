#include "studies/hardware.h"

#include <fnmatch.h>

#include <algorithm>

#include "models/error.h"
#include "nn/evaluate.h"

namespace faultline::studies {

const hwcfg::HardwareUnit* unit_for(const hwcfg::HardwareConfig& config, const nn::LinearLayer& layer) {
  return config.unit_for(layer.name(), layer.op_type());
}

namespace {
ImplFunctional& rtl_impl_functional() {
  static ImplFunctional f;
  return f;
}
}  // namespace

void register_rtl_impl_functional(ImplFunctional functional) { rtl_impl_functional() = std::move(functional); }

void program(const hwcfg::HardwareConfig& config, nn::Graph& graph, const models::ProgramContext& context) {
  // A mapping entry that names no layer is a mistake in the description (a misspelt pattern
  // would otherwise run the whole model on ideal hardware under the hardware's name), as a noise
  // site that matches nothing is.
  for (std::size_t k = 0; k < config.mapping.size(); ++k) {
    const hwcfg::LayerMapping& m = config.mapping[k];
    bool used = false;
    for (const nn::LinearLayer* layer : graph.layers())
      used = used || ((m.op.empty() || m.op == layer->op_type()) && fnmatch(m.layers.c_str(), layer->name().c_str(), 0) == 0);
    if (!used)
      throw Error(config.source + ": mapping[" + std::to_string(k) + "] (layers '" + m.layers + "'" + (m.op.empty() ? "" : ", op " + m.op) +
                  ") matches no Conv, Gemm or MatMul layer of " + graph.source);
  }
  // A schedule for a layer the unit does not run is a mistake too (a misspelt layer name would
  // silently leave the layer on its default schedule).
  for (const hwcfg::HardwareUnit& unit : config.units)
    for (const auto& [name, knobs] : unit.schedule) {
      bool found = false;
      for (const nn::LinearLayer* layer : graph.layers()) {
        const hwcfg::HardwareUnit* u = unit_for(config, *layer);
        found = found || (layer->name() == name && u && u->name == unit.name);
      }
      if (!found)
        throw Error(unit.schedule_at + ": 'units." + unit.name + ".schedule." + name + "': " + graph.source + " has no Conv, Gemm or MatMul layer '" +
                    name + "' mapped to unit '" + unit.name + "'");
    }
  const ImplFunctional& rtl_functional = rtl_impl_functional();
  for (nn::LinearLayer* layer : graph.layers()) {
    const hwcfg::HardwareUnit* unit = unit_for(config, *layer);
    const bool rtl = unit && rtl_functional && unit->impl.rfind("rtl:", 0) == 0;
    try {
      if (unit && (config.wrap || rtl))
        layer->program(unit->kind, unit->params_for(layer->name()), context, [&](std::unique_ptr<models::Substrate> s) {
          if (rtl) s = rtl_functional(config, *unit, std::move(s));
          return config.wrap ? config.wrap(*unit, std::move(s)) : std::move(s);
        });
      else if (unit)
        layer->program(unit->kind, unit->params_for(layer->name()), context);
      else
        layer->program_exact(context);
    } catch (const UnsupportedError&) {
      throw;
    } catch (const Error& e) {
      // What the unit's parameters cannot do for this layer: name the description and the unit.
      if (!unit) throw;
      throw Error(config.source + ": unit '" + unit->name + "' (kind " + unit->kind + ") on layer '" + layer->name() + "': " + e.what());
    }
  }
  std::vector<nn::Graph::NoiseSite> sites;
  for (const hwcfg::NoiseSite& s : config.noise_sites) sites.push_back({s.nodes, s.op, s.sigma_add, s.sigma_mul});
  const std::vector<int> matched = graph.set_noise_sites(sites, context.seed, context.trial);
  for (std::size_t k = 0; k < matched.size(); ++k)
    if (matched[k] == 0)
      throw Error(config.source + ": noise[" + std::to_string(k) + "] (after '" + sites[k].nodes + "'" +
                  (sites[k].op.empty() ? "" : ", op " + sites[k].op) + ") matches no node of " + graph.source);
}

void calibrate(const hwcfg::HardwareConfig& config, nn::Graph& graph, const std::function<void(std::int64_t images)>& run) {
  std::int64_t images = 0;
  for (const nn::LinearLayer* layer : graph.layers()) {
    const hwcfg::HardwareUnit* unit = unit_for(config, *layer);
    const models::SubstrateKind* kind = unit ? models::find_substrate_kind(unit->kind) : nullptr;
    if (kind && kind->capabilities.calibration_images > 0 && !layer->calibrated())
      images = std::max<std::int64_t>(images, kind->capabilities.calibration_images);
  }
  if (images == 0) return;
  graph.set_noise_sites({}, 0, 0);
  for (nn::LinearLayer* layer : graph.layers()) {
    layer->program_exact({});
    layer->record_ranges(true);
  }
  try {
    run(images);
  } catch (...) {
    for (nn::LinearLayer* layer : graph.layers()) layer->record_ranges(false);
    throw;
  }
  for (nn::LinearLayer* layer : graph.layers()) layer->record_ranges(false);
}

void calibrate(const hwcfg::HardwareConfig& config, nn::Graph& graph, const nn::Dataset& data, int threads) {
  calibrate(config, graph, [&](std::int64_t images) {
    nn::EvalOptions options;
    options.limit = std::min(images, data.count);
    options.threads = threads;
    (void)nn::evaluate(graph, data, options);
  });
}

std::function<void(nn::Graph&, const models::ProgramContext&)> training_hardware(const hwcfg::HardwareConfig& config) {
  return [&config](nn::Graph& graph, const models::ProgramContext& context) { program(config, graph, context); };
}

}  // namespace faultline::studies
