// The faultline command line: parses options and calls the libraries. Errors in the user's input
// end with one line on stderr and exit status 2.
#include <boost/program_options.hpp>

#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "apps/progress.h"
#include "models/error.h"
#include "models/substrate.h"
#include "nn/dataset.h"
#include "nn/evaluate.h"
#include "hwcfg/hardware_config.h"
#include "nn/json.h"
#include "nn/npy.h"
#include "nn/onnx_io.h"
#include "nn/parallel.h"
#include "studies/hardware.h"
#include "studies/study.h"
#include "studies/levels.h"
#include "studies/mpi_runner.h"
#include "studies/sweep.h"
#include "sim/cosim.h"
#include "sim/rtl_unit.h"
#include "nn/train.h"
#include "traces/trace.h"

namespace po = boost::program_options;

// The libraries name the option field or the override a message is about; the user typed a flag.
static std::string with_flags(const std::string& message) {
  static const std::map<std::string, std::string> flags = {
      {"arch", "--arch"}, {"epochs", "--epochs"}, {"batch_size", "--batch-size"}, {"optimizer", "--optimizer"},
      {"learning_rate", "--lr"}, {"momentum", "--momentum"}, {"weight_decay", "--weight-decay"}, {"schedule", "--schedule"},
      {"threads", "--threads"}, {"backward", "--backward"}, {"limit", "--limit"}, {"trials", "--trials"}, {"walking", "--walking"},
      {"sweep", "--sweep"}, {"sigma", "--sigma"}, {"layers", "--layers"}, {"tolerance", "--tolerance"},
      {"max_bisections", "--max-bisections"}, {"sweep, walking", "--sweep, --walking"}};
  std::string out = message;
  // "field: ..." or "field 'value': ..." at the start.
  const std::size_t end = std::min(out.find(':'), out.find(" '"));
  if (end != std::string::npos) {
    const auto flag = flags.find(out.substr(0, end));
    if (flag != flags.end()) out = flag->second + out.substr(end);
  }
  if (out.rfind("override '", 0) == 0) out = "--set" + out.substr(8);
  if (out.rfind("sweep ", 0) == 0) out = "--" + out;  // "sweep PATH: ..." about one grid axis
  for (std::size_t at; (at = out.find("(override)")) != std::string::npos;) out.replace(at, 10, "(--set)");
  if (const std::size_t at = out.find("; a hardware description, not noise"); at != std::string::npos) out.replace(at, 35, "; use --hw for hardware");
  return out;
}
using namespace faultline;

