// `faultline eval`: accuracy of a model on hardware descriptions, with Monte Carlo trials, at the functional, cycle or RTL level.
#include "apps/cli.h"

#include "models/files.h"

#include "nn/dataset.h"
#include "nn/evaluate.h"
#include "hwcfg/hardware_config.h"
#include "nn/onnx_io.h"
#include "studies/study.h"
#include "studies/levels.h"

namespace faultline::app {

int cmd_eval(const std::vector<std::string>& args) {
  std::string model, data = "fashion-mnist", out, level = "functional", vcd, fst;
  bool check = false, verbose = false;
  std::string engine;
  std::vector<std::string> hws, sets;
  studies::StudyOptions so;
  DataFlags data_flags;
  po::options_description options("eval options");
  add_common(options, &so.eval.threads);
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX model (classifier: images in, class scores out)")
      ("data", po::value(&data)->default_value(data), (kDataHelp + std::string(" (test split)")).c_str())
      ("hw", po::value(&hws), "hardware description: a YAML file or a preset name (hwcfg/NAME.yaml); repeat to compare several (default: ideal)")
      ("set", po::value(&sets), "override a hardware field, e.g. units.xbar.adc_bits=6 (repeatable; applies to every --hw)")
      ("trials", po::value(&so.trials)->default_value(1), "Monte Carlo trials (each re-programs the hardware)")
      ("seed", po::value(&so.seed)->default_value(1), "seed of all hardware randomness")
      ("limit", po::value(&so.eval.limit)->default_value(0), "evaluate the first N test images only (0: all)")
      ("layer-errors", po::value(&so.layer_errors)->default_value(true), "measure each layer's error against the exact product (one extra product per layer)")
      ("level", po::value(&level)->default_value(level), "functional (behavioural models only), cycle (the same values, with cycles, time and energy from the SystemC models) or rtl (integer products on the units' Verilated RTL, impl: rtl:NAME)")
      ("vcd", po::value(&vcd), "waveform as VCD (\".vcd\" is appended when missing): --level cycle, every unit's top-level signals and counters; --level rtl, every signal of the RTL")
      ("fst", po::value(&fst), "--level rtl: every signal of the RTL as an FST waveform")
      ("rtl-engine", po::value(&engine)->default_value("direct"), "--level rtl: direct (the Verilated C++ model stepped per clock, fast) or systemc (the Verilated SystemC model; always used for --vcd/--fst); the same results and cycles")
      ("check", po::bool_switch(&check), "--level rtl: run each RTL module's twin beside it on every tile and stop at the first disagreement (layer, tile, vector)")
      ("verbose", po::bool_switch(&verbose), "print every hardware counter of every layer (default: the kind's main counters)")
      ("out", po::value(&out), "write the results as JSON to this file (an array when several --hw are given)");
  add_data_options(options, &data_flags);
  po::variables_map vm;
  if (!parse("eval", "--model MODEL.onnx [--hw HW ...] [options]", options, args, vm)) return 0;
  if (level != "functional" && level != "cycle" && level != "rtl")
    throw Error("--level: must be functional, cycle or rtl, got '" + level + "'");
  if (!vcd.empty() && level == "functional") throw Error("--vcd: needs --level cycle or rtl");
  if (!fst.empty() && level != "rtl") throw Error("--fst: needs --level rtl (the cycle level writes VCD)");
  if (!fst.empty() && !vcd.empty()) throw Error("--fst, --vcd: choose one waveform format");
  if (check && level != "rtl") throw Error("--check: needs --level rtl");
  // Waveforms go to regular files: their writers (SystemC, Verilator) do not report failed
  // writes, so a device such as /dev/full could not be checked.
  for (const std::string* w : {&vcd, &fst})
    if (!w->empty() && std::filesystem::exists(*w) && !std::filesystem::is_regular_file(*w))
      throw Error(std::string(w == &vcd ? "--vcd" : "--fst") + ": '" + *w + "' is not a regular file");
  // Waveform files carry their extension (the cycle level's SystemC would append it anyway).
  if (vm.count("vcd") && (vcd.size() < 4 || vcd.compare(vcd.size() - 4, 4, ".vcd") != 0)) vcd += ".vcd";
  if (vm.count("fst") && (fst.size() < 4 || fst.compare(fst.size() - 4, 4, ".fst") != 0)) fst += ".fst";
  if (vm.count("vcd") && vcd == ".vcd") throw Error("--vcd: the file name is empty");
  if (vm.count("fst") && fst == ".fst") throw Error("--fst: the file name is empty");
  // Outputs are checked before the run: a long evaluation must not fail at its end.
  if (vm.count("out")) check_output_file(out, "--out");
  check_threads(so.eval.threads);
  if (so.eval.limit < 0) throw Error("--limit: must not be negative");
  if (so.trials < 1 || so.trials > 1000000) throw Error("--trials: must be between 1 and 1000000, got " + std::to_string(so.trials));
  if (hws.empty()) hws.push_back("ideal");
  std::vector<hwcfg::HardwareConfig> configs;
  for (const auto& hw : hws) configs.push_back(hwcfg::load_hardware_config(hw, sets));  // all validated before any work
  auto graph = nn::load_onnx(model);
  const nn::Dataset test = load_data(data, false, data_flags);
  so.data_preprocessing = test.preprocessing;
  so.level = level;
  std::unique_ptr<sim::CycleSimulation> simulation;
  std::unique_ptr<sim::RtlSimulation> rtl;
  if (level == "cycle") {
    simulation = studies::attach_cycle_level(configs, *graph, vcd);
    so.after_evaluate = [&simulation] { simulation->run_pending(); };
  } else if (level == "rtl") {
    rtl = studies::attach_rtl_level(configs, *graph, fst.empty() ? vcd : fst, !fst.empty(), check, sim::parse_rtl_engine(engine, "--rtl-engine"));
    if (so.eval.threads != 1) std::fprintf(stderr, "note: --level rtl simulates the RTL in-line on one thread (--threads 1)\n");
    so.eval.threads = 1;
  }
  std::vector<studies::StudyResult> results;
  std::string json = "[\n";
  for (const auto& config : configs) {
    app::ProgressBar bar("evaluating on " + config.name, "images");
    const studies::StudyResult r = studies::run_study(*graph, config, test, so, [&](std::int64_t d, std::int64_t t) { bar.update(d, t); });
    bar.finish();
    std::printf("model %s on %s (%lld images), hardware %s (%s)\n", model.c_str(), data.c_str(), static_cast<long long>(r.images),
                config.name.c_str(), config.source.c_str());
    if (configs.size() == 1) {
      std::printf("%-12s %9s\n", "class", "accuracy");
      const auto& names = test.class_names;
      for (std::size_t c = 0; c < r.class_accuracy.size(); ++c)
        std::printf("%-12s %7.2f %%\n", c < names.size() ? names[c].c_str() : std::to_string(c).c_str(),
                    100 * r.class_accuracy[c]);
    }
    std::printf("%s", studies::study_table(r, verbose).c_str());
    std::printf("%s", studies::study_timing_table(r).c_str());
    std::printf("%.3f s, %.0f images/s on %d thread(s)\n\n", r.seconds, r.seconds > 0 ? r.images * r.accuracies.size() / r.seconds : 0.0,
                so.eval.threads);
    json += (results.empty() ? "" : ",\n") + studies::study_json(r, model, data, so);
    results.push_back(r);
  }
  if (configs.size() > 1) {
    std::printf("%-30s %10s %8s %20s %7s\n", "hardware", "accuracy", "std", "95 % CI", "trials");
    for (const auto& r : results)
      std::printf("%-30s %8.2f %% %8.2f   [%6.2f, %6.2f] %% %7zu\n", r.hardware.c_str(), 100 * r.mean, 100 * r.stddev, 100 * r.ci_low,
                  100 * r.ci_high, r.accuracies.size());
  }
  if (rtl)
    for (const auto& file : rtl->close_waveforms()) std::printf("waveform: %s\n", file.c_str());
  if (simulation)
    for (const auto& file : simulation->close_waveforms()) std::printf("waveform: %s (%.6f s simulated)\n", file.c_str(), simulation->simulated_seconds());
  if (vm.count("out")) {
    write_text(out, configs.size() == 1 ? studies::study_json(results[0], model, data, so) : json + "]\n");
    std::printf("wrote %s\n", out.c_str());
  }
  return 0;
}

// Set by main(): where a sweep's trials run (this process, or MPI ranks under mpirun).

}  // namespace faultline::app
