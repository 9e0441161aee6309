// Operators that move data without arithmetic (Flatten, Reshape, Transpose, Concat, Gather,
// Squeeze/Unsqueeze, Pad) and the small operators PyTorch exports carry for shape arithmetic
// (Shape, Cast, Constant, ConstantOfShape, Identity, Dropout). They work on float32 and int64.
#include <algorithm>
#include <cstring>
#include <limits>

#include "models/philox.h"
#include "nn/op.h"

namespace faultline::nn {
namespace {

std::int64_t normalize_axis(const NodeSpec& spec, std::int64_t axis, std::int64_t rank, const char* what = "axis") {
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) spec.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return a;
}

// Calls f with the typed data pointers of the input and the output.
template <typename F>
void with_data(const Tensor& x, Tensor& y, F f) {
  if (x.dtype() == DType::Float32) f(x.f(), y.f());
  else f(x.i(), y.i());
}

Tensor reshaped(const Tensor& x, Shape shape) {
  Tensor y = x;
  y.reshape(std::move(shape));
  return y;
}

class FlattenOp final : public Op {
 public:
  explicit FlattenOp(const NodeSpec& spec) : spec_(spec) { spec.expect_inputs(1, 1); axis_ = spec.get_int("axis", 1); }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    const std::int64_t axis = axis_ < 0 ? axis_ + x.rank() : axis_;
    if (axis < 0 || axis > x.rank()) spec_.fail("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    std::int64_t outer = 1;
    for (std::int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
    out[0] = reshaped(x, {outer, outer == 0 ? 0 : x.numel() / outer});
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  std::int64_t axis_;
};

class ReshapeOp final : public Op {
 public:
  explicit ReshapeOp(const NodeSpec& spec) : spec_(spec) {
    if (spec.opset < 5) spec.unsupported("Reshape-1 (shape as attribute) is not supported");
    spec.expect_inputs(2, 2);
    allow_zero_ = spec.get_int("allowzero", 0) != 0;
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    if (in[1]->dtype() != DType::Int64) spec_.fail("shape input must be int64");
    Shape shape = in[1]->to_ints();
    std::int64_t known = 1;
    int infer = -1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
      if (shape[k] == 0 && !allow_zero_) {
        if (k >= x.shape().size()) spec_.fail("shape " + shape_string(shape) + " copies dimension " + std::to_string(k) + " that the input " + shape_string(x.shape()) + " does not have");
        shape[k] = x.shape()[k];
      }
      if (shape[k] == -1) {
        if (infer >= 0) spec_.fail("shape " + shape_string(in[1]->to_ints()) + " has more than one -1");
        infer = static_cast<int>(k);
      } else if (shape[k] < 0) {
        spec_.fail("shape " + shape_string(in[1]->to_ints()) + " has a negative dimension");
      } else {
        if (shape[k] != 0 && known > std::numeric_limits<std::int64_t>::max() / shape[k])
          spec_.fail("shape " + shape_string(in[1]->to_ints()) + " has too many elements");
        known *= shape[k];
      }
    }
    if (infer >= 0) {
      if (known == 0 || x.numel() % known != 0)
        spec_.fail("cannot reshape " + shape_string(x.shape()) + " to " + shape_string(in[1]->to_ints()));
      shape[static_cast<std::size_t>(infer)] = x.numel() / known;
    }
    if (shape_numel(shape) != x.numel())
      spec_.fail("cannot reshape " + shape_string(x.shape()) + " to " + shape_string(in[1]->to_ints()));
    out[0] = reshaped(x, shape);
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  bool allow_zero_ = false;
};

class TransposeOp final : public Op {
 public:
  explicit TransposeOp(const NodeSpec& spec) : spec_(spec) { spec.expect_inputs(1, 1); perm_ = spec.get_ints("perm", {}); }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    const int rank = x.rank();
    std::vector<std::int64_t> perm = perm_;
    if (perm.empty()) for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
    if (static_cast<int>(perm.size()) != rank) spec_.fail("perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
    std::vector<bool> seen(static_cast<std::size_t>(rank), false);
    for (auto& p : perm) {
      p = normalize_axis(spec_, p, rank, "perm entry");
      if (seen[static_cast<std::size_t>(p)]) spec_.fail("perm is not a permutation");
      seen[static_cast<std::size_t>(p)] = true;
    }
    Shape shape(static_cast<std::size_t>(rank));
    std::vector<std::int64_t> in_stride(static_cast<std::size_t>(rank), 1), src_stride(static_cast<std::size_t>(rank));
    for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * x.dim(d + 1);
    for (int d = 0; d < rank; ++d) { shape[d] = x.dim(static_cast<int>(perm[d])); src_stride[d] = in_stride[perm[d]]; }
    Tensor y(shape, x.dtype());
    with_data(x, y, [&](const auto* src, auto* dst) {
      std::vector<std::int64_t> coord(static_cast<std::size_t>(rank), 0);
      std::int64_t offset = 0;
      for (std::int64_t k = 0; k < y.numel(); ++k) {
        dst[k] = src[offset];
        for (int d = rank - 1; d >= 0; --d) {
          offset += src_stride[d];
          if (++coord[d] < shape[d]) break;
          offset -= src_stride[d] * shape[d];
          coord[d] = 0;
        }
      }
    });
    out[0] = std::move(y);
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  std::vector<std::int64_t> perm_;
};

class ConcatOp final : public Op {
 public:
  explicit ConcatOp(const NodeSpec& spec) : spec_(spec) {
    if (spec.inputs.empty()) spec.fail("needs at least one input");
    axis_ = spec.get_int("axis", spec.opset < 4 ? 1 : 0);
    if (spec.opset >= 4 && !spec.has("axis")) spec.fail("missing required attribute 'axis'");
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& first = *in[0];
    const std::int64_t axis = normalize_axis(spec_, axis_, first.rank());
    Shape shape = first.shape();
    shape[axis] = 0;
    for (const Tensor* t : in) {
      if (t->dtype() != first.dtype() || t->rank() != first.rank()) spec_.fail("inputs differ in type or rank");
      for (int d = 0; d < first.rank(); ++d)
        if (d != axis && t->dim(d) != first.dim(d)) spec_.fail("input shapes " + shape_string(first.shape()) + " and " + shape_string(t->shape()) + " differ outside the axis");
      shape[axis] += t->dim(static_cast<int>(axis));
    }
    std::int64_t outer = 1, inner = 1;
    for (int d = 0; d < first.rank(); ++d) { if (d < axis) outer *= shape[d]; if (d > axis) inner *= shape[d]; }
    Tensor y(shape, first.dtype());
    std::int64_t offset = 0;
    for (const Tensor* t : in) {
      const std::int64_t chunk = t->dim(static_cast<int>(axis)) * inner;
      with_data(*t, y, [&](const auto* src, auto* dst) {
        for (std::int64_t o = 0; o < outer; ++o) std::copy(src + o * chunk, src + (o + 1) * chunk, dst + o * shape[axis] * inner + offset);
      });
      offset += chunk;
    }
    out[0] = std::move(y);
  }

  bool differentiable_input(std::size_t) const override { return true; }
  // Moves elements only: each input's gradient is its slice of the output's.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    std::vector<std::size_t> all(in.size());
    for (std::size_t k = 0; k < in.size(); ++k) all[k] = k;
    index_map_backward(*this, in, dout, need, din, all);
  }

 private:
  NodeSpec spec_;
  std::int64_t axis_;
};

class ShapeOp final : public Op {
 public:
  explicit ShapeOp(const NodeSpec& spec) : spec_(spec) {
    spec.expect_inputs(1, 1);
    start_ = spec.get_int("start", 0);
    end_ = spec.get_int("end", std::numeric_limits<std::int64_t>::max());
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const std::int64_t rank = in[0]->rank();
    // Shape-15: start/end are clamped to [0, rank] after adding rank to negatives.
    auto clamp = [rank](std::int64_t v) { if (v < 0) v += rank; return std::min(std::max<std::int64_t>(v, 0), rank); };
    const std::int64_t s = clamp(start_), e = std::max(clamp(end_), clamp(start_));
    std::vector<std::int64_t> dims(in[0]->shape().begin() + s, in[0]->shape().begin() + e);
    out[0] = Tensor::ints({static_cast<std::int64_t>(dims.size())}, dims);
  }

 private:
  NodeSpec spec_;
  std::int64_t start_, end_;
};

class GatherOp final : public Op {
 public:
  explicit GatherOp(const NodeSpec& spec) : spec_(spec) { spec.expect_inputs(2, 2); axis_ = spec.get_int("axis", 0); }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    const Tensor& idx = *in[1];
    if (idx.dtype() != DType::Int64) spec_.fail("indices must be integers");
    const std::int64_t axis = normalize_axis(spec_, axis_, x.rank());
    const std::int64_t len = x.dim(static_cast<int>(axis));
    Shape shape(x.shape().begin(), x.shape().begin() + axis);
    shape.insert(shape.end(), idx.shape().begin(), idx.shape().end());
    shape.insert(shape.end(), x.shape().begin() + axis + 1, x.shape().end());
    std::int64_t outer = 1, inner = 1;
    for (int d = 0; d < x.rank(); ++d) { if (d < axis) outer *= x.dim(d); if (d > axis) inner *= x.dim(d); }
    Tensor y(shape, x.dtype());
    const std::int64_t count = idx.numel();
    with_data(x, y, [&](const auto* src, auto* dst) {
      for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t j = 0; j < count; ++j) {
          std::int64_t k = idx.i()[j];
          if (k < 0) k += len;
          if (k < 0 || k >= len) spec_.fail("index " + std::to_string(idx.i()[j]) + " is out of range for a dimension of " + std::to_string(len));
          std::copy(src + (o * len + k) * inner, src + (o * len + k + 1) * inner, dst + (o * count + j) * inner);
        }
    });
    out[0] = std::move(y);
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  std::int64_t axis_;
};

// Squeeze and Unsqueeze: axes come from an attribute before opset 13 and from an input since.
class SqueezeOp final : public Op {
 public:
  SqueezeOp(const NodeSpec& spec, bool unsqueeze) : spec_(spec), unsqueeze_(unsqueeze) {
    if (spec.opset < 13) {
      spec.expect_inputs(1, 1);
      axes_ = spec.get_ints("axes", {});
      if (unsqueeze && axes_.empty()) spec.fail("missing required attribute 'axes'");
    } else {
      spec.expect_inputs(unsqueeze ? 2 : 1, 2);
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    std::vector<std::int64_t> axes = axes_;
    if (in.size() > 1 && in[1] != nullptr) axes = in[1]->to_ints();
    Shape shape = x.shape();
    if (unsqueeze_) {
      const std::int64_t rank = x.rank() + static_cast<std::int64_t>(axes.size());
      std::vector<bool> inserted(static_cast<std::size_t>(rank), false);
      for (auto a : axes) {
        const std::int64_t n = normalize_axis(spec_, a, rank);
        if (inserted[n]) spec_.fail("axis " + std::to_string(a) + " appears twice");
        inserted[n] = true;
      }
      Shape result;
      std::size_t src = 0;
      for (std::int64_t d = 0; d < rank; ++d) result.push_back(inserted[d] ? 1 : shape[src++]);
      out[0] = reshaped(x, result);
    } else {
      std::vector<bool> drop(shape.size(), false);
      if (axes.empty()) {
        for (std::size_t d = 0; d < shape.size(); ++d) drop[d] = shape[d] == 1;
      }
      for (auto a : axes) {
        const std::int64_t n = normalize_axis(spec_, a, x.rank());
        if (shape[n] != 1) spec_.fail("cannot squeeze axis " + std::to_string(a) + " of size " + std::to_string(shape[n]));
        drop[n] = true;
      }
      Shape result;
      for (std::size_t d = 0; d < shape.size(); ++d) if (!drop[d]) result.push_back(shape[d]);
      out[0] = reshaped(x, result);
    }
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  bool unsqueeze_;
  std::vector<std::int64_t> axes_;
};

// ONNX TensorProto.DataType codes (onnx.proto).
constexpr std::int64_t kOnnxFloat = 1, kOnnxInt64 = 7;

class CastOp final : public Op {
 public:
  explicit CastOp(const NodeSpec& spec) : spec_(spec) {
    spec.expect_inputs(1, 1);
    const std::int64_t to = spec.get_int("to", -1);
    if (to == kOnnxFloat) to_ = DType::Float32;
    else if (to == kOnnxInt64) to_ = DType::Int64;
    else spec.unsupported("cast to ONNX data type " + std::to_string(to) + " (only FLOAT and INT64 are supported)");
    spec.ignore("saturate");
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    out[0] = in[0]->as(to_);
  }

 private:
  NodeSpec spec_;
  DType to_ = DType::Float32;
};

class IdentityOp final : public Op {
 public:
  explicit IdentityOp(const NodeSpec& spec, bool dropout) : spec_(spec), dropout_(dropout) {
    if (dropout) {
      // Inference: Dropout is the identity and its mask is all ones (ONNX Dropout spec); in
      // training it drops. The ratio is an attribute before opset 12 and an input since.
      if (spec.opset < 12) ratio_ = spec.get_float("ratio", 0.5f);
      spec.ignore("seed");
      if (spec.opset < 7) spec.ignore("is_test");
      spec.expect_inputs(1, 3);
      if (spec.opset >= 12 && spec.constant_input(2) != nullptr && spec.constant_input(2)->to_ints().at(0) != 0)
        spec.unsupported("training_mode=true is not supported (inference only)");
    } else {
      spec.expect_inputs(1, 1);
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext& ctx) const override {
    if (dropout_ && in.size() > 2 && in[2] != nullptr && in[2]->to_ints().at(0) != 0)
      spec_.unsupported("training_mode=true is not supported (inference only)");
    if (dropout_ && ctx.training && in[0]->dtype() == DType::Float32) {
      // Inverted dropout: kept elements scaled by 1/(1 − ratio).
      const std::vector<float> mask = keep_mask(in, ctx);
      Tensor y(in[0]->shape());
      for (std::int64_t k = 0; k < y.numel(); ++k) y.f()[k] = in[0]->f()[k] * mask[static_cast<std::size_t>(k)];
      out[0] = std::move(y);
      if (out.size() > 1) {
        Tensor m(in[0]->shape(), DType::Int64);
        for (std::int64_t k = 0; k < m.numel(); ++k) m.i()[k] = mask[static_cast<std::size_t>(k)] != 0.0f;
        out[1] = std::move(m);
      }
      return;
    }
    out[0] = *in[0];
    if (out.size() > 1) {
      Tensor mask(in[0]->shape(), DType::Int64);
      std::fill(mask.i(), mask.i() + mask.numel(), 1);
      out[1] = std::move(mask);
    }
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext& ctx) const override {
    if (dout[0] == nullptr || !need[0]) return;
    Tensor dx = *dout[0];
    if (dropout_ && ctx.training) {
      const std::vector<float> mask = keep_mask(in, ctx);
      for (std::int64_t k = 0; k < dx.numel(); ++k) dx.f()[k] *= mask[static_cast<std::size_t>(k)];
    }
    din[0] = std::move(dx);
  }

 private:
  // Per element 0 (dropped) or 1/(1 − ratio) (kept), keyed by (seed, trial, node) and the
  // element's global index, so that the mask does not depend on how the batch was split.
  std::vector<float> keep_mask(const std::vector<const Tensor*>& in, const RunContext& ctx) const {
    float ratio = ratio_;
    if (spec_.opset >= 12 && in.size() > 1 && in[1] != nullptr) ratio = in[1]->dtype() == DType::Float32 ? in[1]->f()[0] : 0.5f;
    if (!(ratio >= 0.0f && ratio < 1.0f)) spec_.fail("ratio must be in [0, 1), got " + std::to_string(ratio));
    const Tensor& x = *in[0];
    const std::int64_t per_sample = x.rank() > 0 && x.dim(0) > 0 ? x.numel() / x.dim(0) : x.numel();
    const models::CounterRng rng(ctx.seed, models::stream_id(ctx.trial, 4094, ctx.node, models::Purpose::SiteNoise));
    const std::uint64_t first = ctx.first_sample * static_cast<std::uint64_t>(per_sample);
    std::vector<float> mask(static_cast<std::size_t>(x.numel()));
    const float keep = 1.0f / (1.0f - ratio);
    for (std::int64_t k = 0; k < x.numel(); ++k) mask[static_cast<std::size_t>(k)] = rng.uniform(first + static_cast<std::uint64_t>(k)) >= ratio ? keep : 0.0f;
    return mask;
  }

  NodeSpec spec_;
  bool dropout_;
  float ratio_ = 0.5f;
};

class ConstantOp final : public Op {
 public:
  explicit ConstantOp(const NodeSpec& spec) {
    spec.expect_inputs(0, 0);
    if (spec.attributes.size() != 1) spec.fail("needs exactly one value attribute");
    const std::string& key = spec.attributes.begin()->first;
    if (key == "value") {
      const Attribute& a = spec.get("value");
      if (a.kind != Attribute::Kind::Tensor) spec.fail("attribute 'value' must be a tensor");
      value_ = a.tensor;
    } else if (key == "value_float") {
      value_ = Tensor::scalar(spec.get_float("value_float", 0));
    } else if (key == "value_floats") {
      auto v = spec.get_floats("value_floats", {});
      value_ = Tensor::floats({static_cast<std::int64_t>(v.size())}, v);
    } else if (key == "value_int") {
      value_ = Tensor::ints({}, {spec.get_int("value_int", 0)});
    } else if (key == "value_ints") {
      auto v = spec.get_ints("value_ints", {});
      value_ = Tensor::ints({static_cast<std::int64_t>(v.size())}, v);
    } else {
      spec.unsupported("value attribute '" + key + "' is not supported");
    }
  }
  void run(const std::vector<const Tensor*>&, std::vector<Tensor>& out, const RunContext&) const override { out[0] = value_; }

 private:
  Tensor value_;
};

class ConstantOfShapeOp final : public Op {
 public:
  explicit ConstantOfShapeOp(const NodeSpec& spec) : spec_(spec) {
    spec.expect_inputs(1, 1);
    if (spec.has("value")) {
      const Attribute& a = spec.get("value");
      if (a.kind != Attribute::Kind::Tensor || a.tensor.numel() != 1) spec.fail("attribute 'value' must be a one-element tensor");
      value_ = a.tensor;
    } else {
      value_ = Tensor::floats({1}, {0.0f});
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    Shape shape = in[0]->to_ints();
    Tensor y(shape, value_.dtype());
    if (y.dtype() == DType::Float32) std::fill(y.f(), y.f() + y.numel(), value_.f()[0]);
    else std::fill(y.i(), y.i() + y.numel(), value_.i()[0]);
    out[0] = std::move(y);
  }

 private:
  NodeSpec spec_;
  Tensor value_;
};

class PadOp final : public Op {
 public:
  explicit PadOp(const NodeSpec& spec) : spec_(spec) {
    mode_ = spec.get_string("mode", "constant");
    if (mode_ != "constant" && mode_ != "reflect" && mode_ != "edge") spec.unsupported("mode '" + mode_ + "' is not supported");
    if (spec.opset < 11) {
      spec.expect_inputs(1, 1);
      pads_ = spec.get_ints(spec.opset < 2 ? "paddings" : "pads", {});
      value_ = spec.get_float("value", 0.0f);
    } else {
      spec.expect_inputs(2, 3);
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    std::vector<std::int64_t> pads = pads_;
    double value = value_;
    if (spec_.opset >= 11) {
      pads = in[1]->to_ints();
      if (in.size() > 2 && in[2] != nullptr) {
        if (in[2]->numel() != 1) spec_.fail("constant_value must be a scalar");
        value = in[2]->dtype() == DType::Float32 ? in[2]->f()[0] : static_cast<double>(in[2]->i()[0]);
      }
    }
    const int rank = x.rank();
    if (static_cast<int>(pads.size()) != 2 * rank) spec_.fail("pads has " + std::to_string(pads.size()) + " values for rank " + std::to_string(rank));
    Shape shape = x.shape();
    for (int d = 0; d < rank; ++d) {
      shape[d] += pads[d] + pads[d + rank];
      if (shape[d] < 0) spec_.fail("pads remove more than the input has");
      if (mode_ != "constant" && (x.dim(d) == 0 || (mode_ == "reflect" && (pads[d] >= x.dim(d) || pads[d + rank] >= x.dim(d)) && (pads[d] > 0 || pads[d + rank] > 0))))
        spec_.fail("pads too large for mode '" + mode_ + "' on axis " + std::to_string(d));
    }
    Tensor y(shape, x.dtype());
    std::vector<std::int64_t> in_stride(static_cast<std::size_t>(rank), 1);
    for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * x.dim(d + 1);
    with_data(x, y, [&](const auto* src, auto* dst) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(src)>>;
      std::vector<std::int64_t> coord(static_cast<std::size_t>(rank), 0);
      for (std::int64_t k = 0; k < y.numel(); ++k) {
        std::int64_t offset = 0;
        bool outside = false;
        for (int d = 0; d < rank; ++d) {
          std::int64_t c = coord[d] - pads[d];
          const std::int64_t n = x.dim(d);
          if (c < 0 || c >= n) {
            if (mode_ == "constant") { outside = true; break; }
            if (mode_ == "edge") c = c < 0 ? 0 : n - 1;
            else c = c < 0 ? -c : 2 * (n - 1) - c;  // reflect without repeating the edge
          }
          offset += c * in_stride[d];
        }
        dst[k] = outside ? static_cast<T>(value) : src[offset];
        for (int d = rank - 1; d >= 0; --d) {
          if (++coord[d] < shape[d]) break;
          coord[d] = 0;
        }
      }
    });
    out[0] = std::move(y);
  }

  // Moves elements only (padding gets no gradient; edge and reflect add up what they copied).
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0}, {2});
  }

 private:
  NodeSpec spec_;
  std::string mode_;
  std::vector<std::int64_t> pads_;
  float value_ = 0.0f;
};


// Slice: starts/ends/axes/steps as attributes before opset 10 and as inputs since (ONNX Slice-10).
class SliceOp final : public Op {
 public:
  explicit SliceOp(const NodeSpec& spec) : spec_(spec) {
    if (spec.opset < 10) {
      spec.expect_inputs(1, 1);
      starts_ = spec.get_ints("starts", {});
      ends_ = spec.get_ints("ends", {});
      axes_ = spec.get_ints("axes", {});
    } else {
      spec.expect_inputs(3, 5);
    }
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor>& out, const RunContext&) const override {
    const Tensor& x = *in[0];
    std::vector<std::int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (spec_.opset >= 10) {
      starts = in[1]->to_ints();
      ends = in[2]->to_ints();
      if (in.size() > 3 && in[3] != nullptr) axes = in[3]->to_ints();
      if (in.size() > 4 && in[4] != nullptr) steps = in[4]->to_ints();
    }
    if (starts.size() != ends.size()) spec_.fail("starts and ends differ in length");
    if (axes.empty()) for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (axes.size() != starts.size() || steps.size() != starts.size()) spec_.fail("starts, ends, axes and steps differ in length");
    const int rank = x.rank();
    std::vector<std::int64_t> first(static_cast<std::size_t>(rank), 0), step(static_cast<std::size_t>(rank), 1);
    Shape shape = x.shape();
    std::vector<bool> seen(static_cast<std::size_t>(rank), false);
    for (std::size_t k = 0; k < axes.size(); ++k) {
      const std::int64_t a = normalize_axis(spec_, axes[k], rank);
      if (seen[a]) spec_.fail("axis " + std::to_string(axes[k]) + " appears twice");
      seen[a] = true;
      const std::int64_t dim = x.dim(static_cast<int>(a)), st = steps[k];
      if (st == 0) spec_.fail("steps must not be 0");
      std::int64_t b = starts[k], e = ends[k];
      if (b < 0) b += dim;
      if (e < 0) e += dim;
      if (st > 0) {
        b = std::clamp<std::int64_t>(b, 0, dim);
        e = std::clamp<std::int64_t>(e, 0, dim);
        shape[a] = e > b ? (e - b + st - 1) / st : 0;
      } else {
        b = std::clamp<std::int64_t>(b, 0, dim - 1);
        e = std::clamp<std::int64_t>(e, -1, dim - 1);
        shape[a] = b > e ? (b - e - st - 1) / (-st) : 0;
      }
      first[a] = b;
      step[a] = st;
    }
    std::vector<std::int64_t> in_stride(static_cast<std::size_t>(rank), 1);
    for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * x.dim(d + 1);
    Tensor y(shape, x.dtype());
    with_data(x, y, [&](const auto* src, auto* dst) {
      std::vector<std::int64_t> coord(static_cast<std::size_t>(rank), 0);
      for (std::int64_t k = 0; k < y.numel(); ++k) {
        std::int64_t offset = 0;
        for (int d = 0; d < rank; ++d) offset += (first[d] + coord[d] * step[d]) * in_stride[d];
        dst[k] = src[offset];
        for (int d = rank - 1; d >= 0; --d) {
          if (++coord[d] < shape[d]) break;
          coord[d] = 0;
        }
      }
    });
    out[0] = std::move(y);
  }

