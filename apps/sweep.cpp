// `faultline sweep`: grid sweeps over hardware fields and Walking Noise per layer, resumable and spread over MPI ranks.
#include "apps/cli.h"

#include "models/files.h"

#include "nn/dataset.h"
#include "hwcfg/hardware_config.h"
#include "nn/onnx_io.h"
#include "studies/mpi_runner.h"
#include "studies/sweep.h"

namespace faultline::app {


int cmd_sweep(const std::vector<std::string>& args) {
  studies::SweepOptions o;
  std::vector<std::string> axes;
  DataFlags data_flags;
  o.study.trials = 5;
  po::options_description options("sweep options");
  options.add_options()
      ("help,h", "show this help")
      ("threads", po::value<int>(&o.study.eval.threads)->default_value(studies::default_threads_per_rank()),
       "worker threads per process (default: all cores, divided among the MPI ranks on this machine)")
      ("model", po::value(&o.model)->required(), "ONNX classifier")
      ("data", po::value(&o.data)->default_value("fashion-mnist"), (kDataHelp + std::string(" (test split)")).c_str())
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
  add_data_options(options, &data_flags);
  po::variables_map vm;
  if (!parse("sweep", "--model MODEL.onnx (--sweep PATH=SPEC ... | --walking MODE) [options]", options, args, vm)) return 0;
  check_threads(o.study.eval.threads);
  if (o.study.eval.limit < 0) throw Error("--limit: must not be negative");
  for (const auto& a : axes) o.axes.push_back(studies::parse_sweep_axis(a));
  // The output prefix's folder is checked now: a long sweep must not fail at its first row.
  if (vm.count("out")) {
    if (o.out.empty()) throw Error("--out: the prefix is empty");
    check_output_file(o.out + ".jsonl", "--out");
  }
  hwcfg::load_hardware_config(o.hw, o.sets);  // a bad base description fails before the model is read
  auto graph = nn::load_onnx(o.model);
  const nn::Dataset test = load_data(o.data, false, data_flags);
  o.study.data_preprocessing = test.preprocessing;
  const bool writer = task_runner->writer();
  app::ProgressBar bar("sweeping", "rows");
  const studies::SweepOutcome r = studies::run_sweep(*graph, test, o, *task_runner, [&](const studies::SweepRow& row, bool resumed) {
    bar.finish();
    // The key holds sigma exactly (for the resume log); the terminal shows 4 significant digits.
    std::string label = row.key;
    if (!o.walking.empty()) {
      char sigma[32];
      std::snprintf(sigma, sizeof sigma, "%.4g", row.sigma);
      label = row.layer.empty() ? row.role : row.role + " layer=" + row.layer + " sigma=" + sigma;
    }
    std::printf("%s row %3d  %-40s accuracy %7.2f %% ± %5.2f\n", resumed ? "resumed " : "finished", row.index, label.c_str(),
                100 * row.result.mean, 100 * row.result.stddev);
    std::fflush(stdout);
  }, [&](std::int64_t done, std::int64_t planned) { bar.update(done, planned); });
  bar.finish();
  if (!writer) return 0;
  std::printf("\n%s", studies::sweep_table(r, o).c_str());
  std::printf("%d row(s) evaluated, %d taken from the log; %d process(es) x %d thread(s)\n", r.evaluated_rows, r.resumed_rows,
              task_runner->ranks(), o.study.eval.threads);
  if (!o.out.empty())
    std::printf("wrote %s.jsonl, %s.csv%s and %s.json\n", o.out.c_str(), o.out.c_str(),
                o.walking.empty() ? "" : (", " + o.out + ".midpoints.csv").c_str(), o.out.c_str());
  return 0;
}

}  // namespace faultline::app
