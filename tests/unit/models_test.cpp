// The hardware models: statistical checks with tolerances derived from the sample size, exact
// equalities where a model claims them, and reproducibility across thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "models/int16_gemm.h"
#include "models/int8_digital.h"
#include "models/mvm_int8.h"
#include "models/philox.h"
#include "models/quantize.h"
#include "models/substrate.h"
#include "hwcfg/hardware_config.h"
#include "nn/onnx_io.h"
#include "nn/op.h"
#include "studies/study.h"
#include "nn/train.h"

using namespace faultline;
using models::MatrixRM;

namespace {

MatrixRM random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t stream, float lo = -1, float hi = 1) {
  MatrixRM m(rows, cols);
  const models::CounterRng rng(7, stream);
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = lo + (hi - lo) * rng.uniform(static_cast<std::uint64_t>(k));
  return m;
}

models::Params params_for(const std::string& kind, const std::map<std::string, double>& numbers,
                          const std::map<std::string, std::string>& choices = {}) {
  models::Params p = models::default_params(models::find_substrate_kind(kind)->params);
  for (const auto& [k, v] : numbers) p.set_number(k, v);
  for (const auto& [k, v] : choices) p.set_choice(k, v);
  return p;
}

// The output error of an additive-noise layer has standard deviation σ. With N samples the sample
// variance s² satisfies (N−1)s²/σ² ~ χ²(N−1), so s²/σ² has standard deviation √(2/(N−1)); the
// test allows 4 of them (two-sided confidence 99.994 %).
TEST(Noise, AdditiveLayerErrorHasSigma) {
  for (double sigma : {0.01, 0.5, 3.0}) {
    auto s = models::create_substrate("noisy", params_for("noisy", {{"sigma_add", sigma}}));
    const MatrixRM w = random_matrix(64, 32, 1), x = random_matrix(500, 32, 2);
    s->program(w, {"l", "Gemm", 0, 0}, {3, 0});
    MatrixRM y(500, 64);
    s->multiply(x, y, {0});
    const MatrixRM err = y - x * w.transpose();
    const double n = static_cast<double>(err.size());
    const double mean = err.cast<double>().mean();
    const double var = (err.cast<double>().array() - mean).square().sum() / (n - 1);
    EXPECT_NEAR(var / (sigma * sigma), 1.0, 4 * std::sqrt(2 / (n - 1))) << "sigma " << sigma;
    EXPECT_NEAR(mean, 0.0, 4 * sigma / std::sqrt(n));
  }
}

// The same through a noise site attached after a non-linear op (Relu) in a graph.
TEST(Noise, SiteAfterAnyOpHasSigma) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  nn::NodeSpec relu;
  relu.name = "act";
  relu.op_type = "Relu";
  relu.opset = 13;
  relu.inputs = {"x"};
  relu.outputs = {"y"};
  g.add_node(relu);
  g.add_output("y");
  g.finalize();
  const double sigma = 0.25;
  EXPECT_EQ(g.set_noise_sites({{"act", "", static_cast<float>(sigma), 0.0f}}, 5, 0), std::vector<int>{1});
  nn::Tensor x({400, 50});
  for (std::int64_t k = 0; k < x.numel(); ++k) x.f()[k] = 1.0f;  // Relu(1) = 1
  const nn::Tensor y = g.run({x})[0];
  double sum = 0, sq = 0;
  for (std::int64_t k = 0; k < y.numel(); ++k) { sum += y.f()[k] - 1.0; sq += (y.f()[k] - 1.0) * (y.f()[k] - 1.0); }
  const double n = static_cast<double>(y.numel()), mean = sum / n, var = (sq - n * mean * mean) / (n - 1);
  EXPECT_NEAR(var / (sigma * sigma), 1.0, 4 * std::sqrt(2 / (n - 1)));
  // Noise is a function of (seed, trial, site, element): the same pass reproduces it exactly,
  // another trial (a new forward pass of the same images) draws new noise.
  EXPECT_EQ(g.run({x})[0].float_storage(), y.float_storage());
  g.set_noise_sites({{"act", "", static_cast<float>(sigma), 0.0f}}, 5, 1);
  EXPECT_NE(g.run({x})[0].float_storage(), y.float_storage());
}

