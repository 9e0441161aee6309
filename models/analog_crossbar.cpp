// `analog_crossbar`: resistive compute-in-memory (RRAM or PCM). Model, step by step:
//  1. Mapping (program): W is scaled by w_max = max|W| and each weight is a differential pair,
//     G± = G_min + (G_max − G_min)·max(±w/w_max, 0), quantized to `levels` when levels > 0; the
//     pair is programmed and drifts as device.h describes. The effective normalized weight is
//     (G+ − G−)/(G_max − G_min).
//  2. Tiles: W is split into tiles of at most tile_rows inputs × tile_cols outputs; each tile
//     computes its partial product in analog, partial sums of tiles along the inputs are added
//     digitally (aihwkit: tiles of at most 512×512 with digital accumulation).
//  3. Input (DAC): each input vector is divided by its absolute maximum (aihwkit's "abs_max"
//     noise management; input_scaling: abs_max) or by a fixed input_range (input_scaling: fixed,
//     values beyond it clip and are counted as DAC saturations), then quantized to dac_bits over
//     [−1, 1] (aihwkit default 7 bits).
//  4. Read: y = x·G_effᵀ plus read noise on every read. Per-device read noise δG_ij ~ N(0, σ_ij²)
//     gives an output term Σ_i x_i·δG_ij, which is exactly N(0, Σ_i x_i²·σ_ij²): the model draws
//     that one normal per output instead of one per device, so a read costs a second product on
//     squared values, not a resampled matrix. Output noise N(0, out_noise) is added in the unit
//     "full-scale input on one full-scale weight row" (aihwkit: 0.06).
//  5. Periphery: per-column gain N(1, gain_sigma) and offset N(0, offset_sigma) fixed per trial;
//     ADC quantization to adc_bits over [−out_bound, out_bound] with saturation counted (aihwkit:
//     9 bits, bound 12).
//  6. IR drop (first-order approximation, off by default): a cell's contribution is attenuated by
//     1 − ir_drop·(i/R + j/C)/2 where i, j are its row and column inside its R×C tile, i.e. by its
//     distance from the row driver and from the column's sense amplifier.
//  7. Global drift compensation (aihwkit): outputs are multiplied by α = Σ|W_programmed| / Σ|W_drifted|,
//     the ratio a reference read before and after drift would measure.
#include <algorithm>
#include <cmath>

#include "models/analog_crossbar.h"
#include "models/analog_array_timing.h"
#include "models/device.h"
#include "models/error.h"
#include "models/quantize.h"
#include "models/substrate.h"

