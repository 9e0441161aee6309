// Gemm, MatMul and Conv: the layers whose weights live in hardware. Each lowers its work to
// Y = X · Wᵀ and hands it to its substrate; everything around the product (alpha, bias, the
// im2col lowering and the scatter back to NCHW) is digital periphery computed exactly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "nn/im2col.h"
#include "nn/op.h"
#include "nn/window.h"

namespace faultline::nn {
namespace {

using models::MatrixRM;
using ConstMap = Eigen::Map<const MatrixRM>;
using Map = Eigen::Map<MatrixRM>;

const Tensor& require_float(const NodeSpec& spec, const Tensor* t, const char* what) {
  if (t->dtype() != DType::Float32) spec.fail(std::string(what) + " must be float32, got " + dtype_name(t->dtype()));
  return *t;
}

// Adds beta·C to y (M × N) with C unidirectionally broadcast to [M, N] (ONNX Gemm).
void add_broadcast_bias(const NodeSpec& spec, const Tensor& c, float beta, Map& y) {
  const Shape& s = c.shape();
  if (s.size() > 2) spec.fail("input C of shape " + shape_string(s) + " cannot broadcast to the output");
  const std::int64_t m = y.rows(), n = y.cols();
  const std::int64_t cm = s.size() == 2 ? s[0] : 1;
  const std::int64_t cn = s.empty() ? 1 : s.back();
  if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
    spec.fail("input C of shape " + shape_string(s) + " cannot broadcast to [" + std::to_string(m) + ", " +
              std::to_string(n) + "]");
  const float* cv = c.f();
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t k = 0; k < n; ++k) y(r, k) += beta * cv[(cm == 1 ? 0 : r) * cn + (cn == 1 ? 0 : k)];
}

// The secant backward through a hardware layer: each output's gradient is scaled by the gain the
// hardware applied to it, g = y_hw / y_exact clamped to [0, 1] (1 where the exact product is
// about 0: below 1e-3 of its largest magnitude), so outputs the hardware compressed (membrane
// saturation, falling position gain) pass less gradient; g frozen, instead of straight-through.
void apply_secant(const MatrixRM& hardware, const MatrixRM& exact, Eigen::Ref<MatrixRM> dy) {
  const float tiny = 1e-3f * (exact.size() ? exact.cwiseAbs().maxCoeff() : 0.0f);
  for (Eigen::Index k = 0; k < dy.size(); ++k) {
    const float e = exact.data()[k];
    if (std::fabs(e) > tiny) dy.data()[k] *= std::clamp(hardware.data()[k] / e, 0.0f, 1.0f);
  }
}

// The im2col rows a recorded training forward pass of a convolution made, kept for the backward
// pass of the same recording (RunContext::pass) when it runs on the same thread, as the trainer's
// tasks do: one entry per operator and thread, taken by the backward pass (which recomputes the
// lowering when it finds none). Saves a tenth of LeNet-5's training time.
struct SavedColumns {
  std::uint64_t pass = 0;
  const float* input = nullptr;
  std::int64_t images = 0;
  std::vector<MatrixRM> blocks;  // in (group, image block) order
};
thread_local std::map<const void*, SavedColumns> saved_columns;

class GemmOp final : public Op, public LinearLayer {
 public:
  explicit GemmOp(const NodeSpec& spec) : LinearLayer(spec.name, "Gemm"), spec_(spec) {
    spec.expect_inputs(2, 3);
    alpha_ = spec.get_float("alpha", 1.0f);
    beta_ = spec.get_float("beta", 1.0f);
    trans_a_ = spec.get_int("transA", 0) != 0;
    trans_b_ = spec.get_int("transB", 0) != 0;
    if (spec.opset < 7) spec.ignore("broadcast");
    const Tensor* b = spec.constant_input(1);
    const Tensor* a = spec.constant_input(0);
    if (b != nullptr) {
      weight_side_ = WeightSide::B;
      require_float(spec, b, "input B");
      if (b->rank() != 2) spec.fail("input B must be 2-D, has shape " + shape_string(b->shape()));
      ConstMap bm(b->f(), b->dim(0), b->dim(1));
      // W is outputs × inputs: B is K × N unless transposed.
      blocks_.push_back({trans_b_ ? MatrixRM(bm) : MatrixRM(bm.transpose()), nullptr});
    } else if (a != nullptr) {
      // Y = A'·B' with a constant A' (M × K) is Yᵀ = B'ᵀ·A'ᵀ: the rows of B'ᵀ are the input
      // vectors and A' is the weight matrix.
      weight_side_ = WeightSide::A;
      require_float(spec, a, "input A");
      if (a->rank() != 2) spec.fail("input A must be 2-D, has shape " + shape_string(a->shape()));
      ConstMap am(a->f(), a->dim(0), a->dim(1));
      blocks_.push_back({trans_a_ ? MatrixRM(am.transpose()) : MatrixRM(am), nullptr});
    }
  }

