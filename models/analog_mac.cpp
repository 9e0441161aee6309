// `analog_mac`: a BrainScaleS-2-style analog multiply-accumulate array (electronicvisions hxtorch /
// brainscales2-demos; Kuhn, Klein, Fröning, "On the Non-Associativity of Analog Computations",
// 2023). Model:
//  * inputs are quantized to input_bits unsigned codes (pulse widths 0..31 for 5 bits) after
//    per-vector scaling to the largest input (negative inputs cannot be sent and are clipped to 0,
//    counted); weights to weight_bits magnitude codes with a sign (−63..63 for 6 bits, the sign
//    from the twin rows), scaled per layer;
//  * each output column integrates one chunk of rows_per_chunk rows (128 signed rows per array
//    half) sequentially on its membrane, in the configured order: m ← (1 − leak)·m +
//    gain·p(i)·x_i·w_ij, clamped to ±saturation when saturation > 0, where p(i) = 1 −
//    position_gain_slope·i/(rows_per_chunk − 1) is a gain that falls with the row's distance i
//    from the synapse drivers;
//  * an 8-bit column ADC reads floor(c_j·m + N(0, noise_sigma)) clamped to [adc_min, adc_max],
//    with c_j ~ N(1, fixed_pattern_sigma) a per-column fixed-pattern gain;
//  * chunks are summed digitally and the sum is scaled back to real units.
// With leak, saturation, position gain and fixed pattern off this is exactly the software mock
// of hxtorch: per chunk y = floor(gain·(x·w) + N(0, σ)), clamp to [−128, 127] (gain 0.002, σ 2).
// Because accumulation is sequential with leak and saturation, the result depends on the order in
// which rows are sent: natural, reversed, sorted (largest input first) or random (a fixed random
// permutation per column and trial).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "models/analog_array_timing.h"
#include "models/analog_mac.h"
#include "models/error.h"
#include "models/philox.h"
#include "models/quantize.h"
#include "models/substrate.h"

