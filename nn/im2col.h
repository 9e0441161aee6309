// Lowering of a 2-D convolution to a matrix product (im2col): each output pixel becomes one row
// holding the input patch it sees, ordered (channel, kernel row, kernel column) to match a weight
// tensor [out, in, kh, kw] viewed as a matrix [out, in·kh·kw]. Shared by inference and training.
#pragma once

#include <cstdint>

namespace faultline::nn {

struct ConvGeometry {
  std::int64_t channels = 1, height = 0, width = 0;   // one image (or one group of its channels)
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t pad_top = 0, pad_left = 0;
  std::int64_t out_h = 0, out_w = 0;

  std::int64_t patch_size() const { return channels * kernel_h * kernel_w; }
  std::int64_t patches() const { return out_h * out_w; }
};

// rows (patches × patch_size) ← the patches of `image` (channels × height × width); positions
// in the padding read as zero.
void im2col(const ConvGeometry& g, const float* image, float* rows);

// image_grad (channels × height × width) += the patch gradients `rows` scattered back (the
// adjoint of im2col).
void col2im_add(const ConvGeometry& g, const float* rows, float* image_grad);

}  // namespace faultline::nn
