#include "models/vta_substrate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "models/error.h"
#include "models/vta_timing.h"

namespace faultline::models::vta {

const ParamTable<Schedule>& schedule_table() {
  static const ParamTable<Schedule> t = [] {
    ParamTable<Schedule> p;
    // TVM's VTA conv2d/dense schedule knobs (python/vta/top/vta_conv2d.py, vta_dense.py): the inner
    // factor of each split; 0 everywhere: the default schedule.
    p.integer("tile_b", &Schedule::tile_b, 0, 1 << 20, "image groups", "image groups of BATCH per block (TVM tile_b; 0: default schedule)");
    p.integer("tile_h", &Schedule::tile_h, 0, 1 << 20, "rows", "output rows per block (TVM tile_h)");
    p.integer("tile_w", &Schedule::tile_w, 0, 1 << 20, "columns",
              "output columns per block (TVM tile_w); of a dense layer: rows of the product per block (TVM's dense tile_b)");
    p.integer("tile_ci", &Schedule::tile_ci, 0, 1 << 20, "channel tiles", "input channel tiles of BLOCK per step (TVM tile_ci)");
    p.integer("tile_co", &Schedule::tile_co, 0, 1 << 20, "channel tiles", "output channel tiles of BLOCK per block (TVM tile_co)");
    p.integer("h_nthread", &Schedule::h_nthread, 0, 2, "threads", "virtual threads along output rows (TVM h_nthread: 1 or 2)");
    p.integer("oc_nthread", &Schedule::oc_nthread, 0, 2, "threads", "virtual threads along output channels (TVM oc_nthread: 1 or 2)");
    return p;
  }();
  return t;
}

Schedule schedule_from(const Params& params) {
  if (!params.numbers().count("tile_b")) return {};
  const Schedule s = schedule_table().read(params);
  if (!s.is_default() && (s.tile_b < 1 || s.tile_h < 1 || s.tile_w < 1 || s.tile_ci < 1 || s.tile_co < 1 || s.h_nthread < 1 || s.oc_nthread < 1))
    throw Error("a schedule sets every knob (tile_b, tile_h, tile_w, tile_ci, tile_co at least 1, h_nthread and oc_nthread 1 or 2) or none, got " + to_string(s));
  return s;
}

void fit_rows_to_schedule(ConvLayer& layer, const Schedule& schedule) {
  if (!schedule.is_default() && layer.width % schedule.tile_w != 0) layer.width = (layer.width / schedule.tile_w + 1) * schedule.tile_w;
}

const ParamTable<VtaUnitConfig>& VtaUnitConfig::table() {
  static const ParamTable<VtaUnitConfig> t = [] {
    using C = VtaUnitConfig;
    ParamTable<C> p;
    // vta_config.json's fields (tvm-vta config/vta_config.json; the ranges VtaConfig::validate accepts).
    p.integer("log_inp_width", &C::log_inp_width, 3, 3, "log2 bits", "input width (vta_config.json LOG_INP_WIDTH; int8 only)")
        .integer("log_wgt_width", &C::log_wgt_width, 3, 3, "log2 bits", "weight width (LOG_WGT_WIDTH; int8 only)")
        .integer("log_acc_width", &C::log_acc_width, 5, 5, "log2 bits", "accumulator width (LOG_ACC_WIDTH; int32 only)")
        .integer("log_batch", &C::log_batch, 0, 4, "log2", "GEMM core rows: BATCH = 2^log_batch (LOG_BATCH; tvm-vta default 0)")
        .integer("log_block", &C::log_block, 1, 6, "log2", "GEMM core width: BLOCK_IN = BLOCK_OUT = 2^log_block (LOG_BLOCK; default 4)")
        .integer("log_uop_buff_size", &C::log_uop_buff_size, 2, 30, "log2 bytes", "micro-op buffer (LOG_UOP_BUFF_SIZE; default 15: 32 KiB)")
        .integer("log_inp_buff_size", &C::log_inp_buff_size, 2, 30, "log2 bytes", "input buffer (LOG_INP_BUFF_SIZE; default 15: 32 KiB)")
        .integer("log_wgt_buff_size", &C::log_wgt_buff_size, 2, 30, "log2 bytes", "weight buffer (LOG_WGT_BUFF_SIZE; default 18: 256 KiB)")
        .integer("log_acc_buff_size", &C::log_acc_buff_size, 2, 30, "log2 bytes", "accumulator buffer (LOG_ACC_BUFF_SIZE; default 17: 128 KiB)")
        .number("global_scale", &C::global_scale, 0.0, 1e9, "",
                "> 0: every layer's input and output range is ±global_scale, as TVM's qconfig(global_scale=8.0) for VTA; 0: ranges "
                "calibrated on the float model (max |x|, max |x·Wᵀ| over the first images of the evaluated data)")
        .number("inp_bit_error_rate", &C::inp_bit_error_rate, 0.0, 1.0, "", "probability that a bit a LOAD writes into INP is stored flipped")
        .number("wgt_bit_error_rate", &C::wgt_bit_error_rate, 0.0, 1.0, "", "the same for WGT")
        .number("acc_bit_error_rate", &C::acc_bit_error_rate, 0.0, 1.0, "",
                "the same for ACC: every LOAD, GEMM and ALU write-back (a flipped bit of a partial sum)")
        .number("uop_bit_error_rate", &C::uop_bit_error_rate, 0.0, 1.0, "",
                "the same for the micro-op buffer (a flipped index sends a GEMM or ALU micro-op to another entry)")
        .number("dram_bit_error_rate", &C::dram_bit_error_rate, 0.0, 1.0, "",
                "probability that a bit of each read's DRAM image (micro-ops, weights, bias, inputs) is flipped before the run");
    return p;
  }();
  return t;
}

VtaConfig VtaUnitConfig::machine() const {
  VtaConfig c;
  c.log_inp_width = log_inp_width;
  c.log_wgt_width = log_wgt_width;
  c.log_acc_width = log_acc_width;
  c.log_batch = log_batch;
  c.log_block = log_block;
  c.log_uop_buff_size = log_uop_buff_size;
  c.log_inp_buff_size = log_inp_buff_size;
  c.log_wgt_buff_size = log_wgt_buff_size;
  c.log_acc_buff_size = log_acc_buff_size;
  return c;
}

VtaFaults VtaUnitConfig::faults(std::uint64_t seed) const {
  VtaFaults f;
  f.inp = inp_bit_error_rate;
  f.wgt = wgt_bit_error_rate;
  f.acc = acc_bit_error_rate;
  f.uop = uop_bit_error_rate;
  f.dram = dram_bit_error_rate;
  f.seed = seed;
  return f;
}

int power_of_two_step(double range) {
  if (!(range > 0)) return 0;
  int k = 0;
  const double m = std::frexp(range / 127.0, &k);  // range / 127 = m · 2^k, m in [0.5, 1)
  return m == 0.5 ? k - 1 : k;
}

DenseQuantization quantize_dense(const MatrixRM& weights, double input_range, double output_range) {
  DenseQuantization q;
  const double wmax = weights.size() ? static_cast<double>(weights.cwiseAbs().maxCoeff()) : 0.0;
  if (!std::isfinite(wmax)) throw Error("a weight is not finite");
  if (!std::isfinite(input_range) || !std::isfinite(output_range)) throw Error("a calibrated activation range is not finite");
  q.weight_exp = power_of_two_step(wmax);
  q.input_exp = power_of_two_step(input_range);
  q.output_exp = power_of_two_step(output_range);
  // An output step finer than the accumulator's (a negative shift) cannot be represented: the
  // accumulator's own step then is the output step (its values fit int8 by the range).
  q.shift = q.output_exp - q.input_exp - q.weight_exp;
  if (q.shift < 0) q.shift = 0;
  if (q.shift > 31) q.shift = 31;
  q.output_exp = q.input_exp + q.weight_exp + q.shift;
  q.weight_codes.resize(static_cast<std::size_t>(weights.size()));
  for (Eigen::Index r = 0; r < weights.rows(); ++r)
    for (Eigen::Index c = 0; c < weights.cols(); ++c) {
      const double v = std::clamp(std::nearbyint(std::ldexp(static_cast<double>(weights(r, c)), -q.weight_exp)), -127.0, 127.0);
      q.weight_codes[static_cast<std::size_t>(r * weights.cols() + c)] = static_cast<std::int8_t>(v);
    }
  return q;
}

namespace {

std::int8_t input_code(float x, int input_exp) {
  const double v = std::nearbyint(std::ldexp(static_cast<double>(x), -input_exp));
  // Clipped to the int8 range the calibration promised; NaN becomes 0 (no code to carry it).
  return static_cast<std::int8_t>(v >= 127.0 ? 127 : v <= -127.0 ? -127 : v == v ? static_cast<int>(v) : 0);
}

}  // namespace

std::vector<std::int32_t> accumulator_bias(const DenseQuantization& q, const std::vector<float>& bias, Eigen::Index outputs) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(outputs), 0);
  const std::int64_t rounding = q.shift > 0 ? std::int64_t{1} << (q.shift - 1) : 0;
  for (std::size_t o = 0; o < out.size(); ++o) {
    // In accumulator steps (2^(input_exp + weight_exp)), rounded; NaN as 0.
    double b = o < bias.size() ? std::nearbyint(std::ldexp(static_cast<double>(bias[o]), -(q.input_exp + q.weight_exp))) : 0.0;
    if (!(b == b)) b = 0;
    b = std::clamp(b, -2147483648.0 + 2.0 * static_cast<double>(rounding), 2147483647.0 - static_cast<double>(rounding));
    out[o] = static_cast<std::int32_t>(static_cast<std::int64_t>(b) + rounding);
  }
  return out;
}

