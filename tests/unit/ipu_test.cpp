// The `ipu` kind's functional level (models/ipu_substrate.h, issue 16 first part): plan formulas
// on a small case worked out by hand, plans within every tile's memory, the out-of-memory error,
// and the fp32/fp16 numerics against references computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "models/error.h"
#include "models/fp16.h"
#include "models/ipu_substrate.h"
#include "models/philox.h"

using namespace faultline;
using namespace faultline::models;
using namespace faultline::models::ipu;

namespace {
IpuUnitConfig tiny() {
  IpuUnitConfig c;
  c.tiles = 4;
  c.tile_memory_kib = 1;
  c.workers = 2;
  c.amp_macs_fp16 = 4;
  c.exchange_bytes_per_cycle = 2;
  c.exchange_latency = 10;
  c.sync_cycles = 5;
  c.tile_overhead_kib = 0;
  c.batch = 2;
  return c;
}

Params ipu_params(const IpuUnitConfig& c) {
  Params p = default_params(IpuUnitConfig::table().specs(c));
  p.set_choice("precision", c.precision);
  p.set_choice("rounding", c.rounding);
  return p;
}

MatrixRM random(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  MatrixRM m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}
}  // namespace

// 2 rows x 8 inputs -> 6 outputs, split 1 x 2 x 2 in fp16.32: slices of 2 rows, 4 inputs, 3 outputs.
TEST(IpuPlan, FormulasOnASmallCaseByHand) {
  const IpuPlan p = evaluate_plan(2, 8, 6, 1, 2, 2, tiny());
  EXPECT_EQ(p.tiles_used(), 4);
  EXPECT_EQ(p.weight_bytes, 4u * 3 * 2);   // 4 inputs x 3 outputs x 2 bytes
  EXPECT_EQ(p.input_bytes, 2u * 4 * 2);    // 2 rows x 4 inputs x 2 bytes
  EXPECT_EQ(p.partial_bytes, 2u * 3 * 4);  // 2 rows x 3 outputs x 4 bytes (fp32 partials)
  EXPECT_EQ(p.max_tile_bytes, 64u);
  // Inputs once per column split (2 x 8 x 2 x 2 = 64), weights once per row split (8 x 6 x 2 = 96),
  // partials once per reduction split (2 x 6 x 2 x 4 = 96): 256 bytes over 4 tiles.
  EXPECT_EQ(p.mean_tile_bytes, 64.0);
  EXPECT_EQ(p.supersteps, 2);
  EXPECT_EQ(p.sync_cycles, 10.0);                        // two syncs of 5
  EXPECT_EQ(p.exchange_cycles, (10 + 16 / 2) + (10 + 24 / 2) * 1.0);  // inputs, then one partial slice
  // 6 output elements per tile, 3 per worker, 4 products each at 4 / 2 MACs per worker-cycle: 6;
  // then 3 additions per worker for the one extra partial: 9.
  EXPECT_EQ(p.compute_cycles, 9.0);
  EXPECT_EQ(p.cycles(), 10.0 + 40.0 + 9.0);
  EXPECT_EQ(p.exchange_bytes, 64u + 2u * 6 * 1 * 4);
}

