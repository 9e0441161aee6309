// The one interface every piece of hardware implements (DESIGN.md, "The one interface").
//
// A layer's linear algebra (Gemm, MatMul, Conv lowered to GEMM) is handed to a substrate that is
// programmed once with a weight matrix and then multiplies many times. `program` is where
// writing a crossbar or filling a memory happens (programming noise, stuck cells, weight
// quantization: once per Monte Carlo trial); `multiply` is a read (read noise, DAC/ADC, ordering
// effects: every call).
//
// Conventions: weights are W (outputs × inputs); multiply computes Y = X · Wᵀ with one input
// vector per row of X (rows × inputs) and one output vector per row of Y (rows × outputs). A row
// is what a crossbar sees in one read, so row-major storage keeps each vector contiguous.
#pragma once

#include <Eigen/Core>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/param_table.h"
#include "models/params.h"

namespace faultline::models {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// What a substrate knows about the layer it holds. `index` is the layer's position among the
// graph's substrate layers; it is part of every random-number key so that draws do not depend on
// evaluation order (DESIGN.md, "Randomness and reproducibility").
struct LayerInfo {
  std::string name;
  std::string op_type;
  int index = 0;
  int part = 0;   // which weight block of the layer (the group of a grouped convolution)
  int parts = 1;  // how many blocks the layer has (all of one shape), for hardware that runs them together
  // For kinds that quantize with static ranges (KindCapabilities::calibration_images): max |x|
  // and max |x·Wᵀ| of this block's reads on the float model over the calibration images.
  bool calibrated = false;
  double input_range = 0, output_range = 0;
};

// Identifies one Monte Carlo trial: programming happens once per trial.
struct ProgramContext {
  std::uint64_t seed = 0;
  std::uint64_t trial = 0;
};

// Identifies one read. `first_row` is the global index of X's first row within the current pass
// over the data, so that a row's noise is the same however the batch was split across threads.
// `rows_per_sample` is how many rows one input sample gives (a convolution's output positions, a
// sequence's tokens; 1 for a dense layer), for hardware that plans its work for a batch of samples.
struct MultiplyContext {
  std::uint64_t first_row = 0;
  std::uint64_t rows_per_sample = 1;
};

// A 2-D convolution of one weight block as the engine hands it to a substrate that runs
// convolutions on the feature map (Substrate::convolve). The block's weights (outputs × inputs)
// are ONNX's (out, in, kernel_h, kernel_w) flattened. Pads are as declared (the output size
// follows from them). A dense layer is the 1 × 1 convolution of 1 × 1 images, one per row.
struct ConvShape {
  std::int64_t in_channels = 0, height = 1, width = 1, out_channels = 0;
  std::int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::int64_t out_h = 1, out_w = 1;
  std::int64_t x_image_stride = 0, y_image_stride = 0;  // elements from one image to the next in x and y
  std::int64_t patches() const { return out_h * out_w; }
};

class Substrate {
 public:
  virtual ~Substrate() = default;

  // Stores `weights` (outputs × inputs) in the hardware. Called once per trial, before any
  // multiply; may be called again to re-program (a new trial).
  virtual void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) = 0;

  // y = x · Wᵀ as the hardware computes it. `y` has already been sized rows(x) × outputs.
  // Must be safe to call concurrently from several threads on distinct x/y.
  virtual void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                        const MultiplyContext& context) const = 0;

  // Optional: y = conv(x) + bias as the hardware computes it on the feature map, x holding
  // `images` images of in_channels × height × width (x_image_stride apart) and y their
  // out_channels × out_h × out_w outputs (y_image_stride apart); `bias` (out_channels values, or
  // empty) added where the hardware adds it. `context.first_row` is the global index of the first
  // image's first output position (its im2col row), as multiply() would have been given. Returns
  // false when the substrate does not (then the engine lowers the convolution to multiply() by
  // im2col and adds the bias itself). Must be safe to call concurrently, as multiply().
  virtual bool convolve(const ConvShape& shape, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                        const MultiplyContext& context) const {
    (void)shape, (void)x, (void)images, (void)bias, (void)y, (void)context;
    return false;
  }

  // Optional: multiply() that also writes the exact product x · Wᵀ of the programmed weights into
  // `exact` (sized rows(x) × outputs by the caller), for substrates that compute it on the way to
  // y anyway (exact output, then noise on it). It must be the same bits as the engine's reference,
  // the Eigen product `x * weights.transpose()` of the weights given to program(). Per-layer error
  // measurement then does not compute it a second time. Returns false when the substrate does not
  // (then nothing was written and the engine calls multiply()).
  virtual bool multiply_keeping_exact(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, Eigen::Ref<MatrixRM> exact,
                                      const MultiplyContext& context) const {
    (void)x, (void)y, (void)exact, (void)context;
    return false;
  }

  // The registered kind ("ideal", ...).
  virtual std::string kind() const = 0;

  virtual Eigen::Index outputs() const = 0;
  virtual Eigen::Index inputs() const = 0;

  // Adds this substrate's hardware counters (ADC saturations, stuck cells, write-verify
  // iterations, ...) into `out`; counts since the last program().
  virtual void add_counters(std::map<std::string, double>& out) const { (void)out; }
};

