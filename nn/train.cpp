#include "nn/train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "models/det_math.h"
#include "models/error.h"
#include "models/files.h"
#include "models/philox.h"
#include "nn/onnx_io.h"
#include "nn/parallel.h"

namespace faultline::nn {
namespace {

// Samples per parallel task. Fixed (never derived from the thread count) so that results do
// not depend on it.
constexpr std::int64_t kMicroBatch = 16;

// Random streams of the trainer (the high bits keep them apart from hardware-noise streams).
constexpr std::uint64_t kStreamInit = 0x7472'0000'0000'0000ull;
constexpr std::uint64_t kStreamShuffle = 0x7473'0000'0000'0000ull;
constexpr std::uint64_t kStreamFlip = 0x7466'0000'0000'0000ull;

// Builds the reference architectures as ONNX (opset 13: Conv/Relu/MaxPool/Flatten/Gemm), with
// He-uniform weights U(−√(6/fan_in), √(6/fan_in)) (He, Zhang, Ren, Sun, ICCV 2015) and zero
// biases. Weight element k of the n-th parameter block takes uniform number (offset + k) of the
// init stream, offsets counting every weight and bias in layer order.
const char* const kArchitectures = "mlp, lenet5, butterfly_mlp, monarch_mlp";
bool known_architecture(const std::string& arch) { return arch == "mlp" || arch == "lenet5" || arch == "butterfly_mlp" || arch == "monarch_mlp"; }

class ArchitectureBuilder {
 public:
  ArchitectureBuilder(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width, std::uint64_t seed)
      : builder_("faultline_" + arch), arch_(arch), c_(channels), h_(height), w_(width), rng_(seed, kStreamInit) {
    builder_.set_doc("Trained by faultline (" + arch + ")");
    builder_.add_input("input", {-1, channels, height, width});
  }

