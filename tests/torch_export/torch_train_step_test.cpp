// Training an imported PyTorch export gives PyTorch's gradients: the CNN of train_step.py (Conv,
// BatchNormalization in training mode, residual Add, AveragePool after Pad, Flatten, MatMul head
// with a bias Add), mean cross-entropy over 8 images, each parameter's gradient within 1e-4 of
// PyTorch's relative to that tensor's largest gradient (float32 sums over 8·28·28 terms in two
// different orders differ by about 1e-6 of their magnitude). Then one SGD step moves each weight
// by −lr·gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "nn/npy.h"
#include "nn/train.h"

using namespace faultline;

namespace {
std::string dir;

nn::Dataset batch() {
  const nn::Tensor x = nn::load_npy(dir + "/x.npy"), labels = nn::load_npy(dir + "/labels.npy");
  nn::Dataset d;
  d.name = "torch batch";
  d.count = x.dim(0);
  d.channels = x.dim(1);
  d.height = x.dim(2);
  d.width = x.dim(3);
  d.images = x.float_storage();
  for (std::int64_t k = 0; k < labels.numel(); ++k) d.labels.push_back(static_cast<std::uint8_t>(labels.i()[k]));
  return d;
}
}  // namespace

TEST(TorchTrainStep, GradientsMatchPyTorch) {
  nn::TrainableNetwork net = nn::TrainableNetwork::from_onnx_file(dir + "/model.onnx");
  nn::TrainOptions o;
  o.threads = 2;
  const std::vector<nn::Tensor> grads = net.gradient(batch(), o);
  std::ifstream manifest(dir + "/manifest.txt");
  std::string name, file;
  int compared = 0;
  const auto& params = net.graph().parameters();
  while (manifest >> name >> file) {
    const auto it = std::find(params.begin(), params.end(), name);
    ASSERT_NE(it, params.end()) << name << " is not a trainable parameter";
    const nn::Tensor& mine = grads[static_cast<std::size_t>(it - params.begin())];
    const nn::Tensor theirs = nn::load_npy(dir + "/" + file);
    ASSERT_EQ(mine.numel(), theirs.numel()) << name;
    double largest = 0, worst = 0;
    for (std::int64_t k = 0; k < theirs.numel(); ++k) {
      largest = std::max(largest, std::fabs(static_cast<double>(theirs.f()[k])));
      worst = std::max(worst, std::fabs(static_cast<double>(mine.f()[k]) - theirs.f()[k]));
    }
    EXPECT_LE(worst, 1e-4 * largest) << name << ": largest gradient " << largest;
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(params.size()));

  // One SGD step (no momentum, constant rate): w ← w − lr·g.
  const std::vector<float> before = net.parameters();
  o.optimizer = "sgd";
  o.momentum = 0;
  o.learning_rate = 0.5f;
  o.schedule = "constant";
  o.epochs = 1;
  o.batch_size = 8;
  net.train(batch(), o);
  const std::vector<float>& after = net.parameters();
  std::size_t at = 0;
  double worst = 0;
  for (const nn::Tensor& g : grads)
    for (std::int64_t k = 0; k < g.numel(); ++k, ++at) worst = std::max(worst, std::fabs((before[at] - after[at]) - 0.5 * g.f()[k]));
  EXPECT_LT(worst, 1e-6);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: torch_train_step_test DIR\n");
    return 2;
  }
  dir = argv[1];
  return RUN_ALL_TESTS();
}
