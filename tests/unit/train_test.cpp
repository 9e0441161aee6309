// The trainer: analytic gradients match finite differences, results do not depend on the thread
// count, and a short run learns.
#include <gtest/gtest.h>

#include <cmath>

#include "models/philox.h"
#include "nn/evaluate.h"
#include "hwcfg/hardware_config.h"
#include "studies/hardware.h"
#include "studies/study.h"
#include "nn/onnx_io.h"
#include "nn/train.h"

using namespace faultline;

namespace {

nn::Dataset synthetic(std::int64_t count, std::uint64_t seed) {
  // Ten classes, each a fixed random prototype image plus noise: learnable, but not trivially.
  nn::Dataset d;
  d.name = "synthetic";
  d.count = count;
  d.height = d.width = 28;
  const models::CounterRng proto(seed, 1), noise(seed, 2), label(seed, 3);
  d.images.resize(static_cast<std::size_t>(count * 784));
  d.labels.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const int c = static_cast<int>(label.below(static_cast<std::uint64_t>(i), 10));
    d.labels[i] = static_cast<std::uint8_t>(c);
    for (int p = 0; p < 784; ++p)
      d.images[i * 784 + p] = std::clamp(proto.uniform(static_cast<std::uint64_t>(c * 784 + p)) + 0.8f * noise.normal(static_cast<std::uint64_t>(i * 784 + p)), 0.0f, 1.0f);
  }
  return d;
}

TEST(Train, SameBitsForOneAndTwoThreads) {
  const nn::Dataset d = synthetic(200, 4);
  for (const char* arch : {"mlp", "lenet5"}) {
    nn::TrainOptions o;
    o.arch = arch;
    o.epochs = 1;
    o.batch_size = 50;
    std::vector<float> params[2];
    for (int t = 1; t <= 2; ++t) {
      o.threads = t;
      nn::TrainableNetwork net(arch, 1, 28, 28, 10, 9);
      net.train(d, o);
      params[t - 1] = net.parameters();
    }
    EXPECT_EQ(params[0], params[1]) << arch;
  }
}

// Directional derivatives by central differences against the analytic gradient the trainer
// applies: one SGD step with lr = 1 and no momentum moves w by exactly the mean gradient g, so g
// can be read back. For each weighted layer the direction mixes that layer's gradient with a
// random vector (so that errors along and across g both show); the loss is computed through the
// ONNX export, a forward path independent of the trainer's.
TEST(Train, GradientMatchesFiniteDifferences) {
  const nn::Dataset d = synthetic(8, 5);
  for (const char* arch : {"mlp", "lenet5"}) {
    nn::TrainOptions o;
    o.arch = arch;
    o.epochs = 1;
    o.batch_size = 8;
    o.optimizer = "sgd";
    o.momentum = 0.0f;
    o.schedule = "constant";
    o.learning_rate = 1.0f;
    nn::TrainableNetwork before(arch, 1, 28, 28, 10, 11), after(arch, 1, 28, 28, 10, 11);
    after.train(d, o);
    const auto& w0 = before.parameters();
    const auto& w1 = after.parameters();
    auto loss_at = [&](const std::vector<double>& dir, double h) {
      std::vector<float> w(w0.size());
      for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<float>(w0[k] + h * dir[k]);
      nn::TrainableNetwork probe(arch, 1, 28, 28, 10, 11);
      probe.set_parameters(w);
      auto g = nn::parse_onnx(probe.to_onnx(), "probe");
      g->program_ideal();
      auto logits = g->run({d.batch(0, d.count)})[0];
      double loss = 0;
      for (std::int64_t i = 0; i < d.count; ++i) {
        const float* z = logits.f() + i * 10;
        double mx = *std::max_element(z, z + 10), s = 0;
        for (int c = 0; c < 10; ++c) s += std::exp(z[c] - mx);
        loss += std::log(s) + mx - z[d.labels[i]];
      }
      return loss / d.count;
    };
    // Layers are the contiguous runs of parameters; walk them through the ONNX initializer sizes.
    auto graph = nn::parse_onnx(before.to_onnx(), "m");
    std::size_t offset = 0;
    const models::CounterRng rng(3, 4);
    for (auto* layer : graph->layers()) {
      const std::size_t weights = static_cast<std::size_t>(layer->blocks()[0].weights.size());
      const std::size_t count = weights + static_cast<std::size_t>(layer->blocks()[0].weights.rows());  // + biases
      std::vector<double> g(w0.size(), 0.0), r(w0.size(), 0.0);
      double gn = 0, rn = 0;
      for (std::size_t k = offset; k < offset + count; ++k) {
        g[k] = static_cast<double>(w0[k]) - w1[k];
        r[k] = rng.normal(k);
        gn += g[k] * g[k];
        rn += r[k] * r[k];
      }
      std::vector<double> dir(w0.size(), 0.0);
      for (std::size_t k = offset; k < offset + count; ++k) dir[k] = g[k] / std::sqrt(gn) + r[k] / std::sqrt(rn);
      double analytic = 0;
      for (std::size_t k = offset; k < offset + count; ++k) analytic += g[k] * dir[k];
      const double h = 1e-3;
      const double numeric = (loss_at(dir, h) - loss_at(dir, -h)) / (2 * h);
      EXPECT_NEAR(analytic, numeric, 0.02 * std::abs(numeric) + 1e-3) << arch << " layer " << layer->name();
      offset += count;
    }
    EXPECT_EQ(offset, w0.size());
  }
}

