// `faultline train`: build (--arch) or import (--model) a classifier and train it on the graph, optionally with hardware or noise in the loop.
#include "apps/cli.h"

#include "models/files.h"

#include "nn/dataset.h"
#include "hwcfg/hardware_config.h"
#include "studies/hardware.h"
#include "nn/train.h"

namespace faultline::app {

int cmd_train(const std::vector<std::string>& args) {
  nn::TrainOptions o;
  std::string data = "fashion-mnist", out, hw, noise, model;
  std::vector<std::string> sets;
  std::int64_t limit = 0;
  std::uint64_t seed = 1;
  DataFlags data_flags;
  po::options_description options("train options");
  add_common(options, &o.threads);
  options.add_options()
      ("arch", po::value(&o.arch)->default_value(o.arch),
       "architecture to build and train: mlp (784-w-w-w-10), lenet5, butterfly_mlp or monarch_mlp (784-w, two butterfly / Monarch layers w -> w, w-10)")
      ("width", po::value(&o.width)->default_value(o.width), "hidden width w of mlp, butterfly_mlp and monarch_mlp (a power of two for butterfly)")
      ("model", po::value(&model), "fine-tune this ONNX classifier instead (its first output the logits; every operator on the path needs a backward pass)")
      ("epochs", po::value(&o.epochs)->default_value(o.epochs), "passes over the training set")
      ("batch-size", po::value(&o.batch_size)->default_value(o.batch_size), "images per mini-batch")
      ("optimizer", po::value(&o.optimizer)->default_value(o.optimizer), "adam or sgd (with momentum)")
      ("lr", po::value(&o.learning_rate)->default_value(o.learning_rate), "learning rate")
      ("momentum", po::value(&o.momentum)->default_value(o.momentum), "SGD momentum")
      ("weight-decay", po::value(&o.weight_decay)->default_value(o.weight_decay), "L2 weight decay (weights only)")
      ("schedule", po::value(&o.schedule)->default_value(o.schedule), "learning-rate schedule: cosine or constant")
      ("flip", po::bool_switch(&o.flip), "augment: mirror training images horizontally with probability 1/2")
      ("seed", po::value(&seed)->default_value(seed), "seed of initialisation, shuffling and augmentation")
      ("data", po::value(&data)->default_value(data), (kDataHelp + std::string(" (training split)")).c_str())
      ("limit", po::value(&limit)->default_value(0), "train on the first N images only (0: all)")
      ("hw", po::value(&hw), "hardware in the loop: forward products of Conv/Gemm layers on this description's substrates (functional models), backward through the ideal weights (straight-through)")
      ("noise", po::value(&noise), "noise-aware training: a Walking Noise description (noise units, noise sites) or a trace folder / its noise_from_trace.yaml")
      ("set", po::value(&sets), "override a field of --hw/--noise (repeatable)")
      ("backward", po::value(&o.backward)->default_value(o.backward), "through --hw layers: ste (straight-through) or secant (gradient scaled by each output's frozen gain y_hw/y_exact in [0, 1])")
      ("hw-seed", po::value(&o.hardware_seed)->default_value(o.hardware_seed), "seed of the hardware's / noise's randomness (the step number is the trial)")
      ("out", po::value(&out)->required(), "ONNX file to write");
  add_data_options(options, &data_flags);
  po::variables_map vm;
  if (!parse("train", "--out MODEL.onnx [options]", options, args, vm)) return 0;
  check_threads(o.threads);
  o.seed = seed;
  if (!model.empty() && !vm["arch"].defaulted()) throw Error("--arch, --model: choose one");
  if (!model.empty() && !vm["width"].defaulted()) throw Error("--width, --model: --width sizes a built architecture, not an imported model");
  nn::validate(o);
  check_output_file(out, "--out");  // before the training, not after it
  if (!hw.empty() && !noise.empty()) throw Error("--hw, --noise: choose one (a description may hold both hardware units and noise sites)");
  if (!sets.empty() && hw.empty() && noise.empty()) throw Error("--set: needs --hw or --noise");
  hwcfg::HardwareConfig loop;
  if (!hw.empty()) {
    loop = hwcfg::load_hardware_config(hw, sets);
    for (const auto& u : loop.units)
      if (!u.impl.empty()) throw Error(loop.source + ": unit '" + u.name + "' has impl: " + u.impl + "; training runs the functional models (drop impl:)");
    o.program_hardware = studies::training_hardware(loop);
  } else if (!noise.empty()) {
    const std::string file = std::filesystem::is_directory(noise) ? noise + "/noise_from_trace.yaml" : noise;
    if (std::filesystem::is_directory(noise) && !std::filesystem::exists(file))
      throw Error(noise + ": a trace folder without noise_from_trace.yaml (run faultline trace without --no-fit)");
    loop = hwcfg::load_hardware_config(file, sets);
    hwcfg::require_training_noise(loop);
    o.program_hardware = studies::training_hardware(loop);
  }
  if (limit < 0) throw Error("--limit: must not be negative");
  nn::Dataset train = load_data(data, true, data_flags);
  if (limit > 0 && limit < train.count) {
    train.count = limit;
    train.images.resize(static_cast<std::size_t>(limit * train.image_size()));
    train.labels.resize(static_cast<std::size_t>(limit));
  }
  nn::TrainableNetwork net = model.empty() ? nn::TrainableNetwork(o.arch, train.channels, train.height, train.width, train.classes, o.seed, o.width)
                                            : nn::TrainableNetwork::from_onnx_file(model);
  const std::string what = model.empty() ? o.arch : model;
  if (!model.empty()) {
    std::printf("fine-tuning %s: %zu parameter tensors", model.c_str(), net.graph().parameters().size());
    if (!net.graph().frozen_parameters().empty()) std::printf(", %zu frozen (read by constant-folded nodes)", net.graph().frozen_parameters().size());
    std::printf("\n");
  }
  if (o.program_hardware) std::printf("training %s with %s in the loop (%s)\n", what.c_str(), loop.name.c_str(), loop.source.c_str());
  app::ProgressBar bar("training " + what, "batches");
  net.train(train, o, [&](std::int64_t done, std::int64_t total) { bar.update(done, total); },
            [&](const nn::EpochReport& r) {
              bar.finish();
              std::printf("epoch %3d  loss %.4f  train accuracy %.2f %%  lr %.2e\n", r.epoch, r.loss, 100 * r.train_accuracy, r.learning_rate);
              std::fflush(stdout);
            });
  net.save_onnx(out);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace faultline::app
