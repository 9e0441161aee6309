// MaxPool, AveragePool and GlobalAveragePool on NCHW tensors.
#include <algorithm>
#include <limits>

#include "nn/op.h"
#include "nn/window.h"

namespace faultline::nn {
namespace {

class PoolOp final : public Op {
 public:
  PoolOp(const NodeSpec& spec, bool is_max) : spec_(spec), is_max_(is_max) {
    spec.expect_inputs(1, 1);
    window_.read(spec, true, spec.opset >= 10, is_max && spec.opset >= 10);
    if (is_max) {
      if (spec.get_int("storage_order", 0) != 0) spec.unsupported("storage_order=1 is not supported");
      if (spec.has_output(1)) spec.unsupported("the Indices output is not supported");
    } else {
      count_include_pad_ = spec.get_int("count_include_pad", 0) != 0;
    }
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::Float32) spec_.fail("input must be float32");
    if (x.rank() != 4) spec_.unsupported("only 2-D pooling (4-D NCHW input) is supported, input has shape " + shape_string(x.shape()));
    const std::int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    std::int64_t pt, pb, pl, pr;
    const std::int64_t ho = window_.output_size(0, h, &pt, &pb);
    const std::int64_t wo = window_.output_size(1, w, &pl, &pr);
    if (ho <= 0 || wo <= 0) spec_.fail("input " + shape_string(x.shape()) + " is smaller than the window");
    Tensor y({x.dim(0), x.dim(1), ho, wo});
    const std::int64_t kh = window_.kernel[0], kw = window_.kernel[1];
    const std::int64_t sh = window_.stride[0], sw = window_.stride[1];
    const std::int64_t dh = window_.dilation[0], dw = window_.dilation[1];
    for (std::int64_t p = 0; p < planes; ++p) {
      const float* src = x.f() + p * h * w;
      float* dst = y.f() + p * ho * wo;
      for (std::int64_t oy = 0; oy < ho; ++oy) {
        for (std::int64_t ox = 0; ox < wo; ++ox) {
          const std::int64_t y0 = oy * sh - pt, x0 = ox * sw - pl;
          if (y0 >= 0 && x0 >= 0 && y0 + (kh - 1) * dh < h && x0 + (kw - 1) * dw < w) {
            // The window lies inside the image (the common case): no bounds checks.
            const float* base = src + y0 * w + x0;
            float acc = is_max_ ? base[0] : 0.0f;
            for (std::int64_t ky = 0; ky < kh; ++ky)
              for (std::int64_t kx = 0; kx < kw; ++kx) {
                const float v = base[ky * dh * w + kx * dw];
                acc = is_max_ ? std::max(acc, v) : acc + v;
              }
            dst[oy * wo + ox] = is_max_ ? acc : acc / static_cast<float>(kh * kw);
            continue;
          }
          float acc = is_max_ ? -std::numeric_limits<float>::infinity() : 0.0f;
          std::int64_t inside = 0, in_padded = 0;
          for (std::int64_t ky = 0; ky < kh; ++ky) {
            const std::int64_t iy = y0 + ky * dh;
            for (std::int64_t kx = 0; kx < kw; ++kx) {
              const std::int64_t ix = x0 + kx * dw;
              // Positions inside the explicit padding count for count_include_pad; positions
              // past it (a ceil_mode overhang) never do.
              if (iy >= -pt && iy < h + pb && ix >= -pl && ix < w + pr) ++in_padded;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const float v = src[iy * w + ix];
              acc = is_max_ ? std::max(acc, v) : acc + v;
              ++inside;
            }
          }
          if (!is_max_) acc /= static_cast<float>(std::max<std::int64_t>(1, count_include_pad_ ? in_padded : inside));
          dst[oy * wo + ox] = acc;
        }
      }
    }
    out[0] = std::move(y);
  }