namespace {

constexpr int kUsageError = 2;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

// Parses `args` against `options`; returns false when --help was asked for (after printing it).
bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm,
           const po::positional_options_description& positional = {}) {
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: faultline " << command << " " << usage << "\n\n" << options << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

void add_common(po::options_description& options, int* threads) {
  options.add_options()
      ("help,h", "show this help")
      ("threads", po::value<int>(threads)->default_value(nn::default_threads()), "worker threads (default: all cores)");
}

void check_threads(int threads) {
  if (threads < 1 || threads > 1024) throw Error("--threads: must be between 1 and 1024, got " + std::to_string(threads));
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out << text;
  if (!out) throw Error(path + ": write failed");
}

int cmd_train(const std::vector<std::string>& args) {
  nn::TrainOptions o;
  std::string data = "fashion-mnist", out, hw, noise, model;
  std::vector<std::string> sets;
  std::int64_t limit = 0;
  std::uint64_t seed = 1;
  po::options_description options("train options");
  add_common(options, &o.threads);
  options.add_options()
      ("arch", po::value(&o.arch)->default_value(o.arch), "architecture to build and train: mlp (784-256-256-256-10) or lenet5")
      ("model", po::value(&model), "fine-tune this ONNX classifier instead (its first output the logits; every operator on the path needs a backward pass)")
      ("epochs", po::value(&o.epochs)->default_value(o.epochs), "passes over the training set")
      ("batch-size", po::value(&o.batch_size)->default_value(o.batch_size), "images per mini-batch")
      ("optimizer", po::value(&o.optimizer)->default_value(o.optimizer), "adam or sgd (with momentum)")
      ("lr", po::value(&o.learning_rate)->default_value(o.learning_rate), "learning rate")
      ("momentum", po::value(&o.momentum)->default_value(o.momentum), "SGD momentum")
      ("weight-decay", po::value(&o.weight_decay)->default_value(o.weight_decay), "L2 weight decay (weights only)")
      ("schedule", po::value(&o.schedule)->default_value(o.schedule), "learning-rate schedule: cosine or constant")
      ("flip", po::bool_switch(&o.flip), "augment: mirror training images horizontally with probability 1/2")
      ("seed", po::value(&seed)->default_value(seed), "seed of initialisation, shuffling and augmentation")
      ("data", po::value(&data)->default_value(data), "fashion-mnist or a folder with MNIST-format IDX files")
      ("limit", po::value(&limit)->default_value(0), "train on the first N images only (0: all)")
      ("hw", po::value(&hw), "hardware in the loop: forward products of Conv/Gemm layers on this description's substrates (functional models), backward through the ideal weights (straight-through)")
      ("noise", po::value(&noise), "noise-aware training: a Walking Noise description (noise units, noise sites) or a trace folder / its noise_from_trace.yaml")
      ("set", po::value(&sets), "override a field of --hw/--noise (repeatable)")
      ("backward", po::value(&o.backward)->default_value(o.backward), "through --hw layers: ste (straight-through) or secant (gradient scaled by each output's frozen gain y_hw/y_exact in [0, 1])")
      ("hw-seed", po::value(&o.hardware_seed)->default_value(o.hardware_seed), "seed of the hardware's / noise's randomness (the step number is the trial)")
      ("out", po::value(&out)->required(), "ONNX file to write");
  po::variables_map vm;
  if (!parse("train", "--out MODEL.onnx [options]", options, args, vm)) return 0;
  check_threads(o.threads);
  o.seed = seed;
  if (!model.empty() && !vm["arch"].defaulted()) throw Error("--arch, --model: choose one");
  nn::validate(o);
  if (!hw.empty() && !noise.empty()) throw Error("--hw, --noise: choose one (a description may hold both hardware units and noise sites)");
  if (!sets.empty() && hw.empty() && noise.empty()) throw Error("--set: needs --hw or --noise");
  hwcfg::HardwareConfig loop;
  if (!hw.empty()) {
    loop = hwcfg::load_hardware_config(hw, sets);
    for (const auto& u : loop.units)
      if (!u.impl.empty()) throw Error(loop.source + ": unit '" + u.name + "' has impl: " + u.impl + "; training runs the functional models (drop impl:)");
    o.program_hardware = studies::training_hardware(loop);
  } else if (!noise.empty()) {
    const std::string file = std::filesystem::is_directory(noise) ? noise + "/noise_from_trace.yaml" : noise;
    if (std::filesystem::is_directory(noise) && !std::filesystem::exists(file))
      throw Error(noise + ": a trace folder without noise_from_trace.yaml (run faultline trace without --no-fit)");
    loop = hwcfg::load_hardware_config(file, sets);
    hwcfg::require_training_noise(loop);
    o.program_hardware = studies::training_hardware(loop);
  }
  if (limit < 0) throw Error("--limit: must not be negative");
  nn::Dataset train = nn::load_mnist_family(data, true);
  if (limit > 0 && limit < train.count) {
    train.count = limit;
    train.images.resize(static_cast<std::size_t>(limit * train.image_size()));
    train.labels.resize(static_cast<std::size_t>(limit));
  }
  nn::TrainableNetwork net = model.empty() ? nn::TrainableNetwork(o.arch, train.channels, train.height, train.width, train.classes, o.seed)
                                            : nn::TrainableNetwork::from_onnx_file(model);
  const std::string what = model.empty() ? o.arch : model;
  if (!model.empty()) {
    std::printf("fine-tuning %s: %zu parameter tensors", model.c_str(), net.graph().parameters().size());
    if (!net.graph().frozen_parameters().empty()) std::printf(", %zu frozen (read by constant-folded nodes)", net.graph().frozen_parameters().size());
    std::printf("\n");
  }
  if (o.program_hardware) std::printf("training %s with %s in the loop (%s)\n", what.c_str(), loop.name.c_str(), loop.source.c_str());
  app::ProgressBar bar("training " + what);
  net.train(train, o, [&](std::int64_t done, std::int64_t total) { bar.update(done, total); },
            [&](const nn::EpochReport& r) {
              bar.finish();
              std::printf("epoch %3d  loss %.4f  train accuracy %.2f %%  lr %.2e\n", r.epoch, r.loss, 100 * r.train_accuracy, r.learning_rate);
              std::fflush(stdout);
            });
  net.save_onnx(out);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  std::string model, data = "fashion-mnist", out, level = "functional", vcd, fst;
  std::vector<std::string> hws, sets;
  studies::StudyOptions so;
  po::options_description options("eval options");
  add_common(options, &so.eval.threads);
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX model (classifier: images in, class scores out)")
      ("data", po::value(&data)->default_value(data), "fashion-mnist or a folder with MNIST-format IDX files (test split)")
      ("hw", po::value(&hws), "hardware description: a YAML file or a preset name (hwcfg/NAME.yaml); repeat to compare several (default: ideal)")
      ("set", po::value(&sets), "override a hardware field, e.g. units.xbar.adc_bits=6 (repeatable; applies to every --hw)")
      ("trials", po::value(&so.trials)->default_value(1), "Monte Carlo trials (each re-programs the hardware)")
      ("seed", po::value(&so.seed)->default_value(1), "seed of all hardware randomness")
      ("limit", po::value(&so.eval.limit)->default_value(0), "evaluate the first N test images only (0: all)")
      ("layer-errors", po::value(&so.layer_errors)->default_value(true), "measure each layer's error against the exact product (one extra product per layer)")
      ("level", po::value(&level)->default_value(level), "functional (behavioural models only), cycle (the same values, with cycles, time and energy from the SystemC models) or rtl (integer products on the units' Verilated RTL, impl: rtl:NAME)")
      ("vcd", po::value(&vcd), "waveform as VCD: --level cycle, every unit's top-level signals and counters; --level rtl, every signal of the RTL")
      ("fst", po::value(&fst), "--level rtl: every signal of the RTL as an FST waveform")
      ("out", po::value(&out), "write the results as JSON to this file (an array when several --hw are given)");
  po::variables_map vm;
  if (!parse("eval", "--model MODEL.onnx [--hw HW ...] [options]", options, args, vm)) return 0;
  if (level != "functional" && level != "cycle" && level != "rtl")
    throw Error("--level: must be functional, cycle or rtl, got '" + level + "'");
  if (!vcd.empty() && level == "functional") throw Error("--vcd: needs --level cycle or rtl");
  if (!fst.empty() && level != "rtl") throw Error("--fst: needs --level rtl (the cycle level writes VCD)");
  if (!fst.empty() && !vcd.empty()) throw Error("--fst, --vcd: choose one waveform format");
  check_threads(so.eval.threads);
  if (so.eval.limit < 0) throw Error("--limit: must not be negative");
  if (so.trials < 1 || so.trials > 1000000) throw Error("--trials: must be between 1 and 1000000, got " + std::to_string(so.trials));
  if (hws.empty()) hws.push_back("ideal");
  std::vector<hwcfg::HardwareConfig> configs;
  for (const auto& hw : hws) configs.push_back(hwcfg::load_hardware_config(hw, sets));  // all validated before any work
  auto graph = nn::load_onnx(model);
  const nn::Dataset test = nn::load_mnist_family(data, false);
  so.level = level;
  std::unique_ptr<sim::CycleSimulation> simulation;
  std::unique_ptr<sim::RtlSimulation> rtl;
  if (level == "cycle") {
    simulation = studies::attach_cycle_level(configs, *graph, vcd);
    so.after_evaluate = [&simulation] { simulation->run_pending(); };
  } else if (level == "rtl") {
    rtl = studies::attach_rtl_level(configs, *graph, fst.empty() ? vcd : fst, !fst.empty());
    if (so.eval.threads != 1) std::fprintf(stderr, "note: --level rtl simulates the RTL in-line on one thread (--threads 1)\n");
    so.eval.threads = 1;
  }
  std::vector<studies::StudyResult> results;
  std::string json = "[\n";
  for (const auto& config : configs) {
    app::ProgressBar bar("evaluating on " + config.name);
    const studies::StudyResult r = studies::run_study(*graph, config, test, so, [&](std::int64_t d, std::int64_t t) { bar.update(d, t); });
    bar.finish();
    std::printf("model %s on %s (%lld images), hardware %s (%s)\n", model.c_str(), data.c_str(), static_cast<long long>(r.images),
                config.name.c_str(), config.source.c_str());
    if (configs.size() == 1) {
      std::printf("%-12s %9s\n", "class", "accuracy");
      const auto& names = nn::fashion_mnist_classes();
      for (std::size_t c = 0; c < r.class_accuracy.size(); ++c)
        std::printf("%-12s %7.2f %%\n", data == "fashion-mnist" && c < names.size() ? names[c].c_str() : std::to_string(c).c_str(),
                    100 * r.class_accuracy[c]);
    }
    std::printf("%s", studies::study_table(r).c_str());
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
  if (rtl && !(vcd.empty() && fst.empty()))
    std::printf("waveform%s: %s%s\n", configs.size() > 1 ? "s" : "", (fst.empty() ? vcd : fst).c_str(),
                configs.size() > 1 ? " with each unit's name before the extension (one file per RTL unit)" : "");
  if (simulation && !vcd.empty()) std::printf("waveform: %s (%.6f s simulated)\n", vcd.c_str(), simulation->simulated_seconds());
  if (!out.empty()) {
    write_text(out, configs.size() == 1 ? studies::study_json(results[0], model, data, so) : json + "]\n");
    std::printf("wrote %s\n", out.c_str());
  }
  return 0;
}

// Set by main(): where a sweep's trials run (this process, or MPI ranks under mpirun).
studies::TaskRunner* task_runner = nullptr;

int cmd_sweep(const std::vector<std::string>& args) {
  studies::SweepOptions o;
  std::vector<std::string> axes;
  o.study.trials = 5;
  po::options_description options("sweep options");
  options.add_options()
      ("help,h", "show this help")
      ("threads", po::value<int>(&o.study.eval.threads)->default_value(studies::default_threads_per_rank()),
       "worker threads per process (default: all cores, divided among the MPI ranks on this machine)")
      ("model", po::value(&o.model)->required(), "ONNX classifier")
      ("data", po::value(&o.data)->default_value("fashion-mnist"), "fashion-mnist or a folder with MNIST-format IDX files (test split)")
      ("hw", po::value(&o.hw)->default_value(o.hw), "base hardware description: a YAML file or a preset name")
      ("set", po::value(&o.sets), "fixed override of a hardware field (repeatable)")
      ("sweep", po::value(&axes), "grid mode: PATH=A:B (integers), PATH=lin:A:B:N, PATH=log:A:B:N or PATH=a,b,c; repeat for a grid (first slowest)")
      ("walking", po::value(&o.walking), "Walking Noise mode: additive, multiplicative or combined noise on one layer's output at a time")
      ("sigma", po::value(&o.sigma)->default_value(o.sigma), "Walking Noise: the sigma grid, log:A:B:N, lin:A:B:N or a list (the paper's additive sweep: log:1e-2:1e10:49)")
      ("layers", po::value(&o.layers)->default_value(o.layers), "Walking Noise: glob over the layers to walk")
      ("tolerance", po::value(&o.tolerance)->default_value(o.tolerance, "0.05"), "Walking Noise: bisection stops when sigma_hi/sigma_lo <= 1 + tolerance")
      ("max-bisections", po::value(&o.max_bisections)->default_value(o.max_bisections), "Walking Noise: at most this many bisection steps per layer")
      ("trials", po::value(&o.study.trials)->default_value(o.study.trials), "Monte Carlo trials per point")
      ("seed", po::value(&o.study.seed)->default_value(1), "seed of all hardware randomness")
      ("limit", po::value(&o.study.eval.limit)->default_value(0), "evaluate the first N test images only (0: all)")
      ("layer-errors", po::value(&o.study.layer_errors)->default_value(true), "measure each layer's error against the exact product (one extra product per layer)")
      ("out", po::value(&o.out), "PREFIX: rows are appended to PREFIX.jsonl as points finish (a rerun resumes from it); PREFIX.csv and PREFIX.json at the end");
  po::variables_map vm;
  if (!parse("sweep", "--model MODEL.onnx (--sweep PATH=SPEC ... | --walking MODE) [options]", options, args, vm)) return 0;
  check_threads(o.study.eval.threads);
  if (o.study.eval.limit < 0) throw Error("--limit: must not be negative");
  for (const auto& a : axes) o.axes.push_back(studies::parse_sweep_axis(a));
  hwcfg::load_hardware_config(o.hw, o.sets);  // a bad base description fails before the model is read
  auto graph = nn::load_onnx(o.model);
  const nn::Dataset test = nn::load_mnist_family(o.data, false);
  const bool writer = task_runner->writer();
  const studies::SweepOutcome r = studies::run_sweep(*graph, test, o, *task_runner, [&](const studies::SweepRow& row, bool resumed) {
    std::printf("%s row %3d  %-48s accuracy %7.2f %% ± %5.2f\n", resumed ? "resumed " : "finished", row.index, row.key.c_str(),
                100 * row.result.mean, 100 * row.result.stddev);
    std::fflush(stdout);
  });
  if (!writer) return 0;
  std::printf("\n%s", studies::sweep_table(r, o).c_str());
  std::printf("%d row(s) evaluated, %d taken from the log; %d process(es) x %d thread(s)\n", r.evaluated_rows, r.resumed_rows,
              task_runner->ranks(), o.study.eval.threads);
  if (!o.out.empty())
    std::printf("wrote %s.jsonl, %s.csv%s and %s.json\n", o.out.c_str(), o.out.c_str(),
                o.walking.empty() ? "" : (", " + o.out + ".midpoints.csv").c_str(), o.out.c_str());
  return 0;
}

int cmd_trace(const std::vector<std::string>& args) {
  std::string model, data = "fashion-mnist", hw, level = "functional", out, shape = "quantiles";
  std::vector<std::string> sets;
  std::int64_t max_samples = 4096;
  int check_trials = 5;
  bool no_fit = false;
  studies::StudyOptions so;
  so.eval.limit = 1000;
  po::options_description options("trace options");
  add_common(options, &so.eval.threads);
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX classifier")
      ("data", po::value(&data)->default_value(data), "fashion-mnist or a folder with MNIST-format IDX files (test split)")
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
  po::variables_map vm;
  if (!parse("trace", "--model MODEL.onnx --hw HW --out DIR [options]", options, args, vm)) return 0;
  if (level != "functional" && level != "cycle" && level != "rtl") throw Error("--level: must be functional, cycle or rtl, got '" + level + "'");
  if (shape != "quantiles" && shape != "gaussian") throw Error("--fit-shape: must be quantiles or gaussian, got '" + shape + "'");
  if (max_samples < 1 || max_samples > 100000000) throw Error("--max-samples: must be between 1 and 100000000");
  if (check_trials < 1 || check_trials > 10000) throw Error("--check-trials: must be between 1 and 10000");
  if (so.eval.limit < 0) throw Error("--limit: must not be negative");
  check_threads(so.eval.threads);
  std::vector<hwcfg::HardwareConfig> configs = {hwcfg::load_hardware_config(hw, sets)};
  auto graph = nn::load_onnx(model);
  const nn::Dataset test = nn::load_mnist_family(data, false);
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
  traces::TraceMeta meta;
  std::vector<traces::LayerTrace> layers;
  {
    traces::TraceRecorder recorder(*graph, configs[0], max_samples, so.seed);
    app::ProgressBar bar("tracing " + configs[0].name);
    const studies::StudyResult r = studies::run_study(*graph, configs[0], test, so, [&](std::int64_t d, std::int64_t t) { bar.update(d, t); });
    bar.finish();
    meta.accuracy = r.mean;
    meta.images = r.images;
    layers = recorder.layers();
  }
  meta.model = model;
  meta.data = data;
  meta.hardware = configs[0].name;
  meta.hardware_source = configs[0].source;
  meta.hwcfg_yaml = configs[0].to_yaml();
  meta.level = level;
  meta.seed = so.seed;
  meta.max_samples = max_samples;
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

int cmd_report(const std::vector<std::string>& args) {
  std::string out = "report";
  std::vector<std::string> results;
  po::options_description options("report options");
  options.add_options()
      ("help,h", "show this help")
      ("out", po::value(&out)->default_value(out), "folder for report.md and the figures (PNG and SVG)")
      ("results", po::value(&results), "result files: faultline sweep PREFIX.json, faultline eval --out JSON");
  po::positional_options_description positional;
  positional.add("results", -1);
  po::variables_map vm;
  if (!parse("report", "RESULT.json [RESULT.json ...] [--out DIR]", options, args, vm, positional)) return 0;
  if (results.empty()) throw Error("report: give at least one result file");
  for (const auto& r : results)
    if (!std::filesystem::is_regular_file(r)) throw Error(r + ": no such file");
  // Plots are drawn by apps/report.py with Debian's matplotlib (FAULTLINE_PYTHON overrides the interpreter).
  const char* env = std::getenv("FAULTLINE_PYTHON");
  const std::string python = env && *env ? env : FAULTLINE_PYTHON_INTERPRETER;
  const std::string script = FAULTLINE_REPORT_SCRIPT;
  if (!std::filesystem::exists(script)) throw Error(script + ": the report script is missing from the source tree");
  std::vector<std::string> argv_strings = {python, script, "--out", out};
  argv_strings.insert(argv_strings.end(), results.begin(), results.end());
  std::vector<char*> argv_c;
  for (auto& a : argv_strings) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = 0;
  if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv_c.data(), environ) != 0)
    throw Error(python + ": cannot run (apt-get install python3-matplotlib python3-numpy)");
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) throw std::runtime_error("the report script was killed");
  return WEXITSTATUS(status);
}

