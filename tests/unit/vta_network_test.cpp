// Whole networks on VTA (models/vta_substrate.h): a layer's read on the `vta` kind equals the
// fixed-point arithmetic of TVM's VTA flow computed directly, for several BATCH/BLOCK shapes;
// bit errors are keyed and counted; and LeNet-5 evaluated on the `vta` preset gives the same bits
// on any thread count, with calibrated int8 close to the float model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "hwcfg/hardware_config.h"
#include "models/error.h"
#include "models/vta_substrate.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "nn/train.h"
#include "studies/study.h"

using namespace faultline;
using models::MatrixRM;

namespace {

models::Params vta_params(const std::vector<std::pair<std::string, double>>& values) {
  const models::SubstrateKind* kind = models::find_substrate_kind("vta");
  models::Params p = models::default_params(kind->params);
  for (const auto& [name, value] : values) p.set_number(name, value);
  return p;
}

MatrixRM random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  MatrixRM m(rows, cols);
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = normal(rng);
  return m;
}

bool same_bits(const MatrixRM& a, const MatrixRM& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

// TVM's VTA arithmetic written out: int8 codes by power-of-two steps, int32 sums, rounding
// offset, arithmetic right shift, clip to int8, scale back.
MatrixRM fixed_point_reference(const MatrixRM& w, const MatrixRM& x, double input_range, double output_range) {
  const int ew = models::vta::power_of_two_step(w.cwiseAbs().maxCoeff());
  const int ex = models::vta::power_of_two_step(input_range);
  int ey = models::vta::power_of_two_step(output_range);
  const int shift = std::clamp(ey - ex - ew, 0, 31);
  ey = ex + ew + shift;
  const auto code = [](double v, int e) { return static_cast<std::int64_t>(std::clamp(std::nearbyint(std::ldexp(v, -e)), -127.0, 127.0)); };
  MatrixRM y(x.rows(), w.rows());
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index o = 0; o < w.rows(); ++o) {
      std::int64_t acc = shift > 0 ? std::int64_t{1} << (shift - 1) : 0;
      for (Eigen::Index c = 0; c < x.cols(); ++c) acc += code(x(r, c), ex) * code(w(o, c), ew);
      const std::int64_t v = std::clamp<std::int64_t>(acc >> shift, -128, 127);  // >> of a negative int64: arithmetic (C++20)
      y(r, o) = std::ldexp(static_cast<float>(v), ey);
    }
  return y;
}

}  // namespace

TEST(VtaSubstrate, PowerOfTwoSteps) {
  using models::vta::power_of_two_step;
  EXPECT_EQ(power_of_two_step(0), 0);
  EXPECT_EQ(power_of_two_step(127), 0);          // 127 / 2^0 = 127 fits
  EXPECT_EQ(power_of_two_step(127.0001), 1);     // just over: the next step
  EXPECT_EQ(power_of_two_step(63.5), -1);        // 63.5 / 2^-1 = 127
  EXPECT_EQ(power_of_two_step(1.0), -6);         // 1 / 2^-6 = 64 ≤ 127 < 128 = 1 / 2^-7
  EXPECT_EQ(power_of_two_step(254 * 1024.0), 11);
}

TEST(VtaSubstrate, ReadsEqualTheFixedPointArithmetic) {
  // Shapes that leave partial channel tiles and partial BATCH groups; a row past the calibrated
  // input range (clipped) and outputs past the output range (saturated).
  const MatrixRM w = random_matrix(21, 37, 1, 0.3f);
  MatrixRM x = random_matrix(13, 37, 2, 1.0f);
  x(4, 5) = 40.0f;
  const double input_range = 3.0, output_range = 4.0;
  const MatrixRM expected = fixed_point_reference(w, x, input_range, output_range);
  models::LayerInfo info{"dense", "Gemm", 3, 0};
  info.calibrated = true;
  info.input_range = input_range;
  info.output_range = output_range;
  for (const auto& shape : std::vector<std::pair<int, int>>{{0, 4}, {1, 3}, {2, 2}, {1, 4}}) {
    SCOPED_TRACE("log_batch " + std::to_string(shape.first) + ", log_block " + std::to_string(shape.second));
    // Buffers of 2048 ACC and 1024 WGT entries: the micro-op's index fields stay within 32 bits.
    auto s = models::create_substrate("vta", vta_params({{"log_batch", shape.first},
                                                         {"log_block", shape.second},
                                                         {"log_acc_buff_size", shape.first + shape.second + 2 + 11},
                                                         {"log_wgt_buff_size", 2 * shape.second + 10}}));
    s->program(w, info, {1, 0});
    MatrixRM y(x.rows(), w.rows());
    s->multiply(x, y, {0});
    EXPECT_TRUE(same_bits(y, expected)) << "max |difference| " << (y - expected).cwiseAbs().maxCoeff();
    // Rows are independent: the same rows read in two calls give the same bits.
    MatrixRM top(6, w.rows()), rest(7, w.rows());
    s->multiply(x.topRows(6), top, {0});
    s->multiply(x.bottomRows(7), rest, {6});
    EXPECT_TRUE(same_bits(top, expected.topRows(6)));
    EXPECT_TRUE(same_bits(rest, expected.bottomRows(7)));
    std::map<std::string, double> counters;
    s->add_counters(counters);
    EXPECT_GT(counters["gemm_counter"], 0);
    EXPECT_EQ(counters["flipped_bits"], 0);
  }
  // global_scale: one range for every activation, no calibration needed.
  auto g = models::create_substrate("vta", vta_params({{"global_scale", 8.0}}));
  g->program(w, models::LayerInfo{"dense", "Gemm", 3, 0}, {1, 0});
  MatrixRM y(x.rows(), w.rows());
  g->multiply(x, y, {0});
  EXPECT_TRUE(same_bits(y, fixed_point_reference(w, x, 8.0, 8.0)));
}

