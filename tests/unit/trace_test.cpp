// Noise traces: the recorded rows are the same for any thread count and hold exactly what the
// layer computed; the fit recovers a known signal-dependent noise; the trace_noise substrate
// replays the noise it is given; a written trace reads back bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "models/philox.h"
#include "models/substrate.h"
#include "models/trace_noise.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "studies/study.h"
#include "nn/train.h"
#include "traces/trace.h"

using namespace faultline;
namespace fs = std::filesystem;

namespace {

std::vector<traces::LayerTrace> record(nn::Graph& graph, const hwcfg::HardwareConfig& config, const nn::Dataset& data, int threads) {
  traces::TraceRecorder recorder(graph, config, 300, 5);
  studies::StudyOptions so;
  so.eval.limit = 200;
  so.eval.threads = threads;
  so.seed = 3;
  studies::run_study(graph, config, data, so);
  return recorder.layers();
}

TEST(Trace, RowsAreTheSameForAnyThreadCountAndMatchTheLayer) {
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 2);
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5");
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config("rram_crossbar");
  const auto one = record(*graph, config, test, 1);
  const auto two = record(*graph, config, test, 2);
  ASSERT_EQ(one.size(), 5u);
  for (std::size_t l = 0; l < one.size(); ++l) {
    EXPECT_EQ(one[l].ideal, two[l].ideal) << one[l].name;
    EXPECT_EQ(one[l].hardware, two[l].hardware) << one[l].name;
    EXPECT_EQ(one[l].rows_seen, two[l].rows_seen);
    // conv1 reads 784 rows per image, fc layers one: at most 300 rows are kept.
    const std::size_t rows = one[l].ideal.size() / static_cast<std::size_t>(one[l].outputs);
    EXPECT_EQ(rows, std::min<std::uint64_t>(300, one[l].rows_seen)) << one[l].name;
    EXPECT_NE(one[l].ideal, one[l].hardware) << one[l].name;  // the crossbar is not exact
  }
  EXPECT_EQ(one[0].rows_seen, 200u * 784u);
  EXPECT_EQ(one[2].rows_seen, 200u);
  // fc1's kept rows are all 200 reads; its ideal output is the exact product of fc1's weights
  // with its input, which the ideal hardware reproduces: trace the ideal preset and compare.
  const auto ideal = record(*graph, hwcfg::load_hardware_config("ideal"), test, 2);
  EXPECT_EQ(ideal[2].ideal, ideal[2].hardware);
}

TEST(Trace, FitRecoversAKnownSignalDependentNoise) {
  // y uniform in [−4, 4]; e = (a + b|y|)·N(0, 1) with a = 0.05, b = 0.1.
  traces::LayerTrace t;
  t.name = "synthetic";
  t.outputs = 1;
  const std::size_t n = 200000;
  const models::CounterRng rng(11, 1);
  for (std::size_t k = 0; k < n; ++k) {
    const float y = 8.0f * rng.uniform(2 * k) - 4.0f;
    t.ideal.push_back(y);
    t.hardware.push_back(y + (0.05f + 0.1f * std::fabs(y)) * rng.normal(2 * k + 1));
  }
  const traces::LayerFit f = traces::fit_layer(t);
  // Each of the 20 bins holds 10 000 samples: a bin's σ estimate has relative standard error
  // 1/sqrt(2·10 000) ≈ 0.7 %, so a and b within 0.01 and 5 % hold far beyond 99.9 % confidence.
  EXPECT_NEAR(f.sigma_offset, 0.05, 0.01);
  EXPECT_NEAR(f.sigma_slope, 0.1, 0.005);
  // The quantiles of z are the standard normal's: at 200 000 samples the sampling standard error
  // of a central quantile is below 0.01 and of the 0.1 % quantile about 0.03; 0.1 is > 3 σ.
  const double normal[15] = {-3.090232, -2.326348, -1.644854, -1.281552, -0.841621, -0.524401, -0.253347, 0.0,
                             0.253347,  0.524401,  0.841621,  1.281552,  1.644854,  2.326348,  3.090232};
  for (std::size_t q = 0; q < 15; ++q) EXPECT_NEAR(f.quantiles[q], normal[q], 0.1) << "quantile " << q;
  EXPECT_FALSE(f.exact);
  traces::LayerTrace exact = t;
  exact.hardware = exact.ideal;
  EXPECT_TRUE(traces::fit_layer(exact).exact);
}

