// Operators and graph execution against straightforward reference computations.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "models/philox.h"
#include "models/substrate.h"
#include "nn/graph.h"
#include "nn/im2col.h"
#include "nn/onnx_io.h"

using namespace faultline;
using nn::Attribute;
using nn::Tensor;

namespace {

Tensor random_tensor(nn::Shape shape, std::uint64_t stream) {
  Tensor t(shape);
  const models::CounterRng rng(99, stream);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.f()[k] = rng.normal(static_cast<std::uint64_t>(k));
  return t;
}

nn::NodeSpec node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                  std::map<std::string, Attribute> attrs = {}) {
  nn::NodeSpec s;
  s.name = out.at(0);
  s.op_type = op;
  s.opset = 13;
  s.inputs = std::move(in);
  s.outputs = std::move(out);
  s.attributes = std::move(attrs);
  return s;
}

// Direct 2-D convolution (NCHW, grouped), written independently of the im2col path.
Tensor reference_conv(const Tensor& x, const Tensor& w, const Tensor& b, int group, int stride, int pad_t, int pad_l,
                      int pad_b, int pad_r, int dil) {
  const auto n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const auto m = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const auto ho = (h + pad_t + pad_b - dil * (kh - 1) - 1) / stride + 1;
  const auto wo = (wd + pad_l + pad_r - dil * (kw - 1) - 1) / stride + 1;
  Tensor y({n, m, ho, wo});
  (void)c;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < m; ++o) {
      const std::int64_t g = o / (m / group);
      for (std::int64_t oy = 0; oy < ho; ++oy)
        for (std::int64_t ox = 0; ox < wo; ++ox) {
          double acc = b.f()[o];
          for (std::int64_t ci = 0; ci < cg; ++ci)
            for (std::int64_t ky = 0; ky < kh; ++ky)
              for (std::int64_t kx = 0; kx < kw; ++kx) {
                const std::int64_t iy = oy * stride - pad_t + ky * dil, ix = ox * stride - pad_l + kx * dil;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += static_cast<double>(x.f()[((i * x.dim(1) + g * cg + ci) * h + iy) * wd + ix]) *
                       w.f()[((o * cg + ci) * kh + ky) * kw + kx];
              }
          y.f()[((i * m + o) * ho + oy) * wo + ox] = static_cast<float>(acc);
        }
    }
  return y;
}

void expect_close(const Tensor& a, const Tensor& b, float tol = 1e-4f) {
  ASSERT_EQ(a.shape(), b.shape());
  for (std::int64_t k = 0; k < a.numel(); ++k) ASSERT_NEAR(a.f()[k], b.f()[k], tol * (1 + std::abs(b.f()[k]))) << "element " << k;
}

struct ConvCase {
  int channels, out, group, kernel, stride, pad, dil;
};

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, MatchesDirectConvolution) {
  const ConvCase p = GetParam();
  Tensor x = random_tensor({3, p.channels, 11, 9}, 1);
  Tensor w = random_tensor({p.out, p.channels / p.group, p.kernel, p.kernel}, 2);
  Tensor b = random_tensor({p.out}, 3);
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_constant("w", w);
  g.add_constant("b", b);
  g.add_node(node("Conv", {"x", "w", "b"}, {"y"},
                  {{"group", nn::int_attribute(p.group)}, {"strides", nn::ints_attribute({p.stride, p.stride})},
                   {"pads", nn::ints_attribute({p.pad, p.pad, p.pad, p.pad})}, {"dilations", nn::ints_attribute({p.dil, p.dil})}}));
  g.add_output("y");
  g.finalize();
  g.program_ideal();
  ASSERT_EQ(g.layers().size(), 1u);
  EXPECT_EQ(g.layers()[0]->blocks().size(), static_cast<std::size_t>(p.group));
  auto y = g.run({x});
  expect_close(y[0], reference_conv(x, w, b, p.group, p.stride, p.pad, p.pad, p.pad, p.pad, p.dil));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvTest,
                         ::testing::Values(ConvCase{1, 6, 1, 5, 1, 2, 1}, ConvCase{4, 8, 1, 3, 2, 1, 1},
                                           ConvCase{4, 4, 4, 3, 1, 1, 1} /* depthwise */, ConvCase{6, 4, 2, 3, 1, 0, 2},
                                           ConvCase{3, 5, 1, 1, 1, 0, 1}));

// A substrate that counts calls, to show that the engine programs once and multiplies many times
// through the interface.
std::atomic<int> programs{0}, multiplies{0};
class CountingSubstrate final : public models::Substrate {
 public:
  void program(const models::MatrixRM& w, const models::LayerInfo&, const models::ProgramContext&) override {
    ++programs;
    w_ = w;
  }
  void multiply(const Eigen::Ref<const models::MatrixRM>& x, Eigen::Ref<models::MatrixRM> y, const models::MultiplyContext&) const override {
    ++multiplies;
    y.noalias() = 2.0f * (x * w_.transpose());  // visibly different from ideal
  }
  std::string kind() const override { return "counting"; }
  Eigen::Index outputs() const override { return w_.rows(); }
  Eigen::Index inputs() const override { return w_.cols(); }

