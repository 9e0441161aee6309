// Backward passes of the NN engine's operators against central finite differences.
//
// Each case is a one-node graph whose inputs are parameters (the data input reaches the node
// through Add(zeros, x), so that it is computed at run time like a real activation). The loss is
// L = Σ r·y with fixed random r, so dL/dy = r. The numerical derivative (L(p + h) − L(p − h))/2h
// in float32 arithmetic has two errors: rounding, about n·ε·max|r·y|/h with n outputs and
// ε = 6e-8 (below 3e-4 for these sizes at h = 1e-2), and truncation, h²/6 times the third
// derivative (below 2e-4 for the smooth ops here). The tolerance 2e-3 + 1e-2·|analytic| covers
// both with a margin of about 4; non-smooth ops (Relu, Clip, MaxPool) get inputs kept at least
// 2h from their kinks and ties, so no difference crosses one.
#include <gtest/gtest.h>

#include <cmath>

#include "models/philox.h"
#include "nn/graph.h"
#include "nn/onnx_io.h"

using namespace faultline;
using nn::Attribute;
using nn::Shape;
using nn::Tensor;

namespace {

constexpr float kStep = 1e-2f;

Tensor random(Shape shape, std::uint64_t stream, float lo = -1, float hi = 1, float gap = 0) {
  Tensor t(std::move(shape));
  const models::CounterRng rng(5, stream);
  for (std::int64_t k = 0; k < t.numel(); ++k) {
    float v = lo + (hi - lo) * rng.uniform(static_cast<std::uint64_t>(k));
    // Keep |v| ≥ gap (away from a kink at 0).
    if (gap > 0 && std::fabs(v) < gap) v = v < 0 ? -gap - std::fabs(v) : gap + v;
    t.f()[k] = v;
  }
  return t;
}

// Distinct values spaced by more than 2h (for MaxPool: no ties, no swaps under ±h).
Tensor spaced(Shape shape, std::uint64_t stream) {
  Tensor t(std::move(shape));
  const models::CounterRng rng(6, stream);
  std::vector<std::int64_t> order(static_cast<std::size_t>(t.numel()));
  for (std::int64_t k = 0; k < t.numel(); ++k) order[k] = k;
  for (std::int64_t k = t.numel() - 1; k > 0; --k) std::swap(order[k], order[rng.below(static_cast<std::uint64_t>(k), static_cast<std::uint32_t>(k + 1))]);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.f()[order[k]] = -1.0f + 0.05f * static_cast<float>(k);
  return t;
}

struct Input {
  std::string name;
  Tensor value;
  bool data = false;  // reaches the node at run time (through Add with a zero graph input)
};

struct Case {
  std::string op;
  std::vector<Input> inputs = {};
  std::map<std::string, Attribute> attributes = {};
  bool training = false;
  int opset = 13;
};

double loss(nn::Graph& g, const Tensor& zeros, const Tensor& r, bool training) {
  nn::RunContext ctx;
  ctx.training = training;
  ctx.seed = 3;
  nn::Graph::Tape tape;
  const Tensor y = g.run_recorded({zeros}, ctx, tape)[0];
  double l = 0;
  for (std::int64_t k = 0; k < y.numel(); ++k) l += static_cast<double>(r.f()[k]) * y.f()[k];
  return l;
}

void check(const Case& c) {
  SCOPED_TRACE(c.op);
  nn::Graph g;
  const Input* data = nullptr;
  for (const Input& in : c.inputs)
    if (in.data) data = &in;
  ASSERT_NE(data, nullptr);
  g.add_input({"zeros", nn::DType::Float32, data->value.shape(), true});
  nn::NodeSpec node;
  node.name = "node";
  node.op_type = c.op;
  node.opset = c.opset;
  node.attributes = c.attributes;
  for (const Input& in : c.inputs) {
    g.add_constant(in.name, in.value);
    if (in.data) {
      nn::NodeSpec add;
      add.name = "feed";
      add.op_type = "Add";
      add.opset = c.opset;
      add.inputs = {"zeros", in.name};
      add.outputs = {in.name + "_live"};
      g.add_node(add);
      node.inputs.push_back(in.name + "_live");
    } else {
      node.inputs.push_back(in.name);
    }
  }
  node.outputs = {"y"};
  g.add_node(node);
  g.add_output("y");
  g.finalize();
  g.program_ideal();
  const Tensor zeros(data->value.shape());
  nn::RunContext ctx;
  ctx.training = c.training;
  ctx.seed = 3;
  nn::Graph::Tape tape;
  const Tensor y = g.run_recorded({zeros}, ctx, tape)[0];
  const Tensor r = random(y.shape(), 99);
  std::vector<Tensor> grads;
  g.backward(tape, {r}, grads);
  ASSERT_EQ(grads.size(), g.parameters().size());
  int checked = 0;
  for (std::size_t p = 0; p < g.parameters().size(); ++p) {
    const std::string& name = g.parameters()[p];
    Tensor& value = g.parameter(name);
    ASSERT_EQ(grads[p].numel(), value.numel()) << name;
    for (std::int64_t k = 0; k < value.numel(); ++k) {
      const float saved = value.f()[k];
      value.f()[k] = saved + kStep;
      g.parameters_changed();
      g.program_ideal();
      const double up = loss(g, zeros, r, c.training);
      value.f()[k] = saved - kStep;
      g.parameters_changed();
      g.program_ideal();
      const double down = loss(g, zeros, r, c.training);
      value.f()[k] = saved;
      const double numeric = (up - down) / (2.0 * kStep);
      const double analytic = grads[p].f()[k];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 1e-2 * std::fabs(analytic)) << name << "[" << k << "]";
      ++checked;
    }
  }
  g.parameters_changed();
  EXPECT_GT(checked, 0);
}