int cmd_hw(const std::vector<std::string>& args) {
  std::string action, file;
  std::vector<std::string> sets;
  po::options_description options("hw options");
  options.add_options()
      ("help,h", "show this help")
      ("action", po::value(&action)->required(), "check (validate), show (print with defaults filled in) or kinds (document every substrate kind's parameters as Markdown)")
      ("file", po::value(&file), "hardware description: a YAML file or a preset name")
      ("set", po::value(&sets), "override a field, e.g. units.xbar.adc_bits=6 (repeatable)");
  po::positional_options_description positional;
  positional.add("action", 1).add("file", 1);
  po::variables_map vm;
  if (!parse("hw", "check|show FILE [--set PATH=VALUE ...] | faultline hw kinds", options, args, vm, positional)) return 0;
  if (action == "kinds") {
    std::printf("%s", hwcfg::substrate_kinds_markdown().c_str());
    return 0;
  }
  if (action != "check" && action != "show") throw Error("hw: unknown action '" + action + "' (check, show, kinds)");
  if (file.empty()) throw Error("hw " + action + ": missing FILE");
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(file, sets);
  if (action == "show") {
    std::printf("# %s\n%s", config.source.c_str(), config.to_yaml().c_str());
  } else {
    std::printf("%s: ok (%zu unit(s), %zu mapping rule(s), %zu noise site(s))\n", config.source.c_str(), config.units.size(),
                config.mapping.size(), config.noise_sites.size());
  }
  return 0;
}