  LinearLayer* linear() override { return weight_side_ == WeightSide::None ? nullptr : this; }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext& ctx) const override {
    const Tensor& a = require_float(spec_, in[0], "input A");
    const Tensor& b = require_float(spec_, in[1], "input B");
    if (a.rank() != 2) spec_.fail("input A must be 2-D, has shape " + shape_string(a.shape()));
    if (b.rank() != 2) spec_.fail("input B must be 2-D, has shape " + shape_string(b.shape()));
    const std::int64_t m = trans_a_ ? a.dim(1) : a.dim(0);
    const std::int64_t ka = trans_a_ ? a.dim(0) : a.dim(1);
    const std::int64_t kb = trans_b_ ? b.dim(1) : b.dim(0);
    const std::int64_t n = trans_b_ ? b.dim(0) : b.dim(1);
    if (ka != kb)
      spec_.fail("inner dimensions differ: A " + shape_string(a.shape()) + ", B " + shape_string(b.shape()) +
                 (trans_a_ ? " (transA)" : "") + (trans_b_ ? " (transB)" : ""));
    Tensor y({m, n});
    Map ym(y.f(), m, n);
    ConstMap am(a.f(), a.dim(0), a.dim(1));
    ConstMap bm(b.f(), b.dim(0), b.dim(1));
    // A per-output bias (C of shape [N] or [1, N], α = β = 1) is the layer's own: hardware that
    // adds it in its accumulators (models::Substrate::convolve, a dense layer as 1 × 1 images)
    // takes it with the product.
    const Tensor* c = in.size() > 2 && in[2] != nullptr ? &require_float(spec_, in[2], "input C") : nullptr;
    const bool own_bias = weight_side_ == WeightSide::B && !trans_a_ && !ctx.training && c != nullptr && alpha_ == 1.0f && beta_ == 1.0f &&
                          c->numel() == n && (c->rank() == 1 || (c->rank() == 2 && c->dim(0) == 1));
    if (own_bias) {
      models::ConvShape shape;
      shape.in_channels = ka;
      shape.out_channels = n;
      shape.x_image_stride = ka;
      shape.y_image_stride = n;
      const std::vector<float> bias(c->f(), c->f() + n);
      if (convolve(0, shape, a.f(), m, bias, y.f(), ctx.first_sample)) {
        out[0] = std::move(y);
        return;
      }
    }
    if (weight_side_ == WeightSide::B) {
      const float* range_bias = own_bias ? c->f() : nullptr;
      if (trans_a_) multiply(0, MatrixRM(am.transpose()), ym, ctx.first_sample, range_bias);
      else multiply(0, am, ym, ctx.first_sample, range_bias);
    } else if (weight_side_ == WeightSide::A) {
      MatrixRM x = trans_b_ ? MatrixRM(bm) : MatrixRM(bm.transpose());  // N × K
      MatrixRM yt(n, m);
      multiply(0, x, yt, ctx.first_sample);
      ym = yt.transpose();
    } else {
      MatrixRM ae = trans_a_ ? MatrixRM(am.transpose()) : MatrixRM(am);
      MatrixRM be = trans_b_ ? MatrixRM(bm.transpose()) : MatrixRM(bm);
      ym.noalias() = ae * be;
    }
    if (alpha_ != 1.0f) ym *= alpha_;
    if (in.size() > 2 && in[2] != nullptr && beta_ != 0.0f)
      add_broadcast_bias(spec_, require_float(spec_, in[2], "input C"), beta_, ym);
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t k) const override { return k < 3; }

