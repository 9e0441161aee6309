// `faultline tune`: auto-tuning the schedules of the layers a vta unit runs, measured on the cycle
// level (studies/vta_tune.h); writes the results and a hardware description with the tuned
// schedules.
#include <fnmatch.h>

#include <filesystem>

#include "apps/cli.h"
#include "hwcfg/hardware_config.h"
#include "models/vta_substrate.h"
#include "studies/vta_tune.h"

namespace faultline::app {

int cmd_tune(const std::vector<std::string>& args) {
  std::string model, shapes, hw = "vta", unit, layers_glob = "*", strategy = "exhaustive", out, log;
  std::vector<std::string> sets;
  std::int64_t budget = 0;
  std::uint64_t seed = 1;
  int images = 1, plan_size = 64, threads = 1;
  po::options_description options("tune options");
  options.add_options()("help,h", "show this help");
  options.add_options()
      ("model", po::value(&model), "ONNX model whose layers mapped to the vta unit are tuned")
      ("shapes", po::value(&shapes), "instead of a model: a table of conv layers, one per line: NAME IN_CHANNELS HEIGHT WIDTH OUT_CHANNELS KERNEL STRIDE PAD")
      ("hw", po::value(&hw)->default_value(hw), "hardware description with a vta unit (its VTA configuration and timing are measured)")
      ("set", po::value(&sets), "override a hardware field (repeatable)")
      ("unit", po::value(&unit), "the vta unit to tune (default: the description's only vta unit)")
      ("layers", po::value(&layers_glob)->default_value(layers_glob), "tune only the layers whose names match this glob")
      ("strategy", po::value(&strategy)->default_value(strategy), "exhaustive, random, xgb (boosted-tree cost model) or validity (xgb started from valid configurations)")
      ("budget", po::value(&budget)->default_value(0), "trials per layer (0: the whole space)")
      ("seed", po::value(&seed)->default_value(1), "seed of the random and model-based strategies")
      ("images", po::value(&images)->default_value(1), "the batch the schedules are tuned for")
      ("plan-size", po::value(&plan_size)->default_value(64), "trials between refits of the cost model (AutoTVM XGBTuner plan_size 64)")
      ("out", po::value(&out)->required(), "output folder: tune.json, tuned.yaml (with --model), the measurement log")
      ("log", po::value(&log), "measurement log to resume from and add to (default OUT/measurements.log; share it between strategies and seeds)");
  add_common(options, &threads);
  po::variables_map vm;
  if (!parse("tune", "(--model MODEL.onnx | --shapes TABLE) [--hw vta] --out DIR [--strategy S] [--budget N] [--seed S]", options, args, vm)) return 0;
  check_threads(threads);
  if (model.empty() == shapes.empty()) throw Error("tune: give exactly one of --model and --shapes");
  hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  hwcfg::HardwareUnit* target = nullptr;
  for (hwcfg::HardwareUnit& u : config.units) {
    if (u.kind != "vta" || (!unit.empty() && u.name != unit)) continue;
    if (target) throw Error(config.source + ": more than one vta unit; name the one to tune with --unit");
    target = &u;
  }
  if (!target) throw Error(config.source + (unit.empty() ? ": no unit of kind vta" : ": no vta unit '" + unit + "'"));
  const models::vta::VtaConfig machine = models::vta::VtaUnitConfig::table().read(target->params).machine();
  const models::vta::VtaTiming timing = models::vta::VtaTiming::table().read(target->timing);
  std::vector<studies::TuneLayer> layers =
      model.empty() ? studies::vta_layers_from_table(shapes, images) : studies::vta_layers_of_model(model, config, target->name, images);
  layers.erase(std::remove_if(layers.begin(), layers.end(), [&](const studies::TuneLayer& l) { return fnmatch(layers_glob.c_str(), l.name.c_str(), 0) != 0; }),
               layers.end());
  if (layers.empty()) throw Error("--layers: '" + layers_glob + "' matches no layer to tune");
  std::filesystem::create_directories(out);
  studies::TuneOptions o;
  o.strategy = strategy;
  o.budget = budget;
  o.seed = seed;
  o.batch = plan_size;
  o.threads = threads;
  o.log = log.empty() ? (std::filesystem::path(out) / "measurements.log").string() : log;
  // A layer's share of the bar is one over the layers (their budgets differ with their spaces).
  app::ProgressBar bar("tuning", "trials");
  o.progress = [&bar](const std::string& line) {
    bar.finish();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  o.on_trial = [&bar](std::size_t layer, std::size_t count, std::size_t trial, std::size_t layer_budget) {
    bar.update(static_cast<std::int64_t>(layer * layer_budget + trial), static_cast<std::int64_t>(count * layer_budget));
  };
  const std::vector<studies::LayerTuning> results = studies::tune_vta(layers, machine, timing, o);
  write_text((std::filesystem::path(out) / "tune.json").string(), studies::tuning_json(results, o));
  bar.finish();
  std::printf("wrote %s/tune.json\n", out.c_str());
  if (!model.empty()) {
    // The description with every tuned layer's best schedule.
    for (const studies::LayerTuning& t : results) {
      models::Params knobs;
      for (const models::ParamSpec& spec : models::vta::schedule_table().specs(t.best)) knobs.set_number(spec.name, spec.fallback);
      target->schedule[t.layer.name] = knobs;
    }
    config.name += "_tuned";
    config.description += " Schedules tuned by faultline tune (" + strategy + ").";
    write_text((std::filesystem::path(out) / "tuned.yaml").string(), config.to_yaml());
    std::printf("wrote %s/tuned.yaml (eval --hw %s/tuned.yaml runs the tuned schedules)\n", out.c_str(), out.c_str());
  }
  return 0;
}

}  // namespace faultline::app