// Random-stream ids for hardware models: a pure function of (trial, layer, block, purpose), so
// every draw is keyed by (seed, trial, layer, site, element index) as DESIGN.md requires.
// Bit layout: trial 24 bits | layer 12 | block 20 | purpose 8.
enum class Purpose : std::uint8_t {
  ProgrammingNoise = 1, Stuck = 2, Drift = 3, ProgramRead = 4, Variation = 5, Order = 6, BitFlip = 7,
  WriteFailure = 8, FpRoundWeight = 9, ReadNoise = 16, OutputNoise = 17, SiteNoise = 18, FpRoundRead = 19, FpRoundSum = 20,
};
inline std::uint64_t stream_id(std::uint64_t trial, int layer, int block, Purpose purpose) {
  return ((trial & 0xFFFFFFull) << 40) | ((static_cast<std::uint64_t>(layer) & 0xFFFull) << 28) |
         ((static_cast<std::uint64_t>(block) & 0xFFFFFull) << 8) | static_cast<std::uint64_t>(purpose);
}

// A thread-safe event counter for read-time statistics (integer sums do not depend on order).
class Counter {
 public:
  void add(std::uint64_t n) const { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }
  void reset() { value_.store(0); }

 private:
  mutable std::atomic<std::uint64_t> value_{0};
};

// Exact float32 products with Eigen: the reference every imperfect substrate is compared with,
// and what a layer that no hardware unit is mapped to runs on. The NN engine names it only
// through these two functions (models/ideal.cpp registers it as a kind too).
std::unique_ptr<Substrate> make_exact_substrate();
const std::string& exact_kind_name();

// What a kind can do besides its functional model. Declared by the kind, so that nothing outside
// its own files switches on its name.
struct KindCapabilities {
  // It has a cycle-approximate model (sim/ registers one under the kind's name) with the
  // `timing:` and `energy:` parameters below.
  bool cycle_model = false;
  // `impl: rtl:NAME` is allowed: sim/ registers an RTL binding under the kind's name that runs its
  // products on an RTL matrix-vector unit (rtl/README.md).
  bool rtl_binding = false;
  // It is a noise model on a layer's output and may be the noise of noise-aware training
  // (`faultline train --noise`).
  bool training_noise = false;
  // > 0: the kind quantizes activations with static ranges, measured (max |x|, max |x·Wᵀ| per
  // layer) on the float model over the first this many images of the evaluated data before the
  // first trial, and passed to program() in LayerInfo (studies/hardware.h, calibrate).
  int calibration_images = 0;
};

// Kinds of hardware by name, each with its declared parameters, so that a hardware description
// can select and configure them. A kind registers itself in its own file
// (FAULTLINE_REGISTER_KIND); there is no central list (DESIGN.md: "Adding a new kind of hardware").
struct SubstrateKind {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  std::function<std::unique_ptr<Substrate>(const Params&)> create;
  // Parameters of the kind's cycle-approximate model (sim/): latencies in cycles of the unit's
  // clock and energies in pJ, read from a unit's `timing:` and `energy:` sections.
  std::vector<ParamSpec> timing{};
  std::vector<ParamSpec> energy{};
  // Per-layer knobs (a unit's `schedule: {LAYER: {knob: value}}`, e.g. VTA's tiling): passed to
  // create() with the unit's parameters for that layer's substrates, at their defaults for layers
  // the unit does not list.
  std::vector<ParamSpec> schedule{};
  KindCapabilities capabilities{};
  // The counters that matter most for this kind (at most three): what the per-layer table shows
  // by default (`eval --verbose` shows every counter; the JSON always has them all).
  std::vector<std::string> summary_counters{};
};

// Builds a kind from its typed config: `table` declares the parameters (defaults from
// `defaults`), and `make` receives the struct read from validated values.
template <class Config, class Make>
SubstrateKind typed_kind(std::string name, std::string doc, const ParamTable<Config>& table, const Config& defaults, Make make) {
  SubstrateKind k;
  k.name = std::move(name);
  k.doc = std::move(doc);
  k.params = table.specs(defaults);
  k.create = [table, make](const Params& p) -> std::unique_ptr<Substrate> { return make(table.read(p)); };
  return k;
}

void register_substrate(SubstrateKind kind);
const SubstrateKind* find_substrate_kind(const std::string& name);
bool substrate_registered(const std::string& kind);
std::vector<std::string> registered_substrates();
// Throws faultline::Error naming the kind when it is not registered.
std::unique_ptr<Substrate> create_substrate(const std::string& kind, const Params& params);
std::unique_ptr<Substrate> create_substrate(const std::string& kind);  // default parameters

// Registers the kind `make()` returns, under `name` (checked against the kind's own name), when
// the program starts. The libraries holding kinds are linked whole (CMake WHOLE_ARCHIVE,
// models/CMakeLists.txt), so a registration in a file that nothing else references still reaches
// every program; the build finds the kinds by this macro (tests/kinds_registered_test.cpp).
struct KindRegistrar {
  KindRegistrar(const char* name, SubstrateKind (*make)());
};
#define FAULTLINE_REGISTER_KIND(name, make) \
  static const ::faultline::models::KindRegistrar faultline_kind_registrar_##name{#name, &make};

}  // namespace faultline::models