  // Y = α·A'·B' + β·C: dA' = α·dY·B'ᵀ, dB' = α·A'ᵀ·dY, dC = β·dY summed over C's broadcast axes.
  // Through hardware the exact operands' gradient (straight-through), or the secant's.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext& ctx) const override {
    if (dout[0] == nullptr) return;
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor& dy = *dout[0];
    ConstMap am(a.f(), a.dim(0), a.dim(1)), bm(b.f(), b.dim(0), b.dim(1));
    const Eigen::Index m = dy.dim(0), n = dy.dim(1);
    // The gradient as the product saw it: α·dY, and through hardware the secant's gain.
    MatrixRM scaled;
    const bool exact_gradient = !(ctx.secant && weight_side_ != WeightSide::None && substrate_kind() != models::exact_kind_name());
    if (alpha_ != 1.0f || !exact_gradient) scaled = ConstMap(dy.f(), m, n) * alpha_;
    if (!exact_gradient) {
      const MatrixRM ae = trans_a_ ? MatrixRM(am.transpose()) : MatrixRM(am);  // M × K
      const MatrixRM be = trans_b_ ? MatrixRM(bm.transpose()) : MatrixRM(bm);  // K × N
      const MatrixRM exact = ae * be;
      MatrixRM hardware(exact.rows(), exact.cols());
      if (weight_side_ == WeightSide::B) {
        multiply(0, ae, hardware, ctx.first_sample);
      } else {
        MatrixRM yt(be.cols(), ae.rows());
        multiply(0, MatrixRM(be.transpose()), yt, ctx.first_sample);
        hardware = yt.transpose();
      }
      apply_secant(hardware, exact, scaled);
    }
    ConstMap g(scaled.size() ? scaled.data() : dy.f(), m, n);
    // dA' = g·B'ᵀ and dB' = A'ᵀ·g, written straight into A's and B's layouts (no transposed copies).
    if (need[0]) {
      Tensor t(a.shape());
      Map da(t.f(), a.dim(0), a.dim(1));
      if (!trans_a_ && trans_b_) da.noalias() = g * bm;
      else if (!trans_a_) da.noalias() = g * bm.transpose();
      else if (trans_b_) da.noalias() = bm.transpose() * g.transpose();
      else da.noalias() = bm * g.transpose();
      din[0] = std::move(t);
    }
    if (need[1]) {
      Tensor t(b.shape());
      Map db(t.f(), b.dim(0), b.dim(1));
      if (!trans_b_ && trans_a_) db.noalias() = am * g;
      else if (!trans_b_) db.noalias() = am.transpose() * g;
      else if (trans_a_) db.noalias() = g.transpose() * am.transpose();
      else db.noalias() = g.transpose() * am;
      din[1] = std::move(t);
    }
    if (in.size() > 2 && in[2] != nullptr && need[2]) {
      Tensor dc = reduce_to_shape(dy, in[2]->shape().size() <= 2 ? Shape(in[2]->shape()) : in[2]->shape());
      for (std::int64_t k = 0; k < dc.numel(); ++k) dc.f()[k] *= beta_;
      din[2] = std::move(dc);
    }
  }

 private:
  enum class WeightSide { None, A, B };
  NodeSpec spec_;
  float alpha_ = 1, beta_ = 1;
  bool trans_a_ = false, trans_b_ = false;
  WeightSide weight_side_ = WeightSide::None;
};

// Which matrix of each operand batch element t of a broadcast batched MatMul reads (broadcast
// dimensions read element 0).
std::pair<std::int64_t, std::int64_t> batch_operands(std::int64_t t, const Shape& batch, const Shape& abatch, const Shape& bbatch) {
  std::int64_t ia = 0, ib = 0, rem = t, sa = 1, sb = 1;
  const std::size_t off_a = batch.size() - abatch.size(), off_b = batch.size() - bbatch.size();
  for (std::size_t d = batch.size(); d-- > 0;) {
    const std::int64_t coord = rem % batch[d];
    rem /= batch[d];
    if (d >= off_a) {
      const std::int64_t dim = abatch[d - off_a];
      if (dim != 1) ia += coord * sa;
      sa *= dim;
    }
    if (d >= off_b) {
      const std::int64_t dim = bbatch[d - off_b];
      if (dim != 1) ib += coord * sb;
      sb *= dim;
    }
  }
  return {ia, ib};
}