TEST(IpuPlan, PlansFitTheTilesAndTheErrorNamesWhatDoesNot) {
  IpuUnitConfig c;
  c.tiles = 64;
  c.tile_memory_kib = 16;
  c.tile_overhead_kib = 2;
  for (const auto& [rows, inputs, outputs] : {std::tuple<int, int, int>{16, 400, 120}, {16, 784, 256}, {1, 25, 6}, {64, 256, 256}, {16, 4096, 10}}) {
    const IpuPlan p = plan_matmul(rows, inputs, outputs, c, "fc");
    EXPECT_LE(p.max_tile_bytes, 16u * 1024) << inputs << "x" << outputs;
    EXPECT_LE(p.tiles_used(), 64);
    EXPECT_GE(static_cast<std::int64_t>(p.row_splits) * p.rows_per_tile, rows);
    EXPECT_GE(static_cast<std::int64_t>(p.reduction_splits) * p.inputs_per_tile, inputs);
    EXPECT_GE(static_cast<std::int64_t>(p.column_splits) * p.outputs_per_tile, outputs);
    // No cheaper plan among the candidates fits (the planner's promise), spot-checked on the
    // single-tile and the all-reduction plans.
    for (const IpuPlan& other : {evaluate_plan(rows, inputs, outputs, 1, 1, 1, c), evaluate_plan(rows, inputs, outputs, 1, 1, std::min(64, inputs), c)})
      if (other.max_tile_bytes <= 16u * 1024) EXPECT_LE(p.cycles(), other.cycles());
  }
  try {
    c.tiles = 4;
    plan_matmul(64, 4096, 4096, c, "huge");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("layer 'huge' on ipu: out of tile memory"), std::string::npos) << m;
    EXPECT_NE(m.find("a tile has 16384"), std::string::npos) << m;
  }
}

// fp32: the product to float precision; fp16.32 to nearest: within two fp16 steps of the product
// of the fp16-rounded operands; fp16.16 loses more; stochastic rounding: a seed gives the same
// bits, another trial other bits, and the mean over trials is nearer the exact product.
TEST(IpuNumerics, PrecisionsAndRounding) {
  const MatrixRM w = random(24, 100, 1) * 0.1f, x = random(5, 100, 2);
  const LayerInfo info{"fc", "Gemm", 0, 0};
  const auto run = [&](IpuUnitConfig c, std::uint64_t trial) {
    auto s = create_substrate("ipu", ipu_params(c));
    s->program(w, info, {7, trial});
    MatrixRM y(x.rows(), w.rows());
    s->multiply(x, y, {0});
    return y;
  };
  IpuUnitConfig c;
  c.tiles = 16;
  c.batch = 5;
  const MatrixRM exact = (x.cast<double>() * w.cast<double>().transpose()).cast<float>();
  c.precision = "fp32";
  EXPECT_LT((run(c, 0) - exact).cwiseAbs().maxCoeff(), 1e-4f);
  c.precision = "fp16.32";
  const MatrixRM y16 = run(c, 0);
  MatrixRM wh = w, xh = x;
  for (Eigen::Index i = 0; i < wh.size(); ++i) wh.data()[i] = fp16::to_float(fp16::from_float(wh.data()[i]));
  for (Eigen::Index i = 0; i < xh.size(); ++i) xh.data()[i] = fp16::to_float(fp16::from_float(xh.data()[i]));
  const MatrixRM ref = (xh.cast<double>() * wh.cast<double>().transpose()).cast<float>();
  for (Eigen::Index i = 0; i < y16.size(); ++i) {
    const float r = ref.data()[i], v = y16.data()[i];
    EXPECT_EQ(fp16::to_float(fp16::from_float(v)), v);  // results are halves
    const float step = std::max(std::ldexp(1.0f, std::ilogb(std::max(std::fabs(r), 1e-4f)) - 10), std::ldexp(1.0f, -24));
    EXPECT_LE(std::fabs(v - r), 2 * step) << i;
  }
  c.precision = "fp16.16";
  const double e16 = (run(c, 0) - exact).norm(), e32 = (y16 - exact).norm();
  EXPECT_GT(e16, e32);
  c.precision = "fp16.32";
  c.rounding = "stochastic";
  const MatrixRM s0 = run(c, 0);
  EXPECT_EQ(run(c, 0), s0);
  EXPECT_NE(run(c, 1), s0);
  MatrixRM mean = MatrixRM::Zero(s0.rows(), s0.cols());
  for (std::uint64_t t = 0; t < 64; ++t) mean += run(c, t) / 64.0f;
  EXPECT_LT((mean - exact).norm(), (s0 - exact).norm());
}

