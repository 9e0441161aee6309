// Element-wise arithmetic with numpy broadcasting, activations, Softmax and BatchNormalization
// (inference, and batch statistics when training): the digital periphery around the linear
// layers, each with its backward pass.
#include <algorithm>
#include <cmath>
#include <limits>

#include "nn/op.h"

#include "models/det_math.h"

// GCC 12 reports a spurious -Wfree-nonheap-object for the inlined std::vector destructors in
// broadcast_apply (GCC bug 108088); the vectors are ordinary heap allocations.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif

namespace faultline::nn {
namespace {

// Strides (in elements) of `shape` seen through the broadcast to `out` (0 on broadcast axes).
std::vector<std::int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<std::int64_t> strides(out.size(), 0);
  std::int64_t stride = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    const std::size_t o = k + out.size() - shape.size();
    strides[o] = shape[k] == 1 ? 0 : stride;
    stride *= shape[k];
  }
  return strides;
}

template <typename T, typename F>
void broadcast_apply(const Shape& out_shape, const T* a, const Shape& as, const T* b, const Shape& bs, T* y, F f) {
  const std::int64_t total = shape_numel(out_shape);
  if (as == bs) {
    for (std::int64_t k = 0; k < total; ++k) y[k] = f(a[k], b[k]);
    return;
  }
  if (shape_numel(bs) == 1) {
    const T bv = b[0];
    for (std::int64_t k = 0; k < total; ++k) y[k] = f(a[k], bv);
    return;
  }
  if (out_shape.empty()) { y[0] = f(a[0], b[0]); return; }
  const auto sa = broadcast_strides(as, out_shape), sb = broadcast_strides(bs, out_shape);
  const std::size_t rank = out_shape.size();
  const std::int64_t inner = out_shape.back();
  std::vector<std::int64_t> coord(rank, 0);
  std::int64_t ia = 0, ib = 0;
  for (std::int64_t k = 0; k < total; k += inner) {
    const std::int64_t la = sa[rank - 1], lb = sb[rank - 1];
    for (std::int64_t j = 0; j < inner; ++j) y[k + j] = f(a[ia + j * la], b[ib + j * lb]);
    // Advance the outer coordinates like an odometer.
    for (std::size_t d = rank - 1; d-- > 0;) {
      ia += sa[d];
      ib += sb[d];
      if (++coord[d] < out_shape[d]) break;
      ia -= sa[d] * out_shape[d];
      ib -= sb[d] * out_shape[d];
      coord[d] = 0;
    }
  }
}

enum class Arith { Add, Sub, Mul, Div };