// The fraction of stuck cells matches the configured rates: a binomial count with n cells has
// standard deviation √(n·p·(1−p)); 4.5 of them (two-sided confidence 99.9993 %).
TEST(Rram, StuckCellFractionsMatchRates) {
  const double p_low = 0.01, p_high = 0.03;
  auto s = models::create_substrate("rram_memory", params_for("rram_memory", {{"stuck_at_gmin_rate", p_low}, {"stuck_at_gmax_rate", p_high}}));
  s->program(random_matrix(256, 256, 3), {"l", "Gemm", 1, 0}, {11, 0});
  std::map<std::string, double> c;
  s->add_counters(c);
  const double n = c["cells"];
  ASSERT_EQ(n, 256.0 * 256 * 4);  // 8-bit weights in 2-bit cells
  for (auto [key, p] : {std::pair<const char*, double>{"stuck_at_gmin", p_low}, {"stuck_at_gmax", p_high}})
    EXPECT_NEAR(c[key], n * p, 4.5 * std::sqrt(n * p * (1 - p))) << key;
}

TEST(Rram, NoiselessMemoryStoresQuantizedWeightsExactly) {
  auto s = models::create_substrate("rram_memory", params_for("rram_memory", {{"prog_sigma_slope", 0}, {"prog_sigma_offset", 0}}));
  const MatrixRM w = random_matrix(8, 16, 4);
  s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
  MatrixRM eye = MatrixRM::Identity(16, 16), y(16, 8);
  s->multiply(eye, y, {0});  // y = Wᵀ as stored
  const float scale = w.cwiseAbs().maxCoeff() / 127.0f;
  for (Eigen::Index r = 0; r < 8; ++r)
    for (Eigen::Index c = 0; c < 16; ++c) EXPECT_FLOAT_EQ(y(c, r), std::round(w(r, c) / scale) * scale);
  std::map<std::string, double> counters;
  s->add_counters(counters);
  EXPECT_EQ(counters["weight_errors"], 0.0);
}

TEST(Quantizer, OutputsOnGridInsideRangeAndSaturationFlagged) {
  for (int bits : {2, 4, 8}) {
    const models::SymmetricQuantizer q{2.5f, bits};
    const models::CounterRng rng(1, static_cast<std::uint64_t>(bits));
    for (std::uint64_t k = 0; k < 5000; ++k) {
      const float x = 8.0f * (rng.uniform(k) - 0.5f);
      bool saturated = false;
      const float v = q.quantize(x, &saturated);
      EXPECT_LE(std::abs(v), 2.5f + 1e-6f);
      const float steps = v / q.step();
      EXPECT_NEAR(steps, std::round(steps), 1e-4f);
      EXPECT_EQ(saturated, std::abs(x) / q.step() > q.max_code() + 0.5f) << x;
      if (!saturated) {
        EXPECT_LE(std::abs(v - x), q.step() / 2 + 1e-6f);
      }
    }
  }
}

TEST(Crossbar, WithoutImperfectionsEqualsTheExactProduct) {
  auto s = models::create_substrate("analog_crossbar", params_for("analog_crossbar",
      {{"prog_sigma_slope", 0}, {"prog_sigma_offset", 0}, {"dac_bits", 0}, {"adc_bits", 0}, {"out_noise", 0}, {"out_bound", 1e6}, {"tile_rows", 7}, {"tile_cols", 5}}));
  const MatrixRM w = random_matrix(12, 20, 5), x = random_matrix(9, 20, 6);
  s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
  MatrixRM y(9, 12);
  s->multiply(x, y, {0});
  const MatrixRM exact = x * w.transpose();
  EXPECT_LT((y - exact).norm() / exact.norm(), 1e-5);
}

TEST(Crossbar, AdcSaturationsAreCountedAndOutputsOnTheAdcGrid) {
  auto s = models::create_substrate("analog_crossbar", params_for("analog_crossbar",
      {{"prog_sigma_slope", 0}, {"prog_sigma_offset", 0}, {"dac_bits", 0}, {"adc_bits", 4}, {"out_noise", 0}, {"out_bound", 1.0}}));
  const MatrixRM w = random_matrix(6, 40, 7, 0.5, 1.0), x = random_matrix(10, 40, 8, 0.5, 1.0);
  s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
  MatrixRM y(10, 6);
  s->multiply(x, y, {0});
  std::map<std::string, double> c;
  s->add_counters(c);
  EXPECT_EQ(c["adc_conversions"], 60.0);
  EXPECT_EQ(c["adc_saturations"], 60.0);  // every dot product of positive values exceeds the bound 1
  // Saturated outputs sit on the top code: bound · |x|max · |w|max.
  for (Eigen::Index r = 0; r < 10; ++r)
    for (Eigen::Index j = 0; j < 6; ++j) EXPECT_NEAR(y(r, j), x.row(r).maxCoeff() * w.maxCoeff(), 1e-5);
}