namespace faultline::models {
namespace {

// One row event on `count` membranes: m_k ← (1 − leak)·m_k + d_k·w_k, clamped to ±saturation
// when saturation > 0; returns how many clamped. `DriveVaries`: d varies with k and w is one value
// (the membranes of one column over a block of input vectors), else d is one value and w varies
// (the columns of one input vector). d = gain·p(i)·x_i and w are the scalar model's factors in its
// order of evaluation (keep = 1 − leak), so every membrane keeps the scalar model's bits: IEEE
// multiplies, adds and compares give the same results in any vector width, and the build never
// contracts them into FMAs. Four membranes per step (GCC vector extension), the clamp by bit
// operations (|v| and copysign).
template <bool DriveVaries>
inline __attribute__((always_inline)) std::uint64_t integrate_body(double* m, const double* d, const double* w, long count, double keep,
                                                                 double saturation) {
  using V = double __attribute__((vector_size(32)));
  using M = std::int64_t __attribute__((vector_size(32)));
  const M sign_bit = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
  const V bound = {saturation, saturation, saturation, saturation};
  const V keep4 = {keep, keep, keep, keep};
  const double shared_factor = DriveVaries ? w[0] : d[0];
  const V one = {shared_factor, shared_factor, shared_factor, shared_factor};
  const double* varying = DriveVaries ? d : w;
  M clamped4 = {0, 0, 0, 0};
  long k = 0;
  for (; k + 4 <= count; k += 4) {
    V mv, fv;
    std::memcpy(&mv, m + k, sizeof mv);
    std::memcpy(&fv, varying + k, sizeof fv);
    V v = DriveVaries ? keep4 * mv + fv * one : keep4 * mv + one * fv;
    if (saturation > 0) {
      const M bits = __builtin_bit_cast(M, v);
      const M over = __builtin_bit_cast(V, bits & ~sign_bit) > bound;  // |v| > saturation (all ones where true)
      const M limited = (bits & sign_bit) | __builtin_bit_cast(M, bound);  // copysign(saturation, v)
      v = __builtin_bit_cast(V, (over & limited) | (~over & bits));
      clamped4 -= over;
    }
    std::memcpy(m + k, &v, sizeof v);
  }
  std::uint64_t clamped = static_cast<std::uint64_t>(clamped4[0] + clamped4[1] + clamped4[2] + clamped4[3]);
  for (; k < count; ++k) {
    double v = DriveVaries ? keep * m[k] + d[k] * w[0] : keep * m[k] + d[0] * w[k];
    if (saturation > 0 && std::abs(v) > saturation) {
      v = std::copysign(saturation, v);
      ++clamped;
    }
    m[k] = v;
  }
  return clamped;
}

// Compiled for AVX2 and for the baseline, chosen at load time (the same bits either way).
__attribute__((target_clones("avx2", "default"))) std::uint64_t integrate_over_inputs(double* m, const double* d, double w, long count,
                                                                                       double keep, double saturation) {
  return integrate_body<true>(m, d, &w, count, keep, saturation);
}
__attribute__((target_clones("avx2", "default"))) std::uint64_t integrate_over_columns(double* m, double d, const double* w, long count,
                                                                                        double keep, double saturation) {
  return integrate_body<false>(m, &d, w, count, keep, saturation);
}

// One row's input codes: negative inputs clip to 0 (counted), then round(v·s) capped at the
// largest code. Selects instead of a branch, so that the loop vectorizes; the same operations.
__attribute__((target_clones("avx2", "default"))) std::uint64_t quantize_inputs(const float* x, float* codes, long in, float s, float max_code) {
  std::uint64_t clipped = 0;
  for (long c = 0; c < in; ++c) {
    const float v = x[c] < 0 ? 0.0f : x[c];
    clipped += x[c] < 0;
    codes[c] = std::min(max_code, round_half_away(v * s));
  }
  return clipped;
}

// One row's column ADCs: floor(gain_j·membrane + σ·noise) clamped to [lo, hi] (counted), added to
// y. floor is exact at any width (roundpd in the AVX2 clone).
__attribute__((target_clones("avx2", "default"))) std::uint64_t convert_columns(const double* membrane, const float* noise, const double* column_gain,
                                                                                 double sigma, double lo, double hi, float* y, long out) {
  std::uint64_t saturated = 0;
  for (long j = 0; j < out; ++j) {
    const double adc = std::floor(column_gain[j] * membrane[j] + sigma * noise[j]);
    saturated += (adc < lo) | (adc > hi);
    y[j] += static_cast<float>(std::clamp(adc, lo, hi));
  }
  return saturated;
}

class AnalogMacSubstrate final : public Substrate {
 public:
  explicit AnalogMacSubstrate(const AnalogMacConfig& c)
      : input_bits_(c.input_bits), weight_bits_(c.weight_bits), chunk_(c.rows_per_chunk), gain_(c.gain), noise_(c.noise_sigma),
        adc_min_(c.adc_min), adc_max_(c.adc_max), leak_(c.leak), saturation_(c.saturation), slope_(c.position_gain_slope),
        fixed_pattern_(c.fixed_pattern_sigma), order_(c.order) {
    if (adc_min_ >= adc_max_) throw Error("analog_mac: 'adc_min' must be below 'adc_max'");
    sequential_ = leak_ > 0 || saturation_ > 0 || slope_ > 0;
  }

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    layer_ = layer;
    context_ = context;
    const int wmax_code = (1 << weight_bits_) - 1;
    const float m = w.cwiseAbs().maxCoeff();
    weight_scale_ = m > 0 ? static_cast<float>(wmax_code) / m : 1.0f;
    codes_ = (w * weight_scale_).array().round().cwiseMax(-wmax_code).cwiseMin(wmax_code).matrix();
    const Eigen::Index out = w.rows(), in = w.cols();
    const CounterRng variation(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::Variation));
    column_gain_.resize(out);
    for (Eigen::Index j = 0; j < out; ++j) column_gain_[j] = 1.0 + fixed_pattern_ * variation.normal(static_cast<std::uint64_t>(j));
    position_gain_.resize(chunk_);
    for (int i = 0; i < chunk_; ++i) position_gain_[i] = 1.0 - (chunk_ > 1 ? slope_ * i / (chunk_ - 1) : 0.0);
    // What the row events need, fixed at programming: gain·p(i) (the scalar model's first
    // product) and the weight codes column-major as doubles (each row i's codes contiguous).
    gain_position_.resize(static_cast<std::size_t>(chunk_));
    for (int i = 0; i < chunk_; ++i) gain_position_[static_cast<std::size_t>(i)] = gain_ * position_gain_[static_cast<std::size_t>(i)];
    codes_t_ = codes_.transpose().cast<double>();
    // Random order: one permutation of each chunk's rows per column, fixed for the trial.
    permutations_.clear();
    if (order_ == "random") {
      const CounterRng shuffle(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::Order));
      permutations_.resize(static_cast<std::size_t>(out * in));
      for (Eigen::Index j = 0; j < out; ++j) {
        for (Eigen::Index c0 = 0; c0 < in; c0 += chunk_) {
          const Eigen::Index n = std::min<Eigen::Index>(chunk_, in - c0);
          int* perm = permutations_.data() + j * in + c0;
          std::iota(perm, perm + n, 0);
          for (Eigen::Index k = n - 1; k > 0; --k)
            std::swap(perm[k], perm[shuffle.below(static_cast<std::uint64_t>(j * in + c0 + k), static_cast<std::uint32_t>(k + 1))]);
        }
      }
    }
    adc_saturations_.reset();
    membrane_saturations_.reset();
    clipped_inputs_.reset();
    conversions_.reset();
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    const Eigen::Index rows = x.rows(), in = x.cols(), out = codes_.rows();
    const int xmax_code = (1 << input_bits_) - 1;
    MatrixRM xq(rows, in);
    Eigen::VectorXf xscale(rows);
    std::uint64_t clipped = 0;
    for (Eigen::Index r = 0; r < rows; ++r) {
      const float m = x.row(r).maxCoeff();
      const float s = m > 0 ? static_cast<float>(xmax_code) / m : 0.0f;
      xscale[r] = s;
      // v·s ≤ xmax_code < 2^12 (up to rounding): inside round_half_away's range.
      clipped += quantize_inputs(x.row(r).data(), xq.row(r).data(), in, s, static_cast<float>(xmax_code));
    }
    clipped_inputs_.add(clipped);
    const Eigen::Index chunks = (in + chunk_ - 1) / chunk_;
    const CounterRng rng(context_.seed, stream_id(context_.trial, layer_.index, layer_.part, Purpose::OutputNoise));
    std::uint64_t adc_sat = 0, mem_sat = 0;
    MatrixRM dots;
    std::vector<int> order(static_cast<std::size_t>(chunk_));
    // Membranes of a chunk (rows × out) and the column noise of its reads.
    std::vector<double> membrane(static_cast<std::size_t>(rows * out));
    std::vector<float> noise(static_cast<std::size_t>(rows * out));
    std::vector<double> drive;  // random order: gain·p(i)·x_ri for the chunk's rows i, i-major
    const double keep = 1.0 - leak_;
    y.setZero();
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index c0 = c * chunk_, n = std::min<Eigen::Index>(chunk_, in - c0);
      if (!sequential_) {
        // Integer dot products are exact in float32: |Σ x·w| ≤ 31·63·128 < 2^24.
        dots.noalias() = xq.middleCols(c0, n) * codes_.middleCols(c0, n).transpose();
        for (Eigen::Index r = 0; r < rows; ++r)
          for (Eigen::Index j = 0; j < out; ++j) membrane[static_cast<std::size_t>(r * out + j)] = gain_ * static_cast<double>(dots(r, j));
      } else if (order_ == "natural" || order_ == "reversed") {
        // One order for every input vector and column: blocks of input vectors step together,
        // each column's membranes contiguous over the block (each membrane's sequence of
        // operations is unchanged, so are its bits).
        constexpr Eigen::Index block = 256;
        std::vector<double> block_membrane(static_cast<std::size_t>(out * block)), block_drive(static_cast<std::size_t>(n * block));
        for (Eigen::Index r0 = 0; r0 < rows; r0 += block) {
          const Eigen::Index nb = std::min(block, rows - r0);
          for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index r = 0; r < nb; ++r)
              block_drive[static_cast<std::size_t>(i * nb + r)] = gain_position_[static_cast<std::size_t>(i)] * static_cast<double>(xq(r0 + r, c0 + i));
          std::fill(block_membrane.begin(), block_membrane.end(), 0.0);
          for (Eigen::Index t = 0; t < n; ++t) {
            const Eigen::Index i = order_ == "natural" ? t : n - 1 - t;
            for (Eigen::Index j = 0; j < out; ++j)
              mem_sat += integrate_over_inputs(block_membrane.data() + j * nb, block_drive.data() + i * nb, codes_t_(c0 + i, j), nb, keep, saturation_);
          }
          for (Eigen::Index r = 0; r < nb; ++r)
            for (Eigen::Index j = 0; j < out; ++j)
              membrane[static_cast<std::size_t>((r0 + r) * out + j)] = block_membrane[static_cast<std::size_t>(j * nb + r)];
        }
      } else if (order_ == "sorted") {
        // An order per input vector (its inputs sorted), shared by its columns: the membranes of
        // all columns step together.
        for (Eigen::Index r = 0; r < rows; ++r) {
          row_order(xq.row(r).data() + c0, n, order.data());
          double* m = membrane.data() + r * out;
          std::fill(m, m + out, 0.0);
          for (Eigen::Index t = 0; t < n; ++t) {
            const int i = order[static_cast<std::size_t>(t)];
            const double d = gain_position_[static_cast<std::size_t>(i)] * static_cast<double>(xq(r, c0 + i));
            mem_sat += integrate_over_columns(m, d, codes_t_.data() + (c0 + i) * out, out, keep, saturation_);
          }
        }
      } else {
        // A fixed permutation per column, shared by the input vectors: the membranes of all
        // rows step together.
        drive.resize(static_cast<std::size_t>(n * rows));
        for (Eigen::Index i = 0; i < n; ++i)
          for (Eigen::Index r = 0; r < rows; ++r)
            drive[static_cast<std::size_t>(i * rows + r)] = gain_position_[static_cast<std::size_t>(i)] * static_cast<double>(xq(r, c0 + i));
        std::vector<double> column(static_cast<std::size_t>(rows));
        for (Eigen::Index j = 0; j < out; ++j) {
          const int* perm = permutations_.data() + j * in + c0;
          std::fill(column.begin(), column.end(), 0.0);
          for (Eigen::Index t = 0; t < n; ++t) {
            const int i = perm[t];
            mem_sat += integrate_over_inputs(column.data(), drive.data() + i * rows, codes_t_(c0 + i, j), rows, keep, saturation_);
          }
          for (Eigen::Index r = 0; r < rows; ++r) membrane[static_cast<std::size_t>(r * out + j)] = column[static_cast<std::size_t>(r)];
        }
      }
      // The column ADCs: noise keyed by (row, chunk, column).
      for (Eigen::Index r = 0; r < rows; ++r)
        rng.fill_normal(((context.first_row + static_cast<std::uint64_t>(r)) * static_cast<std::uint64_t>(chunks) + static_cast<std::uint64_t>(c)) *
                            static_cast<std::uint64_t>(out),
                        static_cast<std::uint64_t>(out), noise.data() + r * out);
      for (Eigen::Index r = 0; r < rows; ++r)
        adc_sat += convert_columns(membrane.data() + r * out, noise.data() + r * out, column_gain_.data(), noise_, adc_min_, adc_max_,
                                   y.row(r).data(), out);
    }
    adc_saturations_.add(adc_sat);
    membrane_saturations_.add(mem_sat);
    conversions_.add(static_cast<std::uint64_t>(rows * out * chunks));
    // Back to real units: y ≈ x·w.
    for (Eigen::Index r = 0; r < rows; ++r) {
      const double denom = gain_ * xscale[r] * weight_scale_;
      y.row(r) *= denom > 0 ? static_cast<float>(1.0 / denom) : 0.0f;
    }
  }

  std::string kind() const override { return "analog_mac"; }
  Eigen::Index outputs() const override { return codes_.rows(); }
  Eigen::Index inputs() const override { return codes_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override {
    out["adc_conversions"] += static_cast<double>(conversions_.get());
    out["adc_saturations"] += static_cast<double>(adc_saturations_.get());
    out["membrane_saturations"] += static_cast<double>(membrane_saturations_.get());
    out["clipped_negative_inputs"] += static_cast<double>(clipped_inputs_.get());
  }

 private:
  // The order in which a chunk's rows are sent for one input vector.
  void row_order(const float* xq, Eigen::Index n, int* order) const {
    std::iota(order, order + n, 0);
    if (order_ == "reversed") std::reverse(order, order + n);
    else if (order_ == "sorted") std::stable_sort(order, order + n, [&](int a, int b) { return xq[a] > xq[b]; });
  }

  int input_bits_, weight_bits_, chunk_;
  double gain_, noise_, adc_min_, adc_max_, leak_, saturation_, slope_, fixed_pattern_;
  std::string order_;
  bool sequential_ = false;
  LayerInfo layer_;
  ProgramContext context_;
  float weight_scale_ = 1.0f;
  MatrixRM codes_;
  std::vector<double> column_gain_, position_gain_, gain_position_;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> codes_t_;  // in × out
  std::vector<int> permutations_;
  Counter adc_saturations_, membrane_saturations_, clipped_inputs_, conversions_;
};