nn::Tensor load_input(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npy") return nn::load_npy(path);
  if (ext == ".pb") return nn::load_tensor_pb(path);
  throw Error(path + ": unknown input format (expected .npy or .pb)");
}

int cmd_infer(const std::vector<std::string>& args) {
  std::string model, hw = "ideal";
  std::vector<std::string> inputs, outputs, sets;
  std::uint64_t seed = 1;
  // infer runs the tensors it is given as one batch on one thread: splitting an arbitrary
  // model's inputs along a batch axis is not safe in general (Softmax over axis 0, for one).
  po::options_description options("infer options");
  options.add_options()("help,h", "show this help");
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX model")
      ("input", po::value(&inputs)->required(), "input tensor (.npy or ONNX TensorProto .pb), one per model input, in order")
      ("output", po::value(&outputs)->required(), "output file (.npy), one per model output, in order")
      ("hw", po::value(&hw)->default_value(hw), "hardware description: a YAML file or a preset name (hwcfg/NAME.yaml)")
      ("set", po::value(&sets), "override a hardware field (repeatable)")
      ("seed", po::value(&seed)->default_value(1), "seed of all hardware randomness (trial 0)");
  po::variables_map vm;
  if (!parse("infer", "--model MODEL.onnx --input X.npy [--input ...] --output Y.npy [--output ...]", options, args, vm)) return 0;
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  auto graph = nn::load_onnx(model);
  if (inputs.size() != graph->inputs().size())
    throw Error(model + ": the model has " + std::to_string(graph->inputs().size()) + " input(s), " + std::to_string(inputs.size()) + " --input given");
  if (outputs.size() > graph->outputs().size())
    throw Error(model + ": the model has " + std::to_string(graph->outputs().size()) + " output(s), " + std::to_string(outputs.size()) + " --output given");
  for (const auto& path : outputs)
    if (std::filesystem::path(path).extension() != ".npy") throw Error(path + ": outputs are written as .npy");
  std::vector<nn::Tensor> tensors;
  for (const auto& path : inputs) tensors.push_back(load_input(path));
  studies::program(config, *graph, models::ProgramContext{seed, 0});
  std::vector<nn::Tensor> results = graph->run(std::move(tensors));
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    nn::save_npy(outputs[k], results[k]);
    std::printf("%s: %s %s -> %s\n", graph->outputs()[k].c_str(), nn::dtype_name(results[k].dtype()),
                nn::shape_string(results[k].shape()).c_str(), outputs[k].c_str());
  }
  return 0;
}