  void conv(std::int64_t out, std::int64_t kernel, std::int64_t pad) {
    const std::string name = "conv" + std::to_string(++conv_);
    Tensor w({out, c_, kernel, kernel}), b({out});
    init(w, c_ * kernel * kernel);
    offset_ += out;  // the biases' share of the stream
    builder_.add_initializer(name + ".weight", w);
    builder_.add_initializer(name + ".bias", b);
    builder_.add_node("Conv", name, {current_, name + ".weight", name + ".bias"}, {name},
                      {{"kernel_shape", ints_attribute({kernel, kernel})}, {"pads", ints_attribute({pad, pad, pad, pad})},
                       {"strides", ints_attribute({1, 1})}});
    current_ = name;
    c_ = out;
    h_ = h_ + 2 * pad - kernel + 1;
    w_ = w_ + 2 * pad - kernel + 1;
    check();
  }
  void relu() { node("Relu", "relu" + std::to_string(++relu_)); }
  void pool() {
    const std::string name = "pool" + std::to_string(++pool_);
    builder_.add_node("MaxPool", name, {current_}, {name}, {{"kernel_shape", ints_attribute({2, 2})}, {"strides", ints_attribute({2, 2})}});
    current_ = name;
    h_ /= 2;
    w_ /= 2;
    check();
  }
  void flatten() {
    builder_.add_node("Flatten", "flatten", {current_}, {"flatten"}, {{"axis", int_attribute(1)}});
    current_ = "flatten";
    c_ = c_ * h_ * w_;
    h_ = w_ = 1;
  }
  // The last layer's output is the graph's output, "logits".
  void dense(std::int64_t out, bool last = false) {
    const std::string name = "fc" + std::to_string(++fc_);
    Tensor w({out, c_}), b({out});
    init(w, c_);
    offset_ += out;
    builder_.add_initializer(name + ".weight", w);
    builder_.add_initializer(name + ".bias", b);
    const std::string output = last ? "logits" : name;
    builder_.add_node("Gemm", name, {current_, name + ".weight", name + ".bias"}, {output},
                      {{"alpha", float_attribute(1.0f)}, {"beta", float_attribute(1.0f)}, {"transB", int_attribute(1)}});
    current_ = output;
    c_ = out;
  }
  // A butterfly layer n → n (Dao, Gu, Eichhorn, Rudra, Ré, arXiv 1903.05895): B = B_n ··· B_4 · B_2,
  // factor B_k block-diagonal with n/k blocks [[D1, D2], [D3, D4]] (D diagonal, k/2 × k/2), i.e.
  // n/2 independent 2 × 2 matrices pairing elements j and j + k/2 of each block of k. As standard
  // operators, per stage (k = 2, 4, ..., n): Reshape [N, n/k, 2, k/2], Transpose to
  // [N, n/k, k/2, 2], Reshape [N, n/2, 1, 2], MatMul with the constant [n/2, 2, 2], and back; then
  // the bias. 2·n·log2(n) weights. Factors start variance-preserving (U(±√(3/2)): fan-in 2, no
  // nonlinearity between stages), the last stage with He's gain √2 for the ReLU after it.
  void butterfly() {
    const std::string name = "bfly" + std::to_string(++structured_);
    const std::int64_t n = c_;
    if (n < 2 || (n & (n - 1)) != 0) throw Error("arch: butterfly layers need a power-of-two width, got " + std::to_string(n));
    int stages = 0;
    for (std::int64_t k = 2; k <= n; k *= 2) ++stages;
    int stage = 0;
    for (std::int64_t k = 2; k <= n; k *= 2) {
      const std::string st = name + ".s" + std::to_string(++stage);
      reshape(st + ".split", {-1, n / k, 2, k / 2});
      transpose(st + ".pair", {0, 1, 3, 2});
      reshape(st + ".rows", {-1, n / 2, 1, 2});
      Tensor w({n / 2, 2, 2});
      init_uniform(w, std::sqrt((stage == stages ? 6.0f : 3.0f) / 2.0f));
      matmul(st, w);
      reshape(st + ".unrows", {-1, n / k, k / 2, 2});
      transpose(st + ".unpair", {0, 1, 3, 2});
      reshape(st + ".join", {-1, n});
    }
    bias(name, n);
  }
  // A Monarch layer n → n (Dao et al., arXiv 2204.00595): M = P L Pᵀ R with R block-diagonal (b1
  // blocks of b2 × b2), L block-diagonal (b2 blocks of b1 × b1), P the [b1, b2] → [b2, b1]
  // transposition, n = b1·b2 with b1 the largest divisor of n not above √n; computed as Reshape
  // [N, b1, 1, b2], MatMul with R [b1, b2, b2], Reshape/Transpose to [N, b2, 1, b1], MatMul with
  // L [b2, b1, b1], and back; then the bias. n·(b1 + b2) weights (2n√n for square n). R starts
  // variance-preserving (U(±√(3/b2))), L with He's gain (U(±√(6/b1))).
  void monarch() {
    const std::string name = "monarch" + std::to_string(++structured_);
    const std::int64_t n = c_;
    std::int64_t b1 = 1;
    for (std::int64_t d = 1; d * d <= n; ++d)
      if (n % d == 0) b1 = d;
    const std::int64_t b2 = n / b1;
    reshape(name + ".split", {-1, b1, 1, b2});
    Tensor r({b1, b2, b2}), l({b2, b1, b1});
    init_uniform(r, std::sqrt(3.0f / static_cast<float>(b2)));
    matmul(name + ".r", r);
    reshape(name + ".flat", {-1, b1, b2});
    transpose(name + ".permute", {0, 2, 1});
    reshape(name + ".rows", {-1, b2, 1, b1});
    init_uniform(l, std::sqrt(6.0f / static_cast<float>(b1)));
    matmul(name + ".l", l);
    reshape(name + ".unflat", {-1, b2, b1});
    transpose(name + ".unpermute", {0, 2, 1});
    reshape(name + ".join", {-1, n});
    bias(name, n);
  }
  std::string finish(int classes) {
    builder_.add_output("logits", {-1, classes});
    return builder_.serialize();
  }

