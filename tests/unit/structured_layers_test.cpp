// Butterfly and Monarch layers (faultline train --arch butterfly_mlp | monarch_mlp, built from
// Reshape, Transpose and batched MatMul with constant 3-D weights) equal the dense products of
// their factors as the papers define them, and every block of a batched constant MatMul is its own
// substrate block.
#include <gtest/gtest.h>

#include <cmath>

#include "models/ipu_substrate.h"
#include "nn/graph.h"
#include "nn/onnx_io.h"
#include "nn/train.h"

using namespace faultline;
using Dense = Eigen::MatrixXd;

namespace {

Dense weight(const nn::Graph& g, const std::string& name, std::int64_t rows, std::int64_t cols) {
  const nn::Tensor& t = g.parameter(name);
  EXPECT_EQ(t.numel(), rows * cols) << name;
  Dense m(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m(r, c) = t.f()[r * cols + c];
  return m;
}

Eigen::VectorXd vec(const nn::Graph& g, const std::string& name) {
  const nn::Tensor& t = g.parameter(name);
  Eigen::VectorXd v(t.numel());
  for (std::int64_t k = 0; k < t.numel(); ++k) v(k) = t.f()[k];
  return v;
}

// B = B_n ··· B_4 · B_2 (Dao et al. 1903.05895): factor B_k pairs elements j and j + k/2 of each
// block of k with the 2 × 2 matrix T[p] (p = block · k/2 + j; stored (in, out), y = [x_j, x_{j+k/2}] · T[p]).
Dense butterfly_dense(const nn::Graph& g, const std::string& layer, std::int64_t n) {
  Dense b = Dense::Identity(n, n);
  int stage = 0;
  for (std::int64_t k = 2; k <= n; k *= 2) {
    const nn::Tensor& t = g.parameter(layer + ".s" + std::to_string(++stage) + ".weight");
    Dense f = Dense::Zero(n, n);
    for (std::int64_t blk = 0; blk < n / k; ++blk)
      for (std::int64_t j = 0; j < k / 2; ++j) {
        const float* m = t.f() + (blk * (k / 2) + j) * 4;
        const std::int64_t u = blk * k + j, v = u + k / 2;
        f(u, u) = m[0], f(u, v) = m[2], f(v, u) = m[1], f(v, v) = m[3];
      }
    b = f * b;
  }
  return b;
}

// M = P L Pᵀ R (Dao et al. 2204.00595), n = b1 · b2: R block i (b2 × b2, stored (in, out)) acts
// on elements i·b2 .. i·b2 + b2 − 1; P regroups element i·b2 + j as j·b1 + i; L block j (b1 × b1)
// acts on those; P back. Assembled column by column from unit vectors.
Dense monarch_dense(const nn::Graph& g, const std::string& layer, std::int64_t b1, std::int64_t b2) {
  const nn::Tensor& r = g.parameter(layer + ".r.weight");
  const nn::Tensor& l = g.parameter(layer + ".l.weight");
  const std::int64_t n = b1 * b2;
  Dense m(n, n);
  for (std::int64_t col = 0; col < n; ++col) {
    Eigen::VectorXd x = Eigen::VectorXd::Unit(n, col), y1 = Eigen::VectorXd::Zero(n), y2 = Eigen::VectorXd::Zero(n), out(n);
    for (std::int64_t i = 0; i < b1; ++i)
      for (std::int64_t j = 0; j < b2; ++j)
        for (std::int64_t jj = 0; jj < b2; ++jj) y1(i * b2 + j) += x(i * b2 + jj) * r.f()[(i * b2 + jj) * b2 + j];
    for (std::int64_t j = 0; j < b2; ++j)
      for (std::int64_t i = 0; i < b1; ++i)
        for (std::int64_t ii = 0; ii < b1; ++ii) y2(j * b1 + i) += y1(ii * b2 + j) * l.f()[(j * b1 + ii) * b1 + i];
    for (std::int64_t i = 0; i < b1; ++i)
      for (std::int64_t j = 0; j < b2; ++j) out(i * b2 + j) = y2(j * b1 + i);
    m.col(col) = out;
  }
  return m;
}

// The network's logits for `x` (rows of 16 pixels) computed densely: fc1, two structured layers
// (their dense matrices), fc2, ReLU after each hidden layer.
void expect_dense_logits(nn::Graph& g, const Dense& s1, const Eigen::VectorXd& c1, const Dense& s2, const Eigen::VectorXd& c2, std::int64_t width) {
  const std::int64_t pixels = 16, classes = 3, samples = 5;
  nn::Tensor x({samples, 1, 4, 4});
  for (std::int64_t k = 0; k < x.numel(); ++k) x.f()[k] = static_cast<float>(std::sin(0.7 * static_cast<double>(k)));
  g.program_ideal();
  const nn::Tensor logits = g.run({x})[0];
  const Dense w1 = weight(g, "fc1.weight", width, pixels), w2 = weight(g, "fc2.weight", classes, width);
  const Eigen::VectorXd b1 = vec(g, "fc1.bias"), b2 = vec(g, "fc2.bias");
  for (std::int64_t s = 0; s < samples; ++s) {
    Eigen::VectorXd in(pixels);
    for (std::int64_t k = 0; k < pixels; ++k) in(k) = x.f()[s * pixels + k];
    const Eigen::VectorXd h1 = (w1 * in + b1).cwiseMax(0.0), h2 = (s1 * h1 + c1).cwiseMax(0.0), h3 = (s2 * h2 + c2).cwiseMax(0.0);
    const Eigen::VectorXd y = w2 * h3 + b2;
    for (std::int64_t c = 0; c < classes; ++c) EXPECT_NEAR(logits.f()[s * classes + c], y(c), 1e-5 * (1 + std::fabs(y(c)))) << "sample " << s << " class " << c;
  }
}

}  // namespace

TEST(StructuredLayers, ButterflyEqualsItsDenseProduct) {
  const std::int64_t n = 16;
  nn::TrainableNetwork net("butterfly_mlp", 1, 4, 4, 3, 5, n);
  auto g = nn::parse_onnx(net.to_onnx(), "butterfly_mlp");
  expect_dense_logits(*g, butterfly_dense(*g, "bfly1", n), vec(*g, "bfly1.bias"), butterfly_dense(*g, "bfly2", n), vec(*g, "bfly2.bias"), n);
  // 2·n·log2(n) weights per layer; every stage is a MatMul of n/2 substrate blocks of 2 × 2.
  int stages = 0;
  for (const nn::LinearLayer* layer : g->layers()) {
    if (layer->op_type() != "MatMul") continue;
    ++stages;
    ASSERT_EQ(layer->blocks().size(), static_cast<std::size_t>(n / 2)) << layer->name();
    for (const auto& b : layer->blocks()) EXPECT_TRUE(b.weights.rows() == 2 && b.weights.cols() == 2) << layer->name();
  }
  EXPECT_EQ(stages, 2 * 4);
}

TEST(StructuredLayers, MonarchEqualsItsDenseProduct) {
  for (const auto& [n, b1, b2] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{16, 4, 4}, {32, 4, 8}}) {
    SCOPED_TRACE(n);
    nn::TrainableNetwork net("monarch_mlp", 1, 4, 4, 3, 6, n);
    auto g = nn::parse_onnx(net.to_onnx(), "monarch_mlp");
    expect_dense_logits(*g, monarch_dense(*g, "monarch1", b1, b2), vec(*g, "monarch1.bias"), monarch_dense(*g, "monarch2", b1, b2), vec(*g, "monarch2.bias"), n);
    std::vector<std::pair<std::size_t, std::int64_t>> seen;  // (blocks, block size) of each MatMul
    for (const nn::LinearLayer* layer : g->layers())
      if (layer->op_type() == "MatMul") seen.emplace_back(layer->blocks().size(), layer->blocks()[0].weights.rows());
    const std::vector<std::pair<std::size_t, std::int64_t>> expected = {{b1, b2}, {b2, b1}, {b1, b2}, {b2, b1}};
    EXPECT_EQ(seen, expected);
  }
}

// Hardware programs each block on its own: an IPU plans a 2 × 2 block of a butterfly stage, not
// the n × n layer, and the blocks' outputs are the products of their own (rounded) weights.
TEST(StructuredLayers, EveryBlockIsProgrammedOnItsOwn) {
  nn::TrainableNetwork net("butterfly_mlp", 1, 4, 4, 3, 7, 16);
  auto g = nn::parse_onnx(net.to_onnx(), "butterfly_mlp");
  g->program([](const nn::LinearLayer&) { return std::string("ipu"); }, {1, 0});
  for (const nn::LinearLayer* layer : g->layers()) {
    if (layer->op_type() != "MatMul") continue;
    for (const auto& b : layer->blocks()) {
      EXPECT_EQ(b.substrate->inputs(), 2);
      EXPECT_EQ(b.substrate->outputs(), 2);
    }
  }
}
