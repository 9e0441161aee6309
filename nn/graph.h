// A computation graph of operators, executed in topological order.
//
// Built by the ONNX importer (or the trainer's exporter through it): inputs, constants, nodes and
// outputs are added, then `finalize` sorts the nodes, folds every node whose inputs are all
// constants (the Shape/Gather/Concat chains of PyTorch exports, Constant nodes) and creates the
// operators. `run` is const and may be called from several threads at once.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nn/op.h"
#include "nn/tensor.h"

namespace faultline::nn {

// A graph input as declared: dims of -1 are free (symbolic, e.g. the batch size).
struct ValueInfo {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  bool shape_known = false;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;

  // Where the graph came from, for messages ("model.onnx").
  std::string source;
  int opset = 0;

  void add_input(ValueInfo info);
  void add_constant(const std::string& name, Tensor value);
  void add_node(NodeSpec spec);
  void add_output(const std::string& name);
  // Validates, sorts, folds constants and creates the operators. Throws faultline::Error.
  void finalize();

  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  const std::vector<std::string>& outputs() const { return outputs_; }

  // Runs the graph on one tensor per declared input (in declaration order); returns one tensor
  // per output. Throws faultline::Error naming the input or node when shapes or types do not fit.
  std::vector<Tensor> run(std::vector<Tensor> inputs, const RunContext& context = {}) const;

  // The linear layers (Gemm, MatMul, Conv with constant weights), in execution order.
  const std::vector<LinearLayer*>& layers() const { return layers_; }
  // Programs every layer with the substrate kind `kind_for(layer)` returns.
  void program(const std::function<std::string(const LinearLayer&)>& kind_for, const models::ProgramContext& context);
  // Programs every layer as ideal hardware.
  void program_ideal();

  // Walking Noise sites (Borras, Klein, Fröning, arXiv 2212.10430): noise added to the first
  // output of every node that matches, resampled on every run.
  struct NoiseSite {
    std::string nodes = "*";  // glob over node names
    std::string op;           // "" (any) or an op type
    float sigma_add = 0, sigma_mul = 0;
  };
  // Attaches `sites` (replacing earlier ones) for trial `trial` of seed `seed`; returns how many
  // nodes each site matched.
  std::vector<int> set_noise_sites(const std::vector<NoiseSite>& sites, std::uint64_t seed, std::uint64_t trial);

  // The nodes that remain after constant folding, in execution order: (name, op type).
  std::vector<std::pair<std::string, std::string>> nodes() const;

  // ---- Training: the same graph, run with a tape and differentiated (nn/train.h) ----

  // The float initializers gradients flow into (inputs of the kept nodes at positions their
  // operators differentiate: weights, biases, BatchNormalization's scale and bias), in the order
  // the nodes first read them. Initializers that constant-folded nodes read are frozen instead
  // (changing them would not reach the folded values).
  const std::vector<std::string>& parameters() const { return parameters_; }
  const std::vector<std::string>& frozen_parameters() const { return frozen_; }
  // The value of a parameter (or any initializer), for the optimizer to update in place.
  Tensor& parameter(const std::string& name);
  const Tensor& parameter(const std::string& name) const;
  // After parameters were written: rebuilds the operators that copied them (the linear layers),
  // which leaves those layers unprogrammed; program the graph again before running it.
  void parameters_changed();

  // Every value of one forward pass, for the backward pass.
  struct Tape {
    std::vector<Tensor> slots;
    RunContext context;
  };
  // As run(), keeping every value in `tape` (set `context.training` for training behaviour).
  std::vector<Tensor> run_recorded(std::vector<Tensor> inputs, const RunContext& context, Tape& tape) const;
  // Reverse mode: given d(loss)/d(output k) for each graph output (an empty tensor: none), adds
  // d(loss)/d(parameters()[p]) into grads[p] (grads is resized to parameters().size(); an entry
  // left empty got no gradient). Throws UnsupportedError naming the node that has no backward.
  void backward(const Tape& tape, const std::vector<Tensor>& output_grads, std::vector<Tensor>& grads) const;
  // The kept nodes of one op type (step numbers), their specs and their input values in a tape
  // (for the trainer's BatchNormalization running statistics).
  std::vector<std::size_t> steps_of(const std::string& op_type) const;
  const NodeSpec& step_spec(std::size_t step) const { return steps_.at(step).spec; }
  const Tensor* step_input(const Tape& tape, std::size_t step, std::size_t k) const;

 private:
  struct Ref {
    int slot = -1;
    const Tensor* constant = nullptr;  // set for constants; slot < 0 and constant null: omitted
  };
  struct Step {
    NodeSpec spec;
    std::unique_ptr<Op> op;
    std::vector<Ref> inputs;
    std::vector<int> output_slots;  // -1 for unused optional outputs
    std::vector<int> release;       // slots whose last reader is this step
    float noise_add = 0, noise_mul = 0;  // Walking Noise on output 0 (0, 0: none)
  };

  std::vector<Tensor> execute(std::vector<Tensor> inputs, const RunContext& context, Tape* tape) const;
  void find_parameters();
  void collect_layers();

  std::vector<ValueInfo> inputs_;
  std::vector<std::string> outputs_;
  std::map<std::string, Tensor> constants_;  // std::map keeps element addresses stable
  std::vector<NodeSpec> pending_;
  std::vector<Step> steps_;
  std::vector<int> input_slots_;
  std::vector<Ref> output_refs_;
  std::vector<LinearLayer*> layers_;
  int slot_count_ = 0;
  bool finalized_ = false;
  std::uint64_t noise_seed_ = 0, noise_trial_ = 0;
  std::set<std::string> initializers_;       // names given to add_constant
  std::set<std::string> folded_reads_;       // initializers read by constant-folded nodes
  std::vector<std::string> parameters_, frozen_;
  std::map<const Tensor*, int> parameter_index_;
  std::vector<bool> slot_requires_grad_;
};

}  // namespace faultline::nn
