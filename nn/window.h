// Geometry of sliding windows (Conv, MaxPool, AveragePool): output sizes and padding from the
// ONNX attributes auto_pad, pads, strides, dilations and ceil_mode (ONNX operator spec,
// "Conv"/"MaxPool": output_spatial_shape formulas).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/op.h"

namespace faultline::nn {

struct Window2D {
  std::int64_t kernel[2] = {1, 1};
  std::int64_t stride[2] = {1, 1};
  std::int64_t dilation[2] = {1, 1};
  std::int64_t pad_begin[2] = {0, 0};
  std::int64_t pad_end[2] = {0, 0};
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;

  // Reads kernel_shape (when `kernel_from_attribute`), strides, dilations, pads, auto_pad and
  // (when `allow_ceil`) ceil_mode; validates them against a 2-D window.
  void read(const NodeSpec& spec, bool kernel_from_attribute, bool allow_ceil, bool allow_dilations);

  // Output size along axis `a` for an input of size `in`; resolves SAME_* padding into
  // pad_begin/pad_end of the returned copy.
  std::int64_t output_size(int a, std::int64_t in, std::int64_t* begin, std::int64_t* end) const;
};

}  // namespace faultline::nn
