// Training on the inference graph: any ONNX classifier whose operators have backward passes
// (nn/op.h) is trained through the same Graph, operators, substrates and noise sites that
// evaluate it. `TrainableNetwork` holds the model (an imported file, or one of the built-in
// architectures, built as ONNX) and writes it back as ONNX with the trained initializers.
//
// Mini-batches are cut into micro-batches of a fixed size (16 samples); each is a parallel task
// whose gradient is summed into the batch gradient in task order, so the trained weights are the
// same bits for any thread count. BatchNormalization normalizes each micro-batch with its own
// statistics (ghost batch normalization, Hoffer, Hubara, Soudry, NeurIPS 2017), and its running
// statistics move with the mean of the micro-batches' statistics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/dataset.h"
#include "nn/graph.h"

namespace faultline::nn {

struct TrainOptions {
  // For the built-in architectures: "mlp" (784-w-w-w-10), "lenet5", "butterfly_mlp" and
  // "monarch_mlp" (784-w, two butterfly or Monarch hidden layers w → w, w-10); w = width.
  std::string arch = "lenet5";
  std::int64_t width = 256;
  int epochs = 10;
  int batch_size = 64;
  std::string optimizer = "adam";   // "adam" or "sgd" (with momentum)
  float learning_rate = 1e-3f;
  float momentum = 0.9f;            // SGD only
  float weight_decay = 0.0f;        // L2 on weights (parameters of rank ≥ 2), not biases or BN parameters
  std::string schedule = "cosine";  // "cosine" (to 0 over all epochs) or "constant"
  bool flip = false;                // random horizontal flips of training images (p = 0.5)
  std::uint64_t seed = 1;           // shuffling, flips, Dropout masks
  int threads = 1;
  // Hardware in the loop (the ordering-effects study's method: Kuhn, Klein, Fröning 2023): before
  // every step this programs the graph's layers with the current weights and attaches noise
  // sites, exactly as evaluation does, with trial = step (so programming and read noise are fresh
  // each step and keyed as in evaluation): studies::training_hardware(description). The backward
  // pass uses the exact weights (straight-through) or the secant gain. Unset: exact products.
  std::function<void(Graph&, const models::ProgramContext&)> program_hardware;
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
  // Builds `arch` (TrainOptions::arch; hidden layers of `hidden_width`) for images of the given
  // shape as an ONNX graph with seeded He-uniform initialisation.
  TrainableNetwork(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width, int classes,
                   std::uint64_t seed, std::int64_t hidden_width = 256);
  // An imported classifier (its first output are the logits) to fine-tune; `source` names it in
  // messages. Throws faultline::Error when it has no trainable parameters.
  static TrainableNetwork from_onnx(const std::string& bytes, const std::string& source);
  static TrainableNetwork from_onnx_file(const std::string& path);
  ~TrainableNetwork();
  TrainableNetwork(TrainableNetwork&&) noexcept;

  // Trains on `data`; `on_progress(done, total)` is called after each batch, `on_epoch` after each epoch.
  std::vector<EpochReport> train(const Dataset& data, const TrainOptions& options,
                                 const std::function<void(std::int64_t, std::int64_t)>& on_progress = {},
                                 const std::function<void(const EpochReport&)>& on_epoch = {});

  // The mean gradient of the cross-entropy over all of `data` as one batch (micro-batch tasks as
  // in training, the layers programmed as for training step 0), per parameter in
  // Graph::parameters() order (an empty tensor: no gradient reaches it). Nothing is updated.
  std::vector<Tensor> gradient(const Dataset& data, const TrainOptions& options);

  // The model as ONNX: the original (or built) model with the trained initializers.
  std::string to_onnx() const;
  void save_onnx(const std::string& path) const;
  // Every trainable parameter, flattened in Graph::parameters() order.
  const std::vector<float>& parameters() const;
  // Replaces all parameters (same count, checked), e.g. to probe the loss around a point.
  void set_parameters(std::vector<float> values);
  const std::string& arch() const;
  const Graph& graph() const;

 private:
  TrainableNetwork();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::nn