SubstrateKind analog_mac_kind() {
  SubstrateKind k = typed_kind("analog_mac",
                               "BrainScaleS-2-style analog MAC: 5-bit inputs, 6-bit signed weights, 128-row chunks integrated sequentially on a "
                               "membrane with leak, saturation and position-dependent gain, 8-bit column ADC with noise; the accumulation order "
                               "matters (hxtorch mock; Kuhn, Klein, Froening 2023).",
                               AnalogMacConfig::table(), AnalogMacConfig{},
                               [](const AnalogMacConfig& c) { return std::make_unique<AnalogMacSubstrate>(c); });
  // Its cycle-level model: sim/analog_mac_cycle.cpp (an analog array unit, sim/analog_array.h).
  // BrainScaleS-2: inputs arrive as row events one after another, the column-parallel CADC
  // converts every column at once (columns_per_adc 1), integration and readout are not
  // overlapped (the membranes are reset between vectors). The latencies and energies are
  // assumed, not published figures: set them from measurements of your setup.
  AnalogArrayTiming timing;
  timing.clock_mhz = 250;
  timing.input_cycles = 0;
  timing.row_event_cycles = 2;
  timing.integration_cycles = 25;
  timing.adc_cycles = 500;
  timing.columns_per_adc = 1;
  timing.accumulate_cycles = 1;
  timing.pipelined = false;
  timing.program_row_cycles = 4;
  AnalogArrayEnergy energy;
  energy.input_pj = 0.5;
  energy.cell_pj = 0.001;
  energy.adc_pj = 1.0;
  energy.accumulate_pj = 0.05;
  energy.program_pj = 0.1;
  k.capabilities.cycle_model = true;
  k.timing = AnalogArrayTiming::table(true, "250 MHz, 8 ns per row event, 2 us CADC conversion: assumed").specs(timing);
  k.energy = AnalogArrayEnergy::table().specs(energy);
  k.summary_counters = {"membrane_saturations", "adc_saturations", "clipped_negative_inputs"};
  return k;
}

}  // namespace

