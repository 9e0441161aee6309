// `faultline infer`: run a model on NPY or TensorProto inputs and write its outputs.
#include "apps/cli.h"

#include "models/files.h"
#include "models/substrate.h"
#include "hwcfg/hardware_config.h"
#include "nn/npy.h"
#include "nn/onnx_io.h"
#include "studies/hardware.h"

namespace faultline::app {

// `stored` receives the element type as the file holds it (int32 is held as int64).
nn::Tensor load_input(const std::string& path, std::string* stored) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npy") return nn::load_npy(path, stored);
  if (ext == ".pb") {
    nn::Tensor t = nn::load_tensor_pb(path);
    *stored = nn::dtype_name(t.dtype());
    return t;
  }
  throw Error(path + ": unknown input format (expected .npy or .pb)");
}

// An input checked against the model's declaration, so that the message names the file.
void check_input(const nn::ValueInfo& info, const nn::Tensor& t, const std::string& stored, const std::string& path) {
  if (t.dtype() != info.dtype)
    throw Error(path + ": holds " + stored + ", the model's input '" + info.name + "' is " + nn::dtype_name(info.dtype));
  if (!info.shape_known) return;
  bool fits = t.rank() == static_cast<int>(info.shape.size());
  for (std::size_t d = 0; fits && d < info.shape.size(); ++d) fits = info.shape[d] < 0 || info.shape[d] == t.shape()[d];
  if (fits) return;
  std::string expected = "[";
  for (std::size_t d = 0; d < info.shape.size(); ++d) expected += (d ? ", " : "") + (info.shape[d] < 0 ? std::string("?") : std::to_string(info.shape[d]));
  throw Error(path + ": shape " + nn::shape_string(t.shape()) + ", the model's input '" + info.name + "' is " + expected + "]");
}

int cmd_infer(const std::vector<std::string>& args) {
  std::string model, hw = "ideal";
  std::vector<std::string> inputs, outputs, sets;
  std::uint64_t seed = 1;
  // infer runs the tensors it is given as one batch on one thread: splitting an arbitrary
  // model's inputs along a batch axis is not safe in general (Softmax over axis 0, for one).
  po::options_description options("infer options");
  options.add_options()("help,h", "show this help");
  options.add_options()
      ("model", po::value(&model)->required(), "ONNX model")
      ("input", po::value(&inputs)->required(), "input tensor (.npy or ONNX TensorProto .pb), one per model input, in order")
      ("output", po::value(&outputs)->required(), "output file (.npy), one per model output, in order")
      ("hw", po::value(&hw)->default_value(hw), "hardware description: a YAML file or a preset name (hwcfg/NAME.yaml)")
      ("set", po::value(&sets), "override a hardware field (repeatable)")
      ("seed", po::value(&seed)->default_value(1), "seed of all hardware randomness (trial 0)");
  po::variables_map vm;
  if (!parse("infer", "--model MODEL.onnx --input X.npy [--input ...] --output Y.npy [--output ...]", options, args, vm)) return 0;
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  auto graph = nn::load_onnx(model);
  if (inputs.size() != graph->inputs().size())
    throw Error(model + ": the model has " + std::to_string(graph->inputs().size()) + " input(s), " + std::to_string(inputs.size()) + " --input given");
  if (outputs.size() > graph->outputs().size())
    throw Error(model + ": the model has " + std::to_string(graph->outputs().size()) + " output(s), " + std::to_string(outputs.size()) + " --output given");
  for (const auto& path : outputs) {
    if (std::filesystem::path(path).extension() != ".npy") throw Error(path + ": outputs are written as .npy");
    check_output_file(path, "--output");
  }
  std::vector<nn::Tensor> tensors;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    std::string stored;
    tensors.push_back(load_input(inputs[k], &stored));
    check_input(graph->inputs()[k], tensors.back(), stored, inputs[k]);
  }
  // Kinds with static activation ranges calibrate on the given inputs themselves.
  studies::calibrate(config, *graph, [&](std::int64_t) { (void)graph->run(tensors); });
  studies::program(config, *graph, models::ProgramContext{seed, 0});
  std::vector<nn::Tensor> results = graph->run(std::move(tensors));
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    nn::save_npy(outputs[k], results[k]);
    std::printf("%s: %s %s -> %s\n", graph->outputs()[k].c_str(), nn::dtype_name(results[k].dtype()),
                nn::shape_string(results[k].shape()).c_str(), outputs[k].c_str());
  }
  return 0;
}

}  // namespace faultline::app
