// Training of the reference architectures on an image dataset, written out as ONNX.
//
// Mini-batches are cut into micro-batches of a fixed size; each is a parallel task whose
// gradient is summed into the batch gradient in task order, so the trained weights are the same
// bits for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/dataset.h"
#include "nn/graph.h"
#include "nn/hwconfig.h"

namespace faultline::nn {

struct TrainOptions {
  std::string arch = "lenet5";      // "mlp" (784-256-256-256-10) or "lenet5"
  int epochs = 10;
  int batch_size = 64;
  std::string optimizer = "adam";   // "adam" or "sgd" (with momentum)
  float learning_rate = 1e-3f;
  float momentum = 0.9f;            // SGD only
  float weight_decay = 0.0f;        // L2 on weights (not biases)
  std::string schedule = "cosine";  // "cosine" (to 0 over all epochs) or "constant"
  bool flip = false;                // random horizontal flips of training images (p = 0.5)
  std::uint64_t seed = 1;
  int threads = 1;
  // Hardware in the loop (the ordering-effects study's method: Kuhn, Klein, Fröning 2023): every
  // forward product of a Conv/Gemm layer runs on the substrate its unit in this description gives
  // it (re-programmed with the current weights at every step, so programming noise is fresh each
  // step), and its noise sites after Conv/Gemm layers are applied; the backward pass uses the
  // ideal weights (straight-through). The step number is the trial of every random key, so
  // noise is resampled per step and results stay the same for any thread count. Null: plain.
  const HardwareConfig* hardware = nullptr;
  std::uint64_t hardware_seed = 1;
  // Backward through the hardware layers: "ste" (straight-through: the exact product's gradient)
  // or "secant" (each output's gradient scaled by its frozen gain y_hw / y_exact, clamped to
  // [0, 1]: outputs the hardware compressed, e.g. by membrane saturation, pass less gradient).
  std::string backward = "ste";
};

struct EpochReport {
  int epoch = 0;
  double loss = 0;             // mean cross-entropy over the epoch
  double train_accuracy = 0;   // on the training batches as they were seen
  double learning_rate = 0;
};

// Validates options; throws faultline::Error naming the option.
void validate(const TrainOptions& options);

class TrainableNetwork {
 public:
  // Builds `options.arch` for images of the given shape with seeded He-uniform initialisation.
  TrainableNetwork(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width,
                   int classes, std::uint64_t seed);
  ~TrainableNetwork();
  TrainableNetwork(TrainableNetwork&&) noexcept;

  // Trains on `data`; `on_progress(done, total)` is called after each batch, `on_epoch` after each epoch.
  std::vector<EpochReport> train(const Dataset& data, const TrainOptions& options,
                                 const std::function<void(std::int64_t, std::int64_t)>& on_progress = {},
                                 const std::function<void(const EpochReport&)>& on_epoch = {});

  // The network as an ONNX model (opset 13): Conv/Relu/MaxPool/Flatten/Gemm.
  std::string to_onnx() const;
  void save_onnx(const std::string& path) const;
  const std::vector<float>& parameters() const;
  // Replaces all parameters (same count, checked), e.g. to probe the loss around a point.
  void set_parameters(std::vector<float> values);
  const std::string& arch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::nn
