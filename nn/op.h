// Operators of the NN engine and the description they are built from.
//
// An operator is constructed once from a NodeSpec (its ONNX node: type, opset, attributes, and
// which inputs are constants) and then run many times, possibly from several threads at once,
// so `run` is const. Constructors validate attributes; anything the engine does not implement is
// an UnsupportedError that names the node, the op and the opset.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "models/error.h"
#include "models/substrate.h"
#include "nn/tensor.h"

namespace faultline::nn {

struct Attribute {
  enum class Kind { Float, Int, String, Floats, Ints, Strings, Tensor, Other };
  Kind kind = Kind::Other;
  float f = 0.0f;
  std::int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<std::int64_t> ints;
  std::vector<std::string> strings;
  nn::Tensor tensor;
};

class NodeSpec {
 public:
  std::string name;
  std::string op_type;
  int opset = 0;
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an unused optional output
  std::map<std::string, Attribute> attributes;
  // One entry per input: the value when that input is a constant (initializer, Constant node or
  // folded at load time), nullptr when it is computed at run time or omitted.
  std::vector<const Tensor*> constant_inputs;

  // "node 'conv1' (Conv, opset 13)": the prefix of every message about this node.
  std::string where() const;
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void unsupported(const std::string& what) const;

  // Attribute accessors; each marks the attribute as understood. Wrong kinds are errors.
  bool has(const std::string& attr) const { return attributes.count(attr) != 0; }
  std::int64_t get_int(const std::string& attr, std::int64_t fallback) const;
  float get_float(const std::string& attr, float fallback) const;
  std::string get_string(const std::string& attr, const std::string& fallback) const;
  std::vector<std::int64_t> get_ints(const std::string& attr, std::vector<std::int64_t> fallback) const;
  std::vector<float> get_floats(const std::string& attr, std::vector<float> fallback) const;
  const Attribute& get(const std::string& attr) const;
  // Marks an attribute as understood without reading it (for ones that do not matter here).
  void ignore(const std::string& attr) const { used_.insert(attr); }

  std::size_t input_count() const { return inputs.size(); }
  bool has_input(std::size_t k) const { return k < inputs.size() && !inputs[k].empty(); }
  bool has_output(std::size_t k) const { return k < outputs.size() && !outputs[k].empty(); }
  const Tensor* constant_input(std::size_t k) const {
    return k < constant_inputs.size() ? constant_inputs[k] : nullptr;
  }
  // Throws an UnsupportedError naming the first attribute no accessor has read.
  void reject_unread_attributes() const;
  // Checks the input count against [min, max]; throws naming the node.
  void expect_inputs(std::size_t min, std::size_t max) const;

 private:
  mutable std::set<std::string> used_;
};

// Per-call information: which samples of the current pass this call holds (see
// models::MultiplyContext::first_row), and for training what differs from inference.
struct RunContext {
  std::uint64_t first_sample = 0;
  // Training: BatchNormalization normalizes with the batch's statistics and Dropout drops.
  bool training = false;
  // Dropout's random keys: (seed, trial, node) and the element's global index, as the Walking
  // Noise sites are keyed (the graph sets `node` for each step; the trainer's trial is the step).
  std::uint64_t seed = 0, trial = 0;
  int node = 0;
  // Backward through hardware layers: false, straight-through (the exact product's gradient);
  // true, secant (each output's gradient scaled by its frozen gain y_hw / y_exact in [0, 1]).
  bool secant = false;
  // Identifies one recorded forward pass (Graph::run_recorded; 0: not recorded), so that an
  // operator may keep work of its forward pass for the backward pass of the same recording.
  std::uint64_t pass = 0;
};

class LinearLayer;

class Op {
 public:
  virtual ~Op() = default;
  // inputs[k] is nullptr for an omitted optional input; outputs has one slot per node output.
  virtual void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs,
                   const RunContext& context) const = 0;
  // Gemm, MatMul and Conv with constant weights are linear layers handed to substrates.
  virtual LinearLayer* linear() { return nullptr; }