class BinaryOp final : public Op {
 public:
  BinaryOp(const NodeSpec& spec, Arith kind) : spec_(spec), kind_(kind) {
    spec.expect_inputs(2, 2);
    // Before opset 7 broadcasting was opt-in through attributes; the engine accepts only the
    // default of those versions (no legacy broadcast).
    if (spec.opset < 7 && (spec.get_int("broadcast", 0) != 0 || spec.has("axis")))
      spec.unsupported("legacy broadcast attributes are not supported");
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (a.dtype() != b.dtype()) spec_.fail(std::string("input types differ: ") + dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
    Shape shape = broadcast_shapes(spec_, a.shape(), b.shape());
    Tensor y(shape, a.dtype());
    if (a.dtype() == DType::Float32) {
      switch (kind_) {
        case Arith::Add: broadcast_apply(shape, a.f(), a.shape(), b.f(), b.shape(), y.f(), [](float p, float q) { return p + q; }); break;
        case Arith::Sub: broadcast_apply(shape, a.f(), a.shape(), b.f(), b.shape(), y.f(), [](float p, float q) { return p - q; }); break;
        case Arith::Mul: broadcast_apply(shape, a.f(), a.shape(), b.f(), b.shape(), y.f(), [](float p, float q) { return p * q; }); break;
        case Arith::Div: broadcast_apply(shape, a.f(), a.shape(), b.f(), b.shape(), y.f(), [](float p, float q) { return p / q; }); break;
      }
    } else {
      bool div_by_zero = false;
      switch (kind_) {
        case Arith::Add: broadcast_apply(shape, a.i(), a.shape(), b.i(), b.shape(), y.i(), [](std::int64_t p, std::int64_t q) { return static_cast<std::int64_t>(static_cast<std::uint64_t>(p) + static_cast<std::uint64_t>(q)); }); break;
        case Arith::Sub: broadcast_apply(shape, a.i(), a.shape(), b.i(), b.shape(), y.i(), [](std::int64_t p, std::int64_t q) { return static_cast<std::int64_t>(static_cast<std::uint64_t>(p) - static_cast<std::uint64_t>(q)); }); break;
        case Arith::Mul: broadcast_apply(shape, a.i(), a.shape(), b.i(), b.shape(), y.i(), [](std::int64_t p, std::int64_t q) { return static_cast<std::int64_t>(static_cast<std::uint64_t>(p) * static_cast<std::uint64_t>(q)); }); break;
        case Arith::Div:
          broadcast_apply(shape, a.i(), a.shape(), b.i(), b.shape(), y.i(), [&](std::int64_t p, std::int64_t q) -> std::int64_t {
            if (q == 0) { div_by_zero = true; return 0; }
            if (q == -1) return static_cast<std::int64_t>(0 - static_cast<std::uint64_t>(p));
            return p / q;  // integer division truncates toward zero
          });
          if (div_by_zero) spec_.fail("integer division by zero");
          break;
      }
    }
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t k) const override { return k < 2; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || in[0]->dtype() != DType::Float32) return;  // integer arithmetic carries no gradient
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor& dy = *dout[0];
    const Shape& shape = dy.shape();
    // An operand broadcast to the output's shape (the other operand only sets the traversal).
    const auto full = [&](bool first) {
      Tensor t(shape);
      broadcast_apply(shape, a.f(), a.shape(), b.f(), b.shape(), t.f(), [first](float p, float q) { return first ? p : q; });
      return t;
    };
    const std::int64_t n = dy.numel();
    if (need[0]) {
      Tensor ga(shape);
      if (kind_ == Arith::Add || kind_ == Arith::Sub) ga = dy;
      else {
        const Tensor bf = full(false);
        for (std::int64_t k = 0; k < n; ++k) ga.f()[k] = kind_ == Arith::Mul ? dy.f()[k] * bf.f()[k] : dy.f()[k] / bf.f()[k];
      }
      din[0] = reduce_to_shape(ga, a.shape());
    }
    if (need[1]) {
      Tensor gb(shape);
      switch (kind_) {
        case Arith::Add: gb = dy; break;
        case Arith::Sub: for (std::int64_t k = 0; k < n; ++k) gb.f()[k] = -dy.f()[k]; break;
        case Arith::Mul: {
          const Tensor af = full(true);
          for (std::int64_t k = 0; k < n; ++k) gb.f()[k] = dy.f()[k] * af.f()[k];
          break;
        }
        case Arith::Div: {
          // d(a/b)/db = −(a/b)/b = −y/b.
          const Tensor bf = full(false);
          const Tensor& y = *out[0];
          for (std::int64_t k = 0; k < n; ++k) gb.f()[k] = -dy.f()[k] * y.f()[k] / bf.f()[k];
          break;
        }
      }
      din[1] = reduce_to_shape(gb, b.shape());
    }
  }

 private:
  NodeSpec spec_;
  Arith kind_;
};

// y = f(x) element-wise; df(x, y) is the derivative dy/dx at x (given y as well, which is cheaper
// for Sigmoid and Tanh).
template <typename F, typename D>
class UnaryFloatOp final : public Op {
 public:
  UnaryFloatOp(const NodeSpec& spec, F f, D df) : spec_(spec), f_(f), df_(df) { spec.expect_inputs(1, 1); }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::Float32) spec_.fail("input must be float32");
    Tensor y(x.shape());
    const float* xv = x.f();
    float* yv = y.f();
    for (std::int64_t k = 0; k < x.numel(); ++k) yv[k] = f_(xv[k]);
    out[0] = std::move(y);
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || !need[0]) return;
    const Tensor& x = *in[0];
    Tensor dx(x.shape());
    for (std::int64_t k = 0; k < x.numel(); ++k) dx.f()[k] = dout[0]->f()[k] * df_(x.f()[k], out[0]->f()[k]);
    din[0] = std::move(dx);
  }

 private:
  NodeSpec spec_;
  F f_;
  D df_;
};

template <typename F, typename D>
std::unique_ptr<Op> make_unary(const NodeSpec& spec, F f, D df) {
  if (spec.opset < 6) spec.ignore("consumed_inputs");
  return std::make_unique<UnaryFloatOp<F, D>>(spec, f, df);
}