TEST(Train, ShortRunLearnsAndEvaluatesIdenticallyOnAnyThreadCount) {
  const nn::Dataset train = synthetic(1000, 6), test = synthetic(300, 6);
  nn::TrainOptions o;
  o.arch = "mlp";
  o.epochs = 2;
  nn::TrainableNetwork net("mlp", 1, 28, 28, 10, 1);
  auto reports = net.train(train, o);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  auto g = nn::parse_onnx(net.to_onnx(), "mlp");
  g->program_ideal();
  nn::EvalOptions e1, e2;
  e1.threads = 1;
  e2.threads = 2;
  const auto r1 = nn::evaluate(*g, test, e1), r2 = nn::evaluate(*g, test, e2);
  EXPECT_GT(r1.accuracy(), 0.8);  // chance is 0.1
  EXPECT_EQ(nn::eval_result_json(r1, "m", "d", "h"), nn::eval_result_json(r2, "m", "d", "h"));
}

TEST(Train, BadOptionsAreErrors) {
  nn::TrainOptions o;
  o.arch = "resnet";
  EXPECT_THROW(nn::validate(o), Error);
  o = {};
  o.epochs = 0;
  EXPECT_THROW(nn::validate(o), Error);
  o = {};
  o.learning_rate = -1;
  EXPECT_THROW(nn::validate(o), Error);
  o = {};
  o.backward = "exact";
  EXPECT_THROW(nn::validate(o), Error);
}

// Hardware in the loop: the same bits for 1 and 2 threads (noise keyed by step and row), and a
// description whose units are all ideal trains exactly like plain training.
TEST(Train, HardwareInTheLoopIsThreadInvariant) {
  const nn::Dataset d = synthetic(200, 4);
  for (const char* hw : {"bss2_analog", "walking_noise_multiplicative", "bss2_analog secant"}) {
    const std::string name(hw);
    const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(name.substr(0, name.find(' ')));
    nn::TrainOptions o;
    if (name.find("secant") != std::string::npos) o.backward = "secant";
    o.arch = "lenet5";
    o.epochs = 1;
    o.batch_size = 50;
    o.program_hardware = studies::training_hardware(config);
    std::vector<float> params[2];
    for (int t = 1; t <= 2; ++t) {
      o.threads = t;
      nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 9);
      net.train(d, o);
      params[t - 1] = net.parameters();
    }
    EXPECT_EQ(params[0], params[1]) << hw;
    nn::TrainableNetwork plain("lenet5", 1, 28, 28, 10, 9);
    o.program_hardware = nullptr;
    plain.train(d, o);
    EXPECT_NE(plain.parameters(), params[0]) << hw << ": the hardware changed nothing";
  }
  const hwcfg::HardwareConfig ideal = hwcfg::load_hardware_config("ideal");
  nn::TrainOptions o;
  o.arch = "mlp";
  o.epochs = 1;
  o.batch_size = 50;
  nn::TrainableNetwork a("mlp", 1, 28, 28, 10, 9), b("mlp", 1, 28, 28, 10, 9);
  a.train(d, o);
  o.program_hardware = studies::training_hardware(ideal);
  b.train(d, o);
  EXPECT_EQ(a.parameters(), b.parameters());
}

// Walking Noise finding (Borras, Klein, Fröning, arXiv 2212.10430): a network trained with
// additive noise σ = 2 on every layer keeps more accuracy under that noise than a plainly
// trained one. 3000 images, 2 epochs; evaluated on 2000 test images, 3 trials each: the gap
// (≈ 45 points when this test was written) must exceed both 95 % confidence intervals' half
// widths together, and the noise-trained network must stay far above chance.
TEST(Train, NoiseAwareTrainingKeepsAccuracyUnderNoise) {
  nn::Dataset train = nn::load_mnist_family("fashion-mnist", true);
  train.count = 3000;
  train.images.resize(static_cast<std::size_t>(train.count * train.image_size()));
  train.labels.resize(static_cast<std::size_t>(train.count));
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  const hwcfg::HardwareConfig noise = hwcfg::load_hardware_config("walking_noise_additive", {"units.noise.sigma_add=2"});
  nn::TrainOptions o;
  o.arch = "mlp";
  o.epochs = 2;
  o.threads = 2;
  nn::TrainableNetwork plain("mlp", 1, 28, 28, 10, 1), aware("mlp", 1, 28, 28, 10, 1);
  plain.train(train, o);
  o.program_hardware = studies::training_hardware(noise);
  aware.train(train, o);
  studies::StudyOptions so;
  so.trials = 3;
  so.eval.limit = 2000;
  so.eval.threads = 2;
  so.layer_errors = false;
  auto gp = nn::parse_onnx(plain.to_onnx(), "plain"), ga = nn::parse_onnx(aware.to_onnx(), "aware");
  const studies::StudyResult rp = studies::run_study(*gp, noise, test, so), ra = studies::run_study(*ga, noise, test, so);
  EXPECT_GT(ra.ci_low, rp.ci_high) << "noise-aware " << ra.mean << " vs plain " << rp.mean;
  EXPECT_GT(ra.mean, 0.4);
}

}  // namespace
