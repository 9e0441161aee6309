#include "nn/op.h"

#include <algorithm>
#include <cmath>

#include "nn/im2col.h"

namespace faultline::nn {

std::string NodeSpec::where() const {
  return "node '" + name + "' (" + op_type + ", opset " + std::to_string(opset) + ")";
}

void NodeSpec::fail(const std::string& what) const { throw Error(where() + ": " + what); }
void NodeSpec::unsupported(const std::string& what) const { throw UnsupportedError(where() + ": " + what); }

const Attribute& NodeSpec::get(const std::string& attr) const {
  auto it = attributes.find(attr);
  if (it == attributes.end()) fail("missing required attribute '" + attr + "'");
  used_.insert(attr);
  return it->second;
}

std::int64_t NodeSpec::get_int(const std::string& attr, std::int64_t fallback) const {
  if (!has(attr)) return fallback;
  const Attribute& a = get(attr);
  if (a.kind != Attribute::Kind::Int) fail("attribute '" + attr + "' must be an int");
  return a.i;
}

float NodeSpec::get_float(const std::string& attr, float fallback) const {
  if (!has(attr)) return fallback;
  const Attribute& a = get(attr);
  if (a.kind != Attribute::Kind::Float) fail("attribute '" + attr + "' must be a float");
  return a.f;
}

std::string NodeSpec::get_string(const std::string& attr, const std::string& fallback) const {
  if (!has(attr)) return fallback;
  const Attribute& a = get(attr);
  if (a.kind != Attribute::Kind::String) fail("attribute '" + attr + "' must be a string");
  return a.s;
}

std::vector<std::int64_t> NodeSpec::get_ints(const std::string& attr, std::vector<std::int64_t> fallback) const {
  if (!has(attr)) return fallback;
  const Attribute& a = get(attr);
  if (a.kind != Attribute::Kind::Ints) fail("attribute '" + attr + "' must be a list of ints");
  return a.ints;
}

std::vector<float> NodeSpec::get_floats(const std::string& attr, std::vector<float> fallback) const {
  if (!has(attr)) return fallback;
  const Attribute& a = get(attr);
  if (a.kind != Attribute::Kind::Floats) fail("attribute '" + attr + "' must be a list of floats");
  return a.floats;
}

void NodeSpec::reject_unread_attributes() const {
  for (const auto& entry : attributes)
    if (!used_.count(entry.first)) unsupported("unsupported attribute '" + entry.first + "'");
}

void NodeSpec::expect_inputs(std::size_t min, std::size_t max) const {
  std::size_t present = inputs.size();
  while (present > 0 && inputs[present - 1].empty()) --present;
  if (present < min || inputs.size() > max) {
    fail("expects " + (min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max)) +
         " inputs, has " + std::to_string(inputs.size()));
  }
  for (std::size_t k = 0; k < min; ++k)
    if (inputs[k].empty()) fail("required input " + std::to_string(k) + " is missing");
}

void LinearLayer::program(const std::string& kind, const models::Params& params, const models::ProgramContext& context) {
  program(kind, params, context, {});
}

void LinearLayer::program(const std::string& kind, const models::Params& params, const models::ProgramContext& context,
                          const std::function<std::unique_ptr<models::Substrate>(std::unique_ptr<models::Substrate>)>& wrap) {
  kind_ = kind;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    blocks_[b].substrate = models::create_substrate(kind, params);
    if (wrap) blocks_[b].substrate = wrap(std::move(blocks_[b].substrate));
    models::LayerInfo info{name_, op_type_, index_, static_cast<int>(b)};
    info.parts = static_cast<int>(blocks_.size());
    if (b < ranges_.size()) {
      info.calibrated = true;
      info.input_range = ranges_[b].input;
      info.output_range = ranges_[b].output;
    }
    blocks_[b].substrate->program(blocks_[b].weights, info, context);
  }
  std::lock_guard<std::mutex> lock(stats_mutex_);
  partial_stats_.clear();
}