 private:
  models::MatrixRM w_;
};

// im2col (fixed-width kernels 1, 3, 5, 7 and the general path) against the definition, value for
// value: padding, strides, dilations, non-square kernels, several channels.
TEST(Im2col, EqualsTheDefinition) {
  struct Case { std::int64_t c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr; };
  const Case cases[] = {{1, 28, 28, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2}, {3, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {4, 10, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
                        {2, 8, 9, 1, 1, 2, 1, 1, 1, 0, 0, 0, 0}, {2, 12, 13, 7, 7, 1, 2, 1, 1, 3, 3, 3, 3}, {2, 9, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
                        {3, 7, 8, 2, 4, 1, 1, 1, 1, 0, 1, 1, 2}, {1, 5, 6, 3, 5, 1, 1, 1, 1, 0, 0, 0, 0}, {2, 6, 5, 4, 3, 3, 1, 1, 1, 2, 0, 1, 2}};
  for (const Case& t : cases) {
    nn::ConvGeometry g;
    g.channels = t.c, g.height = t.h, g.width = t.w, g.kernel_h = t.kh, g.kernel_w = t.kw, g.stride_h = t.sh, g.stride_w = t.sw;
    g.dilation_h = t.dh, g.dilation_w = t.dw, g.pad_top = t.pt, g.pad_left = t.pl;
    g.out_h = (t.h + t.pt + t.pb - t.dh * (t.kh - 1) - 1) / t.sh + 1;
    g.out_w = (t.w + t.pl + t.pr - t.dw * (t.kw - 1) - 1) / t.sw + 1;
    const Tensor image = random_tensor({t.c, t.h, t.w}, 17);
    std::vector<float> rows(static_cast<std::size_t>(g.patches() * g.patch_size()), -7.0f);
    nn::im2col(g, image.f(), rows.data());
    for (std::int64_t oy = 0; oy < g.out_h; ++oy)
      for (std::int64_t ox = 0; ox < g.out_w; ++ox)
        for (std::int64_t c = 0; c < t.c; ++c)
          for (std::int64_t ky = 0; ky < t.kh; ++ky)
            for (std::int64_t kx = 0; kx < t.kw; ++kx) {
              const std::int64_t iy = oy * t.sh - t.pt + ky * t.dh, ix = ox * t.sw - t.pl + kx * t.dw;
              const float expected = iy >= 0 && iy < t.h && ix >= 0 && ix < t.w ? image.f()[(c * t.h + iy) * t.w + ix] : 0.0f;
              ASSERT_EQ(rows[static_cast<std::size_t>((oy * g.out_w + ox) * g.patch_size() + (c * t.kh + ky) * t.kw + kx)], expected)
                  << "kernel " << t.kh << "x" << t.kw << " at " << oy << "," << ox << " c" << c << " k" << ky << "," << kx;
            }
  }
}

TEST(Graph, LayersGoThroughTheSubstrateInterface) {
  models::register_substrate({"counting", "test double", {}, [](const models::Params&) { return std::make_unique<CountingSubstrate>(); }});
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {-1, 4}, true});
  g.add_constant("w", random_tensor({4, 3}, 5));
  g.add_node(node("MatMul", {"x", "w"}, {"y"}));
  g.add_output("y");
  g.finalize();
  programs = multiplies = 0;
  g.program([](const nn::LinearLayer&) { return std::string("counting"); }, {});
  Tensor x = random_tensor({2, 4}, 6);
  auto y1 = g.run({x});
  auto y2 = g.run({x});
  EXPECT_EQ(programs.load(), 1);
  EXPECT_EQ(multiplies.load(), 2);
  g.program_ideal();
  auto y3 = g.run({x});
  for (std::int64_t k = 0; k < y1[0].numel(); ++k) EXPECT_FLOAT_EQ(y1[0].f()[k], 2 * y3[0].f()[k]);
}

TEST(Graph, GemmAttributesAndBroadcastBias) {
  Tensor a = random_tensor({5, 3}, 7), b = random_tensor({4, 3}, 8), c = random_tensor({4}, 9);
  nn::Graph g;
  g.add_input({"a", nn::DType::Float32, {}, false});
  g.add_constant("b", b);
  g.add_constant("c", c);
  g.add_node(node("Gemm", {"a", "b", "c"}, {"y"}, {{"alpha", nn::float_attribute(0.5f)}, {"beta", nn::float_attribute(2.0f)}, {"transB", nn::int_attribute(1)}}));
  g.add_output("y");
  g.finalize();
  g.program_ideal();
  auto y = g.run({a})[0];
  ASSERT_EQ(y.shape(), (nn::Shape{5, 4}));
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) {
      double acc = 0;
      for (int k = 0; k < 3; ++k) acc += a.f()[i * 3 + k] * b.f()[j * 3 + k];
      EXPECT_NEAR(y.f()[i * 4 + j], 0.5 * acc + 2.0 * c.f()[j], 1e-5);
    }
}