  // Moves elements only: the gradient goes back along the same index map.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&, const std::vector<const Tensor*>& dout,
                const std::vector<bool>& need, std::vector<Tensor>& din, const RunContext&) const override {
    index_map_backward(*this, in, dout, need, din, {0});
  }

 private:
  NodeSpec spec_;
  std::vector<std::int64_t> starts_, ends_, axes_;
};

}  // namespace

void register_shape_ops(std::map<std::string, OpFactory>& table) {
  table["Flatten"] = [](const NodeSpec& s) { return std::make_unique<FlattenOp>(s); };
  table["Reshape"] = [](const NodeSpec& s) { return std::make_unique<ReshapeOp>(s); };
  table["Transpose"] = [](const NodeSpec& s) { return std::make_unique<TransposeOp>(s); };
  table["Concat"] = [](const NodeSpec& s) { return std::make_unique<ConcatOp>(s); };
  table["Shape"] = [](const NodeSpec& s) { return std::make_unique<ShapeOp>(s); };
  table["Gather"] = [](const NodeSpec& s) { return std::make_unique<GatherOp>(s); };
  table["Squeeze"] = [](const NodeSpec& s) { return std::make_unique<SqueezeOp>(s, false); };
  table["Unsqueeze"] = [](const NodeSpec& s) { return std::make_unique<SqueezeOp>(s, true); };
  table["Cast"] = [](const NodeSpec& s) { return std::make_unique<CastOp>(s); };
  table["Identity"] = [](const NodeSpec& s) { return std::make_unique<IdentityOp>(s, false); };
  table["Dropout"] = [](const NodeSpec& s) { return std::make_unique<IdentityOp>(s, true); };
  table["Constant"] = [](const NodeSpec& s) { return std::make_unique<ConstantOp>(s); };
  table["ConstantOfShape"] = [](const NodeSpec& s) { return std::make_unique<ConstantOfShapeOp>(s); };
  table["Pad"] = [](const NodeSpec& s) { return std::make_unique<PadOp>(s); };
  table["Slice"] = [](const NodeSpec& s) { return std::make_unique<SliceOp>(s); };
}

}  // namespace faultline::nn