TEST(Trace, TraceNoiseSubstrateReplaysTheGivenNoise) {
  // The inverse CDF through the table: exact at the table's probabilities, linear between.
  std::array<double, 15> q{};
  for (std::size_t k = 0; k < 15; ++k) q[k] = static_cast<double>(k);
  EXPECT_DOUBLE_EQ(models::trace_quantile_z(q, 0.5), 7.0);
  EXPECT_DOUBLE_EQ(models::trace_quantile_z(q, 0.55), 7.5);
  EXPECT_DOUBLE_EQ(models::trace_quantile_z(q, 0.0001), 0.0);
  EXPECT_DOUBLE_EQ(models::trace_quantile_z(q, 0.9999), 14.0);
  // Replay with a = 0.2, b = 0.5, gaussian z: for y = 2 the error's σ is 1.2.
  const models::SubstrateKind* kind = models::find_substrate_kind("trace_noise");
  ASSERT_NE(kind, nullptr);
  models::Params p = models::default_params(kind->params);
  p.set_number("sigma_offset", 0.2);
  p.set_number("sigma_slope", 0.5);
  for (const char* shape : {"gaussian", "quantiles"}) {  // the default table is the standard normal's
    p.set_choice("shape", shape);
    auto s = models::create_substrate("trace_noise", p);
    models::MatrixRM w = models::MatrixRM::Constant(1000, 1, 2.0f);  // y = 2 for x = 1
    s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
    models::MatrixRM x = models::MatrixRM::Ones(20, 1), y(20, 1000);
    s->multiply(x, y, {0});
    const double mean = (y.array() - 2.0f).cast<double>().mean();
    const double var = (y.array() - 2.0f).cast<double>().square().mean() - mean * mean;
    // n = 20 000: the sample σ has standard error 1.2/sqrt(2n) = 0.006; 0.03 is 5 σ. z from the
    // 15-point normal table (linear between entries, held beyond ±3.09) has σ 1.02228 (its
    // inverse CDF integrated on 10^7 points).
    EXPECT_NEAR(std::sqrt(var), std::string(shape) == "quantiles" ? 1.2 * 1.02228 : 1.2, 0.03) << shape;
    EXPECT_NEAR(mean, 0.0, 5 * 1.2 / std::sqrt(20000.0)) << shape;
  }
}

TEST(Trace, WrittenTraceReadsBackBitForBit) {
  const fs::path dir = fs::temp_directory_path() / ("faultline_trace_test_" + std::to_string(::getpid()));
  traces::TraceMeta meta;
  meta.model = "m.onnx";
  meta.data = "fashion-mnist";
  meta.hardware = "hw";
  meta.hardware_source = "hw.yaml";
  meta.hwcfg_yaml = "name: hw\n";
  meta.level = "cycle";
  meta.seed = 9;
  meta.images = 12;
  meta.max_samples = 3;
  meta.accuracy = 0.1 + 0.2;
  traces::LayerTrace a;
  a.name = "features/conv.0";
  a.op = "Conv";
  a.outputs = 2;
  a.rows_seen = 77;
  a.ideal = {1.5f, -2.25f, 1e-30f, 3.0f};
  a.hardware = {1.25f, -2.0f, 0.0f, 3.5f};
  traces::write_trace(dir.string(), meta, {a});
  const traces::Trace t = traces::read_trace(dir.string());
  EXPECT_EQ(t.meta.accuracy, meta.accuracy);
  EXPECT_EQ(t.meta.level, "cycle");
  ASSERT_EQ(t.layers.size(), 1u);
  EXPECT_EQ(t.layers[0].name, a.name);
  EXPECT_EQ(t.layers[0].ideal, a.ideal);
  EXPECT_EQ(t.layers[0].hardware, a.hardware);
  EXPECT_EQ(t.layers[0].rows_seen, 77u);
  fs::remove(dir / "0_features_conv_0.hardware.npy");
  EXPECT_THROW(traces::read_trace(dir.string()), Error);
  EXPECT_THROW(traces::read_trace((dir / "nope").string()), Error);
  fs::remove_all(dir);
}

}  // namespace