const ParamTable<AnalogMacConfig>& AnalogMacConfig::table() {
  static const ParamTable<AnalogMacConfig> t = [] {
    using C = AnalogMacConfig;
    ParamTable<C> p;
    p.integer("input_bits", &C::input_bits, 1, 12, "bits", "unsigned input code width (BSS-2: 5, pulse widths 0..31)")
        .integer("weight_bits", &C::weight_bits, 1, 12, "bits", "weight magnitude width, sign from twin rows (BSS-2: 6, −63..63)")
        .integer("rows_per_chunk", &C::rows_per_chunk, 1, 4096, "rows", "signed rows integrated per ADC read (BSS-2: 128 per array half)")
        .number("gain", &C::gain, 1e-9, 1e3, "ADC LSB", "ADC counts per unit of x·w (hxtorch mock: 0.002)")
        .number("noise_sigma", &C::noise_sigma, 0.0, 1e4, "ADC LSB", "per-read column noise σ (hxtorch mock: 2.0)")
        .number("adc_min", &C::adc_min, -1e9, 1e9, "ADC LSB", "lowest ADC code (8-bit signed: −128)")
        .number("adc_max", &C::adc_max, -1e9, 1e9, "ADC LSB", "highest ADC code (8-bit signed: 127)")
        .number("leak", &C::leak, 0.0, 1.0, "", "fraction of the membrane lost per row event (BSS-2 runs with leak off: 0)")
        .number("saturation", &C::saturation, 0.0, 1e9, "ADC LSB", "membrane bound during integration (0: none; the ADC is linear in about ±80)")
        .number("position_gain_slope", &C::position_gain_slope, 0.0, 1.0, "", "relative gain loss of the row farthest from the synapse drivers")
        .number("fixed_pattern_sigma", &C::fixed_pattern_sigma, 0.0, 10.0, "", "per-column fixed-pattern gain deviation σ")
        .choice("order", &C::order, {"natural", "reversed", "sorted", "random"}, "order in which a chunk's rows are sent");
    return p;
  }();
  return t;
}

FAULTLINE_REGISTER_KIND(analog_mac, analog_mac_kind)

}  // namespace faultline::models
