// `faultline trace`: per-layer noise traces at any level, a fitted noise model and its replay check.
#include "apps/cli.h"

#include "models/files.h"

#include "nn/dataset.h"
#include "hwcfg/hardware_config.h"
#include "nn/json.h"
#include "nn/onnx_io.h"
#include "studies/study.h"
#include "studies/levels.h"
#include "traces/trace.h"

namespace faultline::app {

int cmd_trace(const std::vector<std::string>& args) {
  std::string model, data = "fashion-mnist", hw, level = "functional", out, shape = "quantiles";
  std::vector<std::string> sets;
  std::int64_t max_samples = 4096;
  int check_trials = 5;
  bool no_fit = false;
  studies::StudyOptions so;
  DataFlags data_flags;
  so.eval.limit = 1000;
  po::options_description options("trace options");
  add_common(options, &so.eval.threads);
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX classifier")
      ("data", po::value(&data)->default_value(data), (kDataHelp + std::string(" (test split)")).c_str())
      ("hw", po::value(&hw)->required(), "hardware description to trace: a YAML file or a preset name")
      ("set", po::value(&sets), "override a hardware field (repeatable)")
      ("level", po::value(&level)->default_value(level), "functional, cycle or rtl (as for eval)")
      ("limit", po::value(&so.eval.limit)->default_value(so.eval.limit), "the dataset slice: the first N test images (0: all)")
      ("max-samples", po::value(&max_samples)->default_value(max_samples), "rows (output vectors) kept per layer, chosen by a seeded hash of the row index")
      ("seed", po::value(&so.seed)->default_value(1), "seed of the hardware randomness (trial 0) and of the row choice")
      ("fit-shape", po::value(&shape)->default_value(shape), "distribution of the fitted noise's z in DIR/noise_from_trace.yaml: quantiles or gaussian")
      ("check-trials", po::value(&check_trials)->default_value(check_trials), "Monte Carlo trials of the fitted replay, to compare with the traced accuracy")
      ("no-fit", po::bool_switch(&no_fit), "only record the trace")
      ("out", po::value(&out)->required(), "folder for trace.json, LAYER.{ideal,hardware}.npy, noise_from_trace.yaml, noise_fit.json");
  add_data_options(options, &data_flags);
  po::variables_map vm;
  if (!parse("trace", "--model MODEL.onnx --hw HW --out DIR [options]", options, args, vm)) return 0;
  if (level != "functional" && level != "cycle" && level != "rtl") throw Error("--level: must be functional, cycle or rtl, got '" + level + "'");
  if (shape != "quantiles" && shape != "gaussian") throw Error("--fit-shape: must be quantiles or gaussian, got '" + shape + "'");
  if (max_samples < 1 || max_samples > 100000000) throw Error("--max-samples: must be between 1 and 100000000");
  if (check_trials < 1 || check_trials > 10000) throw Error("--check-trials: must be between 1 and 10000");
  if (so.eval.limit < 0) throw Error("--limit: must not be negative");
  check_threads(so.eval.threads);
  check_output_folder(out, "--out");  // its parent must exist: missing folders are not made up
  std::vector<hwcfg::HardwareConfig> configs = {hwcfg::load_hardware_config(hw, sets)};
  auto graph = nn::load_onnx(model);
  const nn::Dataset test = load_data(data, false, data_flags);
  so.data_preprocessing = test.preprocessing;
  so.level = level;
  std::unique_ptr<sim::CycleSimulation> simulation;
  std::unique_ptr<sim::RtlSimulation> rtl;
  if (level == "cycle") {
    simulation = studies::attach_cycle_level(configs, *graph, "");
    so.after_evaluate = [&simulation] { simulation->run_pending(); };
  } else if (level == "rtl") {
    rtl = studies::attach_rtl_level(configs, *graph, "", false);
    so.eval.threads = 1;
  }
  app::ProgressBar bar("tracing " + configs[0].name, "images");
  traces::Trace trace = traces::record_trace(*graph, configs[0], test, so, max_samples, model, data,
                                             [&](std::int64_t d, std::int64_t t) { bar.update(d, t); });
  bar.finish();
  const traces::TraceMeta& meta = trace.meta;
  const std::vector<traces::LayerTrace>& layers = trace.layers;
  traces::write_trace(out, meta, layers);
  std::printf("traced %s on %s at the %s level: %lld images, accuracy %.2f %%\n", model.c_str(), meta.hardware.c_str(), level.c_str(),
              static_cast<long long>(meta.images), 100 * meta.accuracy);
  std::printf("%-12s %-16s %9s %12s %12s\n", "layer", "kind", "outputs", "rows seen", "rows kept");
  for (const auto& l : layers)
    std::printf("%-12s %-16s %9lld %12llu %12zu\n", l.name.c_str(), l.kind.c_str(), static_cast<long long>(l.outputs),
                static_cast<unsigned long long>(l.rows_seen), l.outputs ? l.ideal.size() / static_cast<std::size_t>(l.outputs) : 0);
  std::printf("wrote %s/trace.json and %zu NPY pairs\n", out.c_str(), layers.size());
  if (no_fit) return 0;
  std::vector<traces::LayerFit> fits;
  for (const auto& l : layers) fits.push_back(traces::fit_layer(l));
  const std::string fitted = out + "/noise_from_trace.yaml";
  write_text(fitted, traces::fitted_hwcfg_yaml(fits, meta, shape));
  write_text(out + "/noise_fit.json", traces::fits_json(fits, meta));
  std::printf("\nfitted noise sigma(y) = a + b|y| per layer (%s z):\n%-12s %12s %12s %12s %12s %12s\n", shape.c_str(), "layer", "a", "b",
              "rms error", "mean error", "z 1%..99%");
  for (const auto& f : fits) {
    if (f.exact) {
      std::printf("%-12s %12s\n", f.layer.c_str(), "exact");
      continue;
    }
    char range[64];
    std::snprintf(range, sizeof range, "%.2f..%.2f", f.quantiles[1], f.quantiles[13]);
    std::printf("%-12s %12.5g %12.5g %12.5g %12.5g %12s\n", f.layer.c_str(), f.sigma_offset, f.sigma_slope, f.rms_error, f.mean_error, range);
  }
  // How well the fitted replay (functional level, fresh noise per trial) reproduces the trace.
  const hwcfg::HardwareConfig replay = hwcfg::load_hardware_config(fitted);
  studies::StudyOptions check = so;
  check.level = "functional";
  check.after_evaluate = nullptr;
  check.trials = check_trials;
  check.seed = so.seed + 1;
  const studies::StudyResult r = studies::run_study(*graph, replay, test, check);
  std::printf("\nreplay of %s at the functional level (%d trials): accuracy %.2f %% ± %.2f, 95 %% CI [%.2f, %.2f] %%; traced %.2f %% (difference %+.2f points)\n",
              fitted.c_str(), check_trials, 100 * r.mean, 100 * r.stddev, 100 * r.ci_low, 100 * r.ci_high, 100 * meta.accuracy,
              100 * (r.mean - meta.accuracy));
  std::printf("%-12s %14s %14s\n", "layer", "traced rms", "replay rms");
  for (std::size_t l = 0; l < fits.size() && l < r.layers.size(); ++l)
    std::printf("%-12s %14.5g %14.5g\n", fits[l].layer.c_str(), fits[l].rms_error, r.layers[l].rms_error);
  nn::JsonWriter j;
  j.begin_object();
  j.key("traced_accuracy").value(meta.accuracy);
  j.key("replay").raw(studies::study_json(r, model, data, check));
  j.end_object();
  write_text(out + "/fit_check.json", j.str() + "\n");
  std::printf("wrote %s, %s/noise_fit.json and %s/fit_check.json\n", fitted.c_str(), out.c_str(), out.c_str());
  return 0;
}

}  // namespace faultline::app