class ClipOp final : public Op {
 public:
  explicit ClipOp(const NodeSpec& spec) : spec_(spec) {
    if (spec.opset < 6) spec.ignore("consumed_inputs");
    if (spec.opset < 11) {
      spec.expect_inputs(1, 1);
      min_attr_ = spec.get_float("min", -std::numeric_limits<float>::infinity());
      max_attr_ = spec.get_float("max", std::numeric_limits<float>::infinity());
    } else {
      spec.expect_inputs(1, 3);
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    auto bound = [&](std::size_t k, const char* which) -> const Tensor* {
      if (k >= in.size() || in[k] == nullptr) return nullptr;
      if (in[k]->numel() != 1) spec_.fail(std::string("'") + which + "' must be a scalar");
      if (in[k]->dtype() != x.dtype()) spec_.fail(std::string("'") + which + "' type differs from the input's");
      return in[k];
    };
    const Tensor* lo = bound(1, "min");
    const Tensor* hi = bound(2, "max");
    Tensor y(x.shape(), x.dtype());
    if (x.dtype() == DType::Float32) {
      const float a = lo ? lo->f()[0] : min_attr_, b = hi ? hi->f()[0] : max_attr_;
      for (std::int64_t k = 0; k < x.numel(); ++k) y.f()[k] = std::min(std::max(x.f()[k], a), b);
    } else {
      const std::int64_t a = lo ? lo->i()[0] : std::numeric_limits<std::int64_t>::min();
      const std::int64_t b = hi ? hi->i()[0] : std::numeric_limits<std::int64_t>::max();
      for (std::int64_t k = 0; k < x.numel(); ++k) y.i()[k] = std::min(std::max(x.i()[k], a), b);
    }
    out[0] = std::move(y);
  }

  // The gradient passes where min ≤ x ≤ max (bounds inclusive, as PyTorch's clamp).
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || !need[0] || in[0]->dtype() != DType::Float32) return;
    const float a = in.size() > 1 && in[1] != nullptr ? in[1]->f()[0] : min_attr_;
    const float b = in.size() > 2 && in[2] != nullptr ? in[2]->f()[0] : max_attr_;
    const Tensor& x = *in[0];
    Tensor dx(x.shape());
    for (std::int64_t k = 0; k < x.numel(); ++k) dx.f()[k] = x.f()[k] >= a && x.f()[k] <= b ? dout[0]->f()[k] : 0.0f;
    din[0] = std::move(dx);
  }

 private:
  NodeSpec spec_;
  float min_attr_ = -std::numeric_limits<float>::infinity();
  float max_attr_ = std::numeric_limits<float>::infinity();
};

class SoftmaxOp final : public Op {
 public:
  explicit SoftmaxOp(const NodeSpec& spec) : spec_(spec) {
    spec.expect_inputs(1, 1);
    // Opset 13 changed Softmax from "flatten to 2-D at axis" (default 1) to "along one axis"
    // (default -1) (ONNX Changelog, Softmax-13).
    axis_ = spec.get_int("axis", spec.opset >= 13 ? -1 : 1);
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::Float32) spec_.fail("input must be float32");
    const int rank = x.rank();
    std::int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= std::max(rank, 1)) spec_.fail("axis " + std::to_string(axis_) + " out of range for rank " + std::to_string(rank));
    std::int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < rank; ++d) {
      if (d < axis) outer *= x.dim(d);
      else if (spec_.opset < 13 || d == axis) len *= x.dim(d);
      else inner *= x.dim(d);
    }
    Tensor y(x.shape());
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t i = 0; i < inner; ++i) {
        const float* xs = x.f() + o * len * inner + i;
        float* ys = y.f() + o * len * inner + i;
        float mx = -std::numeric_limits<float>::infinity();
        for (std::int64_t k = 0; k < len; ++k) mx = std::max(mx, xs[k * inner]);
        double sum = 0;
        for (std::int64_t k = 0; k < len; ++k) { ys[k * inner] = models::det::exp(xs[k * inner] - mx); sum += ys[k * inner]; }
        const float scale = static_cast<float>(1.0 / sum);
        for (std::int64_t k = 0; k < len; ++k) ys[k * inner] *= scale;
      }
    }
    out[0] = std::move(y);
  }

  // dx = y·(dy − Σ dy·y) along each softmax vector.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    if (dout[0] == nullptr || !need[0]) return;
    const Tensor& x = *in[0];
    const int rank = x.rank();
    const std::int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    std::int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < rank; ++d) {
      if (d < axis) outer *= x.dim(d);
      else if (spec_.opset < 13 || d == axis) len *= x.dim(d);
      else inner *= x.dim(d);
    }
    Tensor dx(x.shape());
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        const std::int64_t base = o * len * inner + i;
        double dot = 0;
        for (std::int64_t k = 0; k < len; ++k) dot += static_cast<double>(dout[0]->f()[base + k * inner]) * out[0]->f()[base + k * inner];
        for (std::int64_t k = 0; k < len; ++k) {
          const std::int64_t at = base + k * inner;
          dx.f()[at] = out[0]->f()[at] * (dout[0]->f()[at] - static_cast<float>(dot));
        }
      }
    din[0] = std::move(dx);
  }

 private:
  NodeSpec spec_;
  std::int64_t axis_;
};