 private:
  void node(const std::string& op, const std::string& name) {
    builder_.add_node(op, name, {current_}, {name});
    current_ = name;
  }
  void init(Tensor& w, std::int64_t fan_in) {
    const float bound = std::sqrt(6.0f / static_cast<float>(fan_in));
    for (std::int64_t k = 0; k < w.numel(); ++k) w.f()[k] = (2.0f * rng_.uniform(static_cast<std::uint64_t>(offset_ + k)) - 1.0f) * bound;
    offset_ += w.numel();
  }
  void init_uniform(Tensor& w, float bound) {
    for (std::int64_t k = 0; k < w.numel(); ++k) w.f()[k] = (2.0f * rng_.uniform(static_cast<std::uint64_t>(offset_ + k)) - 1.0f) * bound;
    offset_ += w.numel();
  }
  void reshape(const std::string& name, std::vector<std::int64_t> shape) {
    const std::int64_t dims = static_cast<std::int64_t>(shape.size());
    builder_.add_initializer(name + ".shape", Tensor::ints({dims}, std::move(shape)));
    builder_.add_node("Reshape", name, {current_, name + ".shape"}, {name});
    current_ = name;
  }
  void transpose(const std::string& name, std::vector<std::int64_t> perm) {
    builder_.add_node("Transpose", name, {current_}, {name}, {{"perm", ints_attribute(std::move(perm))}});
    current_ = name;
  }
  void matmul(const std::string& name, const Tensor& w) {
    builder_.add_initializer(name + ".weight", w);
    builder_.add_node("MatMul", name, {current_, name + ".weight"}, {name});
    current_ = name;
  }
  void bias(const std::string& name, std::int64_t n) {
    builder_.add_initializer(name + ".bias", Tensor({n}));
    offset_ += n;
    builder_.add_node("Add", name + ".add", {current_, name + ".bias"}, {name + ".add"});
    current_ = name + ".add";
  }
  void check() const {
    if (h_ < 1 || w_ < 1) throw Error("architecture '" + arch_ + "' does not fit the images");
  }

  OnnxModelBuilder builder_;
  std::string arch_;
  std::int64_t c_, h_, w_;
  models::CounterRng rng_;
  std::string current_ = "input";
  std::int64_t offset_ = 0;
  int conv_ = 0, relu_ = 0, pool_ = 0, fc_ = 0, structured_ = 0;
};

std::string build_architecture(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width, int classes,
                               std::uint64_t seed, std::int64_t hidden) {
  ArchitectureBuilder b(arch, channels, height, width, seed);
  if (hidden < 2 || hidden > 65536) throw Error("width: must be between 2 and 65536, got " + std::to_string(hidden));
  if (arch == "mlp") {
    // The Walking Noise "SFC" shape: 3 hidden layers of 256 (Borras, Klein, Fröning, arXiv 2212.10430).
    b.flatten();
    for (int h = 0; h < 3; ++h) {
      b.dense(hidden);
      b.relu();
    }
    b.dense(classes, true);
  } else if (arch == "butterfly_mlp" || arch == "monarch_mlp") {
    // The same MLP with its two hidden n × n layers structured (the seed study's replacement of
    // dense layers, Shekofteh, Alles, Fröning, arXiv 2309.08946); the input and output layers stay dense.
    b.flatten();
    b.dense(hidden);
    b.relu();
    for (int h = 0; h < 2; ++h) {
      if (arch == "butterfly_mlp") b.butterfly();
      else b.monarch();
      b.relu();
    }
    b.dense(classes, true);
  } else if (arch == "lenet5") {
    // LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) with ReLU and max pooling: C1 6@5×5 (padded so
    // that 28×28 inputs give the original 28×28 maps), S2, C3 16@5×5, S4, F5 120, F6 84, output.
    b.conv(6, 5, 2);
    b.relu();
    b.pool();
    b.conv(16, 5, 0);
    b.relu();
    b.pool();
    b.flatten();
    b.dense(120);
    b.relu();
    b.dense(84);
    b.relu();
    b.dense(classes, true);
  } else {
    throw Error("arch: unknown architecture '" + arch + "' (" + kArchitectures + ")");
  }
  return b.finish(classes);
}

}  // namespace

// What the tasks of one mini-batch produce (indexed by task).
struct BatchWork {
  std::vector<std::vector<Tensor>> grads;
  std::vector<double> loss;
  std::vector<std::int64_t> correct;
  // Per BatchNormalization node: the micro-batch's mean and unbiased variance per channel.
  std::vector<std::vector<std::pair<std::vector<double>, std::vector<double>>>> bn;
};

struct TrainableNetwork::Impl {
  std::string arch;     // "mlp", "lenet5" or the model's source
  std::string bytes;    // the ONNX model the parameters are written back into
  std::string source;
  std::unique_ptr<Graph> graph;
  std::vector<float> flat;  // parameters(), refreshed after every change

