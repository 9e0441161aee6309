#include "nn/train.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <fnmatch.h>

#include <limits>

#include "models/det_math.h"
#include "models/error.h"
#include "models/noise.h"
#include "models/philox.h"
#include "models/substrate.h"
#include "nn/im2col.h"
#include "nn/onnx_io.h"
#include "nn/parallel.h"

namespace faultline::nn {
namespace {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<MatrixRM>;
using ConstMap = Eigen::Map<const MatrixRM>;

// Samples per parallel task. Fixed (never derived from the thread count) so that results do
// not depend on it.
constexpr std::int64_t kMicroBatch = 16;

// Random streams of the trainer (the high bits keep them apart from hardware-noise streams).
constexpr std::uint64_t kStreamInit = 0x7472'0000'0000'0000ull;
constexpr std::uint64_t kStreamShuffle = 0x7473'0000'0000'0000ull;
constexpr std::uint64_t kStreamFlip = 0x7466'0000'0000'0000ull;

enum class Kind { Conv, Linear, Relu, MaxPool, Flatten };

struct Layer {
  Kind kind;
  // Shapes per sample (C, H, W) of input and output.
  std::int64_t in_c = 0, in_h = 1, in_w = 1, out_c = 0, out_h = 1, out_w = 1;
  // Conv: kernel size and padding (stride 1). MaxPool: window = stride = 2.
  std::int64_t kernel = 0, pad = 0;
  // Offsets of the weights and biases in the flat parameter vector.
  std::int64_t w_offset = 0, w_size = 0, b_offset = 0, b_size = 0;
  std::string name;        // the ONNX node name the export gives it (conv1, fc2, relu3, ...)
  int linear_index = -1;   // position among the Conv/Linear layers (the graph's layer index)

  std::int64_t in_size() const { return in_c * in_h * in_w; }
  std::int64_t out_size() const { return out_c * out_h * out_w; }
  ConvGeometry geometry() const {
    ConvGeometry g;
    g.channels = in_c;
    g.height = in_h;
    g.width = in_w;
    g.kernel_h = g.kernel_w = kernel;
    g.pad_top = g.pad_left = pad;
    g.out_h = out_h;
    g.out_w = out_w;
    return g;
  }
};

// Activations and scratch space of one task.
struct Workspace {
  std::vector<std::vector<float>> acts;      // acts[l]: input of layer l (acts.back(): logits)
  std::vector<std::vector<float>> cols;      // im2col rows of conv layers
  std::vector<std::vector<std::int32_t>> argmax;
  std::vector<float> grad, grad_next, scratch, factors, exact;
  std::vector<std::vector<float>> gains;     // per layer: the hardware's frozen per-output gain (secant backward)
};

}  // namespace

struct TrainableNetwork::Impl {
  std::string arch;
  std::int64_t channels, height, width;
  int classes;
  std::vector<Layer> layers;
  std::vector<float> params;
  int conv_count = 0, fc_count = 0, relu_count = 0, pool_count = 0, linear_count = 0;
  // Hardware in the loop (TrainOptions::hardware), per layer: the substrate of its unit (null:
  // exact product) and the Walking Noise of a site after it; set for the current step.
  std::vector<std::unique_ptr<models::Substrate>> hw;
  std::vector<float> site_add, site_mul;
  std::uint64_t noise_seed = 0, noise_trial = 0;
  bool secant = false;  // TrainOptions::backward == "secant"
  void attach_hardware(const HardwareConfig& config);
  void program_hardware(std::uint64_t seed, std::uint64_t step);