class MatMulOp final : public Op, public LinearLayer {
 public:
  explicit MatMulOp(const NodeSpec& spec) : LinearLayer(spec.name, "MatMul"), spec_(spec) {
    spec.expect_inputs(2, 2);
    const Tensor* b = spec.constant_input(1);
    // A constant 1-D or 2-D right operand is a weight matrix. A constant 3-D one [G, K, N] (the
    // block-diagonal factors of Monarch and butterfly layers, Dao et al. arXiv 2204.00595 and
    // 1903.05895) holds G weight matrices: each is its own block, programmed on its own substrate
    // as the groups of a grouped convolution are, so hardware sees the real small blocks. Higher
    // ranks are computed exactly.
    if (b != nullptr && b->dtype() == DType::Float32 && (b->rank() == 1 || b->rank() == 2)) {
      const std::int64_t k = b->dim(0), n = b->rank() == 2 ? b->dim(1) : 1;
      ConstMap bm(b->f(), k, n);
      blocks_.push_back({MatrixRM(bm.transpose()), nullptr});
      b_rank_ = b->rank();
    } else if (b != nullptr && b->dtype() == DType::Float32 && b->rank() == 3 && b->numel() > 0) {
      const std::int64_t g = b->dim(0), k = b->dim(1), n = b->dim(2);
      for (std::int64_t i = 0; i < g; ++i) blocks_.push_back({MatrixRM(ConstMap(b->f() + i * k * n, k, n).transpose()), nullptr});
      b_rank_ = 3;
    }
  }

