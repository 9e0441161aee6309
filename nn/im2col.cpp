#include "nn/im2col.h"

#include <algorithm>

namespace faultline::nn {
namespace {

// Copies one kernel row; the common widths get a fixed-size copy the compiler turns into a few
// vector moves instead of a loop of unknown length.
template <int N>
inline void copy_fixed(const float* src, float* dst) {
  for (int k = 0; k < N; ++k) dst[k] = src[k];
}

inline void copy_row(const float* src, float* dst, std::int64_t n) {
  switch (n) {
    case 1: copy_fixed<1>(src, dst); return;
    case 2: copy_fixed<2>(src, dst); return;
    case 3: copy_fixed<3>(src, dst); return;
    case 5: copy_fixed<5>(src, dst); return;
    case 7: copy_fixed<7>(src, dst); return;
    default: std::copy(src, src + n, dst);
  }
}

}  // namespace

namespace {

// im2col for a kernel KW wide with no dilation along x: the interior kernel rows are fixed-size
// copies (a few vector moves), with no per-row dispatch on the width.
template <int KW>
void im2col_fixed_width(const ConvGeometry& g, const float* image, float* rows) {
  const std::int64_t k = g.patch_size(), plane_size = g.height * g.width;
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      float* dst = rows + (oy * g.out_w + ox) * k;
      const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
      const bool interior = ix0 >= 0 && ix0 + KW - 1 < g.width;
      const float* plane = image;
      for (std::int64_t c = 0; c < g.channels; ++c, plane += plane_size) {
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky, dst += KW) {
          const std::int64_t iy = iy0 + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) {
            for (int kx = 0; kx < KW; ++kx) dst[kx] = 0.0f;
          } else if (interior) {
            copy_fixed<KW>(plane + iy * g.width + ix0, dst);
          } else {
            for (int kx = 0; kx < KW; ++kx) {
              const std::int64_t ix = ix0 + kx;
              dst[kx] = (ix >= 0 && ix < g.width) ? plane[iy * g.width + ix] : 0.0f;
            }
          }
        }
      }
    }
  }
}

}  // namespace

void im2col(const ConvGeometry& g, const float* image, float* rows) {
  if (g.dilation_w == 1) {
    switch (g.kernel_w) {
      case 1: return im2col_fixed_width<1>(g, image, rows);
      case 3: return im2col_fixed_width<3>(g, image, rows);
      case 5: return im2col_fixed_width<5>(g, image, rows);
      case 7: return im2col_fixed_width<7>(g, image, rows);
      default: break;
    }
  }
  const std::int64_t k = g.patch_size();
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      float* row = rows + (oy * g.out_w + ox) * k;
      const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
      const bool interior = ix0 >= 0 && ix0 + (g.kernel_w - 1) * g.dilation_w < g.width;
      for (std::int64_t c = 0; c < g.channels; ++c) {
        const float* plane = image + c * g.height * g.width;
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const std::int64_t iy = iy0 + ky * g.dilation_h;
          float* dst = row + (c * g.kernel_h + ky) * g.kernel_w;
          if (iy < 0 || iy >= g.height) {
            std::fill(dst, dst + g.kernel_w, 0.0f);
            continue;
          }
          const float* src = plane + iy * g.width;
          if (interior) {
            // The whole kernel row lies inside the image: no bounds checks (the common case).
            if (g.dilation_w == 1) copy_row(src + ix0, dst, g.kernel_w);
            else for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) dst[kx] = src[ix0 + kx * g.dilation_w];
            continue;
          }
          for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const std::int64_t ix = ix0 + kx * g.dilation_w;
            dst[kx] = (ix >= 0 && ix < g.width) ? src[ix] : 0.0f;
          }
        }
      }
    }
  }
}

void col2im_add(const ConvGeometry& g, const float* rows, float* image_grad) {
  const std::int64_t k = g.patch_size();
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
      const float* row = rows + (oy * g.out_w + ox) * k;
      const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
      const bool interior = ix0 >= 0 && ix0 + (g.kernel_w - 1) * g.dilation_w < g.width;
      for (std::int64_t c = 0; c < g.channels; ++c) {
        float* plane = image_grad + c * g.height * g.width;
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const std::int64_t iy = iy0 + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          const float* src = row + (c * g.kernel_h + ky) * g.kernel_w;
          if (interior) {
            for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) plane[iy * g.width + ix0 + kx * g.dilation_w] += src[kx];
            continue;
          }
          for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const std::int64_t ix = ix0 + kx * g.dilation_w;
            if (ix >= 0 && ix < g.width) plane[iy * g.width + ix] += src[kx];
          }
        }
      }
    }
  }
}

}  // namespace faultline::nn