ConvLayer conv_layer(const ConvShape& s, const DenseQuantization& q, const std::string& name) {
  ConvLayer layer;
  layer.name = name;
  layer.in_channels = static_cast<int>(s.in_channels);
  layer.height = static_cast<int>(s.height);
  layer.width = static_cast<int>(s.width);
  layer.out_channels = static_cast<int>(s.out_channels);
  layer.kernel_h = static_cast<int>(s.kernel_h);
  layer.kernel_w = static_cast<int>(s.kernel_w);
  layer.stride_h = static_cast<int>(s.stride_h);
  layer.stride_w = static_cast<int>(s.stride_w);
  layer.pad_top = static_cast<int>(s.pad_top);
  layer.pad_left = static_cast<int>(s.pad_left);
  layer.pad_bottom = static_cast<int>(s.pad_bottom);
  layer.pad_right = static_cast<int>(s.pad_right);
  layer.weights = q.weight_codes;
  layer.shift = q.shift;
  return layer;
}

ConvLayer dense_as_conv(const DenseQuantization& q, Eigen::Index outputs, Eigen::Index inputs, Eigen::Index rows, const VtaConfig& config,
                        const std::string& name) {
  ConvLayer layer;
  layer.name = name;
  layer.in_channels = static_cast<int>(inputs);
  layer.out_channels = static_cast<int>(outputs);
  layer.height = 1;
  layer.width = static_cast<int>((rows + config.batch() - 1) / config.batch());
  layer.weights = q.weight_codes;
  layer.shift = q.shift;
  // Round to nearest (half up) instead of SHR's floor: ACC starts at half an output step.
  if (q.shift > 0) layer.bias.assign(static_cast<std::size_t>(outputs), std::int32_t{1} << (q.shift - 1));
  return layer;
}