class BatchNormOp final : public Op {
 public:
  explicit BatchNormOp(const NodeSpec& spec) : spec_(spec) {
    spec.expect_inputs(5, 5);
    epsilon_ = spec.get_float("epsilon", 1e-5f);
    spec.ignore("momentum");  // only used when training
    if (spec.opset < 7) { spec.ignore("is_test"); spec.ignore("consumed_inputs"); }
    if (spec.opset < 9 && spec.get_int("spatial", 1) != 1) spec.unsupported("spatial=0 is not supported");
    if (spec.get_int("training_mode", 0) != 0) spec.unsupported("training_mode=1 is not supported (inference only)");
    if (spec.has_output(1) || spec.has_output(2)) spec.unsupported("running-statistics outputs (training mode) are not supported");
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext& ctx) const override {
    const Tensor& x = *in[0];
    const Geometry g = check(in);
    Tensor y(x.shape());
    std::vector<double> mean, var;
    if (ctx.training) batch_statistics(x, g, mean, var);
    for (std::int64_t ch = 0; ch < g.c; ++ch) {
      // y = scale·(x − mean)/sqrt(var + ε) + B, folded to one multiply-add per element; in
      // training the batch's mean and (biased) variance, else the running ones.
      const float m = ctx.training ? static_cast<float>(mean[ch]) : in[3]->f()[ch];
      const float v = ctx.training ? static_cast<float>(var[ch]) : in[4]->f()[ch];
      const float a = in[1]->f()[ch] / std::sqrt(v + epsilon_);
      const float b = in[2]->f()[ch] - a * m;
      for (std::int64_t s = 0; s < g.n; ++s) {
        const float* xs = x.f() + (s * g.c + ch) * g.inner;
        float* ys = y.f() + (s * g.c + ch) * g.inner;
        for (std::int64_t k = 0; k < g.inner; ++k) ys[k] = a * xs[k] + b;
      }
    }
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t k) const override { return k < 3; }