// A convolution on the feature map (stride, asymmetric padding, channels not a multiple of BLOCK,
// several images): TVM's arithmetic written out -- codes, the bias in accumulator steps plus
// half an output step, the sum over taps, SHR, clip.
TEST(VtaSubstrate, ConvolutionsOnTheFeatureMapEqualTheFixedPointArithmetic) {
  models::ConvShape s;
  s.in_channels = 5;
  s.height = 9;
  s.width = 11;
  s.out_channels = 19;
  s.kernel_h = 3;
  s.kernel_w = 2;
  s.stride_h = 2;
  s.stride_w = 1;
  s.pad_top = 1;
  s.pad_bottom = 2;
  s.pad_left = 1;
  s.pad_right = 0;
  s.out_h = (s.height + s.pad_top + s.pad_bottom - s.kernel_h) / s.stride_h + 1;
  s.out_w = (s.width + s.pad_left + s.pad_right - s.kernel_w) / s.stride_w + 1;
  const std::int64_t images = 3, k = s.in_channels * s.kernel_h * s.kernel_w;
  // Images inside a wider batch tensor (8 channels, this block's 5 first), as a grouped layer's.
  s.x_image_stride = 8 * s.height * s.width;
  s.y_image_stride = 2 * s.out_channels * s.out_h * s.out_w;
  const MatrixRM w = random_matrix(s.out_channels, k, 6, 0.2f);
  const MatrixRM x = random_matrix(images, s.x_image_stride, 7, 1.0f);
  std::vector<float> bias(static_cast<std::size_t>(s.out_channels));
  for (std::size_t o = 0; o < bias.size(); ++o) bias[o] = 0.3f * static_cast<float>(o % 5) - 0.6f;
  const double input_range = 2.5, output_range = 6.0;
  models::LayerInfo info{"conv", "Conv", 1, 0};
  info.calibrated = true;
  info.input_range = input_range;
  info.output_range = output_range;
  for (int log_batch : {0, 1}) {
    SCOPED_TRACE("log_batch " + std::to_string(log_batch));
    auto sub = models::create_substrate("vta", vta_params({{"log_batch", log_batch}, {"log_acc_buff_size", log_batch + 4 + 2 + 11}}));
    sub->program(w, info, {1, 0});
    std::vector<float> y(static_cast<std::size_t>(images * s.y_image_stride), -99.0f);
    ASSERT_TRUE(sub->convolve(s, x.data(), images, bias, y.data(), {0}));
    const int ew = models::vta::power_of_two_step(w.cwiseAbs().maxCoeff()), ex = models::vta::power_of_two_step(input_range);
    const int shift = std::clamp(models::vta::power_of_two_step(output_range) - ex - ew, 0, 31), ey = ex + ew + shift;
    const auto code = [](double v, int e) { return static_cast<std::int64_t>(std::clamp(std::nearbyint(std::ldexp(v, -e)), -127.0, 127.0)); };
    int mismatches = 0;
    for (std::int64_t i = 0; i < images; ++i)
      for (std::int64_t o = 0; o < s.out_channels; ++o)
        for (std::int64_t oy = 0; oy < s.out_h; ++oy)
          for (std::int64_t ox = 0; ox < s.out_w; ++ox) {
            std::int64_t acc = static_cast<std::int64_t>(std::nearbyint(std::ldexp(static_cast<double>(bias[static_cast<std::size_t>(o)]), -(ex + ew)))) +
                               (std::int64_t{1} << (shift - 1));
            for (std::int64_t c = 0; c < s.in_channels; ++c)
              for (std::int64_t ky = 0; ky < s.kernel_h; ++ky)
                for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
                  const std::int64_t iy = oy * s.stride_h - s.pad_top + ky, ix = ox * s.stride_w - s.pad_left + kx;
                  if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
                  acc += code(x(i, (c * s.height + iy) * s.width + ix), ex) * code(w(o, (c * s.kernel_h + ky) * s.kernel_w + kx), ew);
                }
            const float expected = std::ldexp(static_cast<float>(std::clamp<std::int64_t>(acc >> shift, -128, 127)), ey);
            mismatches += y[static_cast<std::size_t>(i * s.y_image_stride + (o * s.out_h + oy) * s.out_w + ox)] != expected;
          }
    EXPECT_EQ(mismatches, 0);
    EXPECT_GT(shift, 0);
    // Outside this block's outputs nothing is written.
    EXPECT_EQ(y[static_cast<std::size_t>(s.out_channels * s.out_h * s.out_w)], -99.0f);
  }
  // A dilated kernel is not lowered on the feature map: the engine's im2col path takes it.
  auto sub = models::create_substrate("vta", vta_params({}));
  sub->program(w, info, {1, 0});
  models::ConvShape dilated = s;
  dilated.dilation_h = 2;
  std::vector<float> y(static_cast<std::size_t>(images * s.y_image_stride));
  EXPECT_FALSE(sub->convolve(dilated, x.data(), images, bias, y.data(), {0}));
}