namespace {
// The model's arithmetic written plainly, one output element at a time (the substrate computes
// eight rows at once): products summed one by one within groups of 16 inputs, groups into the
// tile's partial, the tiles' partials in tile order, fp16 roundings where the precision asks,
// stochastic draws four per Philox block (two for values below 2^-33), four rows of one output sharing a block, keyed as the substrate keys them.
MatrixRM reference_product(const MatrixRM& w, const MatrixRM& x, const IpuUnitConfig& c, std::int64_t chunk, std::uint64_t seed, std::uint64_t trial,
                           std::uint64_t first_row) {
  const bool fp16 = c.precision != "fp32", half_partials = c.precision == "fp16.16", stochastic = c.rounding == "stochastic";
  const CounterRng weights(seed, stream_id(trial, 0, 0, Purpose::FpRoundWeight)), reads(seed, stream_id(trial, 0, 0, Purpose::FpRoundRead)),
      sums(seed, stream_id(trial, 0, 0, Purpose::FpRoundSum));
  const auto round = [&](float v, const CounterRng& rng, std::uint64_t index) {
    if (!stochastic) return fp16::to_float(fp16::from_float(v));
    std::uint64_t random = rng.block(index / 4)[index % 4];
    if (std::fabs(v) < 0x1p-33f) random |= static_cast<std::uint64_t>(rng.block(index / 4 + (std::uint64_t{1} << 62))[index % 4]) << 32;
    return fp16::to_float(fp16::from_float_stochastic(v, random));
  };
  const std::int64_t inputs = w.cols(), outputs = w.rows(), chunks = (inputs + chunk - 1) / chunk;
  MatrixRM wr = w;
  if (fp16)
    for (std::int64_t i = 0; i < wr.size(); ++i) wr.data()[i] = round(w.data()[i], weights, static_cast<std::uint64_t>(i));
  const std::uint64_t steps = static_cast<std::uint64_t>((chunk + 15) / 16 * chunks + chunks + 1);
  MatrixRM y(x.rows(), outputs);
  for (std::int64_t r = 0; r < x.rows(); ++r) {
    const std::uint64_t row = first_row + static_cast<std::uint64_t>(r);
    std::vector<float> xr(static_cast<std::size_t>(inputs));
    for (std::int64_t k = 0; k < inputs; ++k) xr[k] = fp16 ? round(x(r, k), reads, row * inputs + k) : x(r, k);
    for (std::int64_t o = 0; o < outputs; ++o) {
      // Rounding number s of (row, o) draws word row % 4 of block (row / 4 · steps + s) · outputs + o.
      std::uint64_t s = 0;
      const auto sum_index = [&](std::uint64_t step) { return (((row / 4) * steps + step) * outputs + o) * 4 + row % 4; };
      float total = 0;
      for (std::int64_t t = 0; t < chunks; ++t) {
        float partial = 0;
        for (std::int64_t g = t * chunk; g < std::min(inputs, (t + 1) * chunk); g += 16) {
          float group = 0;
          for (std::int64_t k = g; k < std::min({inputs, (t + 1) * chunk, g + 16}); ++k) group += xr[k] * wr(o, k);
          partial += group;
          if (half_partials) partial = round(partial, sums, sum_index(s++));
        }
        total = t == 0 ? partial : total + partial;
        if (half_partials && t > 0) total = round(total, sums, sum_index(s++));
      }
      y(r, o) = fp16 ? round(total, sums, sum_index(s)) : total;
    }
  }
  return y;
}
}  // namespace