TEST(Crossbar, FixedInputRangeClipsAndCountsDacSaturations) {
  models::Params p = params_for("analog_crossbar",
      {{"prog_sigma_slope", 0}, {"prog_sigma_offset", 0}, {"dac_bits", 0}, {"adc_bits", 0}, {"out_noise", 0}, {"out_bound", 1e6}, {"input_range", 0.5}},
      {{"input_scaling", "fixed"}});
  auto s = models::create_substrate("analog_crossbar", p);
  const MatrixRM w = random_matrix(3, 8, 14), x = random_matrix(4, 8, 15);  // inputs in [−1, 1]: about half clip at ±0.5
  s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
  MatrixRM y(4, 3);
  s->multiply(x, y, {0});
  const MatrixRM clipped = x.cwiseMax(-0.5f).cwiseMin(0.5f);
  EXPECT_LT((y - clipped * w.transpose()).cwiseAbs().maxCoeff(), 1e-5f);
  std::map<std::string, double> c;
  s->add_counters(c);
  EXPECT_EQ(c["dac_saturations"], static_cast<double>((x.array().abs() > 0.5f).count()));
}

// With leak, saturation, position gain and fixed pattern off, the analog MAC equals the hxtorch
// mock exactly: per 128-row chunk y = floor(gain·(x·w) + N(0, σ)), clamped to [−128, 127],
// chunks summed. The mock below is written independently, drawing the same keyed normals.
TEST(AnalogMac, EqualsTheChunkedMockExactly) {
  const double gain = 0.01, sigma = 2.0;
  auto s = models::create_substrate("analog_mac", params_for("analog_mac", {{"gain", gain}, {"noise_sigma", sigma}}));
  const MatrixRM w = random_matrix(10, 300, 9), x = random_matrix(7, 300, 10, 0.0, 1.0);
  const models::LayerInfo info{"l", "Gemm", 3, 1};
  const models::ProgramContext ctx{42, 5};
  s->program(w, info, ctx);
  MatrixRM y(7, 10);
  s->multiply(x, y, {100});
  const double ws = 63.0 / w.cwiseAbs().maxCoeff();
  const models::CounterRng rng(42, models::stream_id(5, 3, 1, models::Purpose::OutputNoise));
  for (Eigen::Index r = 0; r < 7; ++r) {
    const double xs = 31.0 / x.row(r).maxCoeff();
    for (Eigen::Index j = 0; j < 10; ++j) {
      double sum = 0;
      for (int c = 0; c < 3; ++c) {
        long dot = 0;
        for (int i = c * 128; i < std::min(300, (c + 1) * 128); ++i)
          dot += std::lround(std::round(x(r, i) * static_cast<float>(xs))) * std::lround(w(j, i) * static_cast<float>(ws));
        const std::uint64_t index = ((100 + static_cast<std::uint64_t>(r)) * 3 + c) * 10 + static_cast<std::uint64_t>(j);
        sum += std::clamp(std::floor(gain * static_cast<double>(dot) + sigma * rng.normal(index)), -128.0, 127.0);
      }
      const float expected = static_cast<float>(sum) * static_cast<float>(1.0 / (gain * static_cast<float>(xs) * static_cast<float>(ws)));
      EXPECT_EQ(y(r, j), expected) << r << "," << j;
    }
  }
}