  // Walking Noise of a site after layer `li` on y (rows of `per_sample` values starting at sample
  // `first_sample`), keyed by (seed, step, layer, element) like the graph's noise sites.
  void apply_site(std::size_t li, std::int64_t first_sample, std::int64_t n, float* y) const {
    const Layer& l = layers[li];
    const models::CounterRng rng(noise_seed, models::stream_id(noise_trial, l.linear_index, 0, models::Purpose::SiteNoise));
    models::apply_noise(rng, static_cast<std::uint64_t>(first_sample * l.out_size()), site_add[li], site_mul[li], y, n * l.out_size());
  }
  // The secant backward: g = y_hw / y_exact per output, clamped to [0, 1] (1 where the exact
  // product is ~0), so that an output the hardware compressed (membrane saturation, falling
  // position gain) passes proportionally less gradient: the chain rule through y_hw = g·y_exact
  // with g frozen, instead of straight-through (g ≡ 1).
  static void secant_gains(const float* hw, const float* exact, std::size_t count, std::vector<float>& out) {
    out.resize(count);
    float scale = 0;
    for (std::size_t k = 0; k < count; ++k) scale = std::max(scale, std::fabs(exact[k]));
    const float tiny = 1e-3f * scale;
    for (std::size_t k = 0; k < count; ++k)
      out[k] = std::fabs(exact[k]) <= tiny ? 1.0f : std::clamp(hw[k] / exact[k], 0.0f, 1.0f);
  }
  // The multiplicative factors apply_site used (the gradient through y·(1 + σ·ε) is dy·(1 + σ·ε)).
  void site_factors(std::size_t li, std::int64_t first_sample, std::int64_t n, std::vector<float>& out) const {
    const Layer& l = layers[li];
    const models::CounterRng rng(noise_seed, models::stream_id(noise_trial, l.linear_index, 0, models::Purpose::SiteNoise));
    out.resize(static_cast<std::size_t>(n * l.out_size()));
    rng.fill_normal((std::uint64_t{1} << 62) + static_cast<std::uint64_t>(first_sample * l.out_size()), out.size(), out.data());
    for (float& v : out) v = 1.0f + site_mul[li] * v;
  }

  void add(Kind kind, std::int64_t out_c_or_features, std::int64_t kernel = 0, std::int64_t pad = 0) {
    Layer l;
    l.kind = kind;
    if (layers.empty()) { l.in_c = channels; l.in_h = height; l.in_w = width; }
    else { l.in_c = layers.back().out_c; l.in_h = layers.back().out_h; l.in_w = layers.back().out_w; }
    switch (kind) {
      case Kind::Conv:
        l.kernel = kernel;
        l.pad = pad;
        l.out_c = out_c_or_features;
        l.out_h = l.in_h + 2 * pad - kernel + 1;
        l.out_w = l.in_w + 2 * pad - kernel + 1;
        l.w_size = l.out_c * l.in_c * kernel * kernel;
        l.b_size = l.out_c;
        break;
      case Kind::Linear:
        l.out_c = out_c_or_features;
        l.out_h = l.out_w = 1;
        l.w_size = l.out_c * l.in_size();
        l.b_size = l.out_c;
        break;
      case Kind::MaxPool:
        l.out_c = l.in_c;
        l.out_h = l.in_h / 2;
        l.out_w = l.in_w / 2;
        break;
      case Kind::Flatten:
        l.out_c = l.in_size();
        l.out_h = l.out_w = 1;
        break;
      case Kind::Relu:
        l.out_c = l.in_c;
        l.out_h = l.in_h;
        l.out_w = l.in_w;
        break;
    }
    if (l.out_h < 1 || l.out_w < 1) throw Error("architecture '" + arch + "' does not fit " + std::to_string(height) + "×" + std::to_string(width) + " images");
    switch (kind) {
      case Kind::Conv: l.name = "conv" + std::to_string(++conv_count); l.linear_index = linear_count++; break;
      case Kind::Linear: l.name = "fc" + std::to_string(++fc_count); l.linear_index = linear_count++; break;
      case Kind::Relu: l.name = "relu" + std::to_string(++relu_count); break;
      case Kind::MaxPool: l.name = "pool" + std::to_string(++pool_count); break;
      case Kind::Flatten: l.name = "flatten"; break;
    }
    l.w_offset = static_cast<std::int64_t>(params.size());
    l.b_offset = l.w_offset + l.w_size;
    params.resize(params.size() + static_cast<std::size_t>(l.w_size + l.b_size), 0.0f);
    layers.push_back(l);
  }