  void refresh_flat() {
    flat.clear();
    for (const auto& name : graph->parameters()) {
      const Tensor& t = std::as_const(*graph).parameter(name);
      flat.insert(flat.end(), t.f(), t.f() + t.numel());
    }
  }

  void load(std::string model, std::string from) {
    bytes = std::move(model);
    source = std::move(from);
    graph = parse_onnx(bytes, source);
    if (graph->parameters().empty()) throw Error(source + ": the model has no trainable parameters (float initializers of Conv, Gemm, MatMul, ...)");
    if (graph->inputs().size() != 1) throw Error(source + ": training needs a model with one input (the images), this one has " + std::to_string(graph->inputs().size()));
    if (graph->inputs()[0].dtype != DType::Float32) throw Error(source + ": the model's input must be float32");
    refresh_flat();
  }

  // One mini-batch's forward and backward passes (the layers already programmed for `step`), cut
  // into micro-batch tasks; per task its parameter gradients (summed over its samples), loss,
  // correct predictions and BatchNormalization statistics. Returns the number of tasks.
  std::int64_t run_batch(const float* images, const std::uint8_t* labels, std::int64_t n, const Dataset& data, const TrainOptions& options,
                         std::int64_t step, const std::vector<std::size_t>& bn_steps, BatchWork& work) const {
    const std::int64_t tasks = (n + kMicroBatch - 1) / kMicroBatch;
    work.grads.resize(static_cast<std::size_t>(tasks));
    work.loss.assign(static_cast<std::size_t>(tasks), 0.0);
    work.correct.assign(static_cast<std::size_t>(tasks), 0);
    work.bn.resize(static_cast<std::size_t>(tasks));
    const bool secant = options.program_hardware != nullptr && options.backward == "secant";
    const std::int64_t image_size = data.image_size();
    Graph& g = *graph;
    parallel_for(tasks, options.threads, [&](std::int64_t t, int) {
        const std::int64_t t0 = t * kMicroBatch, tn = std::min(kMicroBatch, n - t0);
        RunContext ctx;
        ctx.first_sample = static_cast<std::uint64_t>(t0);
        ctx.training = true;
        ctx.seed = options.seed;
        ctx.trial = static_cast<std::uint64_t>(step);
        ctx.secant = secant;
        Graph::Tape tape;
        const Tensor logits = g.run_recorded({input(images + t0 * image_size, tn, data)}, ctx, tape)[0];
        if (logits.rank() != 2 || logits.dim(0) != tn)
          throw Error(source + ": the first output must be the logits [N, classes], got " + shape_string(logits.shape()));
        const std::int64_t classes = logits.dim(1);
        // Softmax cross-entropy on the logits; its gradient starts the backward pass.
        Tensor grad(logits.shape());
        double loss = 0;
        std::int64_t correct = 0;
        for (std::int64_t i = 0; i < tn; ++i) {
          const float* z = logits.f() + i * classes;
          const int label = labels[t0 + i];
          if (label >= classes) throw Error(data.name + ": label " + std::to_string(label) + " but the model has " + std::to_string(classes) + " classes");
          const float mx = *std::max_element(z, z + classes);
          double sum = 0;
          for (std::int64_t c = 0; c < classes; ++c) sum += models::det::exp(static_cast<double>(z[c] - mx));
          const double log_sum = models::det::log(sum) + mx;
          loss += log_sum - z[label];
          if (std::max_element(z, z + classes) - z == label) ++correct;
          for (std::int64_t c = 0; c < classes; ++c)
            grad.f()[i * classes + c] = static_cast<float>(models::det::exp(z[c] - log_sum)) - (c == label ? 1.0f : 0.0f);
        }
        work.loss[t] = loss;
        work.correct[t] = correct;
        work.grads[t].clear();
        g.backward(tape, {grad}, work.grads[t]);
        work.bn[t].clear();
        for (std::size_t s : bn_steps) {
          const Tensor& x = *g.step_input(tape, s, 0);
          std::vector<double> mean, var;
          channel_moments(x, mean, var);
          const double count = static_cast<double>(x.numel() / std::max<std::int64_t>(1, x.dim(1)));
          for (double& v : var) v = count > 1 ? v / (count - 1) : 0.0;  // unbiased, as PyTorch keeps running_var
          work.bn[t].emplace_back(std::move(mean), std::move(var));
        }
      });
    return tasks;
  }