TEST(VtaSubstrate, ErrorsNameTheLayer) {
  const MatrixRM w = random_matrix(40, 300, 3, 0.1f);
  auto s = models::create_substrate("vta", vta_params({}));
  try {
    s->program(w, models::LayerInfo{"fc9", "Gemm", 0, 0}, {1, 0});
    FAIL() << "an uncalibrated layer was programmed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'fc9' on vta: no calibrated activation ranges"), std::string::npos) << e.what();
  }
  // 38 input tiles of weights for each output tile (600 inputs) exceed an 8 KiB WGT buffer (32
  // tiles), yet run: the default schedule steps through the input tiles.
  auto small = models::create_substrate("vta", vta_params({{"log_wgt_buff_size", 13}, {"global_scale", 8}}));
  EXPECT_NO_THROW(small->program(random_matrix(40, 600, 3, 0.1f), models::LayerInfo{"fc9", "Gemm", 0, 0}, {1, 0}));
  MatrixRM y(2, 40);
  EXPECT_NO_THROW(small->multiply(random_matrix(2, 600, 4, 1.0f), y, {0}));
  // A schedule whose input split does not divide the layer's 38 tiles: named at the first read.
  auto scheduled = models::create_substrate("vta", vta_params({{"global_scale", 8}, {"tile_b", 1}, {"tile_h", 1}, {"tile_w", 1}, {"tile_ci", 3},
                                                               {"tile_co", 1}, {"h_nthread", 1}, {"oc_nthread", 1}}));
  scheduled->program(random_matrix(40, 600, 3, 0.1f), models::LayerInfo{"fc9", "Gemm", 0, 0}, {1, 0});
  try {
    scheduled->multiply(random_matrix(2, 600, 4, 1.0f), y, {0});
    FAIL() << "a schedule that does not divide the layer ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer fc9 on VTA: schedule tile_ci 3 does not divide the layer's 38"), std::string::npos) << e.what();
  }
  // Half a schedule is refused when the substrate is made.
  EXPECT_THROW(models::create_substrate("vta", vta_params({{"tile_b", 1}, {"tile_h", 0}, {"tile_w", 0}, {"tile_ci", 0}, {"tile_co", 0}, {"h_nthread", 0},
                                                           {"oc_nthread", 0}})),
               Error);
}

TEST(VtaSubstrate, BitErrorsAreKeyedAndCounted) {
  const MatrixRM w = random_matrix(24, 50, 4, 0.2f);
  const MatrixRM x = random_matrix(40, 50, 5, 1.0f);
  models::LayerInfo info{"fc", "Gemm", 2, 0};
  info.calibrated = true;
  info.input_range = 3;
  info.output_range = 5;
  const auto read = [&](double rate, std::uint64_t seed, std::uint64_t trial, std::uint64_t first_row, double* flips = nullptr) {
    auto s = models::create_substrate("vta", vta_params({{"acc_bit_error_rate", rate}, {"inp_bit_error_rate", rate}}));
    s->program(w, info, {seed, trial});
    MatrixRM y(x.rows(), w.rows());
    s->multiply(x, y, {first_row});
    std::map<std::string, double> counters;
    s->add_counters(counters);
    if (flips) *flips = counters["flipped_bits"];
    return y;
  };
  double clean_flips = -1, flips = 0;
  const MatrixRM clean = read(0, 1, 0, 0, &clean_flips);
  EXPECT_EQ(clean_flips, 0);
  EXPECT_TRUE(same_bits(clean, fixed_point_reference(w, x, 3, 5)));
  const MatrixRM a = read(1e-3, 1, 0, 0, &flips);
  EXPECT_TRUE(same_bits(a, read(1e-3, 1, 0, 0)));   // same key: same flips
  EXPECT_FALSE(same_bits(a, clean));
  EXPECT_FALSE(same_bits(a, read(1e-3, 2, 0, 0)));  // seed
  EXPECT_FALSE(same_bits(a, read(1e-3, 1, 1, 0)));  // trial
  EXPECT_FALSE(same_bits(a, read(1e-3, 1, 0, 40))); // the read's rows
  // The flips' count against the bits written: INP (LOADs of the 40 × 64 codes) and ACC (bias
  // loads, GEMM and ALU write-backs, each 16 × 32 bits) -- at least the GEMM write-backs:
  // 40 rows × 2 output tiles × 4 input tiles micro-ops. A binomial count with p = 1e-3 over ≥ 163 840
  // bits has mean ≥ 164 and σ ≤ 13: ≥ 100 flips holds with > 5σ.
  EXPECT_GE(flips, 100);
}