  // One micro-batch: forward, softmax cross-entropy, backward. Adds the summed (not averaged)
  // parameter gradient into `grad_out`; returns the summed loss and counts correct predictions.
  // `first_sample` is the micro-batch's first sample within the mini-batch (the row keys of the
  // hardware's noise).
  double forward_backward(const float* images, const std::uint8_t* labels, std::int64_t n, std::int64_t first_sample, Workspace& ws,
                          float* grad_out, std::int64_t* correct) const {
    const std::size_t depth = layers.size();
    ws.acts.resize(depth + 1);
    ws.cols.resize(depth);
    ws.argmax.resize(depth);
    ws.acts[0].assign(images, images + n * layers[0].in_size());
    for (std::size_t li = 0; li < depth; ++li) {
      const Layer& l = layers[li];
      const float* x = ws.acts[li].data();
      std::vector<float>& y = ws.acts[li + 1];
      y.resize(static_cast<std::size_t>(n * l.out_size()));
      switch (l.kind) {
        case Kind::Conv: {
          const ConvGeometry g = l.geometry();
          const std::int64_t p = g.patches(), k = g.patch_size();
          ws.cols[li].resize(static_cast<std::size_t>(n * p * k));
          for (std::int64_t i = 0; i < n; ++i) im2col(g, x + i * l.in_size(), ws.cols[li].data() + i * p * k);
          ws.scratch.resize(static_cast<std::size_t>(n * p * l.out_c));
          Map prod(ws.scratch.data(), n * p, l.out_c);
          if (!hw.empty() && hw[li]) {
            hw[li]->multiply(ConstMap(ws.cols[li].data(), n * p, k), prod, models::MultiplyContext{static_cast<std::uint64_t>(first_sample * p)});
            if (secant) {
              ws.exact.resize(static_cast<std::size_t>(n * p * l.out_c));
              Map(ws.exact.data(), n * p, l.out_c).noalias() =
                  ConstMap(ws.cols[li].data(), n * p, k) * ConstMap(params.data() + l.w_offset, l.out_c, k).transpose();
              ws.gains.resize(layers.size());
              secant_gains(ws.scratch.data(), ws.exact.data(), ws.exact.size(), ws.gains[li]);  // prod layout: (n·p) × out_c
            }
          } else
            prod.noalias() = ConstMap(ws.cols[li].data(), n * p, k) * ConstMap(params.data() + l.w_offset, l.out_c, k).transpose();
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t c = 0; c < l.out_c; ++c) {
              const float b = params[l.b_offset + c];
              float* dst = y.data() + (i * l.out_c + c) * p;
              for (std::int64_t q = 0; q < p; ++q) dst[q] = prod(i * p + q, c) + b;
            }
          if (!site_add.empty() && (site_add[li] != 0 || site_mul[li] != 0)) apply_site(li, first_sample, n, y.data());
          break;
        }
        case Kind::Linear: {
          Map out(y.data(), n, l.out_c);
          if (!hw.empty() && hw[li]) {
            hw[li]->multiply(ConstMap(x, n, l.in_size()), out, models::MultiplyContext{static_cast<std::uint64_t>(first_sample)});
            if (secant) {
              ws.exact.resize(static_cast<std::size_t>(n * l.out_c));
              Map(ws.exact.data(), n, l.out_c).noalias() = ConstMap(x, n, l.in_size()) * ConstMap(params.data() + l.w_offset, l.out_c, l.in_size()).transpose();
              ws.gains.resize(layers.size());
              secant_gains(y.data(), ws.exact.data(), ws.exact.size(), ws.gains[li]);
            }
          } else
            out.noalias() = ConstMap(x, n, l.in_size()) * ConstMap(params.data() + l.w_offset, l.out_c, l.in_size()).transpose();
          out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(params.data() + l.b_offset, l.out_c);
          if (!site_add.empty() && (site_add[li] != 0 || site_mul[li] != 0)) apply_site(li, first_sample, n, y.data());
          break;
        }
        case Kind::Relu:
          for (std::size_t k = 0; k < y.size(); ++k) y[k] = x[k] > 0.0f ? x[k] : 0.0f;
          break;
        case Kind::MaxPool: {
          ws.argmax[li].resize(y.size());
          for (std::int64_t plane = 0; plane < n * l.in_c; ++plane) {
            const float* src = x + plane * l.in_h * l.in_w;
            for (std::int64_t oy = 0; oy < l.out_h; ++oy)
              for (std::int64_t ox = 0; ox < l.out_w; ++ox) {
                std::int32_t best = static_cast<std::int32_t>((2 * oy) * l.in_w + 2 * ox);
                for (std::int64_t dy = 0; dy < 2; ++dy)
                  for (std::int64_t dx = 0; dx < 2; ++dx) {
                    const std::int32_t at = static_cast<std::int32_t>((2 * oy + dy) * l.in_w + 2 * ox + dx);
                    if (src[at] > src[best]) best = at;
                  }
                const std::int64_t o = (plane * l.out_h + oy) * l.out_w + ox;
                y[o] = src[best];
                ws.argmax[li][o] = best;
              }
          }
          break;
        }
        case Kind::Flatten:
          std::copy(x, x + n * l.in_size(), y.begin());
          break;
      }
    }
    // Softmax cross-entropy on the logits; its gradient starts the backward pass.
    const std::vector<float>& logits = ws.acts[depth];
    ws.grad.assign(logits.size(), 0.0f);
    double loss = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const float* z = logits.data() + i * classes;
      const float mx = *std::max_element(z, z + classes);
      double sum = 0;
      for (int c = 0; c < classes; ++c) sum += models::det::exp(static_cast<double>(z[c] - mx));
      const double log_sum = models::det::log(sum) + mx;
      loss += log_sum - z[labels[i]];
      if (std::max_element(z, z + classes) - z == labels[i]) ++*correct;
      for (int c = 0; c < classes; ++c)
        ws.grad[i * classes + c] = static_cast<float>(models::det::exp(z[c] - log_sum)) - (c == labels[i] ? 1.0f : 0.0f);
    }
    for (std::size_t li = depth; li-- > 0;) {
      const Layer& l = layers[li];
      const float* x = ws.acts[li].data();
      const bool need_input_grad = li > 0;
      ws.grad_next.assign(static_cast<std::size_t>(n * l.in_size()), 0.0f);
      if (!site_mul.empty() && site_mul[li] != 0) {
        site_factors(li, first_sample, n, ws.factors);
        for (std::size_t k = 0; k < ws.grad.size(); ++k) ws.grad[k] *= ws.factors[k];
      }
      switch (l.kind) {
        case Kind::Conv: {
          const ConvGeometry g = l.geometry();
          const std::int64_t p = g.patches(), k = g.patch_size();
          ws.scratch.resize(static_cast<std::size_t>(n * p * l.out_c));
          Map dy(ws.scratch.data(), n * p, l.out_c);
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t c = 0; c < l.out_c; ++c) {
              const float* src = ws.grad.data() + (i * l.out_c + c) * p;
              for (std::int64_t q = 0; q < p; ++q) dy(i * p + q, c) = src[q];
            }
          if (secant && !hw.empty() && hw[li]) dy.array() *= Eigen::Map<const Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(ws.gains[li].data(), n * p, l.out_c);
          ConstMap cols(ws.cols[li].data(), n * p, k);
          Map(grad_out + l.w_offset, l.out_c, k).noalias() += dy.transpose() * cols;
          Eigen::Map<Eigen::RowVectorXf>(grad_out + l.b_offset, l.out_c) += dy.colwise().sum();
          if (need_input_grad) {
            MatrixRM dcols = dy * ConstMap(params.data() + l.w_offset, l.out_c, k);
            for (std::int64_t i = 0; i < n; ++i) col2im_add(g, dcols.data() + i * p * k, ws.grad_next.data() + i * l.in_size());
          }
          break;
        }
        case Kind::Linear: {
          if (secant && !hw.empty() && hw[li])
            for (std::size_t e = 0; e < ws.grad.size(); ++e) ws.grad[e] *= ws.gains[li][e];
          ConstMap dy(ws.grad.data(), n, l.out_c);
          ConstMap xin(x, n, l.in_size());
          Map(grad_out + l.w_offset, l.out_c, l.in_size()).noalias() += dy.transpose() * xin;
          Eigen::Map<Eigen::RowVectorXf>(grad_out + l.b_offset, l.out_c) += dy.colwise().sum();
          if (need_input_grad)
            Map(ws.grad_next.data(), n, l.in_size()).noalias() = dy * ConstMap(params.data() + l.w_offset, l.out_c, l.in_size());
          break;
        }
        case Kind::Relu: {
          const std::vector<float>& y = ws.acts[li + 1];
          for (std::size_t k = 0; k < y.size(); ++k) ws.grad_next[k] = y[k] > 0.0f ? ws.grad[k] : 0.0f;
          break;
        }
        case Kind::MaxPool:
          for (std::int64_t plane = 0; plane < n * l.in_c; ++plane)
            for (std::int64_t o = 0; o < l.out_h * l.out_w; ++o) {
              const std::int64_t at = plane * l.out_h * l.out_w + o;
              ws.grad_next[plane * l.in_h * l.in_w + ws.argmax[li][at]] += ws.grad[at];
            }
          break;
        case Kind::Flatten:
          ws.grad_next = ws.grad;
          break;
      }
      std::swap(ws.grad, ws.grad_next);
    }
    return loss;
  }
};