// Sequential accumulation with saturation is not associative: the same inputs in another order
// give another result (Kuhn, Klein, Fröning 2023).
// The analog MAC's outputs and counters, hashed, for every accumulation order with leak,
// saturation, position gain and fixed pattern, and without them (the GEMM path): the hashes were
// taken from the scalar model before it was vectorized (issue 18), so these are its exact bits.
TEST(AnalogMac, SameBitsAsTheScalarModel) {
  const std::vector<std::pair<std::string, std::map<std::string, double>>> cases = {
      {"natural", {{"gain", 0.01}, {"saturation", 80}, {"position_gain_slope", 0.05}, {"fixed_pattern_sigma", 0.02}}},
      {"reversed", {{"gain", 0.01}, {"saturation", 80}, {"position_gain_slope", 0.05}, {"leak", 0.01}}},
      {"sorted", {{"gain", 0.02}, {"saturation", 40}, {"position_gain_slope", 0.1}, {"fixed_pattern_sigma", 0.05}}},
      {"random", {{"gain", 0.02}, {"saturation", 60}, {"leak", 0.02}, {"fixed_pattern_sigma", 0.02}}},
      {"natural", {{"gain", 0.01}, {"fixed_pattern_sigma", 0.02}}},
  };
  const std::vector<std::string> expected = {"5936a12abe0f223b", "918a9440034c9365", "2dc36b3900563b74", "9560ca0c3b5b90d8", "583882aee301d230"};
  std::vector<std::string> got;
  for (const auto& [order, numbers] : cases) {
    auto s = models::create_substrate("analog_mac", params_for("analog_mac", numbers, {{"order", order}}));
    s->program(random_matrix(70, 300, 31), {"l", "Gemm", 2, 1}, {9, 4});
    const MatrixRM x = random_matrix(37, 300, 32, -0.3f, 1.0f);
    MatrixRM y(37, 70);
    s->multiply(x, y, {5});
    std::map<std::string, double> c;
    s->add_counters(c);
    std::uint64_t h = 1469598103934665603ull;
    const auto mix = [&h](const void* p, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k) h = (h ^ static_cast<const unsigned char*>(p)[k]) * 1099511628211ull;
    };
    mix(y.data(), sizeof(float) * static_cast<std::size_t>(y.size()));
    for (const auto& [name, value] : c) mix(&value, sizeof value);
    char text[20];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
    got.push_back(text);
  }
  EXPECT_EQ(got, expected);
}

TEST(AnalogMac, OrderChangesTheResult) {
  const MatrixRM w = random_matrix(4, 128, 11), x = random_matrix(3, 128, 12, 0.0, 1.0);
  MatrixRM results[2];
  int k = 0;
  for (const char* order : {"natural", "reversed"}) {
    auto s = models::create_substrate("analog_mac", params_for("analog_mac", {{"gain", 0.05}, {"noise_sigma", 0.0}, {"saturation", 20.0}}, {{"order", order}}));
    s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
    results[k].resize(3, 4);
    s->multiply(x, results[k], {0});
    ++k;
  }
  EXPECT_GT((results[0] - results[1]).cwiseAbs().maxCoeff(), 0.0f);
  // Without saturation (and no noise) the order does not matter.
  MatrixRM plain[2];
  k = 0;
  for (const char* order : {"natural", "reversed"}) {
    auto s = models::create_substrate("analog_mac", params_for("analog_mac", {{"gain", 0.05}, {"noise_sigma", 0.0}}, {{"order", order}}));
    s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
    plain[k].resize(3, 4);
    s->multiply(x, plain[k], {0});
    ++k;
  }
  EXPECT_EQ(plain[0], plain[1]);
}

// Flipped bits: n·b stored bits each flip with probability p; 4.5 binomial standard deviations.
TEST(Int8, BitFlipsAtTheConfiguredRate) {
  const double ber = 0.01;
  auto s = models::create_substrate("int8_digital", params_for("int8_digital", {{"bit_error_rate", ber}}));
  s->program(random_matrix(128, 128, 13), {"l", "Gemm", 0, 0}, {1, 0});
  std::map<std::string, double> c;
  s->add_counters(c);
  const double bits = c["weights"] * 8;
  EXPECT_NEAR(c["flipped_bits"], bits * ber, 4.5 * std::sqrt(bits * ber * (1 - ber)));
}