namespace {

class VtaNetwork : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const nn::Dataset train = nn::load_mnist_family("fashion-mnist", true);
    test_ = new nn::Dataset(nn::load_mnist_family("fashion-mnist", false));
    // LeNet-5 trained briefly: accuracy well above chance, so that quantization is visible.
    nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 1);
    nn::TrainOptions o;
    o.epochs = 1;
    o.threads = 2;
    nn::Dataset subset = train;
    subset.count = 3000;
    subset.images.resize(static_cast<std::size_t>(subset.count * train.image_size()));
    subset.labels.resize(static_cast<std::size_t>(subset.count));
    net.train(subset, o);
    onnx_ = new std::string(net.to_onnx());
  }
  static void TearDownTestSuite() {
    delete test_;
    delete onnx_;
  }
  static studies::StudyResult study(const std::string& hw, int threads, int trials, std::int64_t chunk = 64) {
    auto graph = nn::parse_onnx(*onnx_, "lenet5");
    studies::StudyOptions so;
    so.eval.limit = 300;
    so.eval.threads = threads;
    so.eval.chunk = chunk;
    so.trials = trials;
    so.seed = 3;
    return studies::run_study(*graph, hwcfg::load_hardware_config(hw), *test_, so);
  }
  static nn::Dataset* test_;
  static std::string* onnx_;
};
nn::Dataset* VtaNetwork::test_ = nullptr;
std::string* VtaNetwork::onnx_ = nullptr;

void expect_same_result(const studies::StudyResult& a, const studies::StudyResult& b) {
  EXPECT_EQ(a.accuracies, b.accuracies);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].rms_error, b.layers[l].rms_error) << a.layers[l].name;
    EXPECT_EQ(a.layers[l].counters, b.layers[l].counters) << a.layers[l].name;
  }
}

}  // namespace

TEST_F(VtaNetwork, LeNetOnVtaIsCalibratedInt8AndThreadIndependent) {
  const studies::StudyResult ideal = study("ideal", 2, 1);
  const studies::StudyResult one = study("vta", 1, 1);
  expect_same_result(one, study("vta", 2, 1));
  // Another batching of the images: the reads (and so the VTA programs and their counters) differ,
  // the arithmetic per image does not (static calibrated scales).
  EXPECT_EQ(one.accuracies, study("vta", 2, 1, 17).accuracies);
  // Calibrated int8 with 8-bit outputs: every layer well above 20 dB against the exact product of
  // its inputs (a deterministic property of this network, not a statistical one), and the network
  // as accurate as the float model within 5 points on these 300 images.
  for (const auto& layer : one.layers) {
    EXPECT_EQ(layer.kind, "vta");
    EXPECT_GT(layer.snr_db, 20) << layer.name;
    EXPECT_GT(layer.counters.at("gemm_counter"), 0) << layer.name;
  }
  EXPECT_GT(ideal.mean, 0.5);
  EXPECT_NEAR(one.mean, ideal.mean, 0.05);
}

TEST_F(VtaNetwork, SramFaultsCostAccuracyReproducibly) {
  const studies::StudyResult clean = study("vta", 2, 1);
  const studies::StudyResult faulty = study("vta_sram_faults", 2, 2);
  const studies::StudyResult again = study("vta_sram_faults", 1, 2);
  expect_same_result(faulty, again);
  double flips = 0;
  for (const auto& layer : faulty.layers) flips += layer.counters.at("flipped_bits");
  EXPECT_GT(flips, 0);
  // Not a statistical claim: with ~10^4 flipped bits per trial in partial sums and codes the
  // network cannot stay as accurate (measured on LeNet-5: −13 points at 1e-5).
  EXPECT_LT(faulty.mean, clean.mean);
}