  // Training (reverse mode): the gradients of the inputs from those of the outputs. `in` and
  // `out` are this call's forward values, `dout[k]` is null where output k gets no gradient;
  // `din[k]` is filled for every k with `need[k]` (left empty: no gradient reaches that input).
  // The default throws UnsupportedError (the graph adds the node): no training through the op.
  virtual void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                        const std::vector<const Tensor*>& dout, const std::vector<bool>& need, std::vector<Tensor>& din,
                        const RunContext& context) const;
  // Whether input `k` is one gradients flow into (data and weights; not shapes, axes, pads).
  virtual bool differentiable_input(std::size_t k) const { return k == 0; }
};

// The backward pass of an op that only moves elements (Reshape, Transpose, Slice, Pad, Concat,
// ...): the op is run on int64 tensors that hold each element's (input, index), which gives every
// output element's source, and the output gradient is added back to it. `data_inputs` are the
// inputs that carry elements; `blank_inputs` are replaced by null for that run (a Pad value).
void index_map_backward(const Op& op, const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& dout,
                        const std::vector<bool>& need, std::vector<Tensor>& din, const std::vector<std::size_t>& data_inputs,
                        const std::vector<std::size_t>& blank_inputs = {});
// Per channel (axis 1) of x (N × C × ...), over the batch and the spatial positions, in double:
// the mean, and the sum of squared deviations from it (BatchNormalization's batch statistics and
// the trainer's running statistics divide it differently).
void channel_moments(const Tensor& x, std::vector<double>& mean, std::vector<double>& squared_deviations);

// Sums `grad` (of the broadcast shape `out_shape`) over the axes along which `shape` was
// broadcast, giving a tensor of `shape` (the gradient of a broadcast operand).
Tensor reduce_to_shape(const Tensor& grad, const Shape& shape);

// A layer whose weights live in hardware. A layer holds one or more weight blocks (a grouped
// convolution has one per group), each programmed into its own substrate.
class LinearLayer {
 public:
  struct Block {
    models::MatrixRM weights;  // outputs × inputs
    std::unique_ptr<models::Substrate> substrate;
  };

  virtual ~LinearLayer() = default;
  const std::string& name() const { return name_; }
  const std::string& op_type() const { return op_type_; }
  int index() const { return index_; }
  void set_index(int index) { index_ = index; }
  std::vector<Block>& blocks() { return blocks_; }
  const std::vector<Block>& blocks() const { return blocks_; }

  // Replaces every block's substrate with one of `kind` (configured by `params`) and programs it.
  void program(const std::string& kind, const models::Params& params, const models::ProgramContext& context);
  void program(const std::string& kind, const models::ProgramContext& context);
  // The exact product (the reference; what a layer no hardware unit is mapped to runs on).
  void program_exact(const models::ProgramContext& context) { program(models::exact_kind_name(), context); }
  // As above, with each block's new substrate passed through `wrap` before it is programmed.
  void program(const std::string& kind, const models::Params& params, const models::ProgramContext& context,
               const std::function<std::unique_ptr<models::Substrate>(std::unique_ptr<models::Substrate>)>& wrap);

  // Error of this layer's hardware output against the exact product of the same inputs, summed
  // over the reads since the last program(): Σ(y_hw − y_ideal)², Σ y_ideal², element count.
  struct ErrorStats {
    double error_sq = 0, signal_sq = 0;
    std::uint64_t count = 0;
  };
  // Turns error measurement on or off (it costs one extra exact product per read).
  void measure_error(bool on) { measure_error_ = on; }
  ErrorStats error_stats() const;
  // One read's statistics (Σ over its elements), as error_stats() sums them.
  static ErrorStats read_error(const Eigen::Ref<const models::MatrixRM>& hardware, const models::MatrixRM& exact);
  // Sees every read with the hardware output and the exact product of the same inputs (noise
  // traces, traces/). Called from the evaluating threads, concurrently; `first_row` is the global
  // index of the first row. Empty: none (the default).
  using ReadObserver = std::function<void(std::size_t block, std::uint64_t first_row, const Eigen::Ref<const models::MatrixRM>& hardware,
                                          const models::MatrixRM& exact)>;
  void observe_reads(ReadObserver observer) { observer_ = std::move(observer); }
  // The hardware counters of all blocks.
  std::map<std::string, double> counters() const;
  // Activation ranges for kinds that quantize with static ranges (models::KindCapabilities::
  // calibration_images): while recording, every read updates its block's max |x| and max |y|
  // (maxima do not depend on the order of the reads, so neither on the thread count); program()
  // passes them in LayerInfo.
  struct Ranges {
    double input = 0, output = 0;
  };
  void record_ranges(bool on);
  bool calibrated() const { return !ranges_.empty(); }
  const std::vector<Ranges>& ranges() const { return ranges_; }
  // Ranges measured earlier (one per block), e.g. kept across a change of the weights that
  // rebuilt the layer (Graph::parameters_changed).
  void set_ranges(std::vector<Ranges> ranges) { ranges_ = std::move(ranges); }
  const std::string& substrate_kind() const { return kind_; }
  // Rows one input sample gave in the last read (a convolution's output positions; 1 for a dense
  // layer; 0 before the first read): what hardware that plans per batch of samples sizes for.
  std::uint64_t rows_per_sample() const { return rows_per_sample_.load(std::memory_order_relaxed); }

