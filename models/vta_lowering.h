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
// The default tiling: the micro-ops loaded once; the output channel tiles in groups whose weights
// fit WGT (one group when all do), each group's weights loaded once; then per output row, chunks of
// output columns as wide as INP, ACC and the micro-op buffer allow, each loaded, computed and
// stored in turn with the dependency tokens ordering the three modules (single-buffered; the
// tuning of issue 15 explores others). Everything that does not fit (one output tile's weights in
// WGT, a padding of more than 15, an instruction field) is an Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/vta_isa.h"

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
  int images = 0, groups = 0;      // images lowered for; groups of BATCH images
  int in_tiles = 0, out_tiles = 0;  // channel tiles of BLOCK
  int chunk_width = 0;             // output columns per chunk
  int weight_groups = 1;           // groups of output channel tiles whose weights fit WGT, loaded one after another
};

// The program and DRAM image for `images` images of `layer`. Throws faultline::Error naming the
// layer and what does not fit.
LoweredLayer lower_conv(const ConvLayer& layer, int images, const VtaConfig& config);

// Puts images (images × in_channels × height × width int8, NCHW) into `dram` at the input region.
void write_conv_input(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::int8_t* x, std::vector<std::uint8_t>& dram);
// Reads the results (images × out_channels × out_height × out_width int8, NCHW) from `dram`.
void read_conv_output(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::vector<std::uint8_t>& dram, std::int8_t* y);

// The same arithmetic computed directly (the reference the lowering is tested against).
void reference_conv(const ConvLayer& layer, int images, const std::int8_t* x, std::int8_t* y);

}  // namespace faultline::models::vta