// torch.flatten via x.view(x.size(0), -1) exports Shape → Gather → Unsqueeze → Concat →
// Reshape; with a run-time batch size the chain runs at run time on int64 tensors.
TEST(Graph, ShapeArithmeticChain) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {-1, 2, 3}, true});
  g.add_constant("zero", Tensor::ints({}, {0}));
  g.add_constant("axes", Tensor::ints({1}, {0}));
  g.add_constant("minus_one", Tensor::ints({1}, {-1}));
  g.add_node(node("Shape", {"x"}, {"s"}));
  g.add_node(node("Gather", {"s", "zero"}, {"n"}, {{"axis", nn::int_attribute(0)}}));
  g.add_node(node("Unsqueeze", {"n", "axes"}, {"n1"}));
  g.add_node(node("Concat", {"n1", "minus_one"}, {"shape"}, {{"axis", nn::int_attribute(0)}}));
  g.add_node(node("Reshape", {"x", "shape"}, {"y"}));
  g.add_output("y");
  g.finalize();
  auto y = g.run({random_tensor({4, 2, 3}, 1)})[0];
  EXPECT_EQ(y.shape(), (nn::Shape{4, 6}));
}

TEST(Graph, ConstantSubgraphsAreFolded) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_constant("two", Tensor::floats({1}, {2.0f}));
  g.add_node(node("Mul", {"two", "two"}, {"four"}));
  g.add_node(node("Add", {"x", "four"}, {"y"}));
  g.add_output("y");
  g.finalize();
  EXPECT_EQ(g.nodes().size(), 1u);  // only the Add remains
  auto y = g.run({Tensor::floats({2}, {1, 2})})[0];
  EXPECT_EQ(y.f()[0], 5.0f);
  EXPECT_EQ(y.f()[1], 6.0f);
}

TEST(Graph, StructuralErrorsNameTheProblem) {
  {
    nn::Graph g;
    g.source = "m.onnx";
    g.add_input({"x", nn::DType::Float32, {}, false});
    g.add_node(node("Relu", {"nowhere"}, {"y"}));
    g.add_output("y");
    try {
      g.finalize();
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'nowhere'"), std::string::npos) << e.what();
    }
  }
  {
    nn::Graph g;
    g.add_input({"x", nn::DType::Float32, {}, false});
    g.add_node(node("Add", {"x", "b"}, {"a"}));
    g.add_node(node("Relu", {"a"}, {"b"}));
    g.add_output("b");
    EXPECT_THROW(g.finalize(), Error);
  }
}

TEST(Graph, WrongInputShapeIsAnError) {
  nn::Graph g;
  g.source = "m.onnx";
  g.add_input({"x", nn::DType::Float32, {-1, 3}, true});
  g.add_node(node("Relu", {"x"}, {"y"}));
  g.add_output("y");
  g.finalize();
  try {
    g.run({random_tensor({2, 4}, 1)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "m.onnx: input 'x' must have shape [?, 3], got [2, 4]");
  }
  EXPECT_THROW(g.run({Tensor::ints({2, 3}, {1, 2, 3, 4, 5, 6})}), Error);
}

TEST(Graph, RuntimeShapeErrorsNameTheNode) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_constant("w", random_tensor({5, 2}, 3));
  g.add_node(node("MatMul", {"x", "w"}, {"y"}));
  g.add_output("y");
  g.finalize();
  g.program_ideal();
  try {
    g.run({random_tensor({3, 4}, 1)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'y' (MatMul, opset 13)"), std::string::npos) << e.what();
  }
}

TEST(Graph, UnsupportedOperatorNamesNodeOpAndOpset) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_node(node("LSTM", {"x"}, {"y"}));
  g.add_output("y");
  try {
    g.finalize();
    FAIL();
  } catch (const UnsupportedError& e) {
    EXPECT_EQ(std::string(e.what()), "node 'y' (LSTM, opset 13): unsupported operator");
  }
}

TEST(Graph, UnknownAttributeIsRejected) {
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_node(node("Relu", {"x"}, {"y"}, {{"bogus", nn::int_attribute(1)}}));
  g.add_output("y");
  EXPECT_THROW(g.finalize(), UnsupportedError);
}

}  // namespace