  LinearLayer* linear() override { return blocks_.empty() ? nullptr : this; }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext& ctx) const override {
    const Tensor& a = require_float(spec_, in[0], "input A");
    const Tensor& b = require_float(spec_, in[1], "input B");
    if (a.rank() == 0 || b.rank() == 0) spec_.fail("MatMul inputs must have at least one dimension");
    if (b_rank_ == 3) return run_block_weights(a, out, ctx);
    if (!blocks_.empty()) return run_weights(a, out, ctx);
    // General case: broadcast batched product of two run-time tensors.
    Shape as = a.shape(), bs = b.shape();
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const std::int64_t m = as[as.size() - 2], k = as.back(), kb = bs[bs.size() - 2], n = bs.back();
    if (k != kb) spec_.fail("inner dimensions differ: A " + shape_string(a.shape()) + ", B " + shape_string(b.shape()));
    Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
    Shape batch = broadcast_shapes(spec_, abatch, bbatch);
    Shape out_shape = batch;
    if (!a_vec) out_shape.push_back(m);
    if (!b_vec) out_shape.push_back(n);
    Tensor y(out_shape);
    const std::int64_t batches = shape_numel(batch);
    for (std::int64_t t = 0; t < batches; ++t) {
      const auto [ia, ib] = batch_operands(t, batch, abatch, bbatch);
      ConstMap am(a.f() + ia * m * k, m, k);
      ConstMap bm(b.f() + ib * k * n, k, n);
      Map ym(y.f() + t * m * n, m, n);
      ym.noalias() = am * bm;
    }
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t k) const override { return k < 2; }

  // Y = A·B (batched, broadcast): dA = dY·Bᵀ and dB = Aᵀ·dY per batch element, each added into
  // the operand element it was broadcast from.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext& ctx) const override {
    if (dout[0] == nullptr) return;
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor& dy = *dout[0];
    Shape as = a.shape(), bs = b.shape();
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const std::int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    Tensor da(a.shape()), db(b.shape());
    // Constant 3-D weights: the exact product's gradient (straight-through) through the general
    // batched case below; the secant backward is not implemented for them.
    if (!blocks_.empty() && b_rank_ != 3) {
      // A constant weight B (K × N or K): the rows of A are the input vectors.
      const std::int64_t rows = a.numel() / k;
      MatrixRM g = ConstMap(dy.f(), rows, n);
      if (ctx.secant && substrate_kind() != models::exact_kind_name()) {
        const MatrixRM exact = ConstMap(a.f(), rows, k) * ConstMap(b.f(), k, n);
        MatrixRM hardware(rows, n);
        const std::uint64_t rows_per_sample = a.rank() >= 2 && a.dim(0) > 0 ? static_cast<std::uint64_t>(rows / a.dim(0)) : 1;
        multiply(0, ConstMap(a.f(), rows, k), hardware, ctx.first_sample * rows_per_sample, nullptr, rows_per_sample);
        apply_secant(hardware, exact, g);
      }
      if (need[0]) Map(da.f(), rows, k).noalias() = g * ConstMap(b.f(), k, n).transpose();
      if (need[1]) Map(db.f(), k, n).noalias() = ConstMap(a.f(), rows, k).transpose() * g;
    } else {
      Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
      const Shape batch = broadcast_shapes(spec_, abatch, bbatch);
      const std::int64_t batches = shape_numel(batch);
      for (std::int64_t t = 0; t < batches; ++t) {
        const auto [ia, ib] = batch_operands(t, batch, abatch, bbatch);
        ConstMap g(dy.f() + t * m * n, m, n);
        if (need[0]) Map(da.f() + ia * m * k, m, k).noalias() += g * ConstMap(b.f() + ib * k * n, k, n).transpose();
        if (need[1]) Map(db.f() + ib * k * n, k, n).noalias() += ConstMap(a.f() + ia * m * k, m, k).transpose() * g;
      }
    }
    if (need[0]) din[0] = std::move(da);
    if (need[1]) din[1] = std::move(db);
  }

 private:
  void run_weights(const Tensor& a, std::vector<Tensor>& out, const RunContext& ctx) const {
    const models::MatrixRM& w = blocks_[0].weights;
    const std::int64_t k = w.cols(), n = w.rows();
    if (a.shape().back() != k)
      spec_.fail("inner dimensions differ: A " + shape_string(a.shape()) + ", B has " + std::to_string(k) + " rows");
    const std::int64_t rows = a.numel() / k;
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    if (b_rank_ == 2) out_shape.push_back(n);
    Tensor y(out_shape);
    // Rows of one sample are consecutive, so a sample's global row index is stable.
    const std::uint64_t rows_per_sample = a.rank() >= 2 && a.dim(0) > 0 ? static_cast<std::uint64_t>(rows / a.dim(0)) : 1;
    Map ym(y.f(), rows, n);
    multiply(0, ConstMap(a.f(), rows, k), ym, ctx.first_sample * rows_per_sample, nullptr, rows_per_sample);
    out[0] = std::move(y);
  }

  // A [..., G, M, K] (or broadcast to it) times the G constant blocks [G, K, N]: block g's rows are
  // the M rows of every batch element that reads it, in batch order. The samples are A's first
  // dimension (rank ≥ 4) or, for a 3-D A [G, M, K] (torch.bmm's layout), its rows; a row's
  // global index is first_sample · rows_per_sample + its index, so noise does not depend on how
  // the samples were split.
  void run_block_weights(const Tensor& a, std::vector<Tensor>& out, const RunContext& ctx) const {
    const std::int64_t g = static_cast<std::int64_t>(blocks_.size()), k = blocks_[0].weights.cols(), n = blocks_[0].weights.rows();
    Shape as = a.shape();
    const bool a_vec = as.size() == 1;  // a vector: one row, broadcast to every block
    if (a_vec) as.insert(as.begin(), 1);
    const std::int64_t m = as[as.size() - 2];
    if (as.back() != k) spec_.fail("inner dimensions differ: A " + shape_string(a.shape()) + ", B has " + std::to_string(k) + " rows");
    const Shape abatch(as.begin(), as.end() - 2), bbatch{g};
    const Shape batch = broadcast_shapes(spec_, abatch, bbatch);
    Shape out_shape = batch;
    if (!a_vec) out_shape.push_back(m);
    out_shape.push_back(n);
    Tensor y(out_shape);
    const std::int64_t batches = shape_numel(batch), per_block = batches / g;
    const std::int64_t samples = a.rank() >= 4 ? a.dim(0) : m;
    const std::int64_t rows = per_block * m;
    const std::uint64_t rows_per_sample = samples > 0 && rows % samples == 0 ? static_cast<std::uint64_t>(rows / samples) : 1;
    MatrixRM x(rows, k), prod(rows, n);
    for (std::int64_t block = 0; block < g; ++block) {
      // Batch elements t with t % G == block read block `block` (G is the last batch dimension).
      for (std::int64_t i = 0; i < per_block; ++i) {
        const std::int64_t t = i * g + block;
        const std::int64_t ia = batch_operands(t, batch, abatch, bbatch).first;
        x.middleRows(i * m, m) = ConstMap(a.f() + ia * m * k, m, k);
      }
      multiply(static_cast<std::size_t>(block), x, prod, ctx.first_sample * rows_per_sample, nullptr, rows_per_sample);
      for (std::int64_t i = 0; i < per_block; ++i) Map(y.f() + (i * g + block) * m * n, m, n) = prod.middleRows(i * m, m);
    }
    out[0] = std::move(y);
  }

  NodeSpec spec_;
  int b_rank_ = 0;
};