void LinearLayer::program(const std::string& kind, const models::ProgramContext& context) {
  const models::SubstrateKind* k = models::find_substrate_kind(kind);
  program(kind, k ? models::default_params(k->params) : models::Params{}, context);
}

void LinearLayer::multiply(std::size_t block, const Eigen::Ref<const models::MatrixRM>& x,
                           Eigen::Ref<models::MatrixRM> y, std::uint64_t first_row, const float* output_bias,
                           std::uint64_t rows_per_sample) const {
  const Block& b = blocks_[block];
  if (!b.substrate) throw std::logic_error("layer '" + name_ + "' was run before it was programmed");
  rows_per_sample_.store(rows_per_sample, std::memory_order_relaxed);
  const models::MultiplyContext context{first_row, rows_per_sample};
  const bool compare = measure_error_ || observer_;
  // The exact product of the read, in a per-thread buffer (no allocation per read); substrates
  // that compute it on the way to their output hand it over instead of it being computed again.
  thread_local models::MatrixRM exact;
  bool have_exact = false;
  if (compare) {
    exact.resize(x.rows(), b.substrate->outputs());
    have_exact = b.substrate->multiply_keeping_exact(x, y, exact, context);
  }
  if (!have_exact) b.substrate->multiply(x, y, context);
  if (record_ranges_ && x.size() > 0 && y.size() > 0) {
    const double xmax = x.cwiseAbs().maxCoeff();
    double ymax = 0;
    for (Eigen::Index r = 0; r < y.rows(); ++r)
      for (Eigen::Index o = 0; o < y.cols(); ++o) ymax = std::max(ymax, static_cast<double>(std::fabs(y(r, o) + (output_bias ? output_bias[o] : 0.0f))));
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ranges_[block].input = std::max(ranges_[block].input, xmax);
    ranges_[block].output = std::max(ranges_[block].output, ymax);
  }
  if (!compare) return;
  if (!have_exact) exact.noalias() = x * b.weights.transpose();
  record_read(block, y, exact, first_row);
}

bool LinearLayer::convolve(std::size_t block, const models::ConvShape& shape, const float* x, std::int64_t images,
                           const std::vector<float>& bias, float* y, std::uint64_t first_row) const {
  const Block& b = blocks_[block];
  if (!b.substrate) throw std::logic_error("layer '" + name_ + "' was run before it was programmed");
  rows_per_sample_.store(static_cast<std::uint64_t>(shape.patches()), std::memory_order_relaxed);
  if (!b.substrate->convolve(shape, x, images, bias, y, models::MultiplyContext{first_row, static_cast<std::uint64_t>(shape.patches())})) return false;
  if (!measure_error_ && !observer_) return true;
  // The reads as multiply() would have seen them: im2col rows, the hardware's outputs without the bias.
  ConvGeometry g;
  g.channels = shape.in_channels;
  g.height = shape.height;
  g.width = shape.width;
  g.kernel_h = shape.kernel_h;
  g.kernel_w = shape.kernel_w;
  g.stride_h = shape.stride_h;
  g.stride_w = shape.stride_w;
  g.dilation_h = shape.dilation_h;
  g.dilation_w = shape.dilation_w;
  g.pad_top = shape.pad_top;
  g.pad_left = shape.pad_left;
  g.out_h = shape.out_h;
  g.out_w = shape.out_w;
  const std::int64_t patches = g.patches(), k = g.patch_size();
  models::MatrixRM cols(images * patches, k), hardware(images * patches, shape.out_channels);
  for (std::int64_t i = 0; i < images; ++i) {
    im2col(g, x + i * shape.x_image_stride, cols.data() + i * patches * k);
    for (std::int64_t o = 0; o < shape.out_channels; ++o)
      for (std::int64_t p = 0; p < patches; ++p)
        hardware(i * patches + p, o) = y[i * shape.y_image_stride + o * patches + p] - (bias.empty() ? 0.0f : bias[static_cast<std::size_t>(o)]);
  }
  const models::MatrixRM exact = cols * b.weights.transpose();
  record_read(block, hardware, exact, first_row);
  return true;
}