// Creates the substrates of a hardware description for the network's Conv/Linear layers and
// resolves its noise sites (which must follow Conv/Gemm layers: the trainer's other layers have
// no noise path).
void TrainableNetwork::Impl::attach_hardware(const HardwareConfig& config) {
  Impl& m = *this;
  m.hw.clear();
  m.hw.resize(m.layers.size());
  m.site_add.assign(m.layers.size(), 0.0f);
  m.site_mul.assign(m.layers.size(), 0.0f);
  for (std::size_t li = 0; li < m.layers.size(); ++li) {
    const Layer& l = m.layers[li];
    const std::string op = l.kind == Kind::Conv ? "Conv" : l.kind == Kind::Linear ? "Gemm" : l.kind == Kind::Relu ? "Relu"
                           : l.kind == Kind::MaxPool ? "MaxPool" : "Flatten";
    if (l.linear_index >= 0) {
      if (const HardwareUnit* unit = config.unit_for(l.name, op)) {
        if (unit->kind != models::exact_kind_name()) m.hw[li] = models::create_substrate(unit->kind, unit->params);
      }
    }
    for (const auto& site : config.noise_sites) {
      if (!site.op.empty() && site.op != op) continue;
      if (fnmatch(site.nodes.c_str(), l.name.c_str(), 0) != 0) continue;
      if (l.linear_index < 0 && (site.sigma_add != 0 || site.sigma_mul != 0))
        throw Error(config.source + ": noise after '" + site.nodes + "' matches " + l.name + " (" + op +
                    "): training injects noise sites after Conv/Gemm layers only");
      m.site_add[li] = site.sigma_add;
      m.site_mul[li] = site.sigma_mul;
      break;
    }
  }
}