int cmd_cosim(const std::vector<std::string>& args) {
  sim::CosimOptions o;
  std::vector<std::string> sets;
  bool list = false, no_reset = false;
  std::string vcd_path, fst_path;
  po::options_description options("cosim options");
  options.add_options()
      ("help,h", "show this help")
      ("rtl", po::value(&o.rtl), "RTL module to drive (see --list)")
      ("list", po::bool_switch(&list), "list the RTL modules built into this program")
      ("vectors", po::value(&o.vectors)->default_value(o.vectors), "random input vectors in total")
      ("weight-sets", po::value(&o.weight_sets)->default_value(o.weight_sets), "random weight matrices, loaded one after another")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the stimulus")
      ("backpressure", po::value(&o.backpressure)->default_value(o.backpressure), "probability that out_ready is low in a cycle")
      ("no-reset", po::bool_switch(&no_reset), "do not interrupt a weight set with a reset")
      ("set", po::value(&sets), "configuration register value, e.g. drop_bits=4 (repeatable)")
      ("clock-mhz", po::value(&o.clock_mhz)->default_value(o.clock_mhz), "clock of the unit")
      ("vcd", po::value(&vcd_path), "write every signal of the RTL to this VCD file")
      ("fst", po::value(&fst_path), "write every signal of the RTL to this FST file");
  po::variables_map vm;
  if (!parse("cosim", "--rtl NAME [--vectors N] [--seed S] [options] | --list", options, args, vm)) return 0;
  if (list) {
    std::printf("%-20s %-20s %-9s %-7s %s\n", "module", "top", "shape", "twin", "description");
    for (const auto& m : sim::rtl_modules()) {
      std::string regs;
      for (const auto& r : m.registers) regs += " [register " + r.name + " @" + std::to_string(r.address) + ", reset " + std::to_string(r.fallback) + "]";
      std::printf("%-20s %-20s %3dx%-5d %-7s %s%s\n", m.name.c_str(), m.top.c_str(), m.outputs, m.inputs, m.twin.c_str(), m.description.c_str(), regs.c_str());
    }
    return 0;
  }
  if (o.rtl.empty()) throw Error("--rtl: required (faultline cosim --list shows the modules)");
  o.reset_mid_stream = !no_reset;
  if (!vcd_path.empty() && !fst_path.empty()) throw Error("--fst, --vcd: choose one waveform format");
  o.waveform = fst_path.empty() ? vcd_path : fst_path;
  o.fst = !fst_path.empty();
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--set '" + s + "': expected REGISTER=VALUE");
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1) throw std::invalid_argument("trailing");
      o.registers[s.substr(0, eq)] = v;
    } catch (const std::exception&) {
      throw Error("--set '" + s + "': the value must be an integer");
    }
  }
  const sim::CosimReport r = sim::run_cosim(o);
  std::printf("rtl %s against its %s twin: %lld vectors, %lld mismatching\n", r.rtl.c_str(), r.twin.c_str(), static_cast<long long>(r.vectors),
              static_cast<long long>(r.mismatches));
  if (r.mismatches) std::printf("first mismatch: %s\n", r.first_mismatch.c_str());
  if (r.twin == "approx")
    std::printf("the approximate products differ from the exact ones in %lld of the streamed vectors\n", static_cast<long long>(r.differs_from_exact));
  std::printf("%llu cycles (%llu streaming, %.3f vectors per streaming cycle), %.3f s, %.0f vectors/s\n",
              static_cast<unsigned long long>(r.cycles), static_cast<unsigned long long>(r.stream_cycles),
              r.stream_cycles ? static_cast<double>(r.vectors) / static_cast<double>(r.stream_cycles) : 0.0, r.seconds, r.vectors_per_second());
  if (!o.waveform.empty()) std::printf("waveform: %s\n", o.waveform.c_str());
  return r.mismatches == 0 || r.twin == "none" ? 0 : 1;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"train", "train a reference network (mlp, lenet5) on Fashion-MNIST and write it as ONNX", cmd_train},
      {"eval", "accuracy of an ONNX classifier on a dataset, on a hardware description", cmd_eval},
      {"infer", "run an ONNX model on given tensors (NPY or TensorProto in, NPY out)", cmd_infer},
      {"sweep", "accuracy over a grid of hardware values, or Walking Noise per layer with midpoints (resumable, MPI)", cmd_sweep},
      {"trace", "record per-layer noise traces (NPY + JSON) at any level, fit a noise model and check its replay", cmd_trace},
      {"report", "a Markdown report with plots (matplotlib) from sweep and eval result files", cmd_report},
      {"hw", "check or show a hardware description (hwcfg/*.yaml)", cmd_hw},
      {"cosim", "drive an RTL module with random stimulus against its behavioural twin", cmd_cosim},
  };
  return list;
}

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: faultline COMMAND [options]   (faultline COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& c : commands()) std::fprintf(to, "  %-8s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  // Tensors of a few hundred KiB are made and dropped for every operator call; glibc would map
  // and unmap each (its mmap threshold starts at 128 KiB), faulting every page in again. Keep
  // them on the heap instead (the memory is reused, not returned to the system between calls).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
  sim::register_built_rtl();
  std::unique_ptr<studies::TaskRunner> runner;
  try {
    runner = studies::make_task_runner(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "faultline: error: %s\n", e.what());
    return kUsageError;
  }
  task_runner = runner.get();
  if (argc < 2) {
    print_usage(stderr);
    return kUsageError;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const po::error& e) {
      if (runner->writer()) std::fprintf(stderr, "faultline %s: error: %s (see faultline %s --help)\n", c.name, e.what(), c.name);
      studies::abort_all_ranks(kUsageError);
      return kUsageError;
    } catch (const Error& e) {
      if (runner->writer()) std::fprintf(stderr, "faultline %s: error: %s\n", c.name, with_flags(e.what()).c_str());
      studies::abort_all_ranks(kUsageError);
      return kUsageError;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "faultline %s: error: out of memory\n", c.name);
      studies::abort_all_ranks(1);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "faultline %s: internal error: %s\n", c.name, e.what());
      studies::abort_all_ranks(1);
      return 1;
    }
  }
  std::fprintf(stderr, "faultline: error: unknown command '%s'\n", name.c_str());
  print_usage(stderr);
  return kUsageError;
}
