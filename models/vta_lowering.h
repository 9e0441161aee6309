// Lowering a quantized layer to a VTA program (issue 14, "whole networks on VTA"): the arithmetic
// of TVM's VTA flow -- int8 inputs and weights, int32 accumulation in ACC starting from the bias,
// requantization by an arithmetic right shift (ALU SHR) and clipping to int8 (ALU MIN/MAX, with
// ReLU fused as the lower bound 0), int8 results stored -- and VTA's way of running a convolution:
// on the feature map, the input rows a block of outputs needs loaded with LOAD's zero padding, one
// GEMM per kernel tap (two-level loops over the kernel's rows and columns), no host-side im2col.
// A dense layer is a 1 × 1 convolution over a 1 × rows image.
//
// Layouts (tvm-vta's packed NCHWnc): the input image group g (BATCH images) is stored as entries
// (input channel tile, row, column), each BATCH × BLOCK int8 ([image][channel]); the output as
// (output channel tile, row, column); the weights as tiles (output tile, input tile, kernel row,
// kernel column), each BLOCK × BLOCK ([output][input]). Channels are zero-padded to BLOCK.
//
// The tiling is a Schedule (models/vta_schedule.h: TVM's conv2d/dense knobs; the default one when
// none is given): the micro-ops loaded once, then per block of outputs the bias into ACC, per
// input channel step the input rows and weights loaded and one GEMM, then ALU SHR/MIN/MAX and the
// stores, with virtual threads' blocks interleaved and the dependency tokens ordering the three
// modules. An invalid schedule, a padding of more than 15 or an instruction field that does not
// fit is an Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/vta_isa.h"
#include "models/vta_schedule.h"

namespace faultline::models::vta {

struct ConvLayer {
  std::string name = "layer";  // for messages
  int in_channels = 0, height = 0, width = 0;
  int out_channels = 0, kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::vector<std::int8_t> weights;  // out_channels × in_channels × kernel_h × kernel_w
  std::vector<std::int32_t> bias;    // out_channels, or empty (no bias)
  int shift = 0;                     // requantization: (Σ + bias) >> shift, in [0, 31]
  bool relu = false;                 // clip to [0, 127] instead of [-128, 127]

  int out_height() const { return (height + pad_top + pad_bottom - kernel_h) / stride_h + 1; }
  int out_width() const { return (width + pad_left + pad_right - kernel_w) / stride_w + 1; }
  // Throws faultline::Error naming the layer and the field.
  void validate() const;
};

struct LoweredLayer {
  std::vector<Instruction> program;
  std::vector<std::uint8_t> dram;  // weights, bias, micro-ops; input and output regions zeroed
  std::size_t input_offset = 0, output_offset = 0;  // bytes
  int images = 0, groups = 0;      // images lowered for; groups of BATCH images (padded to whole tile_b blocks)
  int in_tiles = 0, out_tiles = 0;  // channel tiles of BLOCK
  Schedule schedule;               // the one used (the default resolved)
};

// The program and DRAM image for `images` images of `layer` under `schedule` (the default one when
// it is all zero). Throws faultline::Error naming the layer and what does not fit.
LoweredLayer lower_conv(const ConvLayer& layer, int images, const VtaConfig& config, const Schedule& schedule = {});

// Puts images (images × in_channels × height × width int8, NCHW) into `dram` at the input region.
void write_conv_input(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::int8_t* x, std::vector<std::uint8_t>& dram);
// Reads the results (images × out_channels × out_height × out_width int8, NCHW) from `dram`.
void read_conv_output(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::vector<std::uint8_t>& dram, std::int8_t* y);

// The same arithmetic computed directly (the reference the lowering is tested against).
void reference_conv(const ConvLayer& layer, int images, const std::int8_t* x, std::int8_t* y);

}  // namespace faultline::models::vta