void TrainableNetwork::Impl::program_hardware(std::uint64_t seed, std::uint64_t step) {
  Impl& m = *this;
  m.noise_seed = seed;
  m.noise_trial = step;
  for (std::size_t li = 0; li < m.layers.size(); ++li) {
    if (!m.hw[li]) continue;
    const Layer& l = m.layers[li];
    const std::int64_t k = l.w_size / l.out_c;
    const models::MatrixRM w = ConstMap(m.params.data() + l.w_offset, l.out_c, k);
    m.hw[li]->program(w, models::LayerInfo{l.name, l.kind == Kind::Conv ? "Conv" : "Gemm", l.linear_index, 0},
                      models::ProgramContext{seed, step});
  }
}

void validate(const TrainOptions& o) {
  if (o.arch != "mlp" && o.arch != "lenet5") throw Error("--arch: unknown architecture '" + o.arch + "' (mlp, lenet5)");
  if (o.epochs < 1 || o.epochs > 100000) throw Error("--epochs: must be between 1 and 100000, got " + std::to_string(o.epochs));
  if (o.batch_size < 1 || o.batch_size > 65536) throw Error("--batch-size: must be between 1 and 65536, got " + std::to_string(o.batch_size));
  if (o.optimizer != "adam" && o.optimizer != "sgd") throw Error("--optimizer: unknown optimizer '" + o.optimizer + "' (adam, sgd)");
  if (!(o.learning_rate > 0.0f) || !std::isfinite(o.learning_rate)) throw Error("--lr: must be a positive number");
  if (!(o.momentum >= 0.0f && o.momentum < 1.0f)) throw Error("--momentum: must be in [0, 1)");
  if (!(o.weight_decay >= 0.0f) || !std::isfinite(o.weight_decay)) throw Error("--weight-decay: must be a non-negative number");
  if (o.schedule != "cosine" && o.schedule != "constant") throw Error("--schedule: unknown schedule '" + o.schedule + "' (cosine, constant)");
  if (o.threads < 1) throw Error("--threads: must be at least 1");
  if (o.backward != "ste" && o.backward != "secant") throw Error("--backward: must be ste or secant, got '" + o.backward + "'");
}

