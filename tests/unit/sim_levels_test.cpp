// The cycle level changes no value: layer outputs, network outputs and accuracy are bit-identical
// to the functional level for the same seed; its per-layer counters add up to what the modules
// counted; and its cycles and energy do not depend on the thread count.
//
// SystemC elaborates once per process: every TEST runs as its own process under CTest.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "studies/hardware.h"
#include "studies/levels.h"
#include "models/error.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "studies/study.h"
#include "nn/train.h"
#include "traces/trace.h"

using namespace faultline;

namespace {

const std::vector<std::string> kPresets = {"rram_memory", "rram_crossbar", "bss2_analog", "vta", "ipu_small"};

// LeNet-5 trained briefly, so that accuracy means something (about 75 % on the test images).
std::unique_ptr<nn::Graph> trained_lenet(const nn::Dataset& train) {
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 1);
  nn::TrainOptions o;
  o.epochs = 1;
  o.threads = 2;
  nn::Dataset subset = train;
  const std::int64_t n = 4000;
  subset.count = n;
  subset.images.resize(static_cast<std::size_t>(n * train.image_size()));
  subset.labels.resize(static_cast<std::size_t>(n));
  net.train(subset, o);
  return nn::parse_onnx(net.to_onnx(), "lenet5");
}

std::vector<hwcfg::HardwareConfig> presets() {
  std::vector<hwcfg::HardwareConfig> configs;
  for (const auto& p : kPresets) configs.push_back(hwcfg::load_hardware_config(p));
  return configs;
}

// Each layer's block-0 product of a fixed input, as programmed for trial `trial`.
std::vector<models::MatrixRM> layer_products(nn::Graph& graph, const hwcfg::HardwareConfig& config, std::uint64_t trial) {
  studies::program(config, graph, {7, trial});
  std::vector<models::MatrixRM> out;
  for (nn::LinearLayer* layer : graph.layers()) {
    const auto& block = layer->blocks()[0];
    std::srand(static_cast<unsigned>(block.weights.cols()));
    const models::MatrixRM x = models::MatrixRM::Random(50, block.weights.cols()).cwiseAbs();
    models::MatrixRM y(50, block.weights.rows());
    block.substrate->multiply(x, y, {123});
    out.push_back(y);
  }
  return out;
}

bool same_bits(const models::MatrixRM& a, const models::MatrixRM& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

TEST(Levels, CycleLevelIsBitIdenticalAndAddsUp) {
  const nn::Dataset train = nn::load_mnist_family("fashion-mnist", true);
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  auto graph = trained_lenet(train);

  studies::StudyOptions so;
  so.trials = 2;
  so.seed = 7;
  so.eval.limit = 1000;
  so.eval.threads = 2;

  // Functional level first (no SystemC involved).
  std::vector<hwcfg::HardwareConfig> functional = presets();
  std::vector<studies::StudyResult> f_results;
  std::vector<std::vector<models::MatrixRM>> f_products;
  std::vector<std::vector<nn::Tensor>> f_outputs;
  nn::Tensor batch(nn::Shape{16, 1, 28, 28});
  std::memcpy(batch.f(), test.images.data(), sizeof(float) * static_cast<std::size_t>(batch.numel()));
  for (const auto& config : functional) {
    f_results.push_back(studies::run_study(*graph, config, test, so));
    f_products.push_back(layer_products(*graph, config, 1));
    f_outputs.push_back(graph->run({batch}));
  }

  // Cycle level: one elaboration for all three.
  std::vector<hwcfg::HardwareConfig> cycle = presets();
  auto simulation = studies::attach_cycle_level(cycle, *graph, "");
  studies::StudyOptions cso = so;
  cso.after_evaluate = [&] { simulation->run_pending(); };
  for (std::size_t c = 0; c < cycle.size(); ++c) {
    SCOPED_TRACE(kPresets[c]);
    std::map<std::size_t, sim::Counters> before;
    for (std::size_t u = 0; u < simulation->units(); ++u) before[u] = simulation->unit_totals(u);
    const double t0 = simulation->simulated_seconds();
    const studies::StudyResult r = studies::run_study(*graph, cycle[c], test, cso);
    const double t1 = simulation->simulated_seconds();
    std::size_t unit = simulation->units();
    for (std::size_t u = 0; u < simulation->units(); ++u)
      if (simulation->unit(u).name.rfind(cycle[c].name + ".", 0) == 0) unit = u;
    ASSERT_LT(unit, simulation->units());
    const sim::Counters after = simulation->unit_totals(unit);

    // Same values.
    EXPECT_EQ(r.accuracies, f_results[c].accuracies);
    ASSERT_EQ(r.layers.size(), f_results[c].layers.size());
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      EXPECT_EQ(r.layers[l].rms_error, f_results[c].layers[l].rms_error) << r.layers[l].name;
      EXPECT_GT(r.layers[l].counters.at("cycles"), 0) << r.layers[l].name;
      if (kPresets[c] == "vta") {
        // Every GEMM micro-op takes a cycle of the compute module, and a read lasts at least as
        // long as its compute module is busy.
        const auto& k = r.layers[l].counters;
        EXPECT_GE(k.at("compute_busy_cycles"), k.at("gemm_counter")) << r.layers[l].name;
        EXPECT_GE(k.at("cycles"), k.at("compute_busy_cycles")) << r.layers[l].name;
        EXPECT_EQ(k.at("gemm_counter"), f_results[c].layers[l].counters.at("gemm_counter")) << r.layers[l].name;
      }
    }
    const auto products = layer_products(*graph, cycle[c], 1);
    for (std::size_t l = 0; l < products.size(); ++l) EXPECT_TRUE(same_bits(products[l], f_products[c][l])) << "layer " << l;
    const auto outputs = graph->run({batch});
    ASSERT_EQ(outputs.size(), f_outputs[c].size());
    EXPECT_EQ(std::memcmp(outputs[0].f(), f_outputs[c][0].f(), sizeof(float) * static_cast<std::size_t>(outputs[0].numel())), 0);
    simulation->run_pending();  // the reads above were recorded too; drain them before the next study

    // Per-layer counters add up to what the unit's modules counted during the study.
    const auto delta = [&](const std::string& key) { return after.at(key) - (before[unit].count(key) ? before[unit].at(key) : 0.0); };
    double energy = 0, macs = 0, cycles_time = 0;
    for (const auto& l : r.layers) {
      energy += l.counters.at("energy_pj") + l.counters.at("program_energy_pj");
      macs += l.counters.at("macs");
      cycles_time += l.counters.at("time_ns") + l.counters.at("program_time_ns");
    }
    EXPECT_NEAR(energy, delta("energy_pj"), 1e-9 * energy);
    EXPECT_EQ(macs, delta("macs"));
    // Operations run back to back: the layers' times (from the exact clock) add up to the
    // simulated time (whole-picosecond periods: a 1330 MHz clock ticks every 752 ps, not 751.88).
    const sim::UnitSpec& spec = simulation->unit(unit);
    const auto& n = spec.timing.numbers().count("clock_mhz") ? spec.timing.numbers() : spec.params.numbers();
    const double exact_ps = 1e6 / n.at("clock_mhz"), period_rounding = std::fabs(std::round(exact_ps) - exact_ps) / exact_ps;
    EXPECT_NEAR(cycles_time * 1e-9, t1 - t0, (1e-12 + period_rounding) * (t1 - t0) + 1e-15);
  }
}