// round_half_away is std::round on |x| < 2^22: every half-integer tie up to ±2^21, and random floats.
TEST(Quantize, RoundHalfAwayIsStdRound) {
  for (int k = -(1 << 22); k <= (1 << 22); ++k) {
    const float x = static_cast<float>(k) * 0.5f;
    ASSERT_EQ(models::round_half_away(x), std::round(x)) << x;
  }
  const models::CounterRng rng(5, 5);
  for (std::uint64_t k = 0; k < 2000000; ++k) {
    const float x = static_cast<float>((rng.uniform(k) * 2 - 1) * std::ldexp(1.0, static_cast<int>(k % 23)));
    ASSERT_EQ(models::round_half_away(x), std::round(x)) << x;
  }
  EXPECT_EQ(models::round_half_away(std::nextafter(0.5f, 0.0f)), 0.0f);
  EXPECT_EQ(models::round_half_away(-0.0f), 0.0f);
  // The bit-mask selects give the bits of the plain ternary form, signed zeros included (small
  // negatives round to +0 through round_half_even), over the same random floats.
  const auto ternary = [](float x) {
    const float r = models::round_half_even(x), d = x - r;
    return (d == 0.5f && x > 0.0f) ? r + 1.0f : (d == -0.5f && x < 0.0f) ? r - 1.0f : r;
  };
  for (std::uint64_t k = 0; k < 2000000; ++k) {
    const float x = static_cast<float>((rng.uniform(k) * 2 - 1) * std::ldexp(1.0, static_cast<int>(k % 23))), a = models::round_half_away(x), b = ternary(x);
    ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << x;
  }
}

// Truncated multipliers as an exact GEMM over bit planes (issue 18) give the int32 sums of the
// scalar twin of rtl/approx_mac_array (models::int8_matrix_vector) bit for bit: every drop 1..16,
// with bit flips (weights of -128), for float sums (300 inputs) and double sums (1100 inputs).
TEST(Int8, TruncatedProductPlanesEqualTheScalarMultipliers) {
  for (const Eigen::Index inputs : {300, 1100})
    for (int drop = 1; drop <= 16; ++drop) {
      const std::map<std::string, double> p = {{"approx_drop_bits", drop}, {"bit_error_rate", 0.05}};
      auto fast = models::create_substrate("int8_digital", params_for("int8_digital", p));
      auto scalar = models::create_substrate("int8_digital", params_for("int8_digital", p));
      const MatrixRM w = random_matrix(37, inputs, 21), x = random_matrix(9, inputs, 22, -3, 3);
      fast->program(w, {"l", "Gemm", 0, 0}, {1, 0});
      scalar->program(w, {"l", "Gemm", 0, 0}, {1, 0});
      auto* reference = dynamic_cast<models::Int8Substrate*>(scalar.get());
      ASSERT_NE(reference, nullptr);
      bool saw_minus_128 = false;
      for (std::int8_t code : reference->weight_codes()) saw_minus_128 = saw_minus_128 || code == -128;
      EXPECT_TRUE(saw_minus_128);
      reference->set_integer_product([&](const std::int8_t* xi, std::int64_t rows, std::int32_t* acc) {
        for (std::int64_t r = 0; r < rows; ++r)
          models::int8_matrix_vector(reference->weight_codes().data(), xi + r * inputs, acc + r * 37, 37, static_cast<int>(inputs), drop);
      });
      MatrixRM a(9, 37), b(9, 37);
      fast->multiply(x, a, {0});
      scalar->multiply(x, b, {0});
      ASSERT_EQ(a, b) << "drop " << drop << ", " << inputs << " inputs";
    }
}

nn::Dataset tiny_dataset() {
  nn::Dataset d;
  d.name = "tiny";
  d.count = 150;
  d.height = d.width = 28;
  const models::CounterRng rng(3, 3);
  d.images.resize(static_cast<std::size_t>(d.count * 784));
  d.labels.resize(static_cast<std::size_t>(d.count));
  for (std::size_t k = 0; k < d.images.size(); ++k) d.images[k] = rng.uniform(k);
  for (std::int64_t i = 0; i < d.count; ++i) d.labels[i] = static_cast<std::uint8_t>(rng.below(1000000 + static_cast<std::uint64_t>(i), 10));
  return d;
}

// Same seed, 1 and 2 threads: identical JSON results for every shipped preset.
TEST(Study, SameJsonForOneAndTwoThreads) {
  const nn::Dataset d = tiny_dataset();
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 2);
  for (const auto& preset : hwcfg::hardware_presets()) {
    const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(preset);
    std::string json[2];
    for (int t = 1; t <= 2; ++t) {
      auto g = nn::parse_onnx(net.to_onnx(), "lenet5");
      studies::StudyOptions o;
      o.trials = 2;
      o.seed = 9;
      o.eval.threads = t;
      o.eval.chunk = 16;
      json[t - 1] = studies::study_json(studies::run_study(*g, config, d, o), "m", "d", o);
    }
    EXPECT_EQ(json[0], json[1]) << preset;
  }
}