TrainableNetwork::TrainableNetwork(const std::string& arch, std::int64_t channels, std::int64_t height, std::int64_t width,
                                   int classes, std::uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.arch = arch;
  m.channels = channels;
  m.height = height;
  m.width = width;
  m.classes = classes;
  if (arch == "mlp") {
    // The Walking Noise "SFC" shape: 3 hidden layers of 256 (Borras, Klein, Fröning, arXiv 2212.10430).
    m.add(Kind::Flatten, 0);
    for (int h = 0; h < 3; ++h) { m.add(Kind::Linear, 256); m.add(Kind::Relu, 0); }
    m.add(Kind::Linear, classes);
  } else if (arch == "lenet5") {
    // LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) with ReLU and max pooling: C1 6@5×5 (padded so
    // that 28×28 inputs give the original 28×28 maps), S2, C3 16@5×5, S4, F5 120, F6 84, output.
    m.add(Kind::Conv, 6, 5, 2); m.add(Kind::Relu, 0); m.add(Kind::MaxPool, 0);
    m.add(Kind::Conv, 16, 5, 0); m.add(Kind::Relu, 0); m.add(Kind::MaxPool, 0);
    m.add(Kind::Flatten, 0);
    m.add(Kind::Linear, 120); m.add(Kind::Relu, 0);
    m.add(Kind::Linear, 84); m.add(Kind::Relu, 0);
    m.add(Kind::Linear, classes);
  } else {
    throw Error("--arch: unknown architecture '" + arch + "' (mlp, lenet5)");
  }
  // He-uniform weights, U(−√(6/fan_in), √(6/fan_in)) (He, Zhang, Ren, Sun, ICCV 2015), zero biases.
  const models::CounterRng rng(seed, kStreamInit);
  for (const Layer& l : m.layers) {
    if (l.w_size == 0) continue;
    const std::int64_t fan_in = l.w_size / l.out_c;
    const float bound = std::sqrt(6.0f / static_cast<float>(fan_in));
    for (std::int64_t k = 0; k < l.w_size; ++k)
      m.params[l.w_offset + k] = (2.0f * rng.uniform(static_cast<std::uint64_t>(l.w_offset + k)) - 1.0f) * bound;
  }
}

TrainableNetwork::~TrainableNetwork() = default;
TrainableNetwork::TrainableNetwork(TrainableNetwork&&) noexcept = default;

const std::vector<float>& TrainableNetwork::parameters() const { return impl_->params; }
const std::string& TrainableNetwork::arch() const { return impl_->arch; }

void TrainableNetwork::set_parameters(std::vector<float> values) {
  if (values.size() != impl_->params.size())
    throw Error("set_parameters: " + std::to_string(values.size()) + " values for " + std::to_string(impl_->params.size()) + " parameters");
  impl_->params = std::move(values);
}