namespace faultline::models {
namespace {

class AnalogCrossbarSubstrate final : public Substrate {
 public:
  explicit AnalogCrossbarSubstrate(const AnalogCrossbarConfig& c)
      : device_(c.device), tile_rows_(c.tile_rows), tile_cols_(c.tile_cols), dac_bits_(c.dac_bits), adc_bits_(c.adc_bits),
        out_bound_(static_cast<float>(c.out_bound)), out_noise_(static_cast<float>(c.out_noise)), gain_sigma_(c.gain_sigma), offset_sigma_(c.offset_sigma), ir_drop_(c.ir_drop),
        drift_compensation_(c.drift_compensation), fixed_input_(c.input_scaling == "fixed"), input_range_(static_cast<float>(c.input_range)) {
    if (device_.g_max <= device_.g_min) throw Error("analog_crossbar: 'g_max' must exceed 'g_min'");
    // One level is no quantization grid at all (G_min and G_max must both be reachable).
    if (device_.levels == 1) throw Error("analog_crossbar: 'levels' must be 0 (continuous) or at least 2, got 1");
  }

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    layer_ = layer;
    context_ = context;
    const Eigen::Index out = w.rows(), in = w.cols();
    w_max_ = w.cwiseAbs().maxCoeff();
    if (!(w_max_ > 0)) w_max_ = 1.0f;
    const double range = device_.g_max - device_.g_min;
    std::vector<double> targets(static_cast<std::size_t>(2 * w.size()));
    for (Eigen::Index k = 0; k < w.size(); ++k) {
      const double v = w.data()[k] / w_max_;
      double gp = range * std::max(v, 0.0), gn = range * std::max(-v, 0.0);
      if (device_.levels > 1) {
        const double step = range / (device_.levels - 1);
        gp = std::round(gp / step) * step;
        gn = std::round(gn / step) * step;
      }
      targets[2 * k] = device_.g_min + gp;
      targets[2 * k + 1] = device_.g_min + gn;
    }
    stats_ = {};
    const std::vector<double> g = program_cells(device_, targets, context.seed, context.trial, layer.index, layer.part, &stats_);
    weights_.resize(out, in);
    read_var_.resize(out, in);
    double target_sum = 0, drifted_sum = 0;
    for (Eigen::Index r = 0; r < out; ++r) {
      for (Eigen::Index c = 0; c < in; ++c) {
        const std::size_t k = static_cast<std::size_t>(r * in + c);
        double weff = (g[2 * k] - g[2 * k + 1]) / range;
        target_sum += std::abs((targets[2 * k] - targets[2 * k + 1]) / range);
        drifted_sum += std::abs(weff);
        if (ir_drop_ > 0) {
          const double i = static_cast<double>(c % tile_rows_) / tile_rows_, j = static_cast<double>(r % tile_cols_) / tile_cols_;
          weff *= 1.0 - ir_drop_ * (i + j) / 2;
        }
        weights_(r, c) = static_cast<float>(weff);
        const double sp = read_sigma(device_, g[2 * k]), sn = read_sigma(device_, g[2 * k + 1]);
        read_var_(r, c) = static_cast<float>((sp * sp + sn * sn) / (range * range));
      }
    }
    has_read_noise_ = read_var_.maxCoeff() > 0;
    compensation_ = drift_compensation_ && device_.t_inference > device_.t0 && drifted_sum > 0 ? static_cast<float>(target_sum / drifted_sum) : 1.0f;
    // Per-column periphery variation, fixed for the trial.
    const CounterRng variation(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::Variation));
    gain_.resize(out);
    offset_.resize(out);
    for (Eigen::Index r = 0; r < out; ++r) {
      gain_[r] = static_cast<float>(1.0 + gain_sigma_ * variation.normal(2 * static_cast<std::uint64_t>(r)));
      offset_[r] = static_cast<float>(offset_sigma_ * variation.normal(2 * static_cast<std::uint64_t>(r) + 1));
    }
    adc_saturations_.reset();
    adc_conversions_.reset();
    dac_saturations_.reset();
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    const Eigen::Index rows = x.rows(), in = x.cols(), out = weights_.rows();
    // DAC: per-vector abs-max scaling, then dac_bits over [−1, 1].
    // Scratch kept per thread: reads come in thousands of chunks of the same shapes.
    thread_local MatrixRM xn, part, var, xsq;
    thread_local std::vector<float> normals;
    thread_local Eigen::VectorXf xmax;
    xn.resize(rows, in);
    xmax.resize(rows);
    const SymmetricQuantizer dac(1.0f, std::max(dac_bits_, 2));
    std::uint64_t dac_saturated = 0;
    for (Eigen::Index r = 0; r < rows; ++r) {
      const float m = fixed_input_ ? input_range_ : x.row(r).cwiseAbs().maxCoeff();
      xmax[r] = m;
      float inv = m > 0 ? 1.0f / m : 0.0f;
      const float* src = x.row(r).data();
      float* dst = xn.row(r).data();
      if (fixed_input_) {
        for (Eigen::Index c = 0; c < in; ++c) {
          const float v = src[c] * inv;
          dac_saturated += (v > 1.0f) | (v < -1.0f);
          dst[c] = std::min(std::max(v, -1.0f), 1.0f);
        }
        src = dst;  // quantize the clipped, already scaled values in place below
        inv = 1.0f;
      }
      if (dac_bits_ > 0) {
        for (Eigen::Index c = 0; c < in; ++c) dst[c] = dac.quantize(src[c] * inv);
      } else {
        for (Eigen::Index c = 0; c < in; ++c) dst[c] = src[c] * inv;
      }
    }
    const SymmetricQuantizer adc(out_bound_, std::max(adc_bits_, 2));
    const float lo = -out_bound_, hi = out_bound_;
    std::uint64_t saturated = 0;
    int tile = 0;
    for (Eigen::Index k0 = 0; k0 < in; k0 += tile_rows_) {
      const Eigen::Index kn = std::min<Eigen::Index>(tile_rows_, in - k0);
      if (has_read_noise_) xsq = xn.middleCols(k0, kn).array().square().matrix();
      for (Eigen::Index c0 = 0; c0 < out; c0 += tile_cols_, ++tile) {
        const Eigen::Index cn = std::min<Eigen::Index>(tile_cols_, out - c0);
        part.noalias() = xn.middleCols(k0, kn) * weights_.block(c0, k0, cn, kn).transpose();
        const bool any_noise = has_read_noise_ || out_noise_ > 0;
        if (any_noise) {
          normals.resize(static_cast<std::size_t>(rows * cn));
          const CounterRng rng(context_.seed, stream_id(context_.trial, layer_.index, (layer_.part << 10) | (tile & 1023), Purpose::OutputNoise));
          rng.fill_normal(context.first_row * static_cast<std::uint64_t>(cn), normals.size(), normals.data());
          if (has_read_noise_) {
            // Read noise and output noise are independent normals: one draw of their summed variance.
            var.noalias() = xsq * read_var_.block(c0, k0, cn, kn).transpose();
            const float out_var = out_noise_ * out_noise_;
            for (Eigen::Index k = 0; k < part.size(); ++k) part.data()[k] += std::sqrt(var.data()[k] + out_var) * normals[static_cast<std::size_t>(k)];
          } else {
            for (Eigen::Index k = 0; k < part.size(); ++k) part.data()[k] += out_noise_ * normals[static_cast<std::size_t>(k)];
          }
        }
        // Digital partial sums over the row tiles, starting from 0 (0 + q, not q, as before:
        // the same bits, signed zeros included).
        for (Eigen::Index r = 0; r < rows; ++r) {
          float* p = part.row(r).data();
          float* dst = y.row(r).data() + c0;
          if (k0 == 0) std::fill(dst, dst + cn, 0.0f);
          for (Eigen::Index j = 0; j < cn; ++j) {
            const float v = gain_[c0 + j] * p[j] + offset_[c0 + j];
            saturated += (v > hi) | (v < lo);
            dst[j] += adc_bits_ > 0 ? adc.quantize(v) : std::min(std::max(v, lo), hi);
          }
        }
      }
    }
    adc_saturations_.add(saturated);
    dac_saturations_.add(dac_saturated);
    // One conversion per output column of every tile that the vector passes through.
    const auto row_tiles = static_cast<std::uint64_t>((in + tile_rows_ - 1) / tile_rows_);
    adc_conversions_.add(static_cast<std::uint64_t>(rows * out) * row_tiles);
    const float scale = w_max_ * compensation_;
    for (Eigen::Index r = 0; r < rows; ++r) y.row(r) *= xmax[r] * scale;
  }

