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
  int part = 0;  // which weight block of the layer (the group of a grouped convolution)
};

// Identifies one Monte Carlo trial: programming happens once per trial.
struct ProgramContext {
  std::uint64_t seed = 0;
  std::uint64_t trial = 0;
};

// Identifies one read. `first_row` is the global index of X's first row within the current pass
// over the data, so that a row's noise is the same however the batch was split across threads.
struct MultiplyContext {
  std::uint64_t first_row = 0;
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
  WriteFailure = 8, ReadNoise = 16, OutputNoise = 17, SiteNoise = 18,
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

// Exact float32 products with Eigen: the reference every imperfect substrate is compared with.
class IdealSubstrate final : public Substrate {
 public:
  void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) override;
  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                const MultiplyContext& context) const override;
  std::string kind() const override { return "ideal"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

 private:
  MatrixRM weights_;
};

// Kinds of hardware by name, each with its declared parameters, so that a hardware description
// can select and configure them and a new kind is one registration (DESIGN.md: "Adding a new kind
// of hardware").
struct SubstrateKind {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  std::function<std::unique_ptr<Substrate>(const Params&)> create;
  // Parameters of the kind's cycle-approximate model (sim/): latencies in cycles of the unit's
  // clock and energies in pJ, read from a unit's `timing:` and `energy:` sections. Empty when the
  // kind has no cycle-level model (see models/cycle_params.h).
  std::vector<ParamSpec> timing{};
  std::vector<ParamSpec> energy{};
};

void register_substrate(SubstrateKind kind);
const SubstrateKind* find_substrate_kind(const std::string& name);
bool substrate_registered(const std::string& kind);
std::vector<std::string> registered_substrates();
// Throws faultline::Error naming the kind when it is not registered.
std::unique_ptr<Substrate> create_substrate(const std::string& kind, const Params& params);
std::unique_ptr<Substrate> create_substrate(const std::string& kind);  // default parameters

// The built-in kinds (defined next to each model).
SubstrateKind ideal_kind();
SubstrateKind noisy_kind();
SubstrateKind int8_digital_kind();
SubstrateKind rram_memory_kind();
SubstrateKind analog_crossbar_kind();
SubstrateKind trace_noise_kind();
SubstrateKind analog_mac_kind();

}  // namespace faultline::models