namespace {

std::mutex capture_mutex;
std::function<void(const CapturedRead&)> read_capture;

std::function<void(const CapturedRead&)> current_capture() {
  std::lock_guard<std::mutex> lock(capture_mutex);
  return read_capture;
}

}  // namespace

void set_read_capture(std::function<void(const CapturedRead&)> capture) {
  std::lock_guard<std::mutex> lock(capture_mutex);
  read_capture = std::move(capture);
}

namespace {

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class VtaSubstrate final : public Substrate, public GemmCoreHost {
 public:
  VtaSubstrate(const VtaUnitConfig& unit, const Schedule& schedule) : unit_(unit), config_(unit.machine()), schedule_(schedule) {
    config_.validate();
    faulty_ = unit_.faults(0).any();
  }

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    name_ = layer.name + (layer.part ? " (group " + std::to_string(layer.part) + ")" : "");
    const bool global = unit_.global_scale > 0;
    if (!global && !layer.calibrated)
      throw Error("layer '" + layer.name + "' on vta: no calibrated activation ranges (this command has no data to calibrate on; set "
                  "global_scale in the unit to use one fixed range)");
    try {
      quant_ = quantize_dense(w, global ? unit_.global_scale : layer.input_range, global ? unit_.global_scale : layer.output_range);
    } catch (const Error& e) {
      throw Error("layer '" + name_ + "' on vta: " + e.what());
    }
    outputs_ = w.rows();
    inputs_ = w.cols();
    // Lower one read now, so that a layer VTA cannot hold is named before the first image (a given
    // schedule is for the layer's own shape, which is known at the first read).
    if (schedule_.is_default()) (void)lower_conv(dense_as_conv(quant_, outputs_, inputs_, 1, config_, name_), config_.batch(), config_);
    key_ = splitmix(splitmix(splitmix(context.seed) ^ context.trial) ^ (static_cast<std::uint64_t>(layer.index) << 20 | static_cast<std::uint64_t>(layer.part)));
    for (Counter& c : counters_) c.reset();
  }