std::vector<EpochReport> TrainableNetwork::train(const Dataset& data, const TrainOptions& options,
                                                 const std::function<void(std::int64_t, std::int64_t)>& on_progress,
                                                 const std::function<void(const EpochReport&)>& on_epoch) {
  validate(options);
  Impl& m = *impl_;
  if (data.channels != m.channels || data.height != m.height || data.width != m.width)
    throw Error(data.name + ": images are " + std::to_string(data.channels) + "×" + std::to_string(data.height) + "×" +
                std::to_string(data.width) + ", the network expects " + std::to_string(m.channels) + "×" +
                std::to_string(m.height) + "×" + std::to_string(m.width));
  if (data.count == 0) throw Error(data.name + ": the training set is empty");
  const std::size_t np = m.params.size();
  std::vector<float> velocity(np, 0.0f), second(np, 0.0f);
  std::vector<bool> decays(np, false);
  for (const Layer& l : m.layers) std::fill(decays.begin() + l.w_offset, decays.begin() + l.w_offset + l.w_size, true);
  const std::int64_t batches = (data.count + options.batch_size - 1) / options.batch_size;
  const std::int64_t max_tasks = (options.batch_size + kMicroBatch - 1) / kMicroBatch;
  std::vector<std::vector<float>> task_grads(static_cast<std::size_t>(max_tasks), std::vector<float>(np));
  std::vector<double> task_loss(static_cast<std::size_t>(max_tasks));
  std::vector<std::int64_t> task_correct(static_cast<std::size_t>(max_tasks));
  std::vector<Workspace> workspaces(static_cast<std::size_t>(options.threads));
  std::vector<std::int64_t> order(static_cast<std::size_t>(data.count));
  std::vector<float> batch_images;
  std::vector<std::uint8_t> batch_labels;
  std::vector<EpochReport> reports;
  std::int64_t step = 0;
  const std::int64_t image_size = data.image_size();
  if (options.hardware) m.attach_hardware(*options.hardware);
  m.secant = options.hardware && options.backward == "secant";
  struct Detach {
    Impl& m;
    ~Detach() { m.hw.clear(); m.site_add.clear(); m.site_mul.clear(); m.secant = false; }
  } detach{m};
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
      if (options.hardware) m.program_hardware(options.hardware_seed, static_cast<std::uint64_t>(step));
      const std::int64_t tasks = (n + kMicroBatch - 1) / kMicroBatch;
      parallel_for(tasks, options.threads, [&](std::int64_t t, int worker) {
        const std::int64_t t0 = t * kMicroBatch, tn = std::min(kMicroBatch, n - t0);
        std::fill(task_grads[t].begin(), task_grads[t].end(), 0.0f);
        task_correct[t] = 0;
        task_loss[t] = m.forward_backward(batch_images.data() + t0 * image_size, batch_labels.data() + t0, tn, t0,
                                          workspaces[worker], task_grads[t].data(), &task_correct[t]);
      });
      for (std::int64_t t = 0; t < tasks; ++t) { epoch_loss += task_loss[t]; epoch_correct += task_correct[t]; }
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
      const std::int64_t chunks = (static_cast<std::int64_t>(np) + kParamChunk - 1) / kParamChunk;
      parallel_for(chunks, options.threads, [&](std::int64_t c, int) {
        const std::size_t lo = static_cast<std::size_t>(c * kParamChunk);
        const std::size_t hi = std::min(np, lo + static_cast<std::size_t>(kParamChunk));
        for (std::size_t k = lo; k < hi; ++k) {
          float sum = task_grads[0][k];
          for (std::int64_t t = 1; t < tasks; ++t) sum += task_grads[t][k];
          const float g = sum * scale + (decays[k] ? options.weight_decay * m.params[k] : 0.0f);
          if (sgd) {
            // SGD with momentum as PyTorch formulates it: v ← μ·v + g, w ← w − lr·v.
            velocity[k] = options.momentum * velocity[k] + g;
            m.params[k] -= lrf * velocity[k];
          } else {
            velocity[k] = 0.9f * velocity[k] + 0.1f * g;
            second[k] = 0.999f * second[k] + 0.001f * g * g;
            m.params[k] -= step_size * velocity[k] / (std::sqrt(second[k]) / c2_sqrt + 1e-8f);
          }
        }
      });
      if (on_progress) on_progress(epoch * batches + b + 1, options.epochs * batches);
    }
    EpochReport r;
    r.epoch = epoch + 1;
    r.loss = epoch_loss / static_cast<double>(data.count);
    r.train_accuracy = static_cast<double>(epoch_correct) / static_cast<double>(data.count);
    r.learning_rate = lr;
    if (!std::isfinite(r.loss)) throw Error("training diverged in epoch " + std::to_string(r.epoch) + " (loss is not finite): lower --lr");
    reports.push_back(r);
    if (on_epoch) on_epoch(r);
  }
  return reports;
}