  // A batch of images as the model's input: [n, C, H, W], or [n, C·H·W] for a rank-2 input.
  Tensor input(const float* images, std::int64_t n, const Dataset& data) const {
    const ValueInfo& info = graph->inputs()[0];
    const std::int64_t size = data.image_size();
    Shape shape = {n, data.channels, data.height, data.width};
    if (info.shape_known && info.shape.size() == 2) shape = {n, size};
    else if (info.shape_known && info.shape.size() != 4)
      throw Error(source + ": input '" + info.name + "' has rank " + std::to_string(info.shape.size()) + "; training feeds images as [N, C, H, W] or [N, C·H·W]");
    Tensor x(shape);
    std::copy(images, images + n * size, x.f());
    return x;
  }
};

void validate(const TrainOptions& o) {
  // Each message starts with the TrainOptions field it is about.
  if (!known_architecture(o.arch)) throw Error("arch: unknown architecture '" + o.arch + "' (" + kArchitectures + ")");
  if (o.width < 2 || o.width > 65536) throw Error("width: must be between 2 and 65536, got " + std::to_string(o.width));
  if (o.epochs < 1 || o.epochs > 100000) throw Error("epochs: must be between 1 and 100000, got " + std::to_string(o.epochs));
  if (o.batch_size < 1 || o.batch_size > 65536) throw Error("batch_size: must be between 1 and 65536, got " + std::to_string(o.batch_size));
  if (o.optimizer != "adam" && o.optimizer != "sgd") throw Error("optimizer: unknown optimizer '" + o.optimizer + "' (adam, sgd)");
  if (!(o.learning_rate > 0.0f) || !std::isfinite(o.learning_rate)) throw Error("learning_rate: must be a positive number");
  if (!(o.momentum >= 0.0f && o.momentum < 1.0f)) throw Error("momentum: must be in [0, 1)");
  if (!(o.weight_decay >= 0.0f) || !std::isfinite(o.weight_decay)) throw Error("weight_decay: must be a non-negative number");
  if (o.schedule != "cosine" && o.schedule != "constant") throw Error("schedule: unknown learning-rate schedule '" + o.schedule + "' (cosine, constant)");
  if (o.threads < 1) throw Error("threads: must be at least 1");
  if (o.backward != "ste" && o.backward != "secant") throw Error("backward: must be ste or secant, got '" + o.backward + "'");
}

TrainableNetwork::TrainableNetwork() : impl_(std::make_unique<Impl>()) {}

TrainableNetwork::TrainableNetwork(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width, int classes,
                                   std::uint64_t seed, std::int64_t hidden_width)
    : impl_(std::make_unique<Impl>()) {
  impl_->arch = arch;
  impl_->load(build_architecture(arch, channels, height, width, classes, seed, hidden_width), arch);
}

TrainableNetwork TrainableNetwork::from_onnx(const std::string& bytes, const std::string& source) {
  TrainableNetwork net;
  net.impl_->arch = source;
  net.impl_->load(bytes, source);
  return net;
}

TrainableNetwork TrainableNetwork::from_onnx_file(const std::string& path) {
  return from_onnx(read_input_file(path), path);
}

TrainableNetwork::~TrainableNetwork() = default;
TrainableNetwork::TrainableNetwork(TrainableNetwork&&) noexcept = default;

const std::vector<float>& TrainableNetwork::parameters() const { return impl_->flat; }
const std::string& TrainableNetwork::arch() const { return impl_->arch; }
const Graph& TrainableNetwork::graph() const { return *impl_->graph; }

void TrainableNetwork::set_parameters(std::vector<float> values) {
  if (values.size() != impl_->flat.size())
    throw Error("set_parameters: " + std::to_string(values.size()) + " values for " + std::to_string(impl_->flat.size()) + " parameters");
  std::size_t at = 0;
  for (const auto& name : impl_->graph->parameters()) {
    Tensor& t = impl_->graph->parameter(name);
    std::copy(values.begin() + static_cast<std::ptrdiff_t>(at), values.begin() + static_cast<std::ptrdiff_t>(at + static_cast<std::size_t>(t.numel())), t.f());
    at += static_cast<std::size_t>(t.numel());
  }
  impl_->graph->parameters_changed();
  impl_->flat = std::move(values);
}

std::vector<EpochReport> TrainableNetwork::train(const Dataset& data, const TrainOptions& options,
                                                 const std::function<void(std::int64_t, std::int64_t)>& on_progress,
                                                 const std::function<void(const EpochReport&)>& on_epoch) {
  TrainOptions checked = options;
  if (!known_architecture(checked.arch)) checked.arch = "mlp";  // (the architecture is the model's)
  validate(checked);
  Impl& m = *impl_;
  Graph& graph = *m.graph;
  if (data.count == 0) throw Error(data.name + ": the training set is empty");
  const std::vector<std::string>& names = graph.parameters();
  const std::size_t np = names.size();
  std::vector<Tensor*> params(np);
  for (std::size_t p = 0; p < np; ++p) params[p] = &graph.parameter(names[p]);
  std::vector<std::vector<float>> velocity(np), second(np);
  for (std::size_t p = 0; p < np; ++p) {
    velocity[p].assign(static_cast<std::size_t>(params[p]->numel()), 0.0f);
    second[p].assign(static_cast<std::size_t>(params[p]->numel()), 0.0f);
  }
  // BatchNormalization: running statistics move with the micro-batches' mean statistics.
  const std::vector<std::size_t> bn_steps = graph.steps_of("BatchNormalization");
  const std::int64_t batches = (data.count + options.batch_size - 1) / options.batch_size;
  BatchWork work;
  std::vector<std::int64_t> order(static_cast<std::size_t>(data.count));
  std::vector<float> batch_images;
  std::vector<std::uint8_t> batch_labels;
  std::vector<EpochReport> reports;
  std::int64_t step = 0;
  const std::int64_t image_size = data.image_size();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    // Fisher–Yates shuffle driven by the counter-based generator: a function of (seed, epoch).
    for (std::int64_t k = 0; k < data.count; ++k) order[k] = k;
    const models::CounterRng shuffle(options.seed, kStreamShuffle + static_cast<std::uint64_t>(epoch));
    for (std::int64_t k = data.count - 1; k > 0; --k)
      std::swap(order[k], order[shuffle.below(static_cast<std::uint64_t>(k), static_cast<std::uint32_t>(k + 1))]);
    const models::CounterRng flip(options.seed, kStreamFlip + static_cast<std::uint64_t>(epoch));
    double lr = options.learning_rate;
    // Cosine annealing without restarts (Loshchilov & Hutter, SGDR, ICLR 2017), per epoch.
    if (options.schedule == "cosine") lr = 0.5 * options.learning_rate * (1.0 + models::det::cos(M_PI * epoch / options.epochs));
    double epoch_loss = 0;
    std::int64_t epoch_correct = 0;
    for (std::int64_t b = 0; b < batches; ++b) {
      const std::int64_t first = b * options.batch_size;
      const std::int64_t n = std::min<std::int64_t>(options.batch_size, data.count - first);
      batch_images.resize(static_cast<std::size_t>(n * image_size));
      batch_labels.resize(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t src = order[first + i];
        const float* from = data.images.data() + src * image_size;
        float* to = batch_images.data() + i * image_size;
        // A mirrored garment is the same garment: flip with probability 1/2, decided by
        // (seed, epoch, position in the epoch).
        if (options.flip && flip.below(static_cast<std::uint64_t>(first + i), 2) == 1) {
          for (std::int64_t row = 0; row < data.channels * data.height; ++row)
            std::reverse_copy(from + row * data.width, from + (row + 1) * data.width, to + row * data.width);
        } else {
          std::copy(from, from + image_size, to);
        }
        batch_labels[i] = data.labels[src];
      }
      // Program the layers with the current weights: the hardware's substrates and noise sites
      // as evaluation programs them for trial = step, or the exact product.
      if (options.program_hardware) {
        options.program_hardware(graph, models::ProgramContext{options.hardware_seed, static_cast<std::uint64_t>(step)});
      } else {
        graph.program_ideal();
        graph.set_noise_sites({}, 0, 0);
      }
      const std::int64_t tasks = m.run_batch(batch_images.data(), batch_labels.data(), n, data, options, step, bn_steps, work);
      for (std::int64_t t = 0; t < tasks; ++t) { epoch_loss += work.loss[t]; epoch_correct += work.correct[t]; }
      ++step;
      const float scale = 1.0f / static_cast<float>(n);
      const float lrf = static_cast<float>(lr);
      const bool sgd = options.optimizer == "sgd";
      // Adam (Kingma & Ba, ICLR 2015) with β1 = 0.9, β2 = 0.999, ε = 1e-8; bias corrections.
      const float step_size = static_cast<float>(lr / (1.0 - models::det::pow(0.9, static_cast<double>(step))));
      const float c2_sqrt = static_cast<float>(std::sqrt(1.0 - models::det::pow(0.999, static_cast<double>(step))));
      // Reduce and update in parallel over fixed parameter ranges: each element sums the task
      // gradients in task order, so the result does not depend on the thread count.
      constexpr std::int64_t kParamChunk = 1 << 15;
      for (std::size_t p = 0; p < np; ++p) {
        float* w = params[p]->f();
        const std::int64_t count = params[p]->numel();
        const bool decays = params[p]->rank() >= 2;
        const std::int64_t chunks = (count + kParamChunk - 1) / kParamChunk;
        // The tasks that sent this parameter a gradient, in task order.
        std::vector<const float*> sources;
        for (std::int64_t t = 0; t < tasks; ++t)
          if (p < work.grads[t].size() && work.grads[t][p].numel() == count) sources.push_back(work.grads[t][p].f());
        parallel_for(chunks, options.threads, [&](std::int64_t c, int) {
          const std::int64_t lo = c * kParamChunk, hi = std::min(count, lo + kParamChunk);
          for (std::int64_t k = lo; k < hi; ++k) {
            float sum = sources.empty() ? 0.0f : sources[0][k];
            for (std::size_t t = 1; t < sources.size(); ++t) sum += sources[t][k];
            const float grad = sum * scale + (decays ? options.weight_decay * w[k] : 0.0f);
            float& v = velocity[p][static_cast<std::size_t>(k)];
            if (sgd) {
              // SGD with momentum as PyTorch formulates it: v ← μ·v + g, w ← w − lr·v.
              v = options.momentum * v + grad;
              w[k] -= lrf * v;
            } else {
              float& s2 = second[p][static_cast<std::size_t>(k)];
              v = 0.9f * v + 0.1f * grad;
              s2 = 0.999f * s2 + 0.001f * grad * grad;
              w[k] -= step_size * v / (std::sqrt(s2) / c2_sqrt + 1e-8f);
            }
          }
        });
      }
      // Running statistics: running ← momentum·running + (1 − momentum)·batch (ONNX's momentum,
      // default 0.9), the batch's being the mean over the micro-batches in task order.
      for (std::size_t j = 0; j < bn_steps.size(); ++j) {
        const NodeSpec& spec = graph.step_spec(bn_steps[j]);
        const auto it = spec.attributes.find("momentum");
        const double momentum = it != spec.attributes.end() ? it->second.f : 0.9;
        Tensor& running_mean = graph.parameter(spec.inputs.at(3));
        Tensor& running_var = graph.parameter(spec.inputs.at(4));
        for (std::int64_t ch = 0; ch < running_mean.numel(); ++ch) {
          double mean = 0, var = 0;
          for (std::int64_t t = 0; t < tasks; ++t) {
            mean += work.bn[t][j].first[ch];
            var += work.bn[t][j].second[ch];
          }
          mean /= static_cast<double>(tasks);
          var /= static_cast<double>(tasks);
          running_mean.f()[ch] = static_cast<float>(momentum * running_mean.f()[ch] + (1 - momentum) * mean);
          running_var.f()[ch] = static_cast<float>(momentum * running_var.f()[ch] + (1 - momentum) * var);
        }
      }
      graph.parameters_changed();
      if (on_progress) on_progress(epoch * batches + b + 1, options.epochs * batches);
    }
    EpochReport r;
    r.epoch = epoch + 1;
    r.loss = epoch_loss / static_cast<double>(data.count);
    r.train_accuracy = static_cast<double>(epoch_correct) / static_cast<double>(data.count);
    r.learning_rate = lr;
    if (!std::isfinite(r.loss)) throw Error("training diverged in epoch " + std::to_string(r.epoch) + " (loss is not finite): lower the learning rate");
    reports.push_back(r);
    if (on_epoch) on_epoch(r);
  }
  graph.program_ideal();
  graph.set_noise_sites({}, 0, 0);
  m.refresh_flat();
  return reports;
}