  // A dense product without bias (the engine adds it): convolve()'s dense case with no bias.
  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    ConvShape shape;
    shape.in_channels = inputs_;
    shape.out_channels = outputs_;
    shape.x_image_stride = x.outerStride();
    shape.y_image_stride = y.outerStride();
    (void)convolve(shape, x.data(), x.rows(), {}, y.data(), context);
  }

  // A convolution on the feature map (models/vta_lowering.h: LOAD with padding, one GEMM per
  // kernel tap), the bias in ACC; a dense layer (1 × 1 images) as multiply() lays it out, with
  // the bias. Dilated kernels and paddings the lowering cannot express go to multiply() (im2col).
  bool convolve(const ConvShape& s, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                const MultiplyContext& context) const override {
    if (images == 0) return true;
    if (s.in_channels != inputs_ / (s.kernel_h * s.kernel_w) || s.out_channels != outputs_) return false;
    const bool dense = s.height == 1 && s.width == 1 && s.kernel_h == 1 && s.kernel_w == 1 && s.out_h == 1 && s.out_w == 1;
    const auto pad_ok = [](std::int64_t pad, std::int64_t kernel) { return pad < kernel && pad <= 15; };
    if (!dense && (s.dilation_h != 1 || s.dilation_w != 1 || !pad_ok(s.pad_top, s.kernel_h) || !pad_ok(s.pad_bottom, s.kernel_h) ||
                   !pad_ok(s.pad_left, s.kernel_w) || !pad_ok(s.pad_right, s.kernel_w)))
      return false;
    const std::vector<std::int32_t> acc_bias = accumulator_bias(quant_, bias, outputs_);
    if (dense) {
      ConvLayer layer = dense_as_conv(quant_, outputs_, inputs_, images, config_, name_);
      fit_rows_to_schedule(layer, schedule_);
      layer.bias = acc_bias;
      std::vector<std::int8_t> image(static_cast<std::size_t>(config_.batch()) * inputs_ * layer.width, 0);
      for (std::int64_t r = 0; r < images; ++r) {
        const std::int64_t b = r / layer.width, col = r % layer.width;
        for (Eigen::Index c = 0; c < inputs_; ++c)
          image[static_cast<std::size_t>((b * inputs_ + c) * layer.width + col)] = input_code(x[r * s.x_image_stride + c], quant_.input_exp);
      }
      const std::vector<std::int8_t> result = run(layer, config_.batch(), image, context);
      for (std::int64_t r = 0; r < images; ++r) {
        const std::int64_t b = r / layer.width, col = r % layer.width;
        for (Eigen::Index o = 0; o < outputs_; ++o)
          y[r * s.y_image_stride + o] = std::ldexp(static_cast<float>(result[static_cast<std::size_t>((b * outputs_ + o) * layer.width + col)]), quant_.output_exp);
      }
      return true;
    }
    ConvLayer layer = conv_layer(s, quant_, name_);
    layer.bias = acc_bias;
    const std::size_t image_size = static_cast<std::size_t>(s.in_channels * s.height * s.width);
    std::vector<std::int8_t> input(image_size * static_cast<std::size_t>(images));
    for (std::int64_t i = 0; i < images; ++i)
      for (std::size_t k = 0; k < image_size; ++k) input[static_cast<std::size_t>(i) * image_size + k] = input_code(x[i * s.x_image_stride + static_cast<std::int64_t>(k)], quant_.input_exp);
    const std::vector<std::int8_t> result = run(layer, static_cast<int>(images), input, context);
    const std::int64_t per_image = outputs_ * s.patches();
    for (std::int64_t i = 0; i < images; ++i)
      for (std::int64_t k = 0; k < per_image; ++k)
        y[i * s.y_image_stride + k] = std::ldexp(static_cast<float>(result[static_cast<std::size_t>(i * per_image + k)]), quant_.output_exp);
    return true;
  }

  const VtaConfig& machine_config() const override { return config_; }
  void set_gemm_batch(VtaMachine::GemmBatch batch) override { gemm_batch_ = std::move(batch); }

  std::string kind() const override { return "vta"; }
  Eigen::Index outputs() const override { return outputs_; }
  Eigen::Index inputs() const override { return inputs_; }

  void add_counters(std::map<std::string, double>& out) const override {
    // tvm-vta's profiler names (sim_driver.cc), summed over the layer's reads.
    static const char* names[kCounters] = {"gemm_counter",    "alu_counter",     "inp_load_nbytes", "wgt_load_nbytes", "acc_load_nbytes",
                                           "uop_load_nbytes", "out_store_nbytes", "instructions",   "flipped_bits"};
    for (std::size_t k = 0; k < kCounters; ++k) out[names[k]] += static_cast<double>(counters_[k].get());
  }

 private:
  // Lowers `layer` for `images` images, puts `input` (NCHW int8) into its DRAM image, runs it on
  // the functional machine with this read's faults, returns the int8 outputs (NCHW).
  std::vector<std::int8_t> run(const ConvLayer& layer, int images, const std::vector<std::int8_t>& input, const MultiplyContext& context) const {
    LoweredLayer lowered = lower_conv(layer, images, config_, schedule_);
    write_conv_input(lowered, layer, config_, input.data(), lowered.dram);
    const std::function<void(const CapturedRead&)> capture = current_capture();
    std::vector<std::uint8_t> before;
    if (capture) before = lowered.dram;
    VtaMachine machine(config_);
    if (gemm_batch_) machine.set_gemm_batch(gemm_batch_);
    // Each read's faults from its own stream: the seed, trial, layer and the read's first row.
    if (faulty_) machine.set_faults(unit_.faults(splitmix(key_ ^ splitmix(context.first_row))));
    const VtaCounters counts = machine.run(lowered.program, lowered.dram);
    std::vector<std::int8_t> result(static_cast<std::size_t>(lowered.groups) * config_.batch() * layer.out_channels * layer.out_height() * layer.out_width());
    read_conv_output(lowered, layer, config_, lowered.dram, result.data());
    if (capture) capture(CapturedRead{name_, layer, quant_, lowered, before, lowered.dram});
    const std::uint64_t values[] = {counts.gemm_counter,    counts.alu_counter,     counts.inp_load_nbytes, counts.wgt_load_nbytes,
                                    counts.acc_load_nbytes, counts.uop_load_nbytes, counts.out_store_nbytes, counts.instructions,
                                    counts.inp_flips + counts.wgt_flips + counts.acc_flips + counts.uop_flips + counts.dram_flips};
    for (std::size_t k = 0; k < kCounters; ++k) counters_[k].add(values[k]);
    return result;
  }

  static constexpr std::size_t kCounters = 9;
  VtaUnitConfig unit_;
  VtaConfig config_;
  Schedule schedule_;  // the layer's (all zero: the default one per read)
  bool faulty_ = false;
  std::string name_;
  DenseQuantization quant_;
  Eigen::Index outputs_ = 0, inputs_ = 0;
  std::uint64_t key_ = 0;
  VtaMachine::GemmBatch gemm_batch_;  // the RTL level's core; empty: the machine's own product
  Counter counters_[kCounters];
};

