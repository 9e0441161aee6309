// The hardware kind `vta`: a network layer's product run on VTA (models/vta_isa.h) as TVM's VTA
// flow runs it -- int8 inputs and weights with power-of-two scales, int32 accumulation on the
// GEMM core, requantization by ALU SHR (rounded: half an output step is the ACC start value) and
// clipping to int8 by ALU MIN/MAX, int8 results stored -- through the layer lowering of
// models/vta_lowering.h. Every read is a real VTA program executed on the functional machine, so
// the effect of bit errors in VTA's buffers (VtaFaults) on a whole network is measured end to end.
//
// Scales (TVM relay.quantize with VTA's settings: nbit 8, power-of-two scales, int32 accumulators;
// Jacob et al., CVPR 2018, for the integer arithmetic): weights by the layer's max |W|; inputs and
// outputs by calibrated ranges -- max |x| and max |x·Wᵀ| of the layer on the float model over the
// first calibration images (KindCapabilities::calibration_images), or one `global_scale` for every
// activation as TVM's default qconfig does (global_scale 8.0) -- so that a layer's arithmetic is
// fixed before the first read and does not depend on how the data are batched.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/substrate.h"
#include "models/vta_isa.h"
#include "models/vta_lowering.h"

namespace faultline::models::vta {

// The unit's parameters: vta_config.json's fields, the activation scaling and the buffers' bit
// error rates (declared with ranges and sources in vta_substrate.cpp).
struct VtaUnitConfig {
  // vta_config.json (defaults: tvm-vta's default configuration, as VtaConfig's).
  int log_inp_width = 3, log_wgt_width = 3, log_acc_width = 5, log_batch = 0, log_block = 4;
  int log_uop_buff_size = 15, log_inp_buff_size = 15, log_wgt_buff_size = 18, log_acc_buff_size = 17;
  double global_scale = 0;  // > 0: every activation's range is ±global_scale (TVM's default 8.0); 0: calibrated ranges
  double inp_bit_error_rate = 0, wgt_bit_error_rate = 0, acc_bit_error_rate = 0, uop_bit_error_rate = 0, dram_bit_error_rate = 0;
  static const ParamTable<VtaUnitConfig>& table();
  VtaConfig machine() const;
  VtaFaults faults(std::uint64_t seed) const;
};

// The per-layer schedule knobs (a vta unit's `schedule: {LAYER: {...}}`; models/vta_schedule.h),
// 0 for the default schedule, and the schedule in a substrate's parameters (the default when they
// carry none).
const ParamTable<Schedule>& schedule_table();
Schedule schedule_from(const Params& params);

// A dense layer's rows padded to whole blocks of the schedule's tile_w (the extra rows are zero
// and their results dropped), so that a schedule tuned for one batch runs every read.
void fit_rows_to_schedule(ConvLayer& layer, const Schedule& schedule);

// The exponent e of the power-of-two step 2^e that maps ±range onto ±127: the smallest e with
// range / 2^e ≤ 127 (0 for a range of 0). Exact (frexp), so the same on every machine.
int power_of_two_step(double range);

// A layer's fixed-point plan: codes and exponents, from which its VTA program is built.
struct DenseQuantization {
  int weight_exp = 0, input_exp = 0, output_exp = 0;
  int shift = 0;  // output_exp − input_exp − weight_exp, in [0, 31]
  std::vector<std::int8_t> weight_codes;  // outputs × inputs
};
DenseQuantization quantize_dense(const MatrixRM& weights, double input_range, double output_range);

// The ACC start values: each output's bias in accumulator steps (2^(input_exp + weight_exp)),
// rounded, plus half an output step (2^(shift − 1)) so that SHR rounds to nearest; `bias` may be
// empty (no bias).
std::vector<std::int32_t> accumulator_bias(const DenseQuantization& q, const std::vector<float>& bias, Eigen::Index outputs);

// The VTA layer of a feature-map convolution (weights: the block's codes, out × in × kh × kw).
ConvLayer conv_layer(const ConvShape& shape, const DenseQuantization& q, const std::string& name);

// The VTA layer that computes `rows` input vectors of a dense product as a 1 × 1 convolution: the
// rows are the pixels of BATCH images of one row each (row r is image r / width, column r % width).
ConvLayer dense_as_conv(const DenseQuantization& q, Eigen::Index outputs, Eigen::Index inputs, Eigen::Index rows, const VtaConfig& config,
                        const std::string& name);

// What the RTL level needs of a `vta` substrate (sim/vta_rtl.cpp): its configuration, and its GEMM
// products moved onto an RTL core (every VTA machine it runs from then on uses `batch`).
class GemmCoreHost {
 public:
  virtual ~GemmCoreHost() = default;
  virtual const VtaConfig& machine_config() const = 0;
  virtual void set_gemm_batch(VtaMachine::GemmBatch batch) = 0;
};

// Every read a `vta` substrate runs, handed over with its program and DRAM image (before and after
// the run) while a capture is set: how `faultline vta compile` writes a network's layers as
// program folders. Process-wide; the capture must be safe to call from several threads.
struct CapturedRead {
  const std::string& layer;  // the layer's name (and group)
  const ConvLayer& conv;     // as lowered (a dense layer: the 1 × 1 convolution of dense_as_conv)
  const DenseQuantization& quantization;
  const LoweredLayer& lowered;
  const std::vector<std::uint8_t>& dram_before;
  const std::vector<std::uint8_t>& dram_after;
};
void set_read_capture(std::function<void(const CapturedRead&)> capture);

}  // namespace faultline::models::vta