LinearLayer::ErrorStats LinearLayer::read_error(const Eigen::Ref<const models::MatrixRM>& hardware, const models::MatrixRM& exact) {
  // Σ(y_hw − y)² and Σ y², each a sequential double sum in row-major order: the same bits as
  // Eigen's `(hardware - exact).cast<double>().squaredNorm()` and `exact.cast<double>().
  // squaredNorm()` that it replaces (tested), in one pass with both chains in registers.
  ErrorStats s;
  double error_sq = 0, signal_sq = 0;
  const Eigen::Index cols = exact.cols();
  for (Eigen::Index r = 0; r < exact.rows(); ++r) {
    const float* h = hardware.row(r).data();
    const float* e = exact.row(r).data();
    for (Eigen::Index c = 0; c < cols; ++c) {
      const double d = static_cast<double>(h[c] - e[c]);
      const double v = static_cast<double>(e[c]);
      error_sq += d * d;
      signal_sq += v * v;
    }
  }
  s.error_sq = error_sq;
  s.signal_sq = signal_sq;
  s.count = static_cast<std::uint64_t>(exact.size());
  return s;
}

void LinearLayer::record_read(std::size_t block, const Eigen::Ref<const models::MatrixRM>& hardware, const models::MatrixRM& exact,
                              std::uint64_t first_row) const {
  if (observer_) observer_(block, first_row, hardware, exact);
  if (!measure_error_) return;
  const ErrorStats s = read_error(hardware, exact);
  std::lock_guard<std::mutex> lock(stats_mutex_);
  partial_stats_[{first_row, block}] = s;
}

LinearLayer::ErrorStats LinearLayer::error_stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  ErrorStats total;
  for (const auto& entry : partial_stats_) {
    total.error_sq += entry.second.error_sq;
    total.signal_sq += entry.second.signal_sq;
    total.count += entry.second.count;
  }
  return total;
}

void LinearLayer::record_ranges(bool on) {
  if (on) ranges_.assign(blocks_.size(), Ranges{});
  record_ranges_ = on;
}

std::map<std::string, double> LinearLayer::counters() const {
  std::map<std::string, double> out;
  for (const Block& b : blocks_)
    if (b.substrate) b.substrate->add_counters(out);
  return out;
}

void Op::backward(const std::vector<const Tensor*>&, const std::vector<const Tensor*>&, const std::vector<const Tensor*>&,
                  const std::vector<bool>&, std::vector<Tensor>&, const RunContext&) const {
  throw UnsupportedError("training through this operator is not supported (it has no backward pass)");
}

void index_map_backward(const Op& op, const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& dout,
                        const std::vector<bool>& need, std::vector<Tensor>& din, const std::vector<std::size_t>& data_inputs,
                        const std::vector<std::size_t>& blank_inputs) {
  if (dout.empty() || dout[0] == nullptr) return;
  // Element k of data input p is tagged p·2^40 + k + 1 (0 is left for values the op makes up,
  // such as padding).
  constexpr std::int64_t kInputShift = std::int64_t{1} << 40;
  std::vector<Tensor> tags(in.size());
  std::vector<const Tensor*> args(in.begin(), in.end());
  for (std::size_t p : data_inputs) {
    if (p >= in.size() || in[p] == nullptr) continue;
    tags[p] = Tensor(in[p]->shape(), DType::Int64);
    for (std::int64_t k = 0; k < tags[p].numel(); ++k) tags[p].i()[k] = static_cast<std::int64_t>(p) * kInputShift + k + 1;
    args[p] = &tags[p];
  }
  for (std::size_t p : blank_inputs)
    if (p < args.size()) args[p] = nullptr;
  std::vector<Tensor> mapped(1);
  op.run(args, mapped, RunContext{});
  const Tensor& map = mapped[0];
  const Tensor& dy = *dout[0];
  if (map.numel() != dy.numel()) throw std::logic_error("index_map_backward: the gradient does not match the output");
  for (std::size_t p : data_inputs)
    if (p < in.size() && in[p] != nullptr && p < need.size() && need[p]) din[p] = Tensor(in[p]->shape());
  for (std::int64_t j = 0; j < map.numel(); ++j) {
    const std::int64_t tag = map.i()[j];
    if (tag <= 0) continue;
    const auto p = static_cast<std::size_t>(tag / kInputShift);
    if (p < din.size() && !din[p].empty()) din[p].f()[tag % kInputShift - 1] += dy.f()[j];
  }
}