std::vector<Tensor> TrainableNetwork::gradient(const Dataset& data, const TrainOptions& options) {
  Impl& m = *impl_;
  Graph& graph = *m.graph;
  if (data.count == 0) throw Error(data.name + ": the data set is empty");
  if (options.program_hardware) {
    options.program_hardware(graph, models::ProgramContext{options.hardware_seed, 0});
  } else {
    graph.program_ideal();
    graph.set_noise_sites({}, 0, 0);
  }
  BatchWork work;
  const std::int64_t tasks = m.run_batch(data.images.data(), data.labels.data(), data.count, data, options, 0, {}, work);
  std::vector<Tensor> mean(graph.parameters().size());
  const float scale = 1.0f / static_cast<float>(data.count);
  for (std::size_t p = 0; p < mean.size(); ++p)
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::vector<Tensor>& g = work.grads[t];
      if (p >= g.size() || g[p].numel() == 0) continue;
      if (mean[p].numel() == 0) mean[p] = g[p];
      else
        for (std::int64_t k = 0; k < g[p].numel(); ++k) mean[p].f()[k] += g[p].f()[k];
    }
  for (Tensor& t : mean)
    for (std::int64_t k = 0; k < t.numel(); ++k) t.f()[k] *= scale;
  graph.program_ideal();
  return mean;
}

std::string TrainableNetwork::to_onnx() const {
  const Graph& g = *impl_->graph;
  std::set<std::string> trained(g.parameters().begin(), g.parameters().end());
  for (std::size_t s : g.steps_of("BatchNormalization"))
    for (std::size_t k : {3u, 4u}) trained.insert(g.step_spec(s).inputs.at(k));
  return replace_initializers(impl_->bytes, impl_->source,
                              [&](const std::string& name) -> const Tensor* { return trained.count(name) ? &g.parameter(name) : nullptr; });
}

void TrainableNetwork::save_onnx(const std::string& path) const {
  const std::string bytes = to_onnx();
  auto graph = parse_onnx(bytes, path);  // the file written must load back
  (void)graph;
  write_file_atomically(path, bytes);
}

}  // namespace faultline::nn