// The vectorized product equals the plain reference bit for bit, for every precision and rounding,
// with a reduction split (the chunk from the plan), and row counts that are not a multiple of 8.
TEST(IpuNumerics, VectorizedProductEqualsThePlainOne) {
  const MatrixRM w = random(13, 300, 3) * 0.05f, x = random(19, 300, 4);
  for (const char* precision : {"fp32", "fp16.32", "fp16.16"})
    for (const char* rounding : {"nearest", "stochastic"}) {
      IpuUnitConfig c;
      c.tiles = 64;
      c.tile_memory_kib = 1.5;  // small tiles: the 300 inputs are split over several tiles
      c.tile_overhead_kib = 0;
      c.batch = 19;
      c.precision = precision;
      c.rounding = rounding;
      auto s = create_substrate("ipu", ipu_params(c));
      s->program(w, LayerInfo{"fc", "Gemm", 0, 0}, {11, 2});
      MatrixRM y(x.rows(), w.rows());
      s->multiply(x, y, {100, 1});
      const IpuPlan plan = plan_matmul(19, 300, 13, c, "fc");
      ASSERT_GT(plan.reduction_splits, 1) << precision;
      const MatrixRM ref = reference_product(w, x, c, plan.inputs_per_tile, 11, 2, 100);
      for (Eigen::Index i = 0; i < y.size(); ++i)
        ASSERT_EQ(fp16::float_bits(y.data()[i]), fp16::float_bits(ref.data()[i])) << precision << " " << rounding << " element " << i;
    }
}

// A convolution's reads are planned for batch × output positions rows (rows_per_sample), not for
// batch rows: the counters carry that plan, and the cycles count runs of `batch` images.
TEST(IpuPlan, ConvolutionsArePlannedForTheirOutputPositions) {
  IpuUnitConfig c = IpuUnitConfig{};
  c.tiles = 64;
  c.batch = 4;
  const MatrixRM w = random(6, 25, 5), x = random(8 * 36, 25, 6);  // 8 images of 6 x 6 output positions
  auto s = create_substrate("ipu", ipu_params(c));
  s->program(w, LayerInfo{"conv", "Conv", 0, 0}, {1, 0});
  MatrixRM y(x.rows(), w.rows());
  s->multiply(x, y, {0, 36});
  std::map<std::string, double> counters;
  s->add_counters(counters);
  const IpuPlan plan = plan_matmul(4 * 36, 25, 6, c, "conv");
  EXPECT_EQ(counters["max_tile_bytes"], static_cast<double>(plan.max_tile_bytes));
  EXPECT_EQ(counters["tiles_used"], static_cast<double>(plan.tiles_used()));
  EXPECT_DOUBLE_EQ(counters["plan_cycles"], 2 * plan.cycles());  // 8 images = 2 runs of 4
}

// A grouped product (a batched MatMul's 4 matrices of 2 x 2, 2 rows each) split over 2 tiles by
// group: each tile holds 2 groups -- 2 x (2 x 2) fp16 weights (16 B), 2 x (2 x 2) fp16 inputs
// (16 B), 2 x (2 x 2) fp32 partials (32 B); 8 outputs over 2 workers = 4 each, x 2 inputs at
// 4 / 2 MACs per cycle = 4 cycles; exchange 10 + 16 / 2 = 18; one sync of 5.
TEST(IpuPlan, GroupedProductsSplitTheirGroupsOverTiles) {
  const IpuPlan p = evaluate_plan(2, 2, 2, 1, 1, 1, tiny(), 4, 2);
  EXPECT_EQ(p.tiles_used(), 2);
  EXPECT_EQ(p.groups_per_tile, 2);
  EXPECT_EQ(p.weight_bytes, 16u);
  EXPECT_EQ(p.input_bytes, 16u);
  EXPECT_EQ(p.partial_bytes, 32u);
  EXPECT_EQ(p.compute_cycles, 4.0);
  EXPECT_EQ(p.exchange_cycles, 18.0);
  EXPECT_EQ(p.cycles(), 27.0);
  // Every tile's work adds up to the whole product; the plan's figures are tile 0's.
  const IpuPlan q = plan_matmul(2, 2, 2, tiny(), "grouped", 5);
  double macs = 0;
  for (int t = 0; t < q.tiles_used(); ++t) macs += tile_work(q, t, 0, tiny()).macs;
  EXPECT_EQ(macs, 5.0 * 2 * 2 * 2);
  EXPECT_GE(static_cast<std::int64_t>(q.group_splits) * q.groups_per_tile, 5);
}