  // Training: x̂ = (x − μ)/σ with the batch's μ, σ² (biased); dscale = Σ dy·x̂, dB = Σ dy,
  // dx = (scale/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)) (Ioffe and Szegedy, ICML 2015). Inference
  // mode (frozen statistics): dx = dy·scale/σ_running.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext& ctx) const override {
    if (dout[0] == nullptr) return;
    const Tensor& x = *in[0];
    const Tensor& dy = *dout[0];
    const Geometry g = check(in);
    std::vector<double> mean(static_cast<std::size_t>(g.c)), var(static_cast<std::size_t>(g.c));
    if (ctx.training) batch_statistics(x, g, mean, var);
    else
      for (std::int64_t ch = 0; ch < g.c; ++ch) { mean[ch] = in[3]->f()[ch]; var[ch] = in[4]->f()[ch]; }
    if (need[0]) din[0] = Tensor(x.shape());
    if (need[1]) din[1] = Tensor({g.c});
    if (need[2]) din[2] = Tensor({g.c});
    const double m = static_cast<double>(g.n * g.inner);
    for (std::int64_t ch = 0; ch < g.c; ++ch) {
      const double inv_sigma = 1.0 / std::sqrt(static_cast<double>(static_cast<float>(var[ch]) + epsilon_));
      const double mu = static_cast<float>(mean[ch]);
      double sum_dy = 0, sum_dy_xhat = 0;
      for (std::int64_t s = 0; s < g.n; ++s) {
        const float* xs = x.f() + (s * g.c + ch) * g.inner;
        const float* ds = dy.f() + (s * g.c + ch) * g.inner;
        for (std::int64_t k = 0; k < g.inner; ++k) {
          sum_dy += ds[k];
          sum_dy_xhat += ds[k] * (xs[k] - mu) * inv_sigma;
        }
      }
      if (need[1]) din[1].f()[ch] = static_cast<float>(sum_dy_xhat);
      if (need[2]) din[2].f()[ch] = static_cast<float>(sum_dy);
      if (!need[0]) continue;
      const double scale = in[1]->f()[ch] * inv_sigma;
      for (std::int64_t s = 0; s < g.n; ++s) {
        const float* xs = x.f() + (s * g.c + ch) * g.inner;
        const float* ds = dy.f() + (s * g.c + ch) * g.inner;
        float* dx = din[0].f() + (s * g.c + ch) * g.inner;
        for (std::int64_t k = 0; k < g.inner; ++k)
          dx[k] = static_cast<float>(ctx.training ? scale * (ds[k] - sum_dy / m - (xs[k] - mu) * inv_sigma * sum_dy_xhat / m) : scale * ds[k]);
      }
    }
  }

 private:
  struct Geometry {
    std::int64_t n, c, inner;
  };
  Geometry check(const std::vector<const Tensor*>& in) const {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::Float32 || x.rank() < 2) spec_.fail("input must be float32 with at least 2 dimensions");
    const std::int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * c);
    for (int k = 1; k < 5; ++k)
      if (in[k]->numel() != c || in[k]->dtype() != DType::Float32)
        spec_.fail("input " + std::to_string(k) + " must hold " + std::to_string(c) + " float32 values, one per channel");
    return {n, c, inner};
  }
  // The batch's mean and biased variance per channel (what training normalizes with).
  static void batch_statistics(const Tensor& x, const Geometry& g, std::vector<double>& mean, std::vector<double>& var) {
    channel_moments(x, mean, var);
    const double m = static_cast<double>(g.n * g.inner);
    for (double& v : var) v = m > 0 ? v / m : 0.0;
  }

 private:
  NodeSpec spec_;
  float epsilon_;
};

}  // namespace

void register_elementwise_ops(std::map<std::string, OpFactory>& table) {
  table["Add"] = [](const NodeSpec& s) { return std::make_unique<BinaryOp>(s, Arith::Add); };
  table["Sub"] = [](const NodeSpec& s) { return std::make_unique<BinaryOp>(s, Arith::Sub); };
  table["Mul"] = [](const NodeSpec& s) { return std::make_unique<BinaryOp>(s, Arith::Mul); };
  table["Div"] = [](const NodeSpec& s) { return std::make_unique<BinaryOp>(s, Arith::Div); };
  table["Relu"] = [](const NodeSpec& s) {
    return make_unary(s, [](float v) { return v > 0.0f ? v : 0.0f; }, [](float x, float) { return x > 0.0f ? 1.0f : 0.0f; });
  };
  table["LeakyRelu"] = [](const NodeSpec& s) {
    const float alpha = s.get_float("alpha", 0.01f);
    // Slope 1 for x > 0 and alpha otherwise (at 0, as PyTorch).
    return make_unary(s, [alpha](float v) { return v >= 0.0f ? v : alpha * v; }, [alpha](float x, float) { return x > 0.0f ? 1.0f : alpha; });
  };
  table["Sigmoid"] = [](const NodeSpec& s) {
    // Written so that neither branch overflows exp().
    return make_unary(
        s,
        [](float v) {
          if (v >= 0.0f) return 1.0f / (1.0f + models::det::exp(-v));
          const float e = models::det::exp(v);
          return e / (1.0f + e);
        },
        [](float, float y) { return y * (1.0f - y); });
  };
  table["Tanh"] = [](const NodeSpec& s) {
    return make_unary(s, [](float v) { return models::det::tanh(v); }, [](float, float y) { return 1.0f - y * y; });
  };
  table["Clip"] = [](const NodeSpec& s) { return std::make_unique<ClipOp>(s); };
  table["Softmax"] = [](const NodeSpec& s) { return std::make_unique<SoftmaxOp>(s); };
  table["BatchNormalization"] = [](const NodeSpec& s) { return std::make_unique<BatchNormOp>(s); };
}

}  // namespace faultline::nn