void channel_moments(const Tensor& x, std::vector<double>& mean, std::vector<double>& squared_deviations) {
  const std::int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * c);
  mean.assign(static_cast<std::size_t>(c), 0.0);
  squared_deviations.assign(static_cast<std::size_t>(c), 0.0);
  const double m = static_cast<double>(n * inner);
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (std::int64_t s = 0; s < n; ++s) {
      const float* xs = x.f() + (s * c + ch) * inner;
      for (std::int64_t k = 0; k < inner; ++k) sum += xs[k];
    }
    const double mu = m > 0 ? sum / m : 0.0;
    for (std::int64_t s = 0; s < n; ++s) {
      const float* xs = x.f() + (s * c + ch) * inner;
      for (std::int64_t k = 0; k < inner; ++k) sq += (xs[k] - mu) * (xs[k] - mu);
    }
    mean[ch] = mu;
    squared_deviations[ch] = sq;
  }
}

Tensor reduce_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor out(shape);
  const Shape& gs = grad.shape();
  const std::size_t rank = gs.size();
  // Strides of `shape` seen through the broadcast (0 along broadcast axes).
  std::vector<std::int64_t> stride(rank, 0);
  std::int64_t s = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    const std::size_t o = k + rank - shape.size();
    stride[o] = shape[k] == 1 ? 0 : s;
    s *= shape[k];
  }
  std::vector<std::int64_t> coord(rank, 0);
  std::int64_t at = 0;
  for (std::int64_t j = 0; j < grad.numel(); ++j) {
    out.f()[at] += grad.f()[j];
    for (std::size_t d = rank; d-- > 0;) {
      at += stride[d];
      if (++coord[d] < gs[d]) break;
      at -= stride[d] * gs[d];
      coord[d] = 0;
    }
  }
  return out;
}

Shape broadcast_shapes(const NodeSpec& spec, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::int64_t da = k + a.size() >= rank ? a[k + a.size() - rank] : 1;
    const std::int64_t db = k + b.size() >= rank ? b[k + b.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) spec.fail("shapes " + shape_string(a) + " and " + shape_string(b) + " do not broadcast");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

namespace {
const std::map<std::string, OpFactory>& op_table() {
  static const std::map<std::string, OpFactory> table = [] {
    std::map<std::string, OpFactory> t;
    register_linear_ops(t);
    register_elementwise_ops(t);
    register_pool_ops(t);
    register_shape_ops(t);
    return t;
  }();
  return table;
}
}  // namespace

bool op_supported(const std::string& op_type) { return op_table().count(op_type) != 0; }

std::vector<std::string> supported_ops() {
  std::vector<std::string> names;
  for (const auto& entry : op_table()) names.push_back(entry.first);
  return names;
}

std::unique_ptr<Op> create_op(const NodeSpec& spec) {
  auto it = op_table().find(spec.op_type);
  if (it == op_table().end()) spec.unsupported("unsupported operator");
  std::unique_ptr<Op> op = it->second(spec);
  spec.reject_unread_attributes();
  return op;
}

}  // namespace faultline::nn