TEST(Study, ConfidenceIntervalUsesStudentT) {
  EXPECT_NEAR(studies::student_t95(1), 12.706, 1e-3);
  EXPECT_NEAR(studies::student_t95(9), 2.262, 1e-3);
  EXPECT_NEAR(studies::student_t95(1000), 1.962, 1e-3);
}

}  // namespace

// The machine-independent elementary functions (models/det_math.h) against libm: within 4 units
// in the last place of a double over the ranges the models use (libm itself is within 1 ulp), so
// they may differ from libm only in the last bits, never in what they compute.
TEST(DeterministicMath, AgreesWithLibmToAFewUlp) {
  const auto ulps = [](double a, double b) {
    if (a == b) return 0.0;
    return std::fabs(a - b) / (std::numeric_limits<double>::epsilon() * std::max(std::fabs(a), std::fabs(b)));
  };
  double worst_exp = 0, worst_log = 0, worst_pow = 0, worst_cos = 0, worst_tanh = 0, worst_expm1 = 0;
  const models::CounterRng rng(3, 9);
  for (std::uint64_t k = 0; k < 200000; ++k) {
    const double u = rng.uniform(k), v = rng.uniform(k + (1ull << 40));
    const double x = -700 + 1400 * u;                 // exp's whole range
    worst_exp = std::max(worst_exp, ulps(models::det::exp(x), std::exp(x)));
    const double small = (u - 0.5) * 2;                // near zero
    worst_expm1 = std::max(worst_expm1, ulps(models::det::expm1(small * 1e-3 * v), std::expm1(small * 1e-3 * v)));
    worst_expm1 = std::max(worst_expm1, ulps(models::det::expm1(small), std::expm1(small)));
    const double y = std::ldexp(0.5 + u, static_cast<int>(v * 200) - 100);  // log over 60 decades
    worst_log = std::max(worst_log, ulps(models::det::log(y), std::log(y)));
    worst_pow = std::max(worst_pow, ulps(models::det::pow(1e-6 + u, -2 + 4 * v), std::pow(1e-6 + u, -2 + 4 * v)));
    worst_cos = std::max(worst_cos, std::fabs(models::det::cos(10 * (u - 0.5)) - std::cos(10 * (u - 0.5))) / std::numeric_limits<double>::epsilon());
    worst_tanh = std::max(worst_tanh, ulps(models::det::tanh(30 * (u - 0.5) * v), std::tanh(30 * (u - 0.5) * v)));
  }
  EXPECT_LE(worst_exp, 4);
  EXPECT_LE(worst_expm1, 4);
  EXPECT_LE(worst_log, 4);
  EXPECT_LE(worst_pow, 16);  // exp(b·log a): log's error grows by |b·log a| ≤ 28
  EXPECT_LE(worst_cos, 4);   // absolute, in units of 2^-52
  EXPECT_LE(worst_tanh, 8);
  // Special values.
  EXPECT_EQ(models::det::exp(0.0), 1.0);
  EXPECT_EQ(models::det::log(1.0), 0.0);
  EXPECT_EQ(models::det::exp(-1000.0), 0.0);
  EXPECT_TRUE(std::isinf(models::det::exp(1000.0)));
  EXPECT_TRUE(std::isnan(models::det::log(-1.0)));
  EXPECT_EQ(models::det::tanh(50.0), 1.0);
  EXPECT_EQ(models::det::tanh(-50.0), -1.0);
}