TEST(Levels, CycleCountersDoNotDependOnThreads) {
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 3);
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5");
  std::vector<hwcfg::HardwareConfig> configs = presets();
  auto simulation = studies::attach_cycle_level(configs, *graph, "");
  for (const auto& config : configs) {
    SCOPED_TRACE(config.name);
    std::vector<std::vector<std::map<std::string, double>>> runs;
    for (int threads : {1, 2}) {
      studies::StudyOptions so;
      so.seed = 3;
      so.eval.limit = 300;
      so.eval.threads = threads;
      so.after_evaluate = [&] { simulation->run_pending(); };
      const studies::StudyResult r = studies::run_study(*graph, config, test, so);
      std::vector<std::map<std::string, double>> layers;
      for (const auto& l : r.layers) layers.push_back(l.counters);
      runs.push_back(layers);
    }
    EXPECT_EQ(runs[0], runs[1]);
  }
}

}  // namespace

namespace {

// A noise trace taken at the cycle level holds the same rows, bit for bit, as one taken at the
// functional level (the cycle level changes no value), for every layer.
TEST(Levels, TraceAtTheCycleLevelEqualsTheFunctionalTrace) {
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 3);
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5");
  studies::StudyOptions so;
  so.eval.limit = 60;
  so.eval.threads = 2;
  so.seed = 5;
  std::vector<hwcfg::HardwareConfig> functional = {hwcfg::load_hardware_config("rram_crossbar")};
  std::vector<traces::LayerTrace> f;
  {
    traces::TraceRecorder recorder(*graph, functional[0], 100, 9);
    studies::run_study(*graph, functional[0], test, so);
    f = recorder.layers();
  }
  std::vector<hwcfg::HardwareConfig> cycle = {hwcfg::load_hardware_config("rram_crossbar")};
  auto simulation = studies::attach_cycle_level(cycle, *graph, "");
  so.after_evaluate = [&simulation] { simulation->run_pending(); };
  traces::TraceRecorder recorder(*graph, cycle[0], 100, 9);
  studies::run_study(*graph, cycle[0], test, so);
  const auto c = recorder.layers();
  ASSERT_EQ(f.size(), c.size());
  for (std::size_t l = 0; l < f.size(); ++l) {
    EXPECT_EQ(f[l].hardware, c[l].hardware) << f[l].name;
    EXPECT_EQ(f[l].ideal, c[l].ideal) << f[l].name;
    EXPECT_FALSE(f[l].hardware.empty());
  }
}

}  // namespace