 protected:
  LinearLayer(std::string name, std::string op_type) : name_(std::move(name)), op_type_(std::move(op_type)) {}
  // y = x · Wᵀ for block `block`; `first_row` is the global row index of x's first row.
  // `output_bias` (outputs values, optional): the bias the operator adds to y afterwards, for the
  // output range of a calibration (record_ranges), which is that of y + bias.
  // `rows_per_sample`: rows one input sample gives (models::MultiplyContext).
  void multiply(std::size_t block, const Eigen::Ref<const models::MatrixRM>& x,
                Eigen::Ref<models::MatrixRM> y, std::uint64_t first_row, const float* output_bias = nullptr,
                std::uint64_t rows_per_sample = 1) const;
  // y = conv(x) + bias for block `block` when its substrate runs convolutions on the feature map
  // (models::Substrate::convolve); false otherwise (the caller then lowers to multiply()). With
  // error measurement or an observer, the same reads are compared, as im2col rows without the
  // bias, against the exact product.
  bool convolve(std::size_t block, const models::ConvShape& shape, const float* x, std::int64_t images, const std::vector<float>& bias,
                float* y, std::uint64_t first_row) const;

  std::vector<Block> blocks_;

 private:
  // Error statistics and the observer for one read (the hardware's product and the exact one).
  void record_read(std::size_t block, const Eigen::Ref<const models::MatrixRM>& hardware, const models::MatrixRM& exact,
                   std::uint64_t first_row) const;

  std::string name_;
  std::string op_type_;
  int index_ = 0;
  std::string kind_ = models::exact_kind_name();
  bool measure_error_ = false;
  bool record_ranges_ = false;
  mutable std::vector<Ranges> ranges_;  // per block; empty: not calibrated (updated by reads under stats_mutex_)
  ReadObserver observer_;
  // Per-read partial sums keyed by (first row, block), reduced in key order so that the totals
  // are the same bits for any thread count.
  mutable std::mutex stats_mutex_;
  mutable std::atomic<std::uint64_t> rows_per_sample_{0};
  mutable std::map<std::pair<std::uint64_t, std::size_t>, ErrorStats> partial_stats_;
};

// Output shape of a numpy-style (multidirectional) broadcast of `a` and `b`; throws naming the
// node when they do not fit.
Shape broadcast_shapes(const NodeSpec& spec, const Shape& a, const Shape& b);

// Builds the operator for a node; throws UnsupportedError for unknown op types.
std::unique_ptr<Op> create_op(const NodeSpec& spec);
bool op_supported(const std::string& op_type);
std::vector<std::string> supported_ops();

// Registration used by the operator files.
using OpFactory = std::function<std::unique_ptr<Op>(const NodeSpec&)>;
void register_linear_ops(std::map<std::string, OpFactory>& table);
void register_elementwise_ops(std::map<std::string, OpFactory>& table);
void register_pool_ops(std::map<std::string, OpFactory>& table);
void register_shape_ops(std::map<std::string, OpFactory>& table);

}  // namespace faultline::nn