// convolve() (the feature map converted once per element, all images' patches in one product)
// equals multiply() on the im2col rows plus the bias: for a padded, strided, dilated convolution
// of 3 images when rounding to nearest, and for a dense layer (1 x 1 images) with stochastic
// rounding too (each input element converted once either way, with the same key).
TEST(IpuNumerics, ConvolveEqualsMultiplyOnThePatches) {
  ConvShape s;
  s.in_channels = 2, s.height = 7, s.width = 6, s.out_channels = 5, s.kernel_h = 3, s.kernel_w = 2;
  s.stride_h = 2, s.stride_w = 1, s.dilation_h = 1, s.dilation_w = 2, s.pad_top = 1, s.pad_left = 1, s.pad_bottom = 1, s.pad_right = 0;
  s.out_h = (7 + 2 - 3) / 2 + 1, s.out_w = (6 + 1 - 3) / 1 + 1;
  s.x_image_stride = 2 * 7 * 6, s.y_image_stride = 5 * s.out_h * s.out_w;
  const std::int64_t images = 3, patches = s.patches(), k = 2 * 3 * 2;
  const MatrixRM w = random(5, k, 7), x = random(images, s.x_image_stride, 8);
  const std::vector<float> bias = {0.5f, -1.0f, 0.25f, 2.0f, 0.0f};
  MatrixRM cols = MatrixRM::Zero(images * patches, k);
  for (std::int64_t i = 0; i < images; ++i)
    for (std::int64_t oy = 0; oy < s.out_h; ++oy)
      for (std::int64_t ox = 0; ox < s.out_w; ++ox)
        for (std::int64_t c = 0; c < 2; ++c)
          for (std::int64_t a = 0; a < 3; ++a)
            for (std::int64_t b = 0; b < 2; ++b) {
              const std::int64_t iy = oy * 2 + a - 1, ix = ox + b * 2 - 1;
              if (iy >= 0 && iy < 7 && ix >= 0 && ix < 6) cols(i * patches + oy * s.out_w + ox, (c * 3 + a) * 2 + b) = x(i, (c * 7 + iy) * 6 + ix);
            }
  IpuUnitConfig c;
  c.tiles = 16;
  c.rounding = "nearest";
  auto conv = create_substrate("ipu", ipu_params(c));
  conv->program(w, LayerInfo{"conv", "Conv", 0, 0}, {2, 0});
  std::vector<float> y(static_cast<std::size_t>(images * s.y_image_stride));
  ASSERT_TRUE(conv->convolve(s, x.data(), images, bias, y.data(), {10 * static_cast<std::uint64_t>(patches), static_cast<std::uint64_t>(patches)}));
  MatrixRM rows(images * patches, 5);
  conv->multiply(cols, rows, {10 * static_cast<std::uint64_t>(patches), static_cast<std::uint64_t>(patches)});
  for (std::int64_t i = 0; i < images; ++i)
    for (std::int64_t o = 0; o < 5; ++o)
      for (std::int64_t p = 0; p < patches; ++p)
        ASSERT_EQ(fp16::float_bits(y[static_cast<std::size_t>(i * s.y_image_stride + o * patches + p)]),
                  fp16::float_bits(rows(i * patches + p, o) + bias[static_cast<std::size_t>(o)]))
            << i << " " << o << " " << p;

  ConvShape dense;
  dense.in_channels = 30, dense.out_channels = 5, dense.x_image_stride = 30, dense.y_image_stride = 5;
  const MatrixRM wd = random(5, 30, 9), xd = random(11, 30, 10);
  c.rounding = "stochastic";
  c.precision = "fp16.16";
  auto fc = create_substrate("ipu", ipu_params(c));
  fc->program(wd, LayerInfo{"fc", "Gemm", 1, 0}, {2, 0});
  MatrixRM yd(11, 5), ym(11, 5);
  ASSERT_TRUE(fc->convolve(dense, xd.data(), 11, {}, yd.data(), {42, 1}));
  fc->multiply(xd, ym, {42, 1});
  for (Eigen::Index i = 0; i < yd.size(); ++i) ASSERT_EQ(fp16::float_bits(yd.data()[i]), fp16::float_bits(ym.data()[i])) << i;
}