  std::string kind() const override { return "analog_crossbar"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override {
    stats_.add_to(out);
    out["adc_conversions"] += static_cast<double>(adc_conversions_.get());
    out["adc_saturations"] += static_cast<double>(adc_saturations_.get());
    if (fixed_input_) out["dac_saturations"] += static_cast<double>(dac_saturations_.get());
  }

 private:
  DeviceConfig device_;
  int tile_rows_, tile_cols_, dac_bits_, adc_bits_;
  float out_bound_, out_noise_;
  double gain_sigma_, offset_sigma_, ir_drop_;
  bool drift_compensation_;
  bool fixed_input_;
  float input_range_;
  LayerInfo layer_;
  ProgramContext context_;
  float w_max_ = 1.0f, compensation_ = 1.0f;
  MatrixRM weights_, read_var_;
  bool has_read_noise_ = false;
  Eigen::VectorXf gain_, offset_;
  CellArrayStats stats_;
  Counter adc_saturations_, adc_conversions_, dac_saturations_;
};

SubstrateKind analog_crossbar_kind() {
  const AnalogCrossbarConfig defaults;
  SubstrateKind k = typed_kind("analog_crossbar",
                               "Resistive compute-in-memory: differential conductance pairs, tiles with digital partial sums, DAC, read noise on "
                               "every read, output noise, per-column gain/offset, ADC with saturation, optional IR drop, drift compensation "
                               "(aihwkit-style periphery).",
                               AnalogCrossbarConfig::table(), defaults,
                               [](const AnalogCrossbarConfig& c) { return std::make_unique<AnalogCrossbarSubstrate>(c); });
  // Its cycle-level model: sim/analog_crossbar_cycle.cpp (an analog array unit, sim/analog_array.h).
  // ISAAC (Shafiee et al., ISCA 2016, Table I as we read it): a 100 ns crossbar read, 8-bit ADCs
  // at 1.28 GS/s drawing 2 mW each (1.56 pJ per conversion), one ADC per 128 columns, a
  // pipelined design; 1-bit DACs at 4 mW per 1024 (0.39 fJ per pulse) and 0.3 mW per 128×128
  // array (1.8 fJ per cell per 100 ns read) — ×8 for an 8-bit input delivered bit-serially.
  AnalogArrayTiming timing;
  timing.clock_mhz = 1000;
  timing.input_cycles = 10;
  timing.row_event_cycles = 0;
  timing.integration_cycles = 100;
  timing.adc_cycles = 1;
  timing.columns_per_adc = 128;
  timing.accumulate_cycles = 1;
  timing.pipelined = true;
  timing.program_row_cycles = 100;
  AnalogArrayEnergy energy;
  energy.input_pj = 0.0031;
  energy.cell_pj = 0.0146;
  energy.adc_pj = 1.56;
  energy.accumulate_pj = 0.05;
  energy.program_pj = 1.0;
  k.capabilities.cycle_model = true;
  k.timing = AnalogArrayTiming::table(false, "1 GHz assumed; latencies from ISAAC, ISCA 2016; DAC settling and row programming assumed").specs(timing);
  k.energy = AnalogArrayEnergy::table().specs(energy);
  k.summary_counters = {"adc_saturations", "stuck_at_gmin", "stuck_at_gmax"};
  return k;
}

}  // namespace