  // Max: the gradient goes to the first maximum of each window (the element the forward pass
  // kept); average: spread evenly over the positions the forward pass divided by.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || !need[0]) return;
    const Tensor& x = *in[0];
    const Tensor& dy = *dout[0];
    const std::int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    std::int64_t pt, pb, pl, pr;
    const std::int64_t ho = window_.output_size(0, h, &pt, &pb);
    const std::int64_t wo = window_.output_size(1, w, &pl, &pr);
    const std::int64_t kh = window_.kernel[0], kw = window_.kernel[1];
    const std::int64_t sh = window_.stride[0], sw = window_.stride[1];
    const std::int64_t dh = window_.dilation[0], dw = window_.dilation[1];
    Tensor dx(x.shape());
    for (std::int64_t p = 0; p < planes; ++p) {
      const float* src = x.f() + p * h * w;
      float* dst = dx.f() + p * h * w;
      const float* g = dy.f() + p * ho * wo;
      for (std::int64_t oy = 0; oy < ho; ++oy)
        for (std::int64_t ox = 0; ox < wo; ++ox) {
          const std::int64_t y0 = oy * sh - pt, x0 = ox * sw - pl;
          const float go = g[oy * wo + ox];
          if (y0 >= 0 && x0 >= 0 && y0 + (kh - 1) * dh < h && x0 + (kw - 1) * dw < w) {
            // The window lies inside the image (the common case): no bounds checks.
            const std::int64_t base = y0 * w + x0;
            if (is_max_) {
              std::int64_t best = base;
              for (std::int64_t ky = 0; ky < kh; ++ky)
                for (std::int64_t kx = 0; kx < kw; ++kx) {
                  const std::int64_t at = base + ky * dh * w + kx * dw;
                  if (src[at] > src[best]) best = at;
                }
              dst[best] += go;
            } else {
              const float share = go / static_cast<float>(kh * kw);
              for (std::int64_t ky = 0; ky < kh; ++ky)
                for (std::int64_t kx = 0; kx < kw; ++kx) dst[base + ky * dh * w + kx * dw] += share;
            }
            continue;
          }
          std::int64_t best = -1, inside = 0, in_padded = 0;
          for (std::int64_t ky = 0; ky < kh; ++ky) {
            const std::int64_t iy = y0 + ky * dh;
            for (std::int64_t kx = 0; kx < kw; ++kx) {
              const std::int64_t ix = x0 + kx * dw;
              if (iy >= -pt && iy < h + pb && ix >= -pl && ix < w + pr) ++in_padded;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              ++inside;
              if (best < 0 || src[iy * w + ix] > src[best]) best = iy * w + ix;
            }
          }
          if (is_max_) {
            if (best >= 0) dst[best] += go;
            continue;
          }
          const float share = go / static_cast<float>(std::max<std::int64_t>(1, count_include_pad_ ? in_padded : inside));
          for (std::int64_t ky = 0; ky < kh; ++ky) {
            const std::int64_t iy = y0 + ky * dh;
            for (std::int64_t kx = 0; kx < kw; ++kx) {
              const std::int64_t ix = x0 + kx * dw;
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) dst[iy * w + ix] += share;
            }
          }
        }
    }
    din[0] = std::move(dx);
  }

 private:
  NodeSpec spec_;
  bool is_max_;
  bool count_include_pad_ = false;
  Window2D window_;
};

class GlobalAveragePoolOp final : public Op {
 public:
  explicit GlobalAveragePoolOp(const NodeSpec& spec) : spec_(spec) { spec.expect_inputs(1, 1); }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::Float32 || x.rank() < 3) spec_.fail("input must be float32 N×C×spatial, has shape " + shape_string(x.shape()));
    Shape shape = x.shape();
    const std::int64_t planes = shape[0] * shape[1];
    const std::int64_t inner = planes == 0 ? 0 : x.numel() / planes;
    for (std::size_t d = 2; d < shape.size(); ++d) shape[d] = 1;
    Tensor y(shape);
    for (std::int64_t p = 0; p < planes; ++p) {
      double sum = 0;
      for (std::int64_t k = 0; k < inner; ++k) sum += x.f()[p * inner + k];
      y.f()[p] = static_cast<float>(sum / static_cast<double>(std::max<std::int64_t>(1, inner)));
    }
    out[0] = std::move(y);
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || !need[0]) return;
    const Tensor& x = *in[0];
    Tensor dx(x.shape());
    const std::int64_t planes = x.dim(0) * x.dim(1);
    const std::int64_t inner = planes == 0 ? 0 : x.numel() / planes;
    for (std::int64_t p = 0; p < planes; ++p) {
      const float share = dout[0]->f()[p] / static_cast<float>(std::max<std::int64_t>(1, inner));
      for (std::int64_t k = 0; k < inner; ++k) dx.f()[p * inner + k] = share;
    }
    din[0] = std::move(dx);
  }

 private:
  NodeSpec spec_;
};

}  // namespace

void register_pool_ops(std::map<std::string, OpFactory>& table) {
  table["MaxPool"] = [](const NodeSpec& s) { return std::make_unique<PoolOp>(s, true); };
  table["AveragePool"] = [](const NodeSpec& s) { return std::make_unique<PoolOp>(s, false); };
  table["GlobalAveragePool"] = [](const NodeSpec& s) { return std::make_unique<GlobalAveragePoolOp>(s); };
}

}  // namespace faultline::nn
