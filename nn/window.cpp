#include "nn/window.h"

namespace faultline::nn {

void Window2D::read(const NodeSpec& spec, bool kernel_from_attribute, bool allow_ceil, bool allow_dilations) {
  if (kernel_from_attribute) {
    auto k = spec.get_ints("kernel_shape", {});
    if (k.empty()) spec.fail("missing required attribute 'kernel_shape'");
    if (k.size() != 2) spec.unsupported("only 2-D windows are supported, kernel_shape has " + std::to_string(k.size()) + " dimensions");
    kernel[0] = k[0];
    kernel[1] = k[1];
    if (kernel[0] < 1 || kernel[1] < 1) spec.fail("'kernel_shape' must be positive");
  }
  auto s = spec.get_ints("strides", {1, 1});
  auto d = allow_dilations ? spec.get_ints("dilations", {1, 1}) : std::vector<std::int64_t>{1, 1};
  auto p = spec.get_ints("pads", {0, 0, 0, 0});
  if (s.size() != 2) spec.unsupported("only 2-D windows are supported ('strides' has " + std::to_string(s.size()) + " values)");
  if (d.size() != 2) spec.unsupported("only 2-D windows are supported ('dilations' has " + std::to_string(d.size()) + " values)");
  if (p.size() != 4) spec.unsupported("only 2-D windows are supported ('pads' has " + std::to_string(p.size()) + " values)");
  for (int a = 0; a < 2; ++a) {
    stride[a] = s[a];
    dilation[a] = d[a];
    pad_begin[a] = p[a];
    pad_end[a] = p[a + 2];
    if (stride[a] < 1) spec.fail("'strides' must be positive");
    if (dilation[a] < 1) spec.fail("'dilations' must be positive");
    if (pad_begin[a] < 0 || pad_end[a] < 0) spec.fail("'pads' must not be negative");
  }
  auto_pad = spec.get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID")
    spec.fail("invalid auto_pad '" + auto_pad + "'");
  if (allow_ceil) ceil_mode = spec.get_int("ceil_mode", 0) != 0;
  // A pooling window padded by its own size or more would hold nothing but padding (onnxruntime
  // rejects pads >= kernel_shape, PyTorch pads above half the kernel).
  if (kernel_from_attribute)
    for (int a = 0; a < 2; ++a)
      if (pad_begin[a] >= kernel[a] || pad_end[a] >= kernel[a])
        spec.fail("'pads' (" + std::to_string(pad_begin[a]) + ", " + std::to_string(pad_end[a]) + ") must be smaller than 'kernel_shape' (" +
                  std::to_string(kernel[a]) + ") along axis " + std::to_string(a + 2));
}

std::int64_t Window2D::output_size(int a, std::int64_t in, std::int64_t* begin, std::int64_t* end) const {
  const std::int64_t extent = (kernel[a] - 1) * dilation[a] + 1;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const std::int64_t out = (in + stride[a] - 1) / stride[a];
    const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * stride[a] + extent - in);
    // SAME_UPPER puts the odd padding element at the end, SAME_LOWER at the beginning.
    *begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    *end = total - *begin;
    return out;
  }
  if (auto_pad == "VALID") {
    *begin = *end = 0;
    if (in < extent) return 0;
    return (in - extent) / stride[a] + 1;
  }
  *begin = pad_begin[a];
  *end = pad_end[a];
  const std::int64_t span = in + *begin + *end - extent;
  if (span < 0) return 0;
  std::int64_t out = span / stride[a] + 1;
  if (ceil_mode) {
    out = (span + stride[a] - 1) / stride[a] + 1;
    // A window that would start entirely inside the end padding is dropped (as PyTorch and the
    // ONNX reference implementation do).
    if ((out - 1) * stride[a] >= in + *begin) --out;
  }
  return out;
}

}  // namespace faultline::nn