const ParamTable<AnalogCrossbarConfig>& AnalogCrossbarConfig::table() {
  static const ParamTable<AnalogCrossbarConfig> t = [] {
    using C = AnalogCrossbarConfig;
    ParamTable<C> p;
    p.nest(&C::device, DeviceConfig::table())
        .integer("tile_rows", &C::tile_rows, 1, 65536, "", "inputs per tile (aihwkit: at most 512)")
        .integer("tile_cols", &C::tile_cols, 1, 65536, "", "outputs per tile (aihwkit: at most 512)")
        .choice("input_scaling", &C::input_scaling, {"abs_max", "fixed"}, "DAC input scaling: each vector by its absolute maximum (aihwkit abs_max) or by input_range")
        .number("input_range", &C::input_range, 1e-9, 1e9, "", "with input_scaling: fixed, the input value mapped to full DAC scale (beyond it inputs clip)")
        .integer("dac_bits", &C::dac_bits, 0, 16, "bits", "input DAC resolution over [−1, 1] after abs-max scaling (aihwkit: 7; 0: ideal)")
        .integer("adc_bits", &C::adc_bits, 0, 16, "bits", "output ADC resolution over [−out_bound, out_bound] (aihwkit: 9; 0: no quantization)")
        .number("out_bound", &C::out_bound, 1e-6, 1e9, "", "ADC range in full-scale-input × full-weight-row units (aihwkit: 12)")
        .number("out_noise", &C::out_noise, 0.0, 1e6, "", "output noise σ in the same unit (aihwkit: 0.06)")
        .number("gain_sigma", &C::gain_sigma, 0.0, 10.0, "", "per-column gain variation σ (fixed per trial)")
        .number("offset_sigma", &C::offset_sigma, 0.0, 1e6, "", "per-column offset variation σ (fixed per trial)")
        .number("ir_drop", &C::ir_drop, 0.0, 1.0, "", "first-order IR-drop attenuation at the far corner of a tile (0: off)")
        .flag("drift_compensation", &C::drift_compensation, "global drift compensation of the outputs (aihwkit)");
    return p;
  }();
  return t;
}

FAULTLINE_REGISTER_KIND(analog_crossbar, analog_crossbar_kind)

}  // namespace faultline::models