Attribute ints(std::vector<std::int64_t> v) { return nn::ints_attribute(std::move(v)); }
Attribute integer(std::int64_t v) { return nn::int_attribute(v); }
Attribute real(float v) { return nn::float_attribute(v); }
Attribute text(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = std::move(v);
  return a;
}

TEST(Gradients, Conv) {
  check({"Conv", {{"x", random({2, 4, 6, 5}, 1), true}, {"w", random({6, 2, 3, 2}, 2)}, {"b", random({6}, 3)}},
         {{"group", integer(2)}, {"strides", ints({2, 1})}, {"pads", ints({1, 0, 1, 1})}, {"dilations", ints({1, 2})}}});
  check({"Conv", {{"x", random({1, 3, 5, 5}, 4), true}, {"w", random({2, 3, 3, 3}, 5)}}, {{"pads", ints({1, 1, 1, 1})}}});
}

TEST(Gradients, Gemm) {
  check({"Gemm", {{"a", random({3, 4}, 6), true}, {"b", random({5, 4}, 7)}, {"c", random({5}, 8)}},
         {{"transB", integer(1)}, {"alpha", real(0.7f)}, {"beta", real(1.3f)}}});
  check({"Gemm", {{"a", random({4, 3}, 9), true}, {"b", random({4, 2}, 10)}, {"c", random({3, 1}, 11)}}, {{"transA", integer(1)}}});
}

TEST(Gradients, MatMul) {
  check({"MatMul", {{"a", random({2, 3, 4}, 12), true}, {"b", random({4, 5}, 13)}}});           // constant 2-D weight
  check({"MatMul", {{"a", random({2, 3, 4}, 14), true}, {"b", random({2, 4, 2}, 15)}}});        // constant 3-D (batched) weight
  check({"MatMul", {{"a", random({4}, 16), true}, {"b", random({3, 4, 2}, 17)}}});              // vector, broadcast batch
}

TEST(Gradients, Activations) {
  check({"Relu", {{"x", random({3, 7}, 18, -1, 1, 2 * kStep), true}}});
  check({"LeakyRelu", {{"x", random({3, 7}, 19, -1, 1, 2 * kStep), true}}, {{"alpha", real(0.1f)}}});
  check({"Sigmoid", {{"x", random({3, 7}, 20, -3, 3), true}}});
  check({"Tanh", {{"x", random({3, 7}, 21, -2, 2), true}}});
  // Clip bounds ±0.5: inputs kept 2h away from them.
  Tensor x = random({4, 6}, 22, -1, 1);
  for (std::int64_t k = 0; k < x.numel(); ++k)
    if (std::fabs(std::fabs(x.f()[k]) - 0.5f) < 2 * kStep) x.f()[k] += 4 * kStep;
  check({"Clip", {{"x", x, true}, {"lo", Tensor::scalar(-0.5f)}, {"hi", Tensor::scalar(0.5f)}}});
  check({"Softmax", {{"x", random({2, 3, 4}, 23, -2, 2), true}}, {{"axis", integer(1)}}});
  check({"Softmax", {{"x", random({3, 5}, 24, -2, 2), true}}, {}, false, 11});
}