SubstrateKind vta_kind() {
  SubstrateKind k = typed_kind("vta",
                               "Apache TVM's Versatile Tensor Accelerator: each read of a layer is a VTA program (LOAD, GEMM on the "
                               "BATCH x BLOCK x BLOCK core, ALU requantization, STORE) executed on the ISA-exact functional machine; "
                               "int8 power-of-two quantization as TVM's VTA flow (Moreau et al., arXiv 1807.04188); bit errors in INP, "
                               "WGT, ACC, UOP and DRAM.",
                               VtaUnitConfig::table(), VtaUnitConfig{}, [](const VtaUnitConfig&) { return nullptr; });
  // The substrate of one layer: the unit's parameters and the layer's schedule knobs.
  k.create = [](const Params& p) -> std::unique_ptr<Substrate> { return std::make_unique<VtaSubstrate>(VtaUnitConfig::table().read(p), schedule_from(p)); };
  k.schedule = schedule_table().specs(Schedule{});
  // Activation ranges measured on the float model over this many images (TVM calibrates its
  // quantization on a small calibration set the same way).
  k.capabilities.calibration_images = 256;
  // Its cycle level (sim/vta_cycle.cpp) runs each read's program on the SystemC VTA.
  k.capabilities.cycle_model = true;
  // `impl: rtl:NAME`: its GEMMs on a BLOCK x BLOCK RTL core at --level rtl (sim/vta_rtl.cpp).
  k.capabilities.rtl_binding = true;
  k.timing = VtaTiming::table().specs();
  k.summary_counters = {"instructions", "gemm_counter", "flipped_bits"};
  return k;
}

}  // namespace

}  // namespace faultline::models::vta

namespace faultline::models {
FAULTLINE_REGISTER_KIND(vta, vta::vta_kind)
}