class ConvOp final : public Op, public LinearLayer {
 public:
  explicit ConvOp(const NodeSpec& spec) : LinearLayer(spec.name, "Conv"), spec_(spec) {
    spec.expect_inputs(2, 3);
    group_ = spec.get_int("group", 1);
    if (group_ < 1) spec.fail("group must be positive");
    const Tensor* w = spec.constant_input(1);
    if (spec.has("kernel_shape")) {
      auto k = spec.get_ints("kernel_shape", {});
      if (k.size() != 2) spec.unsupported("only 2-D convolutions are supported, kernel_shape has " + std::to_string(k.size()) + " dimensions");
      kernel_attr_ = k;
    }
    window_.read(spec, false, false, true);
    if (w != nullptr) {
      set_weights(spec, *w);
      const std::int64_t group_out = out_channels_ / group_;
      const std::int64_t k = group_in_ * window_.kernel[0] * window_.kernel[1];
      for (std::int64_t g = 0; g < group_; ++g)
        blocks_.push_back({MatrixRM(ConstMap(w->f() + g * group_out * k, group_out, k)), nullptr});
    }
    if (const Tensor* b = spec.constant_input(2); b != nullptr && w != nullptr) bias_ = read_bias(*b);
  }

  // Conv with run-time weights (as in ONNX's node tests) has nothing to program: it is computed
  // exactly and is not a hardware layer.
  LinearLayer* linear() override { return blocks_.empty() ? nullptr : this; }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext& ctx) const override {
    const Tensor& x = require_float(spec_, in[0], "input X");
    if (x.rank() != 4) spec_.fail("input X must be NCHW (4-D), has shape " + shape_string(x.shape()));
    if (blocks_.empty()) {
      // Run-time weights: build a programmed copy of this operator for this call only.
      ConvOp exact(*this, require_float(spec_, in[1], "input W"));
      if (in.size() > 2 && in[2] != nullptr) exact.bias_ = exact.read_bias(*in[2]);
      exact.program_exact({});
      return exact.run(in, out, ctx);
    }
    std::vector<float> runtime_bias;
    const std::vector<float>& bias = bias_.empty() && in.size() > 2 && in[2] != nullptr ? (runtime_bias = read_bias(*in[2])) : bias_;
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
    if (c != group_in_ * group_)
      spec_.fail("input has " + std::to_string(c) + " channels, the weights expect " + std::to_string(group_in_ * group_));
    const ConvGeometry geometry = geometry_for(x);
    const std::int64_t ho = geometry.out_h, wo = geometry.out_w;
    Tensor y({n, out_channels_, ho, wo});
    const std::int64_t patches = geometry.patches(), k = geometry.patch_size(), group_out = out_channels_ / group_;
    // Lower a few images at a time so that the patch matrix stays cache-sized.
    const std::int64_t images_per_block = std::max<std::int64_t>(1, 4096 / patches);
    MatrixRM cols, prod;
    SavedColumns* saved = nullptr;
    if (ctx.training && ctx.pass != 0) {
      saved = &saved_columns[this];
      saved->pass = ctx.pass;
      saved->input = x.f();
      saved->images = n;
      saved->blocks.clear();
    }
    models::ConvShape shape = conv_shape(x, geometry);
    for (std::int64_t g = 0; g < group_; ++g) {
      const std::vector<float> group_bias = bias.empty() ? std::vector<float>{} : std::vector<float>(bias.begin() + g * group_out, bias.begin() + (g + 1) * group_out);
      for (std::int64_t n0 = 0; n0 < n; n0 += images_per_block) {
        const std::int64_t nb = std::min(images_per_block, n - n0);
        // Hardware that runs convolutions on the feature map takes them whole, bias included
        // (not while recording for training, whose backward pass uses the im2col rows).
        if (!saved && convolve(static_cast<std::size_t>(g), shape, x.f() + (n0 * c + g * group_in_) * h * wd, nb, group_bias,
                               y.f() + (n0 * out_channels_ + g * group_out) * patches, (ctx.first_sample + n0) * patches))
          continue;
        cols.resize(nb * patches, k);
        for (std::int64_t i = 0; i < nb; ++i)
          im2col(geometry, x.f() + ((n0 + i) * c + g * group_in_) * h * wd, cols.data() + i * patches * k);
        if (saved) saved->blocks.push_back(cols);
        prod.resize(nb * patches, group_out);
        multiply(static_cast<std::size_t>(g), cols, prod, (ctx.first_sample + n0) * patches, group_bias.empty() ? nullptr : group_bias.data(),
                 static_cast<std::uint64_t>(patches));
        for (std::int64_t i = 0; i < nb; ++i) {
          for (std::int64_t m = 0; m < group_out; ++m) {
            const std::int64_t channel = g * group_out + m;
            const float b = bias.empty() ? 0.0f : bias[channel];
            float* dst = y.f() + ((n0 + i) * out_channels_ + channel) * patches;
            for (std::int64_t p = 0; p < patches; ++p) dst[p] = prod(i * patches + p, m) + b;
          }
        }
      }
    }
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t k) const override { return k < 3; }

  // Per group, on the im2col lowering: dW = dYᵀ·cols, dcols = dY·W scattered back by col2im,
  // dB = Σ dY over images and pixels.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext& ctx) const override {
    if (dout[0] == nullptr) return;
    if (blocks_.empty()) {  // run-time weights: as in run(), through a copy that knows them
      ConvOp exact(*this, require_float(spec_, in[1], "input W"));
      return exact.backward(in, {}, dout, need, din, ctx);
    }
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const Tensor& dy = *dout[0];
    const ConvGeometry geometry = geometry_for(x);
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
    const std::int64_t patches = geometry.patches(), k = geometry.patch_size(), group_out = out_channels_ / group_;
    const bool secant = ctx.secant && !blocks_.empty() && substrate_kind() != models::exact_kind_name();
    Tensor dx(x.shape()), dw(w.shape());
    const std::int64_t images_per_block = std::max<std::int64_t>(1, 4096 / patches);
    MatrixRM cols, g, dcols, exact, hardware;
    // The forward pass's lowering, when this thread's last training forward pass of this
    // operator was on this input.
    SavedColumns saved;
    if (auto it = saved_columns.find(this); it != saved_columns.end()) {
      if (it->second.pass == ctx.pass && ctx.pass != 0 && it->second.input == x.f() && it->second.images == n) saved = std::move(it->second);
      saved_columns.erase(it);
    }
    std::size_t block = 0;
    for (std::int64_t gr = 0; gr < group_; ++gr) {
      ConstMap wg(w.f() + gr * group_out * k, group_out, k);
      Map dwg(dw.f() + gr * group_out * k, group_out, k);
      for (std::int64_t n0 = 0; n0 < n; n0 += images_per_block, ++block) {
        const std::int64_t nb = std::min(images_per_block, n - n0);
        if (block < saved.blocks.size() && saved.blocks[block].rows() == nb * patches && saved.blocks[block].cols() == k) {
          cols.swap(saved.blocks[block]);
        } else {
          cols.resize(nb * patches, k);
          for (std::int64_t i = 0; i < nb; ++i)
            im2col(geometry, x.f() + ((n0 + i) * c + gr * group_in_) * h * wd, cols.data() + i * patches * k);
        }
        g.resize(nb * patches, group_out);
        for (std::int64_t i = 0; i < nb; ++i)
          for (std::int64_t m = 0; m < group_out; ++m) {
            const float* src = dy.f() + ((n0 + i) * out_channels_ + gr * group_out + m) * patches;
            for (std::int64_t p = 0; p < patches; ++p) g(i * patches + p, m) = src[p];
          }
        if (secant) {
          exact.noalias() = cols * wg.transpose();
          hardware.resize(nb * patches, group_out);
          multiply(static_cast<std::size_t>(gr), cols, hardware, (ctx.first_sample + n0) * patches, nullptr, static_cast<std::uint64_t>(patches));
          apply_secant(hardware, exact, g);
        }
        if (need[1]) dwg.noalias() += g.transpose() * cols;
        if (need[0]) {
          dcols.noalias() = g * wg;
          for (std::int64_t i = 0; i < nb; ++i)
            col2im_add(geometry, dcols.data() + i * patches * k, dx.f() + ((n0 + i) * c + gr * group_in_) * h * wd);
        }
      }
    }
    if (need[0]) din[0] = std::move(dx);
    if (need[1]) din[1] = std::move(dw);
    if (in.size() > 2 && in[2] != nullptr && need[2]) {
      Tensor db(in[2]->shape());
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t ch = 0; ch < out_channels_; ++ch) {
          const float* src = dy.f() + (i * out_channels_ + ch) * patches;
          double sum = 0;
          for (std::int64_t p = 0; p < patches; ++p) sum += src[p];
          db.f()[ch] += static_cast<float>(sum);
        }
      din[2] = std::move(db);
    }
  }

 private:
  ConvGeometry geometry_for(const Tensor& x) const {
    const std::int64_t h = x.dim(2), wd = x.dim(3);
    std::int64_t pt, pb, pl, pr;
    const std::int64_t ho = window_.output_size(0, h, &pt, &pb);
    const std::int64_t wo = window_.output_size(1, wd, &pl, &pr);
    if (ho <= 0 || wo <= 0) spec_.fail("input " + shape_string(x.shape()) + " is smaller than the kernel");
    ConvGeometry geometry;
    geometry.channels = group_in_;
    geometry.height = h;
    geometry.width = wd;
    geometry.kernel_h = window_.kernel[0];
    geometry.kernel_w = window_.kernel[1];
    geometry.stride_h = window_.stride[0];
    geometry.stride_w = window_.stride[1];
    geometry.dilation_h = window_.dilation[0];
    geometry.dilation_w = window_.dilation[1];
    geometry.pad_top = pt;
    geometry.pad_left = pl;
    geometry.out_h = ho;
    geometry.out_w = wo;
    return geometry;
  }

  // The convolution of one group as models::Substrate::convolve takes it.
  models::ConvShape conv_shape(const Tensor& x, const ConvGeometry& g) const {
    models::ConvShape s;
    s.in_channels = group_in_;
    s.height = g.height;
    s.width = g.width;
    s.out_channels = out_channels_ / group_;
    s.kernel_h = g.kernel_h;
    s.kernel_w = g.kernel_w;
    s.stride_h = g.stride_h;
    s.stride_w = g.stride_w;
    s.dilation_h = g.dilation_h;
    s.dilation_w = g.dilation_w;
    std::int64_t pt, pb, pl, pr;
    window_.output_size(0, g.height, &pt, &pb);
    window_.output_size(1, g.width, &pl, &pr);
    s.pad_top = pt;
    s.pad_bottom = pb;
    s.pad_left = pl;
    s.pad_right = pr;
    s.out_h = g.out_h;
    s.out_w = g.out_w;
    s.x_image_stride = x.dim(1) * g.height * g.width;
    s.y_image_stride = out_channels_ * g.out_h * g.out_w;
    return s;
  }

  ConvOp(const ConvOp& other, const Tensor& w)
      : Op(), LinearLayer(other.name(), "Conv"), spec_(other.spec_), window_(other.window_), group_(other.group_),
        kernel_attr_(other.kernel_attr_) {
    set_weights(spec_, w);
    const std::int64_t group_out = out_channels_ / group_;
    const std::int64_t k = group_in_ * window_.kernel[0] * window_.kernel[1];
    for (std::int64_t g = 0; g < group_; ++g)
      blocks_.push_back({MatrixRM(ConstMap(w.f() + g * group_out * k, group_out, k)), nullptr});
  }

  void set_weights(const NodeSpec& spec, const Tensor& w) {
    require_float(spec, &w, "input W");
    if (w.rank() != 4) spec.unsupported("only 2-D convolutions are supported, W has shape " + shape_string(w.shape()));
    if (w.numel() == 0) spec.fail("W has an empty dimension: " + shape_string(w.shape()));
    out_channels_ = w.dim(0);
    group_in_ = w.dim(1);
    if (out_channels_ % group_ != 0)
      spec.fail("group " + std::to_string(group_) + " does not divide " + std::to_string(out_channels_) + " output channels");
    window_.kernel[0] = w.dim(2);
    window_.kernel[1] = w.dim(3);
    if (!kernel_attr_.empty() && (kernel_attr_[0] != w.dim(2) || kernel_attr_[1] != w.dim(3)))
      spec.fail("kernel_shape does not match the weight shape " + shape_string(w.shape()));
  }

  std::vector<float> read_bias(const Tensor& b) const {
    require_float(spec_, &b, "input B");
    if (b.numel() != out_channels_)
      spec_.fail("bias has " + std::to_string(b.numel()) + " values for " + std::to_string(out_channels_) + " output channels");
    return b.float_storage();
  }

  NodeSpec spec_;
  Window2D window_;
  std::int64_t group_ = 1, out_channels_ = 0, group_in_ = 0;
  std::vector<std::int64_t> kernel_attr_;
  std::vector<float> bias_;
};

}  // namespace

void register_linear_ops(std::map<std::string, OpFactory>& table) {
  table["Gemm"] = [](const NodeSpec& s) { return std::make_unique<GemmOp>(s); };
  table["MatMul"] = [](const NodeSpec& s) { return std::make_unique<MatMulOp>(s); };
  table["Conv"] = [](const NodeSpec& s) { return std::make_unique<ConvOp>(s); };
}

}  // namespace faultline::nn