TEST(Gradients, Pooling) {
  check({"MaxPool", {{"x", spaced({1, 2, 5, 5}, 25), true}}, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}, {"pads", ints({0, 0, 1, 1})}}});
  check({"AveragePool", {{"x", random({1, 2, 5, 4}, 26), true}},
         {{"kernel_shape", ints({3, 2})}, {"strides", ints({2, 1})}, {"pads", ints({1, 0, 1, 1})}, {"count_include_pad", integer(1)}}});
  check({"AveragePool", {{"x", random({1, 2, 5, 4}, 27), true}}, {{"kernel_shape", ints({3, 3})}, {"pads", ints({1, 1, 1, 1})}}});
  check({"GlobalAveragePool", {{"x", random({2, 3, 3, 2}, 28), true}}});
}

TEST(Gradients, BatchNormalization) {
  const auto bn = [](bool training) {
    return Case{"BatchNormalization",
                {{"x", random({4, 3, 2, 2}, 29, -2, 2), true}, {"scale", random({3}, 30, 0.5f, 1.5f)}, {"bias", random({3}, 31)},
                 {"mean", random({3}, 32)}, {"var", random({3}, 33, 0.5f, 1.5f)}},
                {{"epsilon", real(1e-3f)}}, training};
  };
  check(bn(true));
  check(bn(false));
}

TEST(Gradients, Arithmetic) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    check({op, {{"a", random({2, 3, 4}, 34), true}, {"b", random({3, 1}, 35, 0.5f, 1.5f)}}});
    check({op, {{"a", random({4}, 36), true}, {"b", random({2, 1, 4}, 37, 0.5f, 1.5f)}}});
  }
}

TEST(Gradients, ShapeOps) {
  check({"Flatten", {{"x", random({2, 3, 2}, 38), true}}, {{"axis", integer(2)}}});
  check({"Reshape", {{"x", random({2, 6}, 39), true}, {"shape", Tensor::ints({3}, {3, -1, 2})}}});
  check({"Transpose", {{"x", random({2, 3, 4}, 40), true}}, {{"perm", ints({2, 0, 1})}}});
  check({"Concat", {{"a", random({2, 2, 3}, 41), true}, {"b", random({2, 1, 3}, 42)}}, {{"axis", integer(1)}}});
  check({"Pad", {{"x", random({2, 3}, 43), true}, {"pads", Tensor::ints({4}, {1, 0, 0, 2})}, {"v", Tensor::scalar(0.25f)}}});
  check({"Pad", {{"x", random({2, 3}, 44), true}, {"pads", Tensor::ints({4}, {1, 2, 1, 2})}}, {{"mode", text("reflect")}}});
  check({"Slice", {{"x", random({4, 5}, 45), true}, {"starts", Tensor::ints({2}, {3, 0})}, {"ends", Tensor::ints({2}, {0, 5})},
                   {"axes", Tensor::ints({2}, {0, 1})}, {"steps", Tensor::ints({2}, {-2, 2})}}});
}

TEST(Gradients, DropoutInTraining) {
  // The mask is a function of (seed, trial, node, element): fixed across the finite differences.
  check({"Dropout", {{"x", random({4, 8}, 46), true}, {"ratio", Tensor::scalar(0.3f)}}, {}, true});
}

// An operator without a backward pass on the way to a parameter: an error naming the node.
TEST(Gradients, MissingBackwardNamesTheNode) {
  nn::Graph g;
  g.add_input({"zeros", nn::DType::Float32, {2, 3}, true});
  g.add_constant("x", random({2, 3}, 47));
  nn::NodeSpec add;
  add.name = "feed";
  add.op_type = "Add";
  add.opset = 13;
  add.inputs = {"zeros", "x"};
  add.outputs = {"live"};
  g.add_node(add);
  nn::NodeSpec cast;
  cast.name = "the_cast";
  cast.op_type = "Cast";
  cast.opset = 13;
  cast.inputs = {"live"};
  cast.outputs = {"y"};
  cast.attributes["to"] = nn::int_attribute(1);
  g.add_node(cast);
  g.add_output("y");
  g.finalize();
  nn::Graph::Tape tape;
  const Tensor y = g.run_recorded({Tensor({2, 3})}, {}, tape)[0];
  std::vector<Tensor> grads;
  try {
    g.backward(tape, {random(y.shape(), 48)}, grads);
    FAIL() << "expected an error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("the_cast"), std::string::npos) << e.what();
  }
}

}  // namespace