std::string TrainableNetwork::to_onnx() const {
  const Impl& m = *impl_;
  OnnxModelBuilder builder("faultline_" + m.arch);
  builder.set_doc("Trained by faultline (" + m.arch + ")");
  builder.add_input("input", {-1, m.channels, m.height, m.width});
  std::string current = "input";
  int conv = 0, fc = 0, relu = 0, pool = 0;
  // Writes a layer's weights (in `weight_shape`) and biases as initializers NAME.weight/.bias.
  auto add_parameters = [&](const Layer& l, const std::string& name, Shape weight_shape) {
    Tensor w(std::move(weight_shape)), b({l.out_c});
    std::copy(m.params.begin() + l.w_offset, m.params.begin() + l.w_offset + l.w_size, w.f());
    std::copy(m.params.begin() + l.b_offset, m.params.begin() + l.b_offset + l.b_size, b.f());
    builder.add_initializer(name + ".weight", w);
    builder.add_initializer(name + ".bias", b);
  };
  for (std::size_t li = 0; li < m.layers.size(); ++li) {
    const Layer& l = m.layers[li];
    const bool last = li + 1 == m.layers.size();
    std::string name, out;
    switch (l.kind) {
      case Kind::Conv: {
        name = "conv" + std::to_string(++conv);
        out = last ? "logits" : name;
        add_parameters(l, name, {l.out_c, l.in_c, l.kernel, l.kernel});
        builder.add_node("Conv", name, {current, name + ".weight", name + ".bias"}, {out},
                         {{"kernel_shape", ints_attribute({l.kernel, l.kernel})},
                          {"pads", ints_attribute({l.pad, l.pad, l.pad, l.pad})},
                          {"strides", ints_attribute({1, 1})}});
        break;
      }
      case Kind::Linear: {
        name = "fc" + std::to_string(++fc);
        out = last ? "logits" : name;
        add_parameters(l, name, {l.out_c, l.in_size()});
        builder.add_node("Gemm", name, {current, name + ".weight", name + ".bias"}, {out},
                         {{"alpha", float_attribute(1.0f)}, {"beta", float_attribute(1.0f)}, {"transB", int_attribute(1)}});
        break;
      }
      case Kind::Relu:
        name = "relu" + std::to_string(++relu);
        out = last ? "logits" : name;
        builder.add_node("Relu", name, {current}, {out});
        break;
      case Kind::MaxPool:
        name = "pool" + std::to_string(++pool);
        out = last ? "logits" : name;
        builder.add_node("MaxPool", name, {current}, {out}, {{"kernel_shape", ints_attribute({2, 2})}, {"strides", ints_attribute({2, 2})}});
        break;
      case Kind::Flatten:
        name = "flatten";
        out = last ? "logits" : name;
        builder.add_node("Flatten", name, {current}, {out}, {{"axis", int_attribute(1)}});
        break;
    }
    current = out;
  }
  builder.add_output("logits", {-1, m.classes});
  return builder.serialize();
}

void TrainableNetwork::save_onnx(const std::string& path) const {
  const std::string bytes = to_onnx();
  auto graph = parse_onnx(bytes, path);  // the file written must load back
  (void)graph;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw Error(path + ": cannot open for writing");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) throw Error(path + ": write failed");
}

}  // namespace faultline::nn