// Per-layer error measurement: the one-pass sums equal Eigen's squaredNorm expressions they
// replaced, to the bit, for contiguous and strided (a column block of a wider matrix) outputs.
TEST(LayerErrors, OnePassSumsEqualEigensSquaredNorms) {
  for (const auto& [rows, cols] : std::vector<std::pair<Eigen::Index, Eigen::Index>>{{1, 1}, {3, 5}, {64, 6}, {4096, 16}, {257, 120}}) {
    const MatrixRM exact = random_matrix(rows, cols, 11, -3, 3);
    const MatrixRM wide = random_matrix(rows, cols + 3, 12, -3, 3);
    for (int strided = 0; strided < 2; ++strided) {
      const Eigen::Ref<const MatrixRM> hardware = strided ? Eigen::Ref<const MatrixRM>(wide.leftCols(cols)) : Eigen::Ref<const MatrixRM>(exact + wide.leftCols(cols) * 1e-3f);
      const nn::LinearLayer::ErrorStats s = nn::LinearLayer::read_error(hardware, exact);
      const double error_sq = (hardware - exact).cast<double>().squaredNorm();
      const double signal_sq = exact.cast<double>().squaredNorm();
      EXPECT_EQ(std::memcmp(&s.error_sq, &error_sq, sizeof(double)), 0) << rows << "x" << cols << " strided " << strided;
      EXPECT_EQ(std::memcmp(&s.signal_sq, &signal_sq, sizeof(double)), 0) << rows << "x" << cols;
      EXPECT_EQ(s.count, static_cast<std::uint64_t>(rows * cols));
    }
  }
}

// Substrates that hand over the exact product with their output (multiply_keeping_exact) give
// the same output bits as multiply() and the engine's reference product x · Wᵀ (ideal, and
// Walking Noise's output noise, both kinds that keep it).
TEST(LayerErrors, KeptExactProductsAreTheReferenceBits) {
  const MatrixRM w = random_matrix(6, 25, 21), x = random_matrix(300, 25, 22);
  int keeping = 0;
  for (const std::string& kind : {std::string("ideal"), std::string("noisy")}) {
    models::Params p = models::default_params(models::find_substrate_kind(kind)->params);
    if (kind == "noisy") {
      p.set_number("sigma_add", 0.1);
      p.set_number("sigma_mul", 0.05);
    }
    auto s = models::create_substrate(kind, p);
    models::ProgramContext context;
    context.seed = 5;
    s->program(w, models::LayerInfo{"layer", "Gemm", 1, 0}, context);
    MatrixRM y(x.rows(), 6), y_kept(x.rows(), 6), exact(x.rows(), 6);
    const models::MultiplyContext read{1000, 1};
    s->multiply(x, y, read);
    ASSERT_TRUE(s->multiply_keeping_exact(x, y_kept, exact, read)) << kind;
    ++keeping;
    const MatrixRM reference = x * w.transpose();
    EXPECT_EQ(std::memcmp(y.data(), y_kept.data(), sizeof(float) * y.size()), 0) << kind;
    EXPECT_EQ(std::memcmp(exact.data(), reference.data(), sizeof(float) * exact.size()), 0) << kind;
    if (kind == "noisy") {
      EXPECT_GT((y - exact).norm(), 0.0f);
    }
  }
  EXPECT_EQ(keeping, 2);
}

// The 16-bit integer GEMM (AVX2 on this machine) against an int64 definition: every edge of its
// 2 × 4 blocking (rows 1..5, outputs 1..9), depths 16..80, extreme operands.
TEST(Int16Gemm, EqualsTheDefinition) {
  const models::CounterRng rng(9, 9);
  std::uint64_t draw = 0;
  for (std::size_t rows = 1; rows <= 5; ++rows)
    for (std::size_t outs = 1; outs <= 9; ++outs)
      for (std::size_t depth = 16; depth <= 80; depth += 32) {
        std::vector<std::int16_t> a(rows * depth), b(outs * depth);
        for (auto& v : a) v = static_cast<std::int16_t>(static_cast<std::int32_t>(rng.below(draw++, 257)) - 128);
        for (auto& v : b) v = static_cast<std::int16_t>(static_cast<std::int32_t>(rng.below(draw++, 257)) - 128);
        if (rows == 5 && outs == 9) {
          std::fill(a.begin(), a.end(), std::int16_t{-128});
          std::fill(b.begin(), b.end(), std::int16_t{-128});
        }
        std::vector<std::int32_t> c(rows * outs, -1);
        models::int16_gemm_nt(a.data(), rows, b.data(), outs, depth, c.data());
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t o = 0; o < outs; ++o) {
            std::int64_t sum = 0;
            for (std::size_t k = 0; k < depth; ++k) sum += std::int64_t{a[r * depth + k]} * b[o * depth + k];
            ASSERT_EQ(c[r * outs + o], sum) << rows << "x" << outs << "x" << depth << " at " << r << "," << o;
          }
      }
}
